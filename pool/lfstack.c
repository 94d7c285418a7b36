/*
 * A lock-free LIFO of page descriptors (Treiber stack).
 *
 * The head packs a 32-bit tag above a 32-bit descriptor index, and every
 * successful CAS increments the tag. A pop that read head (t, i) and i's
 * link can only succeed if nobody pushed or popped since, so the classic ABA
 * case (i popped, re-pushed with another link, CAS still matching) needs the
 * tag to wrap 2^32 times in between. 64-bit CAS (LDXR/STXR on ARMv8.0) is
 * enough; no double-width CAS.
 *
 * Memory orders: a push stores the link (relaxed) and then publishes with a
 * release CAS; a pop's acquire load/CAS of head synchronises with that
 * release, so the link it reads, and everything the pusher wrote to the page
 * before (zeroes, for instance), is visible. The link read in pop may race
 * with a re-push of the same descriptor; it is an atomic load, and the tag
 * makes the CAS fail if the value was stale.
 */
#include <quire/pool.h>

#define HEAD(tag, idx) (((u64)(tag) << 32) | (idx))
#define HEAD_IDX(h) ((pidx_t)(h))
#define HEAD_TAG(h) ((u32)((h) >> 32))

void lfstack_init(struct lfstack *s)
{
	atomic_store_explicit(&s->head, HEAD(0, PIDX_NONE), memory_order_relaxed);
	atomic_store_explicit(&s->count, 0, memory_order_relaxed);
}

void lfstack_push_chain(struct lfstack *s, struct mpage *desc, pidx_t first, pidx_t last, u32 n)
{
	u64 old = atomic_load_explicit(&s->head, memory_order_relaxed), new;

	/* Count first: a popper can only take what this push published, so count never underflows. */
	atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
	do {
		atomic_store_explicit(&desc[last].next, HEAD_IDX(old), memory_order_relaxed);
		new = HEAD(HEAD_TAG(old) + 1, first);
	} while (!atomic_compare_exchange_weak_explicit(&s->head, &old, new, memory_order_release,
							  memory_order_relaxed));
}

void lfstack_push(struct lfstack *s, struct mpage *desc, pidx_t i)
{
	lfstack_push_chain(s, desc, i, i, 1);
}

pidx_t lfstack_pop(struct lfstack *s, struct mpage *desc)
{
	u64 old = atomic_load_explicit(&s->head, memory_order_acquire), new;

	do {
		pidx_t top = HEAD_IDX(old);

		if (top == PIDX_NONE)
			return PIDX_NONE;
		new = HEAD(HEAD_TAG(old) + 1, atomic_load_explicit(&desc[top].next, memory_order_relaxed));
	} while (!atomic_compare_exchange_weak_explicit(&s->head, &old, new, memory_order_acquire,
							  memory_order_acquire));
	atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
	return HEAD_IDX(old);
}

u32 lfstack_pop_chain(struct lfstack *s, struct mpage *desc, u32 ndesc, u32 max, pidx_t *first)
{
	u64 old = atomic_load_explicit(&s->head, memory_order_acquire), new;
	u32 n;

	/*
	 * Walk up to max links from the head, then swing the head past them in
	 * one CAS. If any push or pop completed meanwhile, the tag moved and the
	 * CAS fails; pushes in flight write only links of nodes not yet on the
	 * stack. So a successful CAS means the links read were the stack's.
	 * Until then the walk is speculative: a node in it may have been popped
	 * and its `next` reused for anything, so every link is checked against
	 * the array before it is followed. One that is no index means the head
	 * moved: start again from the new one.
	 */
	for (;;) {
		pidx_t i = HEAD_IDX(old);

		bool stale = false;

		for (n = 0; i != PIDX_NONE && n < max; n++) {
			i = atomic_load_explicit(&desc[i].next, memory_order_relaxed);
			if (i != PIDX_NONE && i >= ndesc) {
				stale = true;
				break;
			}
		}
		if (stale) {
			/* Acquire, as at the start: the walk again reads links that pushes published. */
			old = atomic_load_explicit(&s->head, memory_order_acquire);
			continue;
		}
		if (!n)
			return 0;
		new = HEAD(HEAD_TAG(old) + 1, i);
		if (atomic_compare_exchange_weak_explicit(&s->head, &old, new, memory_order_acquire,
							  memory_order_acquire))
			break;
	}
	atomic_fetch_sub_explicit(&s->count, n, memory_order_relaxed);
	*first = HEAD_IDX(old);
	return n;
}
