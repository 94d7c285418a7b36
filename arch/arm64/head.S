/*
 * Entry: the arm64 Linux Image header, then the boot CPU's path from reset
 * state to C, and the secondary CPUs' path.
 *
 * Boot protocol: x0 = physical address of the device tree, MMU off, D-cache
 * off, image cleaned to PoC. Quire is position independent: it applies its
 * own R_AARCH64_RELATIVE relocations before touching any absolute pointer.
 */
#include <arch/asm.h>
#include <arch/cpu.h>
#include <arch/sysreg.h>

#define R_AARCH64_RELATIVE 1027

	.section .text.head, "ax"
FUNC(_start)
	b	primary_entry			/* code0 */
	.long	0				/* code1 */
	.quad	0x80000				/* text_offset */
	.quad	0				/* image_size incl. BSS: set by scripts/finish-image */
	.quad	0xa				/* flags: LE, 4K pages, anywhere in RAM */
	.quad	0, 0, 0				/* res2-4 */
	.ascii	"ARM\x64"			/* magic */
	.long	0				/* res5 */
END(_start)

primary_entry:
	msr	daifset, #0xf
	mov	x19, x0				/* device tree */
	mrs	x20, CurrentEL			/* the EL we were entered at, for the banner */
	mrs	x1, CurrentEL
	cmp	x1, #(3 << 2)
	b.ne	1f
	bl	el3_to_el2
1:	bl	apply_relocations

	/* Clear BSS (stacks and page tables included); 16-byte aligned by the linker script. */
	adr_l	x1, __bss_start
	adr_l	x2, __bss_end
2:	cmp	x1, x2
	b.hs	3f
	stp	xzr, xzr, [x1], #16
	b	2b

3:	adr_l	x1, cpu_stacks
	add	sp, x1, #STACK_SIZE
	mrs	x1, CurrentEL
	lsr	x0, x1, #2
	cmp	x1, #(2 << 2)
	b.ne	boot_refuse_el			/* C; prints why and stops */
	bl	el2_setup
	mov	x0, x19
	lsr	x1, x20, #2
	b	boot_primary			/* C; never returns */

/* Secondary CPUs enter here from PSCI CPU_ON or a spin-table release. */
FUNC(secondary_entry)
	msr	daifset, #0xf
	mrs	x1, CurrentEL
	cmp	x1, #(3 << 2)
	b.ne	1f
	bl	el3_to_el2
1:	bl	el2_setup
	/* Logical id: our MPIDR's index in cpu_mpidr[] (cleaned to PoC by the boot CPU). */
	mrs	x1, mpidr_el1
	mov_imm64 x2, MPIDR_AFF_MASK
	and	x1, x1, x2
	adr_l	x2, cpu_mpidr
	mov	x20, #0
2:	ldr	x4, [x2, x20, lsl #3]
	cmp	x4, x1
	b.eq	3f
	add	x20, x20, #1
	cmp	x20, #MAX_CPUS
	b.lo	2b
4:	wfi					/* not ours to run */
	b	4b
3:	adr_l	x1, cpu_stacks
	add	x2, x20, #1
	mov	x4, #STACK_SIZE
	madd	x1, x2, x4, x1
	mov	sp, x1
	adr_l	x0, boot_mmu_regs
	bl	mmu_load
	mov	x0, x20
	b	secondary_main
END(secondary_entry)

/* From EL3 (no firmware below us): make EL2 AArch64 non-secure and return there. */
el3_to_el2:
	mov	x1, #(SCR_EL3_RES1 | SCR_EL3_NS | SCR_EL3_HCE | SCR_EL3_RW | SCR_EL3_SMD)
	msr	scr_el3, x1
	msr	cptr_el3, xzr
	mov_imm64 x1, SCTLR_EL2_RES1
	msr	sctlr_el2, x1
	mov	x1, #SPSR_EL2H_DAIF
	msr	spsr_el3, x1
	msr	elr_el3, x30
	isb
	eret

/* EL2 registers every CPU sets before anything else (x1 clobbered). */
el2_setup:
	mov_imm64 x1, SCTLR_EL2_RES1 | SCTLR_EL2_I | SCTLR_EL2_SA
	msr	sctlr_el2, x1
	mov	x1, #HCR_EL2_RW
	msr	hcr_el2, x1
	mov	x1, #CPTR_EL2_RES1
	msr	cptr_el2, x1
	mov	x1, #3				/* CNTHCTL_EL2: EL1PCTEN, EL1PCEN */
	msr	cnthctl_el2, x1
	msr	cntvoff_el2, xzr
	adr_l	x1, el2_vectors
	msr	vbar_el2, x1
	msr	spsel, #1
	isb
	ret

/* Apply .rela.dyn at the run-time base (the link base is 0). Clobbers x1-x6. */
apply_relocations:
	adr_l	x1, _start
	adr_l	x2, __rela_start
	adr_l	x3, __rela_end
1:	cmp	x2, x3
	b.hs	2f
	ldp	x4, x5, [x2], #16		/* r_offset, r_info */
	ldr	x6, [x2], #8			/* r_addend */
	cmp	x5, #R_AARCH64_RELATIVE
	b.ne	1b
	add	x6, x6, x1
	str	x6, [x1, x4]
	b	1b
2:	ret
