/*
 * Self-hosted debug for guests (arch/arm64/debug.c): the breakpoint and
 * watchpoint registers, MDSCR_EL1 and MDCCINT_EL1 are the CPU's own while a
 * vCPU uses them, switched lazily; the OS lock is emulated.
 */
#ifndef ARCH_DEBUG_H
#define ARCH_DEBUG_H
#include <arch/sysreg_access.h>

#define DBG_MAX_BPS 16

struct vcpu_debug {
	u64 bvr[DBG_MAX_BPS], bcr[DBG_MAX_BPS], wvr[DBG_MAX_BPS], wcr[DBG_MAX_BPS];
	u64 mdscr, mdccint;
	bool loaded;	/* its registers are the CPU's (MDCR_EL2.TDA clear) */
	bool oslk;	/* OSLSR_EL1.OSLK, as it last wrote OSLAR_EL1 */
	bool corenpdrq;	/* DBGPRCR_EL1.CORENPDRQ: kept, no effect */
};

/* Each CPU at EL2, before any vCPU: the OS lock open (it is locked at cold reset), no debug events. */
void debug_cpu_init(void);
void debug_reset(struct vcpu_debug *d);
/* vCPU load: its registers into the CPU now if it is debugging (a trap would come too late). */
void debug_load(struct vcpu_debug *d);
/* vCPU put (or exit): its registers out, and no debug event for whoever runs next. */
void debug_put(struct vcpu_debug *d);
/* A trapped debug register access (op0 == 2). */
enum sysreg_result debug_access(struct vcpu_debug *d, struct sysreg_access *a);
/* ID_AA64DFR0_EL1 as the guest sees it (debug and PMU fields). */
u64 debug_id_aa64dfr0(u64 hw);
#endif
