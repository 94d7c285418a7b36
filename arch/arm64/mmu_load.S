/* A primitive of mmu.c's: load EL2's stage-1 registers (boot and secondary CPUs call it). */
#include <arch/asm.h>
#include <arch/sysreg.h>

	.text
/*
 * mmu_load(const struct mmu_regs *r): switch EL2 stage 1 to r's tables.
 * Turns the MMU off around the switch so old and new TLB entries never meet
 * (no break-before-make needed), and touches no memory while it is off.
 */
FUNC(mmu_load)
	ldp	x1, x2, [x0]			/* mair, tcr */
	ldp	x3, x4, [x0, #16]		/* ttbr, sctlr */
	mrs	x5, sctlr_el2
	bic	x5, x5, #SCTLR_EL2_M
	dsb	ish
	msr	sctlr_el2, x5
	isb
	msr	mair_el2, x1
	msr	tcr_el2, x2
	msr	ttbr0_el2, x3
	isb
	tlbi	alle2
	dsb	ish
	isb
	msr	sctlr_el2, x4
	isb
	ret
END(mmu_load)
