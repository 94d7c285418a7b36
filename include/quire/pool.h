/*
 * Page pools, after the dynamic-memory-mapping design: the VMM's pool holds
 * every free machine page; each VM has its own pool with an active set
 * (pages it has mapped) and an idle set (pages reserved for it, zeroed, not
 * yet mapped). Allocation and release never take a lock: per-CPU caches in
 * front of a global ABA-safe stack (see docs/memory.md).
 */
#ifndef QUIRE_POOL_H
#define QUIRE_POOL_H
#include <quire/config.h>
#include <quire/machine.h>
#include <quire/mpage.h>

#define PCPU_CACHE_MAX 64
/* A run: 2 MiB of machine pages, aligned, for a stage-2 block (arch: a level-2 block of the 4 KiB granule). */
#define RUN_SHIFT 21
#define RUN_PAGES (1u << (RUN_SHIFT - PAGE_SHIFT))
#define PCPU_CACHE_BATCH 32

/* A Treiber stack of descriptor indices; head = (tag << 32) | index, so ABA needs 2^32 wraps. */
struct lfstack {
	_Atomic u64 head;
	_Atomic u32 count; /* approximate while others push and pop */
};

/*
 * A CPU's cache of free pages. Its owner takes it with a try-lock that never
 * waits: if another CPU holds it (stealing, when the shared stack is empty),
 * the owner goes to the shared stack instead. So no CPU ever waits for
 * another, and no page is stranded in an idle CPU's cache.
 */
struct pcpu_cache {
	_Atomic u32 busy;
	_Atomic u32 n; /* atomic only so pool_free_pages may peek */
	pidx_t slot[PCPU_CACHE_MAX];
	/* The idle zeroer's budget on this CPU (pool_prezero; its own CPU only). */
	u32 zero_budget;
	u64 zero_refill;
	/*
	 * Written by this CPU only (a load and a store, no RMW on the fault
	 * path), summed by pool_zero_stats: pages handed out zeroed from the
	 * pre-zeroed stack, pages zeroed on the way out, pages zeroed idle.
	 */
	_Atomic u64 took_prezeroed, zeroed_on_take, zeroed_idle;
} __aligned(64);

struct pool_range {
	mpn_t first; /* first machine page */
	u32 count;
	pidx_t base; /* descriptor index of 'first' */
};

struct pool {
	struct mpage *desc;
	u32 ndesc;
	/* Each excluded region splits at most one run: room for every bank and exclusion, never "too fragmented". */
	struct pool_range range[MAX_MEM_REGIONS + MAX_RESERVED + 8];
	unsigned nranges;
	struct lfstack free;	/* free pages of any contents (not MP_ZEROED), behind the per-CPU caches */
	/*
	 * Pre-zeroed: free pages page_zero() zeroed and cleaned to PoC, not
	 * written since (flags MP_IDLE | MP_ZEROED). Idle CPUs fill it up to
	 * prezero_cap; fills and stage-2 tables take from it first, copies last.
	 */
	struct lfstack zeroed;
	/*
	 * Free runs (RUN_PAGES pages, 2 MiB-aligned, one range), for stage-2
	 * blocks, linked through their first page's descriptor: dirty ones
	 * (the first page's gpn says how many of its first pages the idle
	 * zeroer zeroed so far) and pre-zeroed ones. pool_init puts every
	 * aligned run of the machine here; a run is broken into single pages
	 * only when no single free page is left, and a block the VM still
	 * holds whole comes back as a run.
	 */
	struct lfstack runs, zruns;
	/* Runs off both stacks for a moment, still free (being zeroed idle, or broken into pages). */
	_Atomic u32 runs_out;
	u32 prezero_cap;
	bool prezero_on;
	struct pcpu_cache cache[MAX_CPUS];
	/*
	 * Pages promised to VMs and not taken yet: the sum over VMs of what
	 * they are guaranteed (vm_pool.guaranteed) less what they hold, when
	 * positive. A VM beyond its guarantee takes a page only while more
	 * than promised + low_water pages are free.
	 */
	_Atomic u32 promised;
	u32 low_water;
};

/*
 * Bytes of descriptor memory pool_init needs for memory m; the pool manages
 * every page of m's RAM outside the 'exclude' regions.
 */
u64 pool_desc_bytes(const struct machine *m);
/* Lowest page-aligned place for size bytes of RAM outside the excluded regions. */
bool pool_place(const struct machine *m, const struct region *ex, unsigned nex, u64 size,
		paddr_t *where);
/*
 * Build the pool. desc must hold pool_desc_bytes(m) bytes and lie in one of
 * the excluded regions. Returns the number of pages managed.
 */
u32 pool_init(struct pool *p, const struct machine *m, const struct region *exclude,
	      unsigned nexclude, void *desc);

/*
 * Take a free page (lock-free); PIDX_NONE when the machine is out of memory.
 * Dirty pages first: a pre-zeroed one (flags MP_ZEROED) only when no other
 * is left, so callers that overwrite the page do not use up zeroing work.
 */
pidx_t pool_alloc(struct pool *p, unsigned cpu);
/* A page off the pre-zeroed stack (flags MP_ZEROED), counted; PIDX_NONE if there is none. */
pidx_t pool_pop_zeroed(struct pool *p, unsigned cpu);
/* ... the same, for the fault path: one relaxed load when the stack is empty. */
static inline pidx_t pool_alloc_zeroed(struct pool *p, unsigned cpu)
{
	if ((pidx_t)atomic_load_explicit(&p->zeroed.head, memory_order_relaxed) == PIDX_NONE)
		return PIDX_NONE;
	return pool_pop_zeroed(p, cpu);
}
/*
 * pool_alloc for a caller that will zero the page unless it is flagged
 * MP_ZEROED (pre-zeroed after all: none was left dirty); counted either way.
 */
pidx_t pool_alloc_to_zero(struct pool *p, unsigned cpu);
/*
 * A free run for a stage-2 block (lock-free): a pre-zeroed one if there is
 * one, else a dirty one; *zeroed says how many of its first pages are zero
 * and cleaned already (the caller zeroes the rest). Its pages' flags are
 * still MP_IDLE: the caller sets each. PIDX_NONE if no run is free.
 */
pidx_t pool_alloc_run(struct pool *p, unsigned cpu, u32 *zeroed);
/*
 * Give a run back whole (a block unmapped unsplit). Every page is checked as
 * pool_free checks one; if any is refused, the others go back one by one.
 * Returns how many pages went back.
 */
u32 pool_free_run(struct pool *p, unsigned cpu, pidx_t first);
/* Free runs, pre-zeroed ones included (approximate while others take and give). */
u32 pool_free_runs(const struct pool *p);

/*
 * Give a page back (lock-free). Its flags become MP_IDLE (| MP_ZEROED if
 * 'zeroed'). 'zeroed' promises page_zero() made it so and nothing wrote
 * it since (zero and cleaned to PoC): it goes on the pre-zeroed stack, and
 * a fill maps it as it is. A page already free, pinned or a stage-2 table
 * is refused: a logged error naming it, and the page stays out of the
 * pool (false).
 */
bool pool_free(struct pool *p, unsigned cpu, pidx_t i, bool zeroed);
/* The same for a stage-2 table page (MP_PGTABLE, pinned): refused if it is no table. */
bool pool_free_table(struct pool *p, unsigned cpu, pidx_t i);
/* Is i a descriptor of p? If not, logs that (i, 'what': "freed"...) and says no. */
bool pool_index_ok(const struct pool *p, pidx_t i, const char *what);
/* Log that page i was refused: what was done to it ("freed"), why not. */
void pool_refuse(const struct pool *p, pidx_t i, const char *what, const char *why);
/* Move this CPU's cached pages back to the shared stack. */
void pool_drain_cache(struct pool *p, unsigned cpu);
/* Free pages, cached and pre-zeroed ones included (exact only when nothing runs concurrently). */
u32 pool_free_pages(const struct pool *p);

/*
 * The idle zeroer. An idle CPU zeroes free dirty pages onto the pre-zeroed
 * stack: at most PREZERO_SLICE_PAGES per slice_ticks on each CPU (a few
 * per cent of an idle CPU: a page is a few microseconds on a Cortex-A72),
 * one page between looks at stop() (an interrupt waiting), and only while
 * fewer than prezero_cap pages are pre-zeroed (1/PREZERO_CAP_DIV of the
 * pool). Returns when the CPU should call again (a tick), ~0 if there is
 * nothing to do until pages are freed. Nothing at all while the pool's
 * prezero_on is off (quire.prezero=off).
 */
#define PREZERO_SLICE_PAGES 64
#define PREZERO_CAP_DIV 16
u64 pool_prezero(struct pool *p, unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void));
/* The pool the idle loop zeroes for (the VMM's), on or off; set once at boot. */
void pool_prezero_start(struct pool *p, bool on);
/* idle_work's hook: pool_prezero on that pool (~0 before pool_prezero_start). */
u64 pool_idle_zero(unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void));

struct pool_zero_stats {
	u32 prezeroed;		/* on the pre-zeroed stack now */
	u32 runs;		/* free 2 MiB runs */
	u32 zeroed_runs;	/* ... of them pre-zeroed */
	u32 cap;
	u64 took_prezeroed;	/* zeroed pages handed out from it (fills, tables, reserves) */
	u64 zeroed_on_take;	/* zeroed pages that had to be zeroed when taken */
	u64 zeroed_idle;	/* pages idle CPUs zeroed onto it */
};
void pool_zero_stats(const struct pool *p, struct pool_zero_stats *st);

static inline struct mpage *pool_desc(const struct pool *p, pidx_t i)
{
	return &p->desc[i];
}

static inline paddr_t pool_pa(const struct pool *p, pidx_t i)
{
	return (paddr_t)p->desc[i].mpn << PAGE_SHIFT;
}

/* The descriptor index of a machine address, or PIDX_NONE if the pool does not manage it. */
pidx_t pool_pidx_of(const struct pool *p, paddr_t pa);

/* Lock-free stack primitives, shared by the VMM pool and the VMs' idle sets. */
void lfstack_init(struct lfstack *s);
void lfstack_push(struct lfstack *s, struct mpage *desc, pidx_t i);
/* Push a chain first..last already linked through desc[].next; n pages. */
void lfstack_push_chain(struct lfstack *s, struct mpage *desc, pidx_t first, pidx_t last, u32 n);
pidx_t lfstack_pop(struct lfstack *s, struct mpage *desc);
/* Pop up to max pages with one CAS; returns how many, the first in *first, linked by next. */
u32 lfstack_pop_chain(struct lfstack *s, struct mpage *desc, u32 ndesc, u32 max, pidx_t *first);

/* Per-VM pool: quota, the idle set and counters. */
struct vm_pool {
	struct pool *vmm;
	u8 vm_id;
	u32 quota;		/* pages this VM may hold: data, idle and page tables */
	u32 guaranteed;		/* ... of which the machine keeps this many for it (the rest only while it has them) */
	_Atomic u32 charged;	/* pages held now, against the quota */
	_Atomic u32 active;	/* data pages mapped */
	u32 data_limit;		/* most data pages it may map (its resident limit if it swaps) */
	_Atomic u32 pgtables;	/* stage-2 table pages */
	struct lfstack idle;	/* reserved for this VM, zeroed, not mapped */
	_Atomic u64 fills;	/* violations answered with a new page */
	_Atomic u64 quota_hits;	/* violations refused for the quota */
	/* Filled in by sharing and swap (later issues); shown by the monitor already. */
	_Atomic u32 zero;	/* guest pages mapped to the shared zero page */
	_Atomic u32 shared;	/* guest pages mapped to a page shared with others */
	_Atomic u32 swapped;	/* guest pages out on the swap disk */
};

void vmpool_init(struct vm_pool *vp, struct pool *vmm, u8 vm_id, u32 quota);
/* The VM's guarantee is its whole quota, promised by the VMM pool until the VM goes (vmpool_fini). */
void vmpool_fini(struct vm_pool *vp);
/* Guarantee only g of its quota (a VM that can swap): the machine may run short of the rest. */
void vmpool_overcommit(struct vm_pool *vp, u32 g);
/* The VM holds its guarantee or more and the machine is down to its promises and low water. */
bool vmpool_short(const struct vm_pool *vp);
/* Why a VM gets no page (vmpool_take's *why, vmpool_adopt's answer). */
enum {
	VMPOOL_QUOTA = 1,	/* its quota is used up */
	VMPOOL_NOMEM = 2,	/* the machine has no free page */
	VMPOOL_SHORT = 3,	/* past its guarantee, and the machine short: vmpool_short */
	VMPOOL_LIMIT = 4,	/* its data pages are at data_limit (vmpool_take_mapped, vmpool_adopt) */
};
/*
 * A page for this VM, zeroed, charged to its quota: from the idle set if it
 * has one, else from the VMM pool. PIDX_NONE when the quota or the machine
 * is exhausted (*why: VMPOOL_QUOTA, _NOMEM or _SHORT).
 */
pidx_t vmpool_take(struct vm_pool *vp, unsigned cpu, int *why);
/* Like vmpool_take, but not zeroed: for a page the caller overwrites entirely at once. */
pidx_t vmpool_take_for_copy(struct vm_pool *vp, unsigned cpu, int *why);
/* One more data page mapped: false if that would pass data_limit. */
bool vmpool_activate(struct vm_pool *vp);
/*
 * A data page the caller maps at once: vmpool_activate, then vmpool_take
 * (zero) or vmpool_take_for_copy (!zero); PIDX_NONE, nothing counted, with
 * *why (VMPOOL_LIMIT too) if either refuses. The fault path's order, for
 * pages Quire fills before the guest runs (an image) and copy-on-write.
 */
pidx_t vmpool_take_mapped(struct vm_pool *vp, unsigned cpu, bool zero, int *why);
/* A page this VM held is no longer its own (it became shared): uncharge it. */
void vmpool_uncharge(struct vm_pool *vp);
/*
 * A page already mapped becomes this VM's own data page (a shared page's
 * last user): charged against the quota and counted active within
 * data_limit, by CAS as a fault's page is. 0, or why not (nothing counted).
 */
int vmpool_adopt(struct vm_pool *vp);
/*
 * Return a page this VM held to the VMM pool and uncharge it. A page that
 * is not the VM's, already free, pinned or a table is refused (logged) and
 * stays charged.
 */
void vmpool_give_back(struct vm_pool *vp, unsigned cpu, pidx_t i, bool zeroed);
/* The same for one of its stage-2 table pages (pool_free_table). */
void vmpool_give_back_table(struct vm_pool *vp, unsigned cpu, pidx_t i);
/*
 * A run for a stage-2 block: RUN_PAGES data pages activated within
 * data_limit and charged against the quota at once (a block counts as its
 * pages), owned by this VM, flags MP_ACTIVE. *zeroed as pool_alloc_run's.
 * PIDX_NONE, nothing counted, if the VM has no room for them or no run is
 * free.
 */
pidx_t vmpool_take_run(struct vm_pool *vp, unsigned cpu, u32 *zeroed);
/* An unsplit block's run goes back whole: deactivated and uncharged (what pool_free_run took back). */
void vmpool_give_back_run(struct vm_pool *vp, unsigned cpu, pidx_t first);
/* Reserve up to n zeroed pages in the idle set (within the quota); returns how many. */
u32 vmpool_reserve_idle(struct vm_pool *vp, unsigned cpu, u32 n);

/*
 * Zero a machine page and make the zeroes visible to a guest running with
 * its caches off (clean to the point of coherency). Provided by the arch
 * layer (DC ZVA, DC CVAC) or the host shim (memset).
 */
void page_zero(paddr_t pa);
/*
 * After Quire wrote a page for a guest (an image, a copy, a read from swap):
 * clean and invalidate it to PoC, for a guest with its caches off. Not the
 * instruction caches: page_sync_icache does that, before a page is mapped
 * executable (quire/fault.h).
 */
void page_sync_for_guest(paddr_t pa);
/*
 * Before Quire compares a page a guest wrote, perhaps with its caches off:
 * clean and invalidate it to PoC, so Quire reads what is in memory.
 */
void page_sync_for_quire(paddr_t pa);
/* Quire's pointer to a machine page (the identity map; the host shim's memory in tests). */
void *page_va(paddr_t pa);
#endif
