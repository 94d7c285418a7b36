/*
 * The guest's PMU (arch/arm64/pmu.c): PMUv3 registers accessed directly by
 * the vCPU that owns them (MDCR_EL2.TPM clear, HPMN = PMCR_EL0.N), saved,
 * stopped and cleared when it leaves the CPU, loaded on its first access
 * after (or at once, if it was counting).
 */
#ifndef ARCH_PMU_H
#define ARCH_PMU_H
#include <arch/sysreg_access.h>

#define PPI_PMU 23 /* PPI 7: the PMU overflow interrupt on QEMU virt */
#define PMU_MAX_COUNTERS 31

struct vcpu_pmu {
	u64 evcntr[PMU_MAX_COUNTERS], evtyper[PMU_MAX_COUNTERS];
	u64 ccntr, ccfiltr;
	u64 pmcr, cntenset, intenset, ovsset, userenr, selr;
	bool loaded; /* its registers are the CPU's (MDCR_EL2.TPM clear) */
};

/* Each CPU at EL2, before any vCPU: nothing counts, no overflow, N found. */
void pmu_cpu_init(void);
/* PMCR_EL0.N: the event counters, all the guest's (MDCR_EL2.HPMN); 0 without a PMUv3. */
unsigned pmu_counters(void);
void pmu_reset(struct vcpu_pmu *p);
/* vCPU load: its registers into the CPU now if it counts or has an overflow interrupt up. */
void pmu_load(struct vcpu_pmu *p);
/* vCPU put (or exit): saved, stopped, overflow flags and interrupt enables cleared. */
void pmu_put(struct vcpu_pmu *p);
/* Around Quire's own idle work while the vCPU waits in WFI: its counters stop. */
u64 pmu_pause(const struct vcpu_pmu *p);
void pmu_resume(const struct vcpu_pmu *p, u64 pmcr);
/* A trapped PMU register access (MDCR_EL2.TPM). */
enum sysreg_result pmu_access(struct vcpu_pmu *p);
/* Is a PMU register encoding (op0 == 3)? */
bool pmu_is_reg(const struct sysreg_access *a);
/* The overflow interrupt's level for the PMU registers now in the CPU. */
bool pmu_irq_level(void);
#endif
