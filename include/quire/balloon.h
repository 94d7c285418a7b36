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
	u32 policy;	  /* ... of them the policy's, on top of the operator's */
	u32 actual;	  /* pages the guest says it holds there */
	u64 inflated, deflated, reported; /* pages that came back (inflate, reporting) and went out (deflate) */
	u64 oom_deflated; /* pages the guest took back by itself (deflate on OOM) */
	u64 policy_inflates; /* times the policy asked for more */
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

/*
 * The policy (core/balloon_policy.c). Its knobs: it looks at most every
 * BALLOON_POLICY_MS; its margin is the pool's pages / BALLOON_MARGIN_DIV,
 * at least BALLOON_MARGIN_MIN pages. Balloons inflate below promised +
 * low_water + margin free pages, and are let down above that + 2 margins.
 */
#define BALLOON_POLICY_MS 20
#define BALLOON_MARGIN_DIV 16
#define BALLOON_MARGIN_MIN 1024

/* One VM's balloon as the policy sees it, in pages. */
struct balloon_view {
	u32 excess;	/* what the VM holds above its guarantee, that its balloon could still take */
	u32 pending;	/* asked for and not given yet (target above actual) */
	u32 policy;	/* the policy's share of its target */
	bool live;	/* its driver runs it */
};
/* The policy's decision: VM index vm (-1: none) to inflate by delta pages (deflate if negative). */
struct balloon_plan {
	int vm;
	s64 delta;
};
struct balloon_plan balloon_plan(u64 free, u64 mark, u64 margin, const struct balloon_view *v, unsigned n);
/* Look at the machine's free memory, and move a balloon if it is time (any CPU, any time; cheap if not). */
void balloon_policy(unsigned cpu);
/* The view of vm's balloon; false if it has none, or it is busy just now (the policy looks again later). */
bool balloon_view(struct vm *vm, struct balloon_view *out);
/* The policy's share of vm's target moves by delta pages. */
void balloon_policy_move(struct vm *vm, s64 delta, unsigned cpu);
#endif
