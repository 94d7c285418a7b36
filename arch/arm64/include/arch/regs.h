/* A trapped vCPU's registers as core reads and writes them (the frame vectors.S saved). */
#ifndef ARCH_REGS_H
#define ARCH_REGS_H
#include <arch/trap_frame.h>

/* General register n; 31 is the zero register here (loads and stores name it so). */
static inline u64 vcpu_reg(const struct trap_frame *f, unsigned n)
{
	return n == 31 ? 0 : f->x[n];
}

static inline void vcpu_reg_set(struct trap_frame *f, unsigned n, u64 val)
{
	if (n != 31)
		f->x[n] = val;
}

/* The arguments and results of a hypercall: x0 upwards. */
static inline u64 *vcpu_args(struct trap_frame *f)
{
	return f->x;
}

/* Past the instruction that trapped (all AArch64 instructions are 4 bytes). */
static inline void vcpu_skip_insn(struct trap_frame *f)
{
	f->elr += 4;
}

static inline u64 vcpu_pc(const struct trap_frame *f)
{
	return f->elr;
}
#endif
