/*
 * Saving and restoring a vCPU's EL1 state: when a vCPU starts (from the
 * reset values: a VM that reboots finds no trace of its previous life in
 * the CPU), when it leaves, and on every switch between vCPUs sharing a CPU.
 */
#include <string.h>
#include <arch/el1_context.h>
#include <arch/sysreg.h>

#define SCTLR_EL1_RES1 0x30d00800UL /* ARMv8.0 RES1 bits; MMU and caches off */

void el1_context_reset(struct el1_context *c)
{
	memset(c, 0, sizeof(*c));
	c->sctlr = SCTLR_EL1_RES1;
}

/*
 * The registers in struct el1_context's order, two at a time: an mrs (msr)
 * per register and one stp (ldp) per pair, where C's one str (ldr) per
 * register cost a vCPU switch 25 instructions more each way.
 */
#define EL1_PAIRS(op)                                               \
	op(0, sctlr_el1, cpacr_el1) op(16, ttbr0_el1, ttbr1_el1)    \
	op(32, tcr_el1, esr_el1) op(48, afsr0_el1, afsr1_el1)       \
	op(64, far_el1, mair_el1) op(80, amair_el1, vbar_el1)       \
	op(96, contextidr_el1, tpidr_el0)                           \
	op(112, tpidrro_el0, tpidr_el1) op(128, sp_el0, sp_el1)     \
	op(144, elr_el1, spsr_el1) op(160, par_el1, cntkctl_el1)    \
	op(176, csselr_el1, cntv_ctl_el0)

#define SAVE_PAIR(off, a, b) "mrs x9, " #a "\n\tmrs x10, " #b "\n\tstp x9, x10, [%0, #" #off "]\n\t"
#define LOAD_PAIR(off, a, b) "ldp x9, x10, [%0, #" #off "]\n\tmsr " #a ", x9\n\tmsr " #b ", x10\n\t"

_Static_assert(__builtin_offsetof(struct el1_context, cntv_ctl) == 184 &&
		       __builtin_offsetof(struct el1_context, cntv_cval) == 192,
	       "EL1_PAIRS follows struct el1_context");

void el1_context_save(struct el1_context *c)
{
	asm volatile(EL1_PAIRS(SAVE_PAIR) "mrs x9, cntv_cval_el0\n\tstr x9, [%0, #192]"
		     : : "r"(c) : "x9", "x10", "memory");
}

void el1_context_restore(const struct el1_context *c)
{
	/* CVAL first: CTL, in the last pair, may enable the timer, which with another CVAL could fire for nothing. */
	asm volatile("ldr x9, [%0, #192]\n\tmsr cntv_cval_el0, x9\n\t" EL1_PAIRS(LOAD_PAIR)
		     : : "r"(c) : "x9", "x10", "memory");
	/*
	 * In effect for the rest of the load at EL2 (the virtual timer's output
	 * among them), not only from the ERET into the guest on.
	 */
	isb();
}
