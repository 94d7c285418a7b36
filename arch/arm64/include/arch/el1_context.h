/* A vCPU's EL1 (and EL0 thread) system registers, as saved while it is not on a CPU. */
#ifndef ARCH_EL1_CONTEXT_H
#define ARCH_EL1_CONTEXT_H
#include <quire/types.h>

struct el1_context {
	u64 sctlr, cpacr, ttbr0, ttbr1, tcr, esr, afsr0, afsr1, far, mair, amair, vbar;
	u64 contextidr, tpidr_el0, tpidrro_el0, tpidr_el1, sp_el0, sp_el1, elr, spsr, par;
	u64 cntkctl, csselr, cntv_ctl, cntv_cval; /* MDSCR_EL1: with the debug registers (debug.c) */
};

/* Architectural reset values where the Arm ARM gives them, zero elsewhere. */
void el1_context_reset(struct el1_context *c);
void el1_context_save(struct el1_context *c);
void el1_context_restore(const struct el1_context *c);
#endif
