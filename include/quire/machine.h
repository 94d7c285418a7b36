/*
 * What Quire knows about the machine it runs on. Everything here comes from
 * the host device tree (core/machine*.c); nothing is hard-coded per board.
 */
#ifndef QUIRE_MACHINE_H
#define QUIRE_MACHINE_H
#include <quire/types.h>

#include <quire/config.h>
#define MAX_MEM_REGIONS 16
#define MAX_RESERVED 32
#define MAX_VIRTIO 32
#define MACHINE_NOTES 2048

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

/* HVC from EL2 traps to Quire itself: machine_from_fdt refuses it, so only SMC is ever set. */
/* Only SMC: Quire runs at EL2, where an HVC would trap to itself (machine_cpus.c refuses "hvc"). */
enum psci_conduit { PSCI_CONDUIT_NONE, PSCI_CONDUIT_SMC };

struct reserved_region {
	struct region r;
	char name[32];
};

struct machine {
	char model[64];

	struct region mem[MAX_MEM_REGIONS]; /* sorted, overlapping and adjacent banks merged */
	char mem_node[MAX_MEM_REGIONS][48]; /* the memory node each bank came from (the first, if merged) */
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
		bool found; /* a GICv2 whose distributor and CPU interface Quire can use */
		char compatible[32];
		char path[64];
		struct region dist, cpu, gich, gicv; /* gich, gicv: 0 without the virtualization extensions */
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
	/* The loader's /chosen rng-seed and kaslr-seed, for guests' seeds (core/entropy.c). */
	u8 seed[64];
	unsigned seed_len;
	/* What the loader put at /chosen/linux,initrd-*: a VM config DTB, if anything. */
	struct region boot_module;
	/* The loader named a boot module Quire cannot read (outside RAM): notes say why. */
	bool boot_module_bad;

	/*
	 * What Quire refused, changed or left out of the host DT, one line each
	 * ("quire: host DT: <node> <property>: ..."), for the boot console.
	 */
	char notes[MACHINE_NOTES];
	unsigned notes_lost; /* lines that did not fit */
};

/*
 * Fill m from the flattened device tree at fdt. On failure returns a negative
 * number and leaves a sentence for the console in err.
 */
int machine_from_fdt(const void *fdt, struct machine *m, char *err, size_t errlen);

/*
 * The checks that need to know the CPU and where Quire was loaded: RAM and
 * devices beyond pa_bits (the PA range Quire can map) are clipped or left
 * out, and Quire's image must lie in RAM. Returns a negative number with a
 * sentence in err when Quire cannot run at all.
 */
int machine_fit(struct machine *m, unsigned pa_bits, struct region image, char *err, size_t errlen);

/* Why no VM can run on m (no usable GIC), or NULL if they can. */
const char *machine_vm_blocker(const struct machine *m);

/* Index of the cpu whose MPIDR affinity equals mpidr, or -1. */
int machine_cpu_index(const struct machine *m, u64 mpidr);

#endif
