/*
 * Machine page descriptors: one per 4 KiB page of RAM that Quire manages
 * (all RAM in the DT less Quire itself, the DT blob and reserved regions).
 * 16 bytes each, 0.39% of RAM.
 */
#ifndef QUIRE_MPAGE_H
#define QUIRE_MPAGE_H
#include <stdatomic.h>
#include <quire/types.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)

typedef u32 mpn_t;  /* machine page number: physical address >> 12 (16 TiB reach) */
typedef u32 pidx_t; /* index of a descriptor in the pool's array */
#define PIDX_NONE 0xffffffffu

/* Guest-physical (intermediate physical) address: its own type, so it is never taken for a machine one. */
typedef struct {
	u64 bits;
} ipa_t;
#define IPA(x) ((ipa_t){ (x) })

enum mpage_flag {
	MP_IDLE = 1 << 0,    /* free: in the VMM pool or a VM's idle set */
	MP_ACTIVE = 1 << 1,  /* mapped into a VM */
	MP_ZEROED = 1 << 2,  /* known to hold only zeros */
	MP_SHARED = 1 << 3,  /* mapped read-only by several (VM, page) pairs */
	MP_SWAPCACHE = 1 << 4, /* mapped read-only, clean: a copy is in the swap slot kept in `next` */
	MP_PINNED = 1 << 5,  /* never shared, swapped or moved */
	MP_PGTABLE = 1 << 6, /* a stage-2 translation table */
	MP_UNSTABLE = 1 << 7, /* private, in the sharing table as a candidate */
};

struct mpage {
	mpn_t mpn;
	u32 gpn;		/* owner's guest page number (IPA >> 12) */
	/*
	 * Link in a lock-free stack while free or idle; MP_SWAPCACHE: its slot
	 * (core/swap_priv.h). A stale chain pop may read any value here as a
	 * link: lfstack_pop_chain checks each against the array.
	 */
	_Atomic pidx_t next;
	_Atomic u16 refcount;	/* mappings of this page */
	_Atomic u8 flags;	/* enum mpage_flag */
	u8 owner;		/* VM id; 0 = Quire; a shared page: its sharing group */
};

_Static_assert(sizeof(struct mpage) == 16, "keep the descriptor small");

#endif
