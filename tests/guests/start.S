/*
 * Test guest entry (Quire's guest contract): EL1h, MMU off, DAIF masked,
 * x0 = argument, x1 = RAM size, x2 = vCPU index, x3 = number of vCPUs.
 * Secondary vCPUs come in at secondary_entry through PSCI CPU_ON with
 * x0 = context id (here: the vCPU index).
 */
#include "guest.h"

	.macro	adr_l, reg, sym
	adrp	\reg, \sym
	add	\reg, \reg, :lo12:\sym
	.endm

	.section .text.start, "ax"
	.global	_start
_start:
	/*
	 * The marker that tells Quire this image takes the test-guest contract
	 * above, not QEMU's -kernel protocol (IMAGE_TEST_GUEST_MAGIC at offset 8,
	 * include/quire/vmconfig.h), branched over as a Linux Image's header is.
	 */
	b	0f
	.long	0
	.ascii	"QUIRE-TG"
0:	/* x0..x3 are guest_main's arguments: use x4.. only. */
	adr_l	x4, vectors
	msr	vbar_el1, x4
	isb
	/* Quire does not zero BSS (its pages are zero anyway): clear it, which
	 * also touches every BSS page (stacks included) before any measuring. */
	adr_l	x4, __bss_start
	adr_l	x5, __bss_end
1:	cmp	x4, x5
	b.hs	2f
	stp	xzr, xzr, [x4], #16
	b	1b
	/* Read one word of each loaded page too, so no page of the image is
	 * first touched inside a measured window. */
2:	adr_l	x4, _start
	adr_l	x5, __bss_start
3:	ldr	x6, [x4]
	add	x4, x4, #PAGE_SIZE
	cmp	x4, x5
	b.lo	3b
	adr_l	x4, stacks + STACK_SIZE
	mov	sp, x4
	bl	guest_main
	b	park

	.text
	.global	secondary_entry
secondary_entry:
	adr_l	x4, vectors
	msr	vbar_el1, x4
	isb
	cmp	x0, #MAX_VCPUS
	b.hs	park
	adr_l	x4, stacks
	add	x5, x0, #1
	lsl	x5, x5, #14		/* STACK_SIZE */
	.if	STACK_SIZE != (1 << 14)
	.error	"secondary_entry assumes 16 KiB stacks"
	.endif
	add	sp, x4, x5
	bl	secondary_main
	b	park

/*
 * Synchronous exception at EL1 with SP_EL1 (vector 0x200). A data abort
 * (EC 0x25), or an UNDEF (EC 0x00) while aborts[vCPU].undef_ok is set, is
 * recorded in aborts[vCPU] and the faulting instruction is skipped; anything
 * else is reported by guest_unexpected.
 */
el1_sync:
	sub	sp, sp, #32
	stp	x0, x1, [sp]
	stp	x2, x3, [sp, #16]
	mrs	x1, mpidr_el1
	and	x1, x1, #0xff
	cmp	x1, #MAX_VCPUS
	b.hs	9f
	adr_l	x2, aborts
	add	x2, x2, x1, lsl #ABORT_REC_SHIFT
	mrs	x0, esr_el1
	lsr	x1, x0, #26
	cmp	x1, #0x31		/* breakpoint, software step, watchpoint */
	b.eq	5f
	cmp	x1, #0x33
	b.eq	5f
	cmp	x1, #0x35
	b.eq	5f
	cmp	x1, #0x25
	b.eq	1f
	cbnz	x1, 9f			/* neither a data abort nor an UNDEF */
	ldr	x3, [x2, #32]		/* undef_ok: a probe expects it */
	cbz	x3, 9f
1:	mrs	x3, far_el1
	str	x3, [x2, #8]
	str	x0, [x2, #16]
	mrs	x3, elr_el1
	str	x3, [x2, #24]
	add	x3, x3, #4
	msr	elr_el1, x3
	ldr	x3, [x2]
	add	x3, x3, #1
	dmb	sy			/* the record before the count */
	str	x3, [x2]
	ldp	x2, x3, [sp, #16]
	ldp	x0, x1, [sp], #32
	eret
9:	add	sp, sp, #32
	mov	x0, #4
	b	bad_vector
5:	ldp	x2, x3, [sp, #16]
	ldp	x0, x1, [sp], #32
	b	el1_debug

/* x2-x17 at sp + 16 on, as the EL1 handlers below lay out their frames. */
	.macro	save_x2_x17
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	.endm

	.macro	restore_x2_x17
	ldp	x16, x17, [sp, #128]
	ldp	x14, x15, [sp, #112]
	ldp	x12, x13, [sp, #96]
	ldp	x10, x11, [sp, #80]
	ldp	x8, x9, [sp, #64]
	ldp	x6, x7, [sp, #48]
	ldp	x4, x5, [sp, #32]
	ldp	x2, x3, [sp, #16]
	.endm

/*
 * A debug exception from EL1 (breakpoint, software step, watchpoint):
 * guest_debug(esr, far, elr) in C, with every register it may clobber saved.
 * It may change ELR_EL1 and SPSR_EL1 (SPSR.SS to step on), so they are not
 * restored here.
 */
el1_debug:
	sub	sp, sp, #160
	stp	x0, x1, [sp]
	save_x2_x17
	stp	x18, x30, [sp, #144]
	mrs	x0, esr_el1
	mrs	x1, far_el1
	mrs	x2, elr_el1
	bl	guest_debug
	ldp	x18, x30, [sp, #144]
	restore_x2_x17
	ldp	x0, x1, [sp], #160
	eret

bad_vector:
	mrs	x1, esr_el1
	mrs	x2, far_el1
	mrs	x3, elr_el1
	bl	guest_unexpected
	b	park

/*
 * IRQ at EL1 with SP_EL1 (vector 0x280): guest_irq() in C, with every
 * register it may clobber saved (x0-x18, x29, x30, and ELR/SPSR in case it
 * takes a synchronous exception).
 */
el1_irq:
	sub	sp, sp, #192
	stp	x0, x1, [sp]
	save_x2_x17
	stp	x18, x29, [sp, #144]
	mrs	x0, elr_el1
	mrs	x1, spsr_el1
	stp	x30, x0, [sp, #160]
	str	x1, [sp, #176]
	bl	guest_irq
	ldr	x1, [sp, #176]
	ldp	x30, x0, [sp, #160]
	msr	elr_el1, x0
	msr	spsr_el1, x1
	ldp	x18, x29, [sp, #144]
	restore_x2_x17
	ldp	x0, x1, [sp], #192
	eret

	.balign	2048
vectors:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	.balign	128
	.if	\n == 4
	b	el1_sync
	.elseif	\n == 5
	b	el1_irq
	.else
	mov	x0, #\n
	b	bad_vector
	.endif
	.endr

	.bss
	.balign	16
	.global	stacks
stacks:
	.space	STACK_SIZE * MAX_VCPUS
