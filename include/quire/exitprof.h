/*
 * The exit profile: per vCPU and per exit reason, how many exits and how
 * many counter ticks Quire spent on them (kvm_stat's view of a VM). Always
 * on, so it must stay cheap: an exit stores its start, the handlers that
 * know better refine its reason, and its end adds to the exiting vCPU's two
 * counters. Time a CPU sleeps in WFI during an exit, or spends on idle
 * work (the scanner, devices) while its vCPU waits, is the guest's idle
 * time, which a guest without Quire would spend idle too: it moves the
 * exit's start forward and is counted apart.
 *
 * Only the CPU running a vCPU writes its counters (plain loads and stores);
 * the monitor reads them as they are.
 */
#ifndef QUIRE_EXITPROF_H
#define QUIRE_EXITPROF_H
#include <quire/types.h>

/* make NOPROF=1 builds Quire without it, for make bench to measure what it costs. */
#ifdef QUIRE_NO_EXIT_PROF
#define EXIT_PROF 0
#else
#define EXIT_PROF 1
#endif

enum exit_kind {
	EXIT_FILL,		/* stage-2 translation fault answered with a new page */
	EXIT_COW,		/* write to a read-only page: copy-on-write, or a swap-cache page */
	EXIT_ACCESS_FLAG,	/* the access flag the swap clock cleared */
	EXIT_EXEC,		/* first instruction fetch from a page: its I-cache lines */
	EXIT_SWAP_IN,		/* a page on the swap disk: the read started (waiting is idle) */
	EXIT_ABORT,		/* raced, or an abort injected into the guest */
	EXIT_HVC,		/* HVC or SMC: PSCI and Quire's calls */
	EXIT_MMIO_VGIC,		/* the vGIC distributor */
	EXIT_MMIO_PL011,	/* the vPL011 */
	EXIT_MMIO_BALLOON,	/* virtio-mmio slot 0 */
	EXIT_MMIO_DISK,		/* slot 1 */
	EXIT_MMIO_NET,		/* slot 2 */
	EXIT_MMIO_VIRTIO,	/* any other virtio-mmio slot (empty) */
	EXIT_SGI,		/* GICD_SGIR write: an IPI sent */
	EXIT_WFI,
	EXIT_WFE,
	EXIT_IRQ,		/* a physical interrupt with nothing more specific */
	EXIT_IRQ_VTIMER,	/* the guest's virtual timer, forwarded */
	EXIT_IRQ_KICK,		/* Quire's SGI: an IPI or a wake-up for this vCPU */
	EXIT_IRQ_SLICE,		/* Quire's own timer: the scheduler */
	EXIT_IRQ_MAINT,		/* the vGIC maintenance interrupt */
	EXIT_IRQ_DEVICE,	/* a host device's interrupt (disk, console) */
	EXIT_SYSREG,		/* a trapped system register or cache operation */
	EXIT_FP,		/* first FP/SIMD use since the vCPU was loaded */
	EXIT_OTHER,		/* UNDEF injected, debug, the rest */
	EXIT_KINDS
};

struct exit_stat {
	u64 n;		/* exits */
	u64 ticks;	/* counter ticks in Quire, from the exit's C entry to its return */
};

struct exit_prof {
	struct exit_stat k[EXIT_KINDS];
	/* While it waited (its WFI, the disk), apart from the exits': asleep, and Quire's idle work. */
	u64 idle_ticks;
	u64 idle_work_ticks;
};

/* A VM's profile: its vCPUs' summed, and the counter at its first instruction. */
struct exit_table {
	struct exit_prof p;
	u64 first_entry;
};

struct vm;

const char *exit_kind_name(enum exit_kind k);
/* A VM's profile now: its vCPUs' counters summed (core/exitprof.c). */
void exit_table(const struct vm *vm, struct exit_table *t);
/* ... printed as a table: a header line of key=value, then a row per reason seen, then the total. */
void exit_table_print(const struct vm *vm, u64 now);
/*
 * quire.exitmark=T (bootargs): every VM's table is printed at counter T, on
 * Quire's own timer, so a guest that cannot mark a moment itself is profiled
 * up to it (make bench: the Linux guest's /init reads the counter at T).
 * exit_mark_deadline is T, or ~0 once printed or when not asked for;
 * exit_mark_check prints if T has come (true: it did).
 */
void exit_mark_init(const char *bootargs);
u64 exit_mark_deadline(void);
bool exit_mark_check(u64 now);
#endif
