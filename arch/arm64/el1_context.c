/*
 * Saving and restoring a vCPU's EL1 state. Each vCPU owns its physical CPU
 * for now, so this runs when a vCPU starts (from the reset values: a VM that
 * reboots finds no trace of its previous life in the CPU) and when it
 * leaves; the scheduler will call it on every switch.
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

void el1_context_save(struct el1_context *c)
{
	c->sctlr = read_sysreg(sctlr_el1);
	c->cpacr = read_sysreg(cpacr_el1);
	c->ttbr0 = read_sysreg(ttbr0_el1);
	c->ttbr1 = read_sysreg(ttbr1_el1);
	c->tcr = read_sysreg(tcr_el1);
	c->esr = read_sysreg(esr_el1);
	c->afsr0 = read_sysreg(afsr0_el1);
	c->afsr1 = read_sysreg(afsr1_el1);
	c->far = read_sysreg(far_el1);
	c->mair = read_sysreg(mair_el1);
	c->amair = read_sysreg(amair_el1);
	c->vbar = read_sysreg(vbar_el1);
	c->contextidr = read_sysreg(contextidr_el1);
	c->tpidr_el0 = read_sysreg(tpidr_el0);
	c->tpidrro_el0 = read_sysreg(tpidrro_el0);
	c->tpidr_el1 = read_sysreg(tpidr_el1);
	c->sp_el0 = read_sysreg(sp_el0);
	c->sp_el1 = read_sysreg(sp_el1);
	c->elr = read_sysreg(elr_el1);
	c->spsr = read_sysreg(spsr_el1);
	c->par = read_sysreg(par_el1);
	c->cntkctl = read_sysreg(cntkctl_el1);
	c->csselr = read_sysreg(csselr_el1);
	c->cntv_ctl = read_sysreg(cntv_ctl_el0);
	c->cntv_cval = read_sysreg(cntv_cval_el0);
}

void el1_context_restore(const struct el1_context *c)
{
	write_sysreg(c->sctlr, sctlr_el1);
	write_sysreg(c->cpacr, cpacr_el1);
	write_sysreg(c->ttbr0, ttbr0_el1);
	write_sysreg(c->ttbr1, ttbr1_el1);
	write_sysreg(c->tcr, tcr_el1);
	write_sysreg(c->esr, esr_el1);
	write_sysreg(c->afsr0, afsr0_el1);
	write_sysreg(c->afsr1, afsr1_el1);
	write_sysreg(c->far, far_el1);
	write_sysreg(c->mair, mair_el1);
	write_sysreg(c->amair, amair_el1);
	write_sysreg(c->vbar, vbar_el1);
	write_sysreg(c->contextidr, contextidr_el1);
	write_sysreg(c->tpidr_el0, tpidr_el0);
	write_sysreg(c->tpidrro_el0, tpidrro_el0);
	write_sysreg(c->tpidr_el1, tpidr_el1);
	write_sysreg(c->sp_el0, sp_el0);
	write_sysreg(c->sp_el1, sp_el1);
	write_sysreg(c->elr, elr_el1);
	write_sysreg(c->spsr, spsr_el1);
	write_sysreg(c->par, par_el1);
	write_sysreg(c->cntkctl, cntkctl_el1);
	write_sysreg(c->csselr, csselr_el1);
	write_sysreg(c->cntv_cval, cntv_cval_el0);
	write_sysreg(c->cntv_ctl, cntv_ctl_el0);
	isb();
}
