/*
 * The guest's PMU: PMUv3 as the CPU has it (the cycle counter and PMCR_EL0.N
 * event counters, the events PMCEID0/1_EL0 list), used directly by the vCPU
 * that owns it: MDCR_EL2.HPMN = N gives the guest every counter, and
 * MDCR_EL2.TPM is clear while its registers are loaded. PMCR_EL0 is not
 * trapped either (TPMCR clear): with HPMN = N its N field, P (reset the
 * event counters) and E all mean the guest's own counters.
 *
 * Lazily, like debug.c: a vCPU's first PMU access after it was loaded traps
 * (TPM), and its registers go into the CPU. When it leaves, its counters stop
 * (PMCR_EL0.E) before they are saved, and the overflow flags and interrupt
 * enables are cleared, so nothing it counted runs on into another VM and its
 * overflow interrupt (PPI 7, INTID 23) drops. A vCPU that was counting is
 * loaded again at once when it comes back.
 *
 * What the guest can see of EL2: Cortex-A72 is ARMv8.0, without
 * MDCR_EL2.HPMD, so a counter whose PMEVTYPER<n>_EL0.NSH (or
 * PMCCFILTR_EL0.NSH) is set also counts Quire's work at EL2 while the vCPU
 * is loaded: its own exits, and the interrupts Quire takes meanwhile. The
 * counters stop while Quire idles on its behalf (WFI, the sharing scanner).
 */
#include <string.h>
#include <arch/pmu.h>
#include <arch/sysreg.h>

#define PMCR_E (1UL << 0)
#define PMCR_P (1UL << 1)
#define PMCR_C (1UL << 2)
#define PMCR_GUEST 0x7fUL /* E, P, C, D, X, DP, LC */
#define PMCR_N(pmcr) (((pmcr) >> 11) & 0x1f)
/* PMUSERENR_EL0 EN, SW, CR, ER: EL0 accesses go on to MDCR_EL2.TPM, which decides. */
#define PMUSERENR_ALL 0xfUL

static unsigned n_counters;

static u64 counter_mask(void)
{
	return (1UL << 31) | ((1UL << n_counters) - 1);
}

unsigned pmu_counters(void)
{
	return n_counters;
}

/* Nothing counts, nothing overflowed, no interrupt enabled; EL0 accesses reach EL2. */
static void neutral(void)
{
	write_sysreg(~0UL, pmcntenclr_el0);
	write_sysreg(~0UL, pmintenclr_el1);
	write_sysreg(~0UL, pmovsclr_el0);
	write_sysreg(PMUSERENR_ALL, pmuserenr_el0);
	isb(); /* the overflow interrupt's level is low from here */
}

void pmu_cpu_init(void)
{
	u64 pmuver = (read_sysreg(id_aa64dfr0_el1) >> 8) & 0xf;

	if (pmuver == 0 || pmuver == 0xf)
		return; /* no PMUv3: its registers UNDEF in the guest, ID_AA64DFR0_EL1 says so */
	/* At EL2 PMCR_EL0.N is the CPU's true count, whatever MDCR_EL2.HPMN says. */
	n_counters = PMCR_N(read_sysreg(pmcr_el0));
	write_sysreg(PMCR_P | PMCR_C, pmcr_el0); /* E clear; counters reset */
	neutral();
}

void pmu_reset(struct vcpu_pmu *p)
{
	memset(p, 0, sizeof(*p));
}

static void regs_restore(struct vcpu_pmu *p)
{
	u64 mask = counter_mask();

	/* PMCR_EL0.E is clear (neutral): nothing counts while the counters are written. */
	for (unsigned n = 0; n < n_counters; n++) {
		write_sysreg(n, pmselr_el0);
		isb(); /* PMSELR_EL0 before the PMXEV* accesses it selects */
		write_sysreg(p->evtyper[n], pmxevtyper_el0);
		write_sysreg(p->evcntr[n], pmxevcntr_el0);
	}
	write_sysreg(p->ccfiltr, pmccfiltr_el0);
	write_sysreg(p->ccntr, pmccntr_el0);
	write_sysreg(p->selr, pmselr_el0);
	write_sysreg(p->userenr, pmuserenr_el0);
	write_sysreg(p->cntenset & mask, pmcntenset_el0);
	write_sysreg(p->ovsset & mask, pmovsset_el0);
	write_sysreg(p->intenset & mask, pmintenset_el1);
	isb(); /* all of it in place before the counters start */
	write_sysreg(p->pmcr & PMCR_GUEST & ~(PMCR_P | PMCR_C), pmcr_el0);
	p->loaded = true;
}

void pmu_load(struct vcpu_pmu *p)
{
	if ((p->pmcr & PMCR_E) || (p->ovsset & p->intenset))
		regs_restore(p);
}

void pmu_put(struct vcpu_pmu *p)
{
	if (!p->loaded)
		return;
	p->pmcr = read_sysreg(pmcr_el0) & PMCR_GUEST;
	write_sysreg(p->pmcr & ~PMCR_E, pmcr_el0);
	isb(); /* stopped before anything is read: the saved counts are final */
	p->selr = read_sysreg(pmselr_el0);
	p->userenr = read_sysreg(pmuserenr_el0);
	p->cntenset = read_sysreg(pmcntenset_el0);
	p->intenset = read_sysreg(pmintenset_el1);
	p->ovsset = read_sysreg(pmovsset_el0);
	p->ccntr = read_sysreg(pmccntr_el0);
	p->ccfiltr = read_sysreg(pmccfiltr_el0);
	for (unsigned n = 0; n < n_counters; n++) {
		write_sysreg(n, pmselr_el0);
		isb(); /* PMSELR_EL0 before the PMXEV* accesses it selects */
		p->evtyper[n] = read_sysreg(pmxevtyper_el0);
		p->evcntr[n] = read_sysreg(pmxevcntr_el0);
	}
	neutral();
	p->loaded = false;
}

u64 pmu_pause(const struct vcpu_pmu *p)
{
	u64 pmcr;

	if (!p->loaded)
		return 0;
	pmcr = read_sysreg(pmcr_el0);
	write_sysreg(pmcr & PMCR_GUEST & ~(PMCR_E | PMCR_P | PMCR_C), pmcr_el0);
	isb(); /* stopped before Quire's idle work */
	return pmcr;
}

void pmu_resume(const struct vcpu_pmu *p, u64 pmcr)
{
	if (!p->loaded)
		return;
	write_sysreg(pmcr & PMCR_GUEST & ~(PMCR_P | PMCR_C), pmcr_el0);
	/* The ERET into the guest synchronises it. */
}

bool pmu_is_reg(const struct sysreg_access *a)
{
	return a->op0 == 3 && ((a->crn == 9 && a->crm >= 12 && (a->op1 == 3 || (a->op1 == 0 && a->crm == 14))) ||
			       (a->crn == 14 && a->crm >= 8 && a->op1 == 3));
}

enum sysreg_result pmu_access(struct vcpu_pmu *p)
{
	if (!n_counters)
		return SR_UNDEF;
	if (p->loaded)
		return SR_UNDEF; /* TPM is clear: the CPU itself trapped it (a counter past N) */
	regs_restore(p);
	return SR_RETRY;
}

bool pmu_irq_level(void)
{
	/* As QEMU models it: PMCR_EL0.E and an enabled overflow flag. */
	return n_counters && (read_sysreg(pmcr_el0) & PMCR_E) &&
	       (read_sysreg(pmovsset_el0) & read_sysreg(pmintenset_el1));
}
