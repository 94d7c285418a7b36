/*
 * A vCPU's FP/SIMD registers, moved between the CPU and memory when another
 * vCPU on the same CPU first uses them (lazily: CPTR_EL2.TFP traps first use).
 * Quire itself is built without FP/SIMD (-mgeneral-regs-only), so these
 * registers only ever hold a guest's state.
 */
#include <arch/asm.h>

	.arch_extension fp
	.arch_extension simd

/* fpsimd_save(struct fpsimd *): q0-q31, then FPSR and FPCR. */
FUNC(fpsimd_save)
	stp	q0, q1, [x0, #0x000]
	stp	q2, q3, [x0, #0x020]
	stp	q4, q5, [x0, #0x040]
	stp	q6, q7, [x0, #0x060]
	stp	q8, q9, [x0, #0x080]
	stp	q10, q11, [x0, #0x0a0]
	stp	q12, q13, [x0, #0x0c0]
	stp	q14, q15, [x0, #0x0e0]
	stp	q16, q17, [x0, #0x100]
	stp	q18, q19, [x0, #0x120]
	stp	q20, q21, [x0, #0x140]
	stp	q22, q23, [x0, #0x160]
	stp	q24, q25, [x0, #0x180]
	stp	q26, q27, [x0, #0x1a0]
	stp	q28, q29, [x0, #0x1c0]
	stp	q30, q31, [x0, #0x1e0]
	mrs	x1, fpsr
	mrs	x2, fpcr
	add	x0, x0, #0x200
	stp	x1, x2, [x0]
	ret
END(fpsimd_save)

/* fpsimd_restore(const struct fpsimd *) */
FUNC(fpsimd_restore)
	ldp	q0, q1, [x0, #0x000]
	ldp	q2, q3, [x0, #0x020]
	ldp	q4, q5, [x0, #0x040]
	ldp	q6, q7, [x0, #0x060]
	ldp	q8, q9, [x0, #0x080]
	ldp	q10, q11, [x0, #0x0a0]
	ldp	q12, q13, [x0, #0x0c0]
	ldp	q14, q15, [x0, #0x0e0]
	ldp	q16, q17, [x0, #0x100]
	ldp	q18, q19, [x0, #0x120]
	ldp	q20, q21, [x0, #0x140]
	ldp	q22, q23, [x0, #0x160]
	ldp	q24, q25, [x0, #0x180]
	ldp	q26, q27, [x0, #0x1a0]
	ldp	q28, q29, [x0, #0x1c0]
	ldp	q30, q31, [x0, #0x1e0]
	add	x0, x0, #0x200
	ldp	x1, x2, [x0]
	msr	fpsr, x1
	msr	fpcr, x2
	ret
END(fpsimd_restore)
