/* A virtual machine: its guest-physical layout, page pool, stage-2 tables and vCPUs. */
#ifndef QUIRE_VM_H
#define QUIRE_VM_H
#include <quire/fault.h>
#include <quire/config.h>
#include <quire/pool.h>
#include <quire/spinlock.h>
#include <quire/vdev_map.h>
#include <quire/vmconfig.h>

#define GUEST_RAM_BASE 0x40000000UL

struct vcpu;

struct stage2 {
	paddr_t root;	/* the root table's machine address (core/stage2.c) */
	u16 vmid;
	unsigned start_level;
	_Atomic u32 table_races; /* table pages a racing fill installed first (given back) */
	/* 2 MiB blocks (s2_fill_block): on for this VM; mapped now; filled and split since it started. */
	bool blocks_on;
	_Atomic u32 blocks;
	_Atomic u64 block_fills, splits;
	/* The page after the last one filled: a fault there at a block boundary fills ahead (violation.c). */
	_Atomic u64 seq_next;
};

/* Per-VM sharing state (struct vm; see quire/share.h). */
struct vm_share {
	u8 group;		/* 0: zero page only or nothing; else pages merge within the group */
	bool live;		/* the scanner may look at it (changed under the share lock) */
	_Atomic u32 scan_pages;	/* pages per slice (share-scan-pages; the monitor's 'share') */
	u32 budget;		/* pages left in this slice */
	u64 cursor;		/* next IPA to scan */
	u32 seen_volatile;	/* pages found changed in this scan so far */
	_Atomic u32 volatile_pages; /* ... in the last full scan */
	_Atomic u64 scans;	/* full scans done */
	_Atomic u64 scanned;	/* pages hashed */
	_Atomic u64 merged;	/* pages merged (into shared pages or the zero page) */
	_Atomic u64 cow;	/* copy-on-write breaks */
};

/* Per-VM swap state (struct vm; see quire/swap.h). */
struct vm_swap {
	bool on;		/* it has swap space and there is a disk: pool.data_limit is its resident limit */
	u32 quota;		/* swap slots it may hold */
	_Atomic u32 slots;	/* swap slots it holds */
	_Atomic u32 inflight;	/* its requests on the disk */
	_Atomic u32 writing;	/* its pages being written out (still resident) */
	spinlock_t lock;	/* the clock */
	u64 hand;		/* the clock's next IPA */
	_Atomic u32 ra;		/* read-ahead window in pages: grows while faults are sequential */
	_Atomic u64 ra_next;	/* the IPA after the last run read for a fault */
	_Atomic u64 outs, ins, zero, waits;
	_Atomic u64 squeezed;	/* times it wrote out below its limit because the machine ran short */
};

struct virtio_dev;

struct vm {
	u8 id; /* 1.. ; 0 is Quire */
	char name[16];
	ipa_t ram_base;
	u64 ram_size;
	struct vm_pool pool;
	struct stage2 s2;
	struct vm_share share;
	struct vm_swap swap;
	struct virtio_dev *virtio[VIRTIO_MMIO_SLOTS]; /* its devices by virtio-mmio slot (core/virtio_mmio.c) */
	unsigned nvcpus;
	struct vcpu *vcpu[MAX_VCPUS];
	_Atomic u32 logged;	/* VM_LOG_* bits: what was already logged once */
	_Atomic bool off;	/* set once life left VM_RUNNING: its vCPUs leave */
	_Atomic bool paused;	/* its vCPUs are not scheduled */
	_Atomic bool report_start; /* restarted: say when its first instruction runs */
	_Atomic u64 cache_flushes; /* whole-VM cleans to PoC for set/way maintenance (arch/arm64/setway.c) */
	/*
	 * Its virtual counter is the machine's less cntvoff (CNTVOFF_EL2), which
	 * grows by every pause: a paused VM's time stops, as with QEMU and KVM.
	 */
	u64 cntvoff;
	_Atomic u64 paused_at;	/* counter when its last vCPU left the CPU for the pause */
	_Atomic u32 loaded;	/* its vCPUs loaded on a CPU now */
	_Atomic u64 first_entry; /* counter when a vCPU of it first ran (the exit profile's start) */
	_Atomic u32 exit_marks;	/* exit-profile marks so far (QUIRE_EXIT_MARKS print) */
	struct vm_config cfg;	/* what it was made from, for restarts */
	/*
	 * Kept across a rebuild: vm_create clears the struct only up to here, so
	 * a rebuild can never wipe the claim of a teardown still in progress.
	 */
	_Atomic int life;	/* enum vm_state, never VM_PAUSED (that is 'paused') */
	_Atomic bool restart;	/* boot it again once its teardown is done */
	u64 stop_us, reaped_us;	/* clock_us() at its last power-off and at the end of that teardown */
};

enum {
	VM_LOG_VIO = 0, VM_LOG_UNDEF = 8, VM_LOG_HVC, VM_LOG_SYSREG, VM_LOG_MMIO, VM_LOG_MMIO_NOISV,
	VM_LOG_SWAP_IO, VM_LOG_SWAP_FULL, VM_LOG_SETWAY, VM_LOG_SYSREG_RAZWI, VM_LOG_BALLOON_OOM,
};
/*
 * A VM's lifecycle (vm->life). Every change is a CAS from the state it
 * needs, so one CPU wins each step:
 *   EMPTY/STOPPED -> STARTING (vm_create) -> RUNNING, or -> STOPPED if it cannot be made
 *   RUNNING -> STOPPING (vm_power_off) -> REAPING (vm_reap, once every vCPU is out
 *   and no swap I/O is in flight) -> STOPPED (its memory is back in the pool).
 * A restart asked for while it stops is kept in vm->restart and done at STOPPED.
 */
enum vm_state {
	VM_EMPTY,	/* no VM in this slot */
	VM_STARTING,	/* being built: tables, images, vCPUs */
	VM_RUNNING,
	VM_PAUSED,	/* running, but its vCPUs are not scheduled (shown, never stored) */
	VM_STOPPING,	/* off: waiting for its vCPUs to leave and its disk I/O to end */
	VM_REAPING,	/* its memory is going back to the pool */
	VM_STOPPED,	/* powered off, crashed or killed: its memory is back in the pool */
};
enum vm_state vm_state(const struct vm *vm);
const char *vm_state_name(enum vm_state s);
/* VM number id (1..MAX_VMS), or NULL if that slot never held a VM. */
struct vm *vm_get(unsigned id);
/* A VM by name, or by number ("2"); NULL if none. */
struct vm *vm_find(const char *name);
/*
 * Lifecycle, for the monitor: 0, or -EINVAL when the VM is not in a state
 * the operation applies to (pause: running; resume: paused; kill: running
 * or paused; restart: any but VM_EMPTY and VM_STARTING: a running VM is
 * stopped first, one that is stopping restarts when its teardown is done).
 */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
int vm_kill(struct vm *vm);
int vm_restart(struct vm *vm, unsigned cpu);

/* printk only the first time this VM hits `kind`. */
void vm_log_once(struct vm *vm, unsigned kind, const char *fmt, ...) __printf(3, 4);
/*
 * Stop the VM: every vCPU leaves the guest at its next exit (they are
 * kicked). False if it was not running (stopped already, by someone else).
 */
bool vm_power_off(struct vm *vm, const char *how);
/*
 * On a CPU of a stopped VM: once all its vCPUs are out and its disk I/O is
 * done, return its memory, and restart it if asked. Any CPU may call it any
 * number of times; one does the teardown.
 */
void vm_reap(struct vm *vm, unsigned cpu);
/*
 * Called by the reaper at the end, once the VM is STOPPED and its restart,
 * if one was queued, is done; core/boot.c (with quire.exit=last-vm it
 * powers the machine off when every VM made is stopped).
 */
void vm_stopped_hook(void);

static inline bool vm_in_ram(const struct vm *vm, ipa_t ipa)
{
	return ipa.bits >= vm->ram_base.bits && ipa.bits - vm->ram_base.bits < vm->ram_size;
}

/* How the violation handler answered. */
enum vio_result {
	VIO_MAPPED,	 /* a new page was mapped */
	VIO_RACED,	 /* another vCPU mapped it first; nothing to do */
	VIO_SEA_OUTSIDE, /* neither RAM nor a device: inject an external abort */
	VIO_SEA_QUOTA,	 /* the VM's page quota is used up: inject an external abort */
	VIO_SEA_NOMEM,	 /* the machine is out of pages: inject an external abort */
	VIO_UNHANDLED,	 /* a fault class Quire does not handle: inject an external abort */
	VIO_WAIT,	 /* the page is on its way from or to the swap disk: the vCPU waits (v->io_wait) */
	VIO_STOP,	 /* the VM was stopped (swap full or a disk error, logged): the vCPU leaves */
};

/* Where VMs get their pages, their IPA size, and how many CPUs may run vCPUs. */
void vm_system_init(struct pool *pool, unsigned ipa_bits, unsigned ncpus);
/*
 * Create and start VM number id (1..MAX_VMS) from c (already checked), its
 * vCPUs queued on the CPUs its affinity allows; NULL with a sentence in err
 * on failure (whatever it took is given back).
 */
struct vm *vm_create(const struct vm_config *c, unsigned id, unsigned cpu, char *err, size_t errlen);

/*
 * Put len bytes at guest-physical at (page aligned) before vm runs: 0, or
 * -EDQUOT / -ENOMEM / -EEXIST, with no page of the failing one left charged.
 */
int vm_copy_in(struct vm *vm, u64 at, const u8 *data, u64 len, unsigned cpu);

enum vio_result violation_handle(struct vm *vm, const struct s2_fault *f, unsigned cpu);
const char *vio_result_name(enum vio_result r);

/* Stage-2 translation: core/stage2.c, over the arch's descriptors (arch/s2_desc.h). */
#define S2_R 1u
#define S2_W 2u
#define S2_X 4u
#define S2_RWX (S2_R | S2_W | S2_X)
#define S2_DEVICE 8u /* Device-nGnRE instead of Normal memory */
#define S2_OLD 16u    /* s2_install only: access flag clear, so the first access shows */
#define S2_AHEAD 32u  /* a software mark in the leaf: read ahead of use and not used yet */
int s2_init(struct vm *vm, unsigned cpu);
/* Do new VMs get 2 MiB blocks (quire.blocks=off: no)? Set once at boot. */
extern bool s2_blocks_default;

/* A stage-2 leaf entry, found (its tables made) before a page is taken for it. */
struct s2_slot {
	_Atomic u64 *e;
};
/*
 * Walk to ipa's leaf, creating missing tables (charged to the VM). 0 with
 * *slot set if the leaf is empty; -EEXIST if a page is mapped there already;
 * -EDQUOT or -ENOMEM if a table page could not be had. Lock-free: tables are
 * installed by CAS, and a racing vCPU that loses gives its table page back.
 * *slot is set on -EEXIST too: quire/s2_entry.h says what an invalid leaf holds.
 */
int s2_prepare(struct vm *vm, ipa_t ipa, unsigned cpu, struct s2_slot *slot);
/* Map pa in a prepared slot: 0, or -EEXIST if a racing vCPU filled it first. */
int s2_fill(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot);

/* Map the 4 KiB page at ipa to pa if nothing is mapped there (codes as above). */
static inline int s2_map_page(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned prot, unsigned cpu)
{
	struct s2_slot slot;
	int rc = s2_prepare(vm, ipa, cpu, &slot);

	return rc ? rc : s2_fill(vm, &slot, pa, prot);
}
/*
 * 2 MiB blocks: a pool run mapped by one stage-2 block. The size is the
 * pool's run (RUN_SHIFT); the arch says at which level (S2_BLOCK_LEVEL).
 */
#define S2_BLOCK_SIZE (1UL << RUN_SHIFT)
/*
 * Map the block around ipa read-write (execute-never) with a run from the
 * VM's pool, counted as RUN_PAGES data pages, if nothing is mapped in it
 * yet. 0; -EEXIST if something is (a table, a block); -ENOMEM if the VM has
 * no room for a block or no run is free; -EDQUOT/-ENOMEM for a table page.
 * Any change to one of its pages later (s2_claim, execution) splits it into
 * pages first, by break-before-make, and never needs a page for that.
 */
int s2_fill_block(struct vm *vm, ipa_t ipa, unsigned cpu);
/* Is ipa mapped by a block? */
bool s2_is_block(struct vm *vm, ipa_t ipa);
/* Machine address mapped at ipa, or 0 if none. */
paddr_t s2_lookup(struct vm *vm, ipa_t ipa);

/* A valid leaf: the page it maps and its S2_* permissions. */
struct s2_leaf {
	paddr_t pa;
	unsigned prot;
};
/* The leaf at ipa; false if nothing is mapped there (or it is being changed). */
bool s2_get(struct vm *vm, ipa_t ipa, struct s2_leaf *out);
/* The first IPA in [from, end) with a valid leaf, or end; skips missing tables whole. */
u64 s2_next_leaf(struct vm *vm, u64 from, u64 end);
/*
 * Break: take the valid leaf at ipa for changing it. It becomes invalid but
 * busy (a fault there retries, s2_prepare says -EEXIST) and no TLB holds it;
 * *old is what it was; a block that maps ipa is split first. -ENOENT if
 * nothing valid is mapped there. The caller
 * owns the leaf until it calls s2_install.
 */
int s2_claim(struct vm *vm, ipa_t ipa, struct s2_slot *slot, struct s2_leaf *old);
/*
 * Make: map pa/prot in a claimed slot (pass *old back to undo a claim). Never
 * executable (S2_X is dropped): the page's first fetch faults, and the fault
 * path invalidates its instruction-cache lines before it allows execution.
 */
void s2_install(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot);
/* A claimed leaf becomes empty: the next access fills a new page. */
void s2_clear(struct vm *vm, struct s2_slot *slot);
/*
 * A page swapped out at ipa leaves the VM: its leaf becomes empty and
 * *swap_slot is the slot it held (the caller frees it). -ENOENT if the leaf
 * is empty; -EAGAIN if it is on its way to or from the disk (try again once
 * swap_gen() moves on); -EBUSY if it maps a page (a claim lost a race) or
 * is being changed (try again at once).
 */
int s2_take_swapped(struct vm *vm, ipa_t ipa, u64 *swap_slot);
/*
 * Unmap every page (giving it to fn, and each swapped page's slot to
 * swapped) and free every table; the VM must not run nor have disk I/O in
 * flight. A whole pool run still mapped in order (an unsplit block, or a
 * split one whose pages all stayed) is offered to block by its first page:
 * true if it took the run whole, false (or block NULL) and each of its
 * pages goes to fn.
 */
void s2_destroy(struct vm *vm, void (*fn)(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu),
		void (*swapped)(struct vm *vm, u64 swap_slot, unsigned cpu),
		bool (*block)(struct vm *vm, ipa_t ipa, pidx_t first, unsigned cpu), unsigned cpu);
/*
 * The access flag, for the swap clock. Was the page at ipa used since the
 * last call? Clears the flag (the TLBs still hold it until s2_flush_young).
 * A page installed S2_AHEAD and not used yet counts as used once.
 */
bool s2_test_clear_young(struct vm *vm, ipa_t ipa);
/*
 * An access-flag fault: set the flag. 0 if nothing valid is mapped there;
 * 2 if the page was S2_AHEAD (the mark is cleared: it has been used), else 1.
 */
int s2_set_young(struct vm *vm, ipa_t ipa);
/* The TLBs forget the VM's entries, so accesses after cleared access flags fault and show. */
void s2_flush_young(struct vm *vm);
/*
 * Clean and invalidate every page the VM maps (Normal memory) to the point
 * of coherency, for set/way emulation; run in a trap of one of its vCPUs.
 * Returns the pages done.
 */
u64 s2_flush_dcache(struct vm *vm);
#endif
