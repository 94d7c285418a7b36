/*
 * Run queues. Each CPU's queue is changed by VM creation and teardown (any
 * CPU) and read by its own CPU when it picks a vCPU, under the queue's lock.
 * Round robin from the vCPU that ran last gives every runnable vCPU on a
 * CPU an equal share of it; a blocked vCPU gets no share until it wakes.
 */
#include <quire/config.h>
#include <quire/sched.h>
#include <quire/spinlock.h>
#include <quire/swap.h>

#define RQ_MAX (MAX_VMS * MAX_VCPUS)

struct runq {
	spinlock_t lock;
	unsigned n;
	unsigned last; /* index of the vCPU that ran last */
	struct vcpu *v[RQ_MAX];
};

static struct runq rqs[MAX_CPUS];

/* MIN's, each argument evaluated once (MIN evaluates the one it returns twice). */
static inline u64 min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

unsigned sched_place(u32 allowed, unsigned ncpus)
{
	unsigned best = 0, best_n = ~0u;

	for (unsigned c = 0; c < ncpus && c < MAX_CPUS; c++) {
		unsigned n = atomic_load_explicit((_Atomic unsigned *)&rqs[c].n, memory_order_relaxed);

		if (allowed && !(allowed & (1u << c)))
			continue;
		if (n < best_n) {
			best = c;
			best_n = n;
		}
	}
	return best;
}

void sched_add(struct vcpu *v, unsigned cpu)
{
	struct runq *q = &rqs[cpu];

	v->pcpu = cpu;
	spin_lock(&q->lock);
	if (q->n < RQ_MAX)
		q->v[q->n++] = v;
	spin_unlock(&q->lock);
}

void sched_remove(struct vcpu *v)
{
	struct runq *q = &rqs[v->pcpu];

	spin_lock(&q->lock);
	for (unsigned i = 0; i < q->n; i++) {
		if (q->v[i] != v)
			continue;
		q->v[i] = q->v[--q->n];
		if (q->last >= q->n)
			q->last = 0;
		break;
	}
	spin_unlock(&q->lock);
}

unsigned sched_queued(unsigned cpu)
{
	return atomic_load_explicit((_Atomic unsigned *)&rqs[cpu].n, memory_order_relaxed);
}

bool vcpu_runnable(struct vcpu *v, u64 now)
{
	struct vm *vm = v->vm;

	if (atomic_load(&vm->off) || atomic_load(&vm->paused))
		return false;
	switch (atomic_load(&v->state)) {
	case VCPU_START:
		return true;
	case VCPU_RUNNING:
		if (atomic_load(&v->io_wait))
			return swap_gen() != v->io_gen; /* a request completed: look at its page again */
		return !atomic_load(&v->blocked) || vcpu_wake_pending(v, now);
	default:
		return false;
	}
}

/* The entry after q->last in round-robin order, k places on (1 <= k <= q->n): no division, q->last < q->n. */
static unsigned rr_index(const struct runq *q, unsigned k)
{
	unsigned i = q->last + k;

	return i >= q->n ? i - q->n : i;
}

/* sched_pick's search, lock held. */
static struct vcpu *pick_locked(struct runq *q, struct vcpu *cur, u64 now)
{
	for (unsigned k = 1; k <= q->n; k++) {
		unsigned i = rr_index(q, k);
		struct vcpu *v = q->v[i];

		if (v != cur && vcpu_runnable(v, now)) {
			q->last = i;
			return v;
		}
	}
	return NULL;
}

struct vcpu *sched_pick(unsigned cpu, struct vcpu *cur, u64 now)
{
	struct runq *q = &rqs[cpu];
	struct vcpu *found;

	spin_lock(&q->lock);
	found = pick_locked(q, cur, now);
	spin_unlock(&q->lock);
	return found;
}

/* Its VM stopped and it is not DEAD yet: sched_stopped's test. */
static bool stopped_not_dead(struct vcpu *v)
{
	return atomic_load(&v->vm->off) && atomic_load(&v->state) != VCPU_DEAD;
}

u64 sched_blocked_deadline(struct vcpu *v)
{
	/* Not a paused or stopped VM's: its deadline stays in the past and would fire at once, for ever. */
	if (atomic_load(&v->blocked) && atomic_load(&v->state) == VCPU_RUNNING && !atomic_load(&v->vm->paused) &&
	    !atomic_load(&v->vm->off))
		return vcpu_timer_deadline(v);
	return ~0UL;
}

struct vcpu *sched_pick_switch(unsigned cpu, struct vcpu *cur, u64 now, u64 *deadline, bool *stopped)
{
	struct runq *q = &rqs[cpu];
	struct vcpu *found;
	u64 t = ~0UL;
	bool any = false;

	spin_lock(&q->lock);
	found = pick_locked(q, cur, now);
	for (unsigned i = 0; i < q->n; i++) {
		struct vcpu *v = q->v[i];

		if (v == cur)
			continue;
		any |= stopped_not_dead(v);
		if (v != found)
			t = min_u64(t, sched_blocked_deadline(v));
	}
	spin_unlock(&q->lock);
	*deadline = t;
	*stopped = any;
	return found;
}

bool sched_any_runnable(unsigned cpu, struct vcpu *cur, u64 now)
{
	struct runq *q = &rqs[cpu];
	bool yes = false;

	spin_lock(&q->lock);
	for (unsigned i = 0; i < q->n && !yes; i++)
		yes = q->v[i] != cur && vcpu_runnable(q->v[i], now);
	spin_unlock(&q->lock);
	return yes;
}

u64 sched_next_deadline(unsigned cpu, struct vcpu *cur)
{
	struct runq *q = &rqs[cpu];
	u64 t = ~0UL;

	spin_lock(&q->lock);
	for (unsigned i = 0; i < q->n; i++)
		if (q->v[i] != cur)
			t = min_u64(t, sched_blocked_deadline(q->v[i]));
	spin_unlock(&q->lock);
	return t;
}

unsigned sched_stopped(unsigned cpu, struct vcpu *cur, struct vcpu **out, unsigned max)
{
	struct runq *q = &rqs[cpu];
	unsigned n = 0;

	spin_lock(&q->lock);
	for (unsigned i = 0; i < q->n && n < max; i++) {
		struct vcpu *v = q->v[i];

		if (v != cur && stopped_not_dead(v))
			out[n++] = v;
	}
	spin_unlock(&q->lock);
	return n;
}
