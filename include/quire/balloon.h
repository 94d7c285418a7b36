/*
 * virtio-balloon for guests (virtio 1.x, 5.5; core/virtio_balloon.c): the
 * guest gives pages back when Quire asks (inflate), takes them again when
 * it needs them (deflate, and on its own when it runs short: deflate on
 * OOM), and reports the pages it frees (free page reporting). Each page
 * that comes back leaves the VM (vm_discard_page): its next touch is an
 * ordinary fill with a zeroed page.
 */
#ifndef QUIRE_BALLOON_H
#define QUIRE_BALLOON_H
#include <quire/types.h>

struct vm;

/* The guest's own figures from the stats queue (5.5.6.3), as last reported. */
enum balloon_stat {
	BALLOON_S_SWAP_IN, BALLOON_S_SWAP_OUT, BALLOON_S_MAJFLT, BALLOON_S_MINFLT, BALLOON_S_MEMFREE,
	BALLOON_S_MEMTOT, BALLOON_S_AVAIL, BALLOON_S_CACHES, BALLOON_S_HTLB_PGALLOC, BALLOON_S_HTLB_PGFAIL,
	BALLOON_S_NR
};

struct balloon_info {
	bool present;	  /* the VM has a balloon */
	bool driver;	  /* its driver runs it (DRIVER_OK) */
	u32 target;	  /* pages Quire asks the guest to hold in the balloon */
	u32 actual;	  /* pages the guest says it holds there */
	u64 inflated, deflated, reported; /* pages that came back (inflate, reporting) and went out (deflate) */
	u64 discarded;	  /* pages that left the VM because of them */
	bool stats_valid;
	u64 stats[BALLOON_S_NR];
};

/*
 * Give vm a balloon in virtio-mmio slot (at its creation), offering deflate
 * on OOM or not: Linux shrinks its MemTotal as the balloon grows only
 * without it.
 */
void balloon_attach(struct vm *vm, unsigned slot, bool deflate_on_oom);
/* Ask the guest to hold pages 4 KiB pages in its balloon (0: none). -ENODEV if the VM has no balloon. */
int balloon_set_target(struct vm *vm, u32 pages);
/* What the balloon of vm holds and knows; asks the guest for fresh figures too (cpu: the caller's). */
void balloon_info(struct vm *vm, struct balloon_info *out, unsigned cpu);
#endif
