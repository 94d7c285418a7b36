/*
 * Concurrency stress of the page pools: NTHREADS threads, each its own CPU
 * index, hammer pool_alloc/pool_free, vmpool_take/give_back/reserve_idle on
 * shared pools, then the bare lock-free stack. Each thread stamps its tag
 * into the pages it holds and checks the tag before it lets go, and claims
 * every page in a holder map (relaxed atomics: they add no ordering the
 * pools do not provide), so a page handed out twice is seen at once.
 * At the end nothing may be lost: every page back on the free stack exactly
 * once, every charge returned.
 *
 * Built twice by the Makefile: under ASan+UBSan and under TSan.
 * QUIRE_STRESS_MS sets the time per phase (default 600 ms for the pools,
 * a third of it for the bare stack).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <quire/pool.h>
#include "hostmem.h"
#define STRESS_NAME "test_pool_stress"
#include "stress.h"

#define NTHREADS 4
#define MACH_BASE 0x80000000UL
#define MACH_PAGES 512
#define MAX_HELD 160
#define NVMS 2

static struct pool pool;
static struct vm_pool vp[NVMS];
static const u32 quota[NVMS] = { 60, 150 };
static _Atomic u8 *holder; /* per descriptor: 0 free, else thread + 1 */
static _Atomic bool stop;
static pthread_barrier_t barrier;

static u64 xorshift(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct held {
	pidx_t i;
	int kind; /* -1 raw pool page, else the VM */
	u64 tag;
};

struct worker {
	unsigned cpu;
	u64 rng;
	struct held held[MAX_HELD];
	unsigned nheld;
	u64 acquired, released, empty, quota_refused, reserved, prezeroed;
};

static const unsigned tag_words[] = { 0, 1, 128, 256, 511 };

static void claim(struct worker *w, pidx_t i)
{
	u8 free_ = 0;

	if (i >= pool.ndesc) {
		FAIL("cpu %u: index %u out of range\n", w->cpu, i);
		return;
	}
	if (!atomic_compare_exchange_strong_explicit(&holder[i], &free_, (u8)(w->cpu + 1), memory_order_relaxed,
						     memory_order_relaxed))
		FAIL("cpu %u: page %u handed out while thread %u holds it\n", w->cpu, i, free_ - 1);
}

static void unclaim(struct worker *w, pidx_t i)
{
	u8 me = (u8)(w->cpu + 1);

	if (!atomic_compare_exchange_strong_explicit(&holder[i], &me, 0, memory_order_relaxed, memory_order_relaxed))
		FAIL("cpu %u: page %u claimed by thread %u under us\n", w->cpu, i, me - 1);
}

/*
 * While a page is held (mapped, in Quire), its `next` is not a link: swap
 * once kept a slot number there with a mark at bit 31. A popper that read
 * the page's link before we took it may still follow what is there now.
 */
static u32 wild_link(u64 tag)
{
	return tag & 1 ? 0x80000000u | (u32)(tag >> 8 & 0xffff) : pool.ndesc + (u32)(tag >> 8 & 7);
}

static void stamp(struct held *h)
{
	u64 *page = hostmem_ptr(pool_pa(&pool, h->i));

	atomic_store_explicit(&pool_desc(&pool, h->i)->next, wild_link(h->tag), memory_order_relaxed);
	hostmem_written(pool_pa(&pool, h->i));

	for (unsigned k = 0; k < ARRAY_SIZE(tag_words); k++)
		page[tag_words[k]] = h->tag + k;
}

static void check_stamp(struct worker *w, struct held *h)
{
	u64 *page = hostmem_ptr(pool_pa(&pool, h->i));

	for (unsigned k = 0; k < ARRAY_SIZE(tag_words); k++)
		CHECK(page[tag_words[k]] == h->tag + k, "cpu %u: page %u tag overwritten (%llx, not %llx)\n", w->cpu,
		      h->i, (unsigned long long)page[tag_words[k]], (unsigned long long)(h->tag + k));
}

static void acquire(struct worker *w)
{
	int kind = (int)(xorshift(&w->rng) % (NVMS + 1)) - 1;
	struct held *h = &w->held[w->nheld];
	pidx_t i;
	int why = 0;

	if (kind < 0 && xorshift(&w->rng) % 2) {
		/* A fill's first choice: zeroed by page_zero, not written since, still zero. */
		i = pool_alloc_zeroed(&pool, w->cpu);
		if (i == PIDX_NONE)
			return;
		CHECK(hostmem_page_zero_clean(pool_pa(&pool, i)), "cpu %u: page %u taken pre-zeroed is not\n", w->cpu,
		      i);
		w->prezeroed++;
	} else if (kind < 0) {
		i = pool_alloc(&pool, w->cpu);
		if (i == PIDX_NONE) {
			w->empty++;
			return;
		}
		CHECK(!(atomic_load_explicit(&pool_desc(&pool, i)->flags, memory_order_relaxed) & MP_IDLE),
		      "cpu %u: allocated page %u still flagged idle\n", w->cpu, i);
	} else {
		struct vm_pool *v = &vp[kind];

		if (xorshift(&w->rng) % 8 == 0) {
			w->reserved += vmpool_reserve_idle(v, w->cpu, 1 + xorshift(&w->rng) % 4);
			CHECK(atomic_load(&v->charged) <= v->quota, "VM %d over quota\n", kind);
			return;
		}
		i = vmpool_take(v, w->cpu, &why);
		CHECK(atomic_load(&v->charged) <= v->quota, "VM %d over quota\n", kind);
		if (i == PIDX_NONE) {
			CHECK(why == 1 || why == 2, "cpu %u: why %d\n", w->cpu, why);
			if (why == 1)
				w->quota_refused++;
			else
				w->empty++;
			return;
		}
		CHECK(pool_desc(&pool, i)->owner == v->vm_id, "cpu %u: page %u not owned by VM %d\n", w->cpu, i,
		      kind);
		CHECK(hostmem_page_zero_clean(pool_pa(&pool, i)), "cpu %u: page %u from VM %d not zeroed and clean\n",
		      w->cpu, i, kind);
	}
	claim(w, i);
	h->i = i;
	h->kind = kind;
	h->tag = (u64)(w->cpu + 1) << 56 | (w->acquired << 8) | (w->acquired & 1);
	stamp(h);
	w->acquired++;
	w->nheld++;
}

static void release(struct worker *w, unsigned k)
{
	struct held h = w->held[k];
	bool zeroed = xorshift(&w->rng) & 1;

	check_stamp(w, &h);
	/* Freed as zeroed only as Quire does: zeroed by page_zero and not written since. */
	if (zeroed)
		page_zero(pool_pa(&pool, h.i));
	unclaim(w, h.i);
	if (h.kind < 0)
		pool_free(&pool, w->cpu, h.i, zeroed);
	else
		vmpool_give_back(&vp[h.kind], w->cpu, h.i, zeroed);
	w->held[k] = w->held[--w->nheld];
	w->released++;
}

static bool never(void)
{
	return false;
}

static void *pool_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&barrier);
	for (u64 ops = 0; !atomic_load_explicit(&stop, memory_order_relaxed); ops++) {
		/* Drift between filling up (and running the machine dry) and emptying out. */
		bool fill = (ops >> 9) & 1 ? xorshift(&w->rng) % 4 != 0 : xorshift(&w->rng) % 4 == 0;

		if (w->nheld < MAX_HELD && (fill || !w->nheld))
			acquire(w);
		else
			release(w, xorshift(&w->rng) % w->nheld);
		if (ops % 4096 == 4095 && xorshift(&w->rng) % 4 == 0)
			pool_drain_cache(&pool, w->cpu);
		/* Idle now and then: zero some freed pages, racing the others' takes and frees. */
		if (xorshift(&w->rng) % 64 == 0)
			pool_prezero(&pool, w->cpu, ops, 256, never);
	}
	while (w->nheld)
		release(w, w->nheld - 1);
	return NULL;
}

/* ---- the bare stack ----------------------------------------------------- */

#define STACK_N 64
static struct lfstack stack;
static struct mpage stack_desc[STACK_N];
static _Atomic u8 stack_holder[STACK_N];
static u64 stack_val[STACK_N]; /* written by the holder only */

static void *stack_worker(void *arg)
{
	struct worker *w = arg;
	pidx_t mine[4];
	u64 rng = w->rng;

	pthread_barrier_wait(&barrier);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned n = 1 + xorshift(&rng) % 4, got = 0;

		for (unsigned k = 0; k < n; k++) {
			pidx_t i = lfstack_pop(&stack, stack_desc);
			u8 free_ = 0;

			if (i == PIDX_NONE)
				break;
			if (i >= STACK_N) {
				FAIL("stack: popped index %u\n", i);
				break;
			}
			if (!atomic_compare_exchange_strong_explicit(&stack_holder[i], &free_, (u8)(w->cpu + 1),
								     memory_order_relaxed, memory_order_relaxed))
				FAIL("stack: %u popped while thread %u holds it\n", i, free_ - 1);
			stack_val[i] = (u64)w->cpu << 32 | i;
			mine[got++] = i;
		}
		for (unsigned k = 0; k < got; k++) {
			u8 me = (u8)(w->cpu + 1);

			CHECK(stack_val[mine[k]] == ((u64)w->cpu << 32 | mine[k]), "stack: %u changed under us\n",
			      mine[k]);
			if (!atomic_compare_exchange_strong_explicit(&stack_holder[mine[k]], &me, 0,
								     memory_order_relaxed, memory_order_relaxed))
				FAIL("stack: %u claimed by thread %u under us\n", mine[k], me - 1);
		}
		if (got >= 2 && xorshift(&rng) & 1) {
			for (unsigned k = 0; k + 1 < got; k++)
				atomic_store_explicit(&stack_desc[mine[k]].next, mine[k + 1], memory_order_relaxed);
			lfstack_push_chain(&stack, stack_desc, mine[0], mine[got - 1], got);
		} else {
			for (unsigned k = 0; k < got; k++)
				lfstack_push(&stack, stack_desc, mine[k]);
		}
		w->acquired += got;
	}
	return NULL;
}

/*
 * ---- chains over wild links ----------------------------------------------
 * Half the threads pop chains of up to PCPU_CACHE_BATCH (a cache refill),
 * the others pop single pages and, while they hold one, write a value into
 * its `next` that is no index at all, as swap did with a slot number and a
 * mark at bit 31. A chain popper that read a link to such a page just
 * before it was taken follows the wild value before its CAS fails: it must
 * never load a descriptor outside the array (ASan: the array is malloc'd
 * to its exact size, so even the next descriptor up is out of bounds).
 */
#define CHAIN_N 48
static struct mpage *chain_desc;
static _Atomic u8 chain_holder[CHAIN_N];

static bool chain_claim(struct worker *w, pidx_t i)
{
	u8 free_ = 0;

	if (i >= CHAIN_N) {
		FAIL("chains: popped index %#x\n", i);
		return false;
	}
	if (!atomic_compare_exchange_strong_explicit(&chain_holder[i], &free_, (u8)(w->cpu + 1), memory_order_relaxed,
						     memory_order_relaxed)) {
		FAIL("chains: %u popped while thread %u holds it\n", i, free_ - 1);
		return false;
	}
	return true;
}

static void chain_unclaim(pidx_t i)
{
	atomic_store_explicit(&chain_holder[i], 0, memory_order_relaxed);
}

#define CHAIN_HOLD 8

static void *chain_worker(void *arg)
{
	struct worker *w = arg;
	u64 rng = w->rng;
	pidx_t held[CHAIN_HOLD];
	unsigned nheld = 0;

	pthread_barrier_wait(&barrier);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pidx_t first, i, mine[PCPU_CACHE_BATCH];
		u32 n;

		if (w->cpu & 1) {
			/* Hold a few pages, each with a wild `next`, and give back the oldest. */
			if (nheld == CHAIN_HOLD || (nheld && xorshift(&rng) % 4 == 0)) {
				i = held[0];
				memmove(held, held + 1, --nheld * sizeof(*held));
				chain_unclaim(i);
				lfstack_push(&stack, chain_desc, i);
				continue;
			}
			i = lfstack_pop(&stack, chain_desc);
			if (i == PIDX_NONE || !chain_claim(w, i))
				continue;
			atomic_store_explicit(&chain_desc[i].next,
					      xorshift(&rng) & 1 ? 0x80000000u | (u32)(rng >> 40) : CHAIN_N + (u32)(rng & 3),
					      memory_order_relaxed);
			held[nheld++] = i;
			w->acquired++;
			continue;
		}
		n = lfstack_pop_chain(&stack, chain_desc, CHAIN_N, 1 + xorshift(&rng) % PCPU_CACHE_BATCH, &first);
		i = first;
		for (u32 k = 0; k < n; k++) {
			if (!chain_claim(w, i))
				return NULL;
			mine[k] = i;
			i = atomic_load_explicit(&chain_desc[i].next, memory_order_relaxed);
		}
		for (u32 k = 0; k < n; k++)
			chain_unclaim(mine[k]);
		if (n)
			lfstack_push_chain(&stack, chain_desc, mine[0], mine[n - 1], n);
		w->acquired += n;
	}
	while (nheld) {
		chain_unclaim(held[--nheld]);
		lfstack_push(&stack, chain_desc, held[nheld]);
	}
	return NULL;
}

/* ---- driver -------------------------------------------------------------- */

static void run(void *(*fn)(void *), struct worker *w, unsigned ms)
{
	pthread_t t[NTHREADS];

	atomic_store(&stop, false);
	pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
	for (unsigned k = 0; k < NTHREADS; k++)
		if (pthread_create(&t[k], NULL, fn, &w[k])) {
			perror("pthread_create");
			exit(1);
		}
	pthread_barrier_wait(&barrier);
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	for (unsigned k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&barrier);
}

/* Pop the whole stack: every index in [0, n) exactly once. */
static void check_stack_complete(struct lfstack *s, struct mpage *desc, u32 n, const char *what)
{
	u8 *seen = calloc(n, 1);
	u32 popped = 0;
	pidx_t i;

	CHECK(atomic_load(&s->count) == n, "%s: count %u, not %u\n", what, atomic_load(&s->count), n);
	while ((i = lfstack_pop(s, desc)) != PIDX_NONE && popped <= n) {
		if (i >= n) {
			FAIL("%s: index %u on the stack\n", what, i);
			break;
		}
		CHECK(!seen[i], "%s: index %u twice on the stack\n", what, i);
		seen[i] = 1;
		popped++;
	}
	CHECK(popped == n, "%s: %u pages on the stack, not %u\n", what, popped, n);
	free(seen);
}

/* The shared stack filled with descriptors 0..n-1, fn run on it by every thread, then checked whole. */
static unsigned long long stack_phase(void *(*fn)(void *), struct worker *w, unsigned ms, struct mpage *desc,
				      u32 n, const char *what)
{
	unsigned long long acquired = 0;

	lfstack_init(&stack);
	for (pidx_t k = n; k-- > 0;)
		lfstack_push(&stack, desc, k);
	for (unsigned k = 0; k < NTHREADS; k++)
		w[k].acquired = 0;
	run(fn, w, ms);
	for (unsigned k = 0; k < NTHREADS; k++)
		acquired += w[k].acquired;
	check_stack_complete(&stack, desc, n, what);
	return acquired;
}

int main(void)
{
	const char *env = getenv("QUIRE_STRESS_MS");
	unsigned ms = env ? (unsigned)atoi(env) : 600;
	struct machine m;
	struct worker *w = calloc(NTHREADS, sizeof(*w));
	u64 t0 = now_ns(), acquired = 0, released = 0, empty = 0, refused = 0, reserved = 0;
	u32 total;
	pidx_t i;
	struct pool_zero_stats zs;

	memset(&m, 0, sizeof(m));
	m.mem[0].base = MACH_BASE;
	m.mem[0].size = MACH_PAGES * PAGE_SIZE;
	m.nmem = 1;
	m.mem_total = m.mem[0].size;
	hostmem_add(m.mem[0].base, m.mem[0].size);
	void *desc = malloc(pool_desc_bytes(&m));
	total = pool_init(&pool, &m, NULL, 0, desc);
	holder = calloc(total, sizeof(*holder));
	for (unsigned k = 0; k < NVMS; k++)
		vmpool_init(&vp[k], &pool, k + 1, quota[k]);

	/* Phase 1: the pools. */
	for (unsigned k = 0; k < NTHREADS; k++) {
		w[k].cpu = k;
		w[k].rng = 0x9e3779b97f4a7c15ULL * (k + 1);
	}
	run(pool_worker, w, ms);
	for (unsigned k = 0; k < NTHREADS; k++) {
		acquired += w[k].acquired;
		released += w[k].released;
		empty += w[k].empty;
		refused += w[k].quota_refused;
		reserved += w[k].reserved;
		CHECK(w[k].nheld == 0, "cpu %u still holds pages\n", k);
	}
	CHECK(acquired == released, "%llu acquired, %llu released\n", (unsigned long long)acquired,
	      (unsigned long long)released);
	for (u32 k = 0; k < total; k++)
		CHECK(!atomic_load(&holder[k]), "page %u still claimed\n", k);
	/* What is left charged is the idle sets, exactly. */
	for (unsigned k = 0; k < NVMS; k++) {
		CHECK(atomic_load(&vp[k].charged) == atomic_load(&vp[k].idle.count), "VM %u: %u charged, %u idle\n",
		      k, atomic_load(&vp[k].charged), atomic_load(&vp[k].idle.count));
		while ((i = lfstack_pop(&vp[k].idle, pool.desc)) != PIDX_NONE) {
			CHECK(hostmem_page_is_zero(pool_pa(&pool, i)), "VM %u: idle page %u not zero\n", k, i);
			CHECK(pool_desc(&pool, i)->owner == vp[k].vm_id, "VM %u: idle page %u owned by %u\n", k, i,
			      pool_desc(&pool, i)->owner);
			vmpool_give_back(&vp[k], 0, i, true);
		}
		CHECK(atomic_load(&vp[k].charged) == 0, "VM %u: %u still charged\n", k, atomic_load(&vp[k].charged));
	}
	CHECK(pool_free_pages(&pool) == total, "%u free pages, not %u\n", pool_free_pages(&pool), total);
	for (unsigned c = 0; c < MAX_CPUS; c++)
		pool_drain_cache(&pool, c);
	/* Every page on one of the two stacks, once; the pre-zeroed ones zero and clean, flagged so. */
	pool_zero_stats(&pool, &zs);
	CHECK(zs.prezeroed == atomic_load(&pool.zeroed.count), "prezeroed %u\n", zs.prezeroed);
	CHECK(zs.zeroed_idle > 0 && zs.took_prezeroed > 0, "zeroed idle %llu, taken pre-zeroed %llu\n",
	      (unsigned long long)zs.zeroed_idle, (unsigned long long)zs.took_prezeroed);
	while ((i = lfstack_pop(&pool.zeroed, pool.desc)) != PIDX_NONE) {
		CHECK(hostmem_page_zero_clean(pool_pa(&pool, i)), "pre-zeroed page %u is not\n", i);
		CHECK(atomic_load(&pool_desc(&pool, i)->flags) == (MP_IDLE | MP_ZEROED), "pre-zeroed page %u flags %x\n",
		      i, atomic_load(&pool_desc(&pool, i)->flags));
		lfstack_push(&pool.free, pool.desc, i);
	}
	check_stack_complete(&pool.free, pool.desc, total, "VMM pool");
	printf("pools: %u threads, %llu pages taken and given back, %llu reserved idle, %llu refused (machine "
	       "empty), %llu refused (quota); %llu zeroed idle, %llu zeroed pages taken pre-zeroed, %llu zeroed "
	       "on the way\n",
	       NTHREADS, (unsigned long long)acquired, (unsigned long long)reserved, (unsigned long long)empty,
	       (unsigned long long)refused, (unsigned long long)zs.zeroed_idle, (unsigned long long)zs.took_prezeroed,
	       (unsigned long long)zs.zeroed_on_take);

	/* Phase 2: the bare stack, few descriptors, many threads: ABA territory. */
	acquired = stack_phase(stack_worker, w, ms / 3 + 1, stack_desc, STACK_N, "bare stack");
	printf("stack: %llu pops and pushes over %u descriptors\n", (unsigned long long)acquired, STACK_N);

	/* Phase 3: chains popped while other threads scribble on `next` of the pages they hold. */
	chain_desc = calloc(CHAIN_N, sizeof(*chain_desc));
	acquired = stack_phase(chain_worker, w, ms / 3 + 1, chain_desc, CHAIN_N, "chains");
	printf("chains: %llu pages popped in chains or alone over %u descriptors\n", (unsigned long long)acquired,
	       CHAIN_N);

	free(chain_desc);
	free(holder);
	free(desc);
	free(w);
	hostmem_reset();
	printf("%s in %.2f s\n", errors ? "FAILED" : "passed", (now_ns() - t0) / 1e9);
	return errors ? 1 : 0;
}
