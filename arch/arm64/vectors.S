/*
 * EL2 exception vectors (entry code). Every entry saves the general
 * registers and the syndrome registers into a struct trap_frame on the
 * current stack and calls el2_exception(frame, vector index), then leaves
 * through el2_restore (enter.S) to ELR_EL2.
 */
#include <arch/asm.h>
#include <arch/trap_frame.h>

.macro ventry index
	.align	7
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #FRAME_X(0)]
	mov	x1, #\index
	b	el2_trap_common
.endm

	.text
	.align	11
FUNC(el2_vectors)
	.irp	i, 0, 1, 2, 3, 4, 5, 6, 7, 8
	ventry	\i
	.endr
	/* 9, an IRQ from a guest: saves only what C may clobber first. */
	.align	7
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #FRAME_X(0)]
	b	el2_guest_irq
	.irp	i, 10, 11, 12, 13, 14, 15
	ventry	\i
	.endr
END(el2_vectors)

/*
 * A guest's IRQ (mostly a kick carrying an SGI, or the timer): the
 * registers a C call may clobber, then guest_irq_fast(). If it has handled
 * it and the guest may go on, back at once (ELR_EL2 and SPSR_EL2 still hold
 * the guest's: nothing at EL2 took an exception meanwhile). Otherwise the
 * rest of the frame, as every other exit saves it, for the scheduler.
 */
el2_guest_irq:
	stp	x2, x3, [sp, #FRAME_X(2)]
	stp	x4, x5, [sp, #FRAME_X(4)]
	stp	x6, x7, [sp, #FRAME_X(6)]
	stp	x8, x9, [sp, #FRAME_X(8)]
	stp	x10, x11, [sp, #FRAME_X(10)]
	stp	x12, x13, [sp, #FRAME_X(12)]
	stp	x14, x15, [sp, #FRAME_X(14)]
	stp	x16, x17, [sp, #FRAME_X(16)]
	str	x18, [sp, #FRAME_X(18)]
	str	x30, [sp, #FRAME_X(30)]
	bl	guest_irq_fast
	cbz	w0, 1f
	ldp	x0, x1, [sp, #FRAME_X(0)]
	ldp	x2, x3, [sp, #FRAME_X(2)]
	ldp	x4, x5, [sp, #FRAME_X(4)]
	ldp	x6, x7, [sp, #FRAME_X(6)]
	ldp	x8, x9, [sp, #FRAME_X(8)]
	ldp	x10, x11, [sp, #FRAME_X(10)]
	ldp	x12, x13, [sp, #FRAME_X(12)]
	ldp	x14, x15, [sp, #FRAME_X(14)]
	ldp	x16, x17, [sp, #FRAME_X(16)]
	ldr	x18, [sp, #FRAME_X(18)]
	ldr	x30, [sp, #FRAME_X(30)]
	add	sp, sp, #FRAME_SIZE
	eret
1:	/* x19-x29 are the guest's still: C preserved them. */
	stp	x19, x20, [sp, #FRAME_X(19)]
	stp	x21, x22, [sp, #FRAME_X(21)]
	stp	x23, x24, [sp, #FRAME_X(23)]
	stp	x25, x26, [sp, #FRAME_X(25)]
	stp	x27, x28, [sp, #FRAME_X(27)]
	str	x29, [sp, #FRAME_X(29)]
	add	x2, sp, #FRAME_SIZE
	str	x2, [sp, #FRAME_SP]
	mrs	x2, elr_el2
	mrs	x3, spsr_el2
	stp	x2, x3, [sp, #FRAME_ELR]
	mrs	x2, esr_el2
	mrs	x3, far_el2
	stp	x2, x3, [sp, #FRAME_ESR]
	mov	x0, sp
	bl	guest_irq_rest
	b	el2_restore

el2_trap_common:
	stp	x2, x3, [sp, #FRAME_X(2)]
	stp	x4, x5, [sp, #FRAME_X(4)]
	stp	x6, x7, [sp, #FRAME_X(6)]
	stp	x8, x9, [sp, #FRAME_X(8)]
	stp	x10, x11, [sp, #FRAME_X(10)]
	stp	x12, x13, [sp, #FRAME_X(12)]
	stp	x14, x15, [sp, #FRAME_X(14)]
	stp	x16, x17, [sp, #FRAME_X(16)]
	stp	x18, x19, [sp, #FRAME_X(18)]
	stp	x20, x21, [sp, #FRAME_X(20)]
	stp	x22, x23, [sp, #FRAME_X(22)]
	stp	x24, x25, [sp, #FRAME_X(24)]
	stp	x26, x27, [sp, #FRAME_X(26)]
	stp	x28, x29, [sp, #FRAME_X(28)]
	add	x2, sp, #FRAME_SIZE
	stp	x30, x2, [sp, #FRAME_X(30)]	/* x30, then the interrupted SP */
	mrs	x2, elr_el2
	mrs	x3, spsr_el2
	stp	x2, x3, [sp, #FRAME_ELR]
	mrs	x2, esr_el2
	mrs	x3, far_el2
	stp	x2, x3, [sp, #FRAME_ESR]
	mov	x0, sp
	bl	el2_exception
	b	el2_restore
