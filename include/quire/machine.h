/*
 * What Quire knows about the machine it runs on. Everything here comes from
 * the host device tree (core/machine.c); nothing is hard-coded per board.
 */
#ifndef QUIRE_MACHINE_H
#define QUIRE_MACHINE_H
#include <quire/types.h>

#include <quire/config.h>
#define MAX_MEM_REGIONS 16
#define MAX_RESERVED 32
#define MAX_VIRTIO 32

struct region {
	paddr_t base;
	u64 size;
};

enum cpu_enable_method { CPU_ENABLE_NONE, CPU_ENABLE_PSCI, CPU_ENABLE_SPIN_TABLE };

struct cpu_desc {
	u64 mpidr; /* MPIDR_EL1 affinity fields, as the cpu node's reg gives them */
	enum cpu_enable_method method;
	paddr_t release_addr; /* spin-table only */
};

enum psci_conduit { PSCI_CONDUIT_NONE, PSCI_CONDUIT_SMC, PSCI_CONDUIT_HVC };

struct reserved_region {
	struct region r;
	char name[32];
};

struct machine {
	char model[64];

	struct region mem[MAX_MEM_REGIONS];
	unsigned nmem;
	u64 mem_total;

	struct reserved_region reserved[MAX_RESERVED];
	unsigned nreserved;

	struct cpu_desc cpu[MAX_CPUS];
	unsigned ncpus;
	unsigned ncpus_ignored; /* cpu nodes beyond MAX_CPUS */

	struct {
		enum psci_conduit conduit;
		u32 cpu_on; /* function ID for CPU_ON */
	} psci;

	struct {
		bool found;
		paddr_t base;
		u64 size;
		u32 irq; /* INTID; 0 if the node names none */
		char compatible[32];
		char path[64];
	} uart;

	struct {
		bool found;
		char compatible[32];
		struct region dist, cpu, gich, gicv;
		u32 maint_irq; /* INTID; 0 when the node names none */
	} gic;

	struct {
		bool found;
		u32 irq_sec_phys, irq_phys, irq_virt, irq_hyp_phys; /* INTIDs */
		u32 clock_frequency; /* 0 unless the node overrides CNTFRQ_EL0 */
	} timer;

	struct {
		struct region r;
		u32 irq;
	} virtio[MAX_VIRTIO];
	unsigned nvirtio;

	char bootargs[256];
	/* What the loader put at /chosen/linux,initrd-*: a VM config DTB, if anything. */
	struct region boot_module;
};

/*
 * Fill m from the flattened device tree at fdt. On failure returns a negative
 * number and leaves a sentence for the console in err.
 */
int machine_from_fdt(const void *fdt, struct machine *m, char *err, size_t errlen);

/* Index of the cpu whose MPIDR affinity equals mpidr, or -1. */
int machine_cpu_index(const struct machine *m, u64 mpidr);

#endif
