/* Swap internals shared by core/swap*.c. */
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
	u64 t0;				/* clock_us when it went to the disk */
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
	_Atomic u64 outs, ins, zero, waits, out_us, in_us, in_cpu_ticks, errors, lost;
	_Atomic u64 clean, ahead, ahead_used, out_reqs, in_reqs;
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
#endif
