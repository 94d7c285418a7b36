/*
 * Swap internals shared by core/swap*.c.
 *
 * Swap: pages out to the disk past a VM's resident limit, and back on the
 * next access. Eviction claims a cold page's leaf (break-before-make) and
 * marks it in transit, so the guest cannot change the page while the disk
 * reads it; the page goes back to the pool only when the write completed.
 * A vCPU touching a page in transit, or whose page is being read back,
 * waits (VIO_WAIT) while other vCPUs run. Completions come from the disk's
 * interrupt, on whichever CPU takes it.
 *
 * A page read back stays clean (read-only, its copy kept on the disk,
 * below) until written, so evicting it again costs no write. A fault
 * that follows another (sequential) reads the next pages too if their slots
 * follow its own; they are mapped with the access flag clear and marked, so
 * their first use is an access-flag fault that reads further ahead.
 *
 * The pieces: swap.c (a VM's set-up, waiting), swap_slots.c (the slot map,
 * the requests), swap_io.c (a request's start and end), swap_evict.c (when to
 * evict), swap_clock.c (what), swap_out.c (write-out), swap_in.c (swap-in),
 * swap_readahead.c, swap_clean.c (pages read back and still clean).
 */
#ifndef CORE_SWAP_PRIV_H
#define CORE_SWAP_PRIV_H
#include <quire/blk.h>
#include <quire/spinlock.h>
#include <quire/swap.h>

#define SWAP_MAP_BITS (PAGE_SIZE * 8) /* slots per page of the slot map: 128 MiB of disk */
#define SWAP_MAP_PAGES 512	      /* 64 GiB of swap at most */
#define SWAP_IOS 64		      /* requests in flight at most */
#define SWAP_RA_MAX 64		      /* pages read ahead of a sequential reader at most */

/*
 * A page read back from swap stays clean, mapped read-only, with its copy
 * kept in its slot (MP_SWAPCACHE, the slot in the descriptor's `next`,
 * unused while the page is mapped): evicted unwritten, it needs no disk
 * write; the first write frees the slot. A stale chain pop may still read
 * it as a link; lfstack_pop_chain bounds-checks every link it follows. The
 * read-ahead mark is in the leaf (S2_AHEAD), not here.
 */
#define SWAPC_SLOT 0xffffffffu /* all of `next` is the slot: no marks beside it */
_Static_assert((u64)SWAP_MAP_PAGES * SWAP_MAP_BITS <= SWAPC_SLOT, "a slot number fits in `next`");

/* One request on the disk: pages of one VM, in consecutive slots. */
struct swap_io {
	struct blk_req r;
	struct vm *vm;
	u64 slot;			/* the first */
	u64 ipa[BLK_MAX_PAGES];
	struct s2_slot leaf[BLK_MAX_PAGES];
	pidx_t page[BLK_MAX_PAGES];
	bool fault_read;		/* a read for a fault: page[0] is wanted now, the rest read ahead */
	bool fault_write;		/* ... by a write: page[0] is dirty at once */
	u64 t0;				/* clock_ticks when it went to the disk */
	struct swap_io *next;
};

struct swap_ctx {
	spinlock_t lock; /* the slot map and the free requests */
	struct pool *pool;
	u64 nslots, used, hint;
	unsigned busy;	/* requests on the disk, of all VMs */
	u64 *map[SWAP_MAP_PAGES];
	struct swap_io io[SWAP_IOS], *free;
	_Atomic u64 gen;
	_Atomic bool space_wanted; /* a VM waits for a slot to come free */
	_Atomic u64 outs, ins, zero, waits, out_ticks, in_ticks, in_cpu_ticks, errors, lost; /* ticks: swap_stats says us */
	_Atomic u64 clean, ahead, ahead_used, out_reqs, in_reqs;
	/*
	 * Per VM (by id): the IPA up to which the last read ahead found every
	 * leaf taken (read, in transit or mapped), so the next look starts
	 * there instead of walking the whole window again. A hint only: 0 or
	 * out of the window, it is ignored; swap_ra_shrink drops it (a page
	 * read ahead was evicted unused, or the reader jumped).
	 */
	_Atomic u64 ahead_end[MAX_VMS + 1];
};

extern struct swap_ctx sw;

/*
 * Up to n consecutive free slots within the VM's quota: how many (0: none),
 * the first in *first; starting at prefer if that one is free.
 */
u32 swap_slots_take(struct vm *vm, u32 n, u64 prefer, u64 *first);
void swap_slot_free(struct vm *vm, u64 slot);
/* A free request for vm (counted in its inflight), or NULL if all are on the disk. */
struct swap_io *swap_io_get(struct vm *vm);
void swap_io_put(struct swap_io *io);
/* Could the VM get a slot now? Is any request (of any VM) on the disk? */
bool swap_slot_left(struct vm *vm);
bool swap_disk_busy(void);
/* Something a waiting vCPU may be waiting for happened: they all look again. */
void swap_wake(void);

static inline struct mpage *swap_desc(pidx_t i)
{
	return pool_desc(sw.pool, i);
}

/* A clean page read back from swap: its copy is still in the slot in its descriptor. */
static inline bool swap_has_copy(pidx_t i)
{
	return atomic_load_explicit(&swap_desc(i)->flags, memory_order_relaxed) & MP_SWAPCACHE;
}

static inline u64 swap_copy_slot(pidx_t i)
{
	return atomic_load_explicit(&swap_desc(i)->next, memory_order_relaxed) & SWAPC_SLOT;
}

/* swap_io.c: a request to the disk, and its end. */
int swap_submit(struct swap_io *io, u32 n, bool write, void (*done)(struct blk_req *, unsigned));
void swap_io_finished(struct swap_io *io, unsigned cpu);
void swap_io_unused(struct swap_io *io);
void swap_page_lost(struct vm *vm, pidx_t i);
void swap_disk_failed(struct vm *vm, const struct swap_io *io);

/* A page the clock claimed for eviction: its leaf (S2_BUSY) and what it was. */
struct victim {
	u64 ipa;
	struct s2_slot leaf;
	pidx_t page;
	unsigned prot;
};

/* swap_clock.c: pick up to want victims; the page behind a leaf, if the VM may evict it. */
unsigned swap_clock_pick(struct vm *vm, struct victim *v, unsigned want, unsigned sweeps, u64 keep);
pidx_t swap_evictable(struct vm *vm, const struct s2_leaf *l);

/* swap_out.c: the victims go, to the disk or (clean, zero) without it. */
void swap_write_out(struct vm *vm, struct victim *v, unsigned n, unsigned cpu);

/* swap_in.c: taking swapped leaves into a request, and reading it. */
bool swap_take_leaf(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u64 expect, ipa_t ipa,
		    unsigned cpu);
u32 swap_extend_run(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u32 want, unsigned cpu);
void swap_read_run(struct swap_io *io, u32 n, unsigned cpu);

/* swap_readahead.c: the read-ahead window. */
void swap_ra_grow(struct vm *vm);
void swap_ra_shrink(struct vm *vm);
#endif
