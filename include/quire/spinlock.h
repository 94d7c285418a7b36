/* A ticket lock: fair between CPUs, C11 atomics so it also runs on the host. */
#ifndef QUIRE_SPINLOCK_H
#define QUIRE_SPINLOCK_H
#include <stdatomic.h>
#include <quire/types.h>

typedef struct {
	_Atomic u32 next;
	_Atomic u32 owner;
} spinlock_t;

#define SPINLOCK_INIT { 0, 0 }

static inline void spin_lock(spinlock_t *l)
{
	u32 me = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);

	while (atomic_load_explicit(&l->owner, memory_order_acquire) != me)
		;
}

/* Gives up after about 'spins' tries; used only where a dead holder is possible (crash reports). */
static inline bool spin_lock_bounded(spinlock_t *l, unsigned long spins)
{
	u32 cur = atomic_load_explicit(&l->owner, memory_order_relaxed);

	while (spins--) {
		u32 expected = cur;
		if (atomic_load_explicit(&l->next, memory_order_relaxed) == cur &&
		    atomic_compare_exchange_weak_explicit(&l->next, &expected, cur + 1,
							  memory_order_acquire, memory_order_relaxed))
			return true;
		cur = atomic_load_explicit(&l->owner, memory_order_relaxed);
	}
	return false;
}

static inline bool spin_trylock(spinlock_t *l)
{
	u32 cur = atomic_load_explicit(&l->owner, memory_order_relaxed);

	return atomic_load_explicit(&l->next, memory_order_relaxed) == cur &&
	       atomic_compare_exchange_strong_explicit(&l->next, &cur, cur + 1, memory_order_acquire,
						       memory_order_relaxed);
}

static inline void spin_unlock(spinlock_t *l)
{
	u32 o = atomic_load_explicit(&l->owner, memory_order_relaxed);

	atomic_store_explicit(&l->owner, o + 1, memory_order_release);
}
#endif
