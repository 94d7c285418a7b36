/*
 * Bringing up the secondary CPUs, each with the enable method its DT cpu
 * node names: PSCI CPU_ON over the /psci conduit, or a spin-table release
 * address. Entry code: each secondary goes on into idle_loop().
 */
#include <stdatomic.h>
#include <quire/console.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/mmu.h>

#define PSCI_SUCCESS 0
#define PSCI_ALREADY_ON (-4)
#define CPU_UP_TIMEOUT_US 500000

/* Logical id -> MPIDR affinity, read by secondary_entry with its MMU off. */
u64 cpu_mpidr[MAX_CPUS];
static _Atomic bool cpu_up[MAX_CPUS];

s64 smccc_smc(u64 fid, u64 a1, u64 a2, u64 a3);
void secondary_entry(void);
void secondary_main(unsigned id);
void idle_loop(void);

static const char *start_cpu(const struct machine *m, const struct cpu_desc *c)
{
	paddr_t entry = (paddr_t)(uintptr_t)secondary_entry;

	switch (c->method) {
	case CPU_ENABLE_PSCI:
		/* Only SMC reaches firmware from EL2: an HVC would trap to Quire itself. */
		if (m->psci.conduit != PSCI_CONDUIT_SMC)
			return "enable-method is psci but the DT has no usable /psci node";
		s64 rc = smccc_smc(m->psci.cpu_on, c->mpidr, entry, 0);
		if (rc != PSCI_SUCCESS && rc != PSCI_ALREADY_ON)
			return "PSCI CPU_ON failed";
		return NULL;
	case CPU_ENABLE_SPIN_TABLE: {
		volatile u64 *rel = (volatile u64 *)(uintptr_t)c->release_addr;

		*rel = entry;
		/* The waiting CPU reads with its MMU and caches off. */
		dcache_clean_poc((const void *)rel, sizeof(*rel));
		sev();
		return NULL;
	}
	default:
		return "no enable-method Quire knows";
	}
}

/* CNTHCTL_EL2 (E2H=0): the counter's event stream, while the boot CPU waits in WFE. */
#define CNTHCTL_EL2_EVNTEN (1UL << 2)
#define CNTHCTL_EL2_EVNTI_SHIFT 4
#define EVNTI 10 /* an event each 2^11 ticks: about 40 us at 54 MHz */

/*
 * Wait for the CPUs started, all at once: each sends SEV when it is up, and
 * the event stream wakes WFE for the deadline if one never comes. (Spinning
 * on the counter instead costs a CPU's whole time under QEMU's -icount, and
 * the CPUs that are starting wait their turn behind it.)
 */
static void wait_cpus_up(unsigned first, unsigned end)
{
	u64 cnthctl = read_sysreg(cnthctl_el2);
	u64 deadline = counter_read() + CPU_UP_TIMEOUT_US * counter_freq() / 1000000;
	unsigned id = first;

	write_sysreg(cnthctl | CNTHCTL_EL2_EVNTEN | (u64)EVNTI << CNTHCTL_EL2_EVNTI_SHIFT, cnthctl_el2);
	isb();
	while (id < end && counter_read() < deadline) {
		if (atomic_load_explicit(&cpu_up[id], memory_order_acquire) || cpu_mpidr[id] == ~0UL)
			id++;
		else
			wfe();
	}
	write_sysreg(cnthctl, cnthctl_el2);
	isb();
}

void smp_boot(const struct machine *m)
{
	u64 self = read_sysreg(mpidr_el1) & MPIDR_AFF_MASK;
	unsigned next = 1;

	for (unsigned i = 0; i < MAX_CPUS; i++)
		cpu_mpidr[i] = ~0UL;
	cpu_mpidr[0] = self;
	for (unsigned i = 0; i < m->ncpus && next < MAX_CPUS; i++)
		if (m->cpu[i].mpidr != self)
			cpu_mpidr[next++] = m->cpu[i].mpidr;
	dcache_clean_poc(cpu_mpidr, sizeof(cpu_mpidr));

	for (unsigned id = 1; id < next; id++) {
		const struct cpu_desc *c = &m->cpu[machine_cpu_index(m, cpu_mpidr[id])];
		const char *err = start_cpu(m, c);

		if (err) {
			printk("quire: CPU with MPIDR 0x%lx not started: %s\n", c->mpidr, err);
			/* Nothing runs as this id: the scheduler never sees it online. */
			cpu_mpidr[id] = ~0UL;
			dcache_clean_poc(&cpu_mpidr[id], sizeof(cpu_mpidr[id]));
		}
	}
	wait_cpus_up(1, next);
	for (unsigned id = 1; id < next; id++)
		if (cpu_mpidr[id] != ~0UL && !atomic_load_explicit(&cpu_up[id], memory_order_acquire))
			printk("quire: CPU %u (MPIDR 0x%lx) did not come up within %u ms\n", id, cpu_mpidr[id],
			       CPU_UP_TIMEOUT_US / 1000);
}

void secondary_main(unsigned id)
{
	cpu_init_percpu(id, cpu_mpidr[id]);
	gic_init_cpu_if_present();
	cpu_online_add();
	atomic_store_explicit(&cpu_up[id], true, memory_order_release);
	dsb(ish);
	sev();
	idle_loop();
}
