/*
 * The VMM page pool (pool/pool.c, pool/lfstack.c) and the per-VM pool
 * (pool/vmpool.c), single-threaded: pool_init over memory maps with holes,
 * exhaustion, the per-CPU caches, and the VM quota and idle set.
 * test_pool_stress.c covers concurrency.
 *
 * Machine memory is host memory behind hostmem.h (machine addresses are not
 * host pointers: mpn_t is 32 bits).
 *
 * Tests named regression_* pin down defects found in the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <quire/console.h>
#include <quire/pool.h>
#include "hostmem.h"

static struct pool pool;
static void *desc;
static struct machine mach;

/* ---- helpers ---------------------------------------------------------- */

static void add_mem(struct machine *m, paddr_t base, u64 size)
{
	assert_true(m->nmem < MAX_MEM_REGIONS);
	m->mem[m->nmem].base = base;
	m->mem[m->nmem].size = size;
	m->nmem++;
	m->mem_total += size;
}

/* Back the machine's RAM with host memory and build the pool over it. */
static u32 setup_pool(const struct region *ex, unsigned nex)
{
	u64 bytes = pool_desc_bytes(&mach);

	for (unsigned r = 0; r < mach.nmem; r++)
		hostmem_add(mach.mem[r].base, mach.mem[r].size);
	/* Exactly the size asked for, so ASan sees any write past it. */
	desc = malloc(bytes ? bytes : 1);
	assert_non_null(desc);
	return pool_init(&pool, &mach, ex, nex, desc);
}

static int teardown(void **state)
{
	(void)state;
	free(desc);
	desc = NULL;
	hostmem_reset();
	memset(&mach, 0, sizeof(mach));
	return 0;
}

/* The model: is [pa, pa + 4K) a whole page of some RAM region and clear of every excluded one? */
static bool model_usable(paddr_t pa, const struct region *ex, unsigned nex)
{
	bool in_ram = false;

	for (unsigned r = 0; r < mach.nmem; r++)
		if (pa >= mach.mem[r].base && pa + PAGE_SIZE <= mach.mem[r].base + mach.mem[r].size)
			in_ram = true;
	if (!in_ram || pa & (PAGE_SIZE - 1))
		return false;
	for (unsigned e = 0; e < nex; e++)
		if (pa + PAGE_SIZE > ex[e].base && pa < ex[e].base + ex[e].size)
			return false;
	return true;
}

static u32 model_count(const struct region *ex, unsigned nex)
{
	u32 n = 0;

	for (unsigned r = 0; r < mach.nmem; r++)
		for (paddr_t pa = ALIGN_UP(mach.mem[r].base, PAGE_SIZE);
		     pa + PAGE_SIZE <= mach.mem[r].base + mach.mem[r].size; pa += PAGE_SIZE)
			n += model_usable(pa, ex, nex);
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Every descriptor: a distinct usable page, round-tripping through pool_pidx_of, free and clean. */
static void check_descriptors(u32 n, const struct region *ex, unsigned nex)
{
	u64 *pas = malloc((n ? n : 1) * sizeof(*pas));

	assert_non_null(pas);
	assert_int_equal(pool.ndesc, n);
	assert_true(pool.nranges <= ARRAY_SIZE(pool.range));
	for (u32 i = 0; i < n; i++) {
		paddr_t pa = pool_pa(&pool, i);
		struct mpage *d = pool_desc(&pool, i);

		assert_true(model_usable(pa, ex, nex));
		assert_int_equal(pool_pidx_of(&pool, pa), i);
		assert_int_equal(pool_pidx_of(&pool, pa + 0xfff), i);
		assert_int_equal(atomic_load(&d->flags), MP_IDLE);
		assert_int_equal(atomic_load(&d->refcount), 0);
		assert_int_equal(d->owner, 0);
		pas[i] = pa;
	}
	qsort(pas, n, sizeof(*pas), cmp_u64);
	for (u32 i = 1; i < n; i++)
		assert_true(pas[i - 1] < pas[i]);
	free(pas);
}

/* Take every page on cpu; returns how many, all distinct and marked used. */
static u32 alloc_all(unsigned cpu, pidx_t *out, u32 max)
{
	u32 got = 0;
	u8 *seen = calloc(pool.ndesc ? pool.ndesc : 1, 1);
	pidx_t i;

	assert_non_null(seen);
	while ((i = pool_alloc(&pool, cpu)) != PIDX_NONE) {
		assert_true(i < pool.ndesc);
		assert_false(seen[i]);
		seen[i] = 1;
		assert_false(atomic_load(&pool_desc(&pool, i)->flags) & MP_IDLE);
		assert_true(got < max);
		out[got++] = i;
	}
	free(seen);
	return got;
}

static u32 cached(void)
{
	u32 n = 0;

	for (unsigned c = 0; c < MAX_CPUS; c++)
		n += pool.cache[c].n;
	return n;
}

/* ---- pool_init ---------------------------------------------------------- */

static void descriptor_is_16_bytes(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct mpage), 16);
	add_mem(&mach, 0x40000000, MiB(64));
	assert_int_equal(pool_desc_bytes(&mach), MiB(64) / PAGE_SIZE * 16);
	add_mem(&mach, 0x100000000, 0x1800); /* 1.5 pages: rounds up to whole descriptor pages */
	assert_int_equal(pool_desc_bytes(&mach), ALIGN_UP((MiB(64) + 0x1800) / PAGE_SIZE * 16, PAGE_SIZE));
}

static void init_one_region(void **state)
{
	u32 n;

	(void)state;
	add_mem(&mach, 0x40000000, MiB(4));
	n = setup_pool(NULL, 0);
	assert_int_equal(n, MiB(4) / PAGE_SIZE);
	assert_int_equal(pool.nranges, 1);
	assert_int_equal(pool_free_pages(&pool), n);
	check_descriptors(n, NULL, 0);
	/* Low pages first in the chain. */
	assert_int_equal(pool_pa(&pool, 0), 0x40000000);
	assert_int_equal(pool_pa(&pool, n - 1), 0x40000000 + MiB(4) - PAGE_SIZE);
	assert_int_equal(pool_pidx_of(&pool, 0x40000000 - 1), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x40000000 + MiB(4)), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0), PIDX_NONE);
}

static const struct region holes[] = {
	{ 0x40000000, 0x123456 },   /* Quire's image: ends mid-page */
	{ 0x40400100, 0x2000 },	    /* the DT blob, unaligned: three pages */
	{ 0x407ff000, 0x2000 },	    /* reserved across the R0/R3 boundary */
	{ 0x09000000, 0x1000 },	    /* outside RAM: no effect */
	{ 0x100100000, MiB(1) },    /* the top half of R2 */
	{ 0x48080000, 0x1000 },	    /* one page inside R1 */
};

static void setup_holey_machine(void)
{
	add_mem(&mach, 0x40000000, MiB(8));		 /* R0 */
	add_mem(&mach, 0x48000800, 0x100000 - 0x800 + 0x300); /* R1: unaligned both ends */
	add_mem(&mach, 0x100000000, MiB(2));		 /* R2: above 4 GiB */
	add_mem(&mach, 0x40800000, MiB(1));		 /* R3: right after R0 */
}

static void init_regions_with_holes(void **state)
{
	u32 n, expect;
	pidx_t *all;

	(void)state;
	setup_holey_machine();
	expect = model_count(holes, ARRAY_SIZE(holes));
	n = setup_pool(holes, ARRAY_SIZE(holes));
	assert_int_equal(n, expect);
	assert_true(n > 2000);
	check_descriptors(n, holes, ARRAY_SIZE(holes));
	assert_int_equal(pool_free_pages(&pool), n);

	/* Pages in or partly in a hole, or outside RAM, have no descriptor. */
	assert_int_equal(pool_pidx_of(&pool, 0x40123000), PIDX_NONE); /* image's last, partial page */
	assert_int_not_equal(pool_pidx_of(&pool, 0x40124000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x40400000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x40402000), PIDX_NONE);
	assert_int_not_equal(pool_pidx_of(&pool, 0x40403000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x407ff000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x40800000), PIDX_NONE);
	assert_int_not_equal(pool_pidx_of(&pool, 0x40801000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x48000000), PIDX_NONE); /* R1's partial first page */
	assert_int_not_equal(pool_pidx_of(&pool, 0x48001000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x48100000), PIDX_NONE); /* R1's partial last page */
	assert_int_equal(pool_pidx_of(&pool, 0x48080000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x100100000), PIDX_NONE);
	assert_int_not_equal(pool_pidx_of(&pool, 0x1000ff000), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x09000000), PIDX_NONE);

	/* Everything handed out is usable machine memory that can be written. */
	all = malloc(n * sizeof(*all));
	assert_non_null(all);
	assert_int_equal(alloc_all(1, all, n), n);
	for (u32 k = 0; k < n; k++) {
		paddr_t pa = pool_pa(&pool, all[k]);

		assert_true(model_usable(pa, holes, ARRAY_SIZE(holes)));
		memset(hostmem_ptr(pa), 0xee, PAGE_SIZE);
	}
	free(all);
}

static void init_too_fragmented_stays_in_bounds(void **state)
{
	struct region ex[ARRAY_SIZE(pool.range) + 8];
	u32 n;

	(void)state;
	add_mem(&mach, 0x40000000, MiB(1));
	for (unsigned k = 0; k < ARRAY_SIZE(ex); k++) {
		ex[k].base = 0x40000000 + (2 * k + 1) * PAGE_SIZE; /* every other page */
		ex[k].size = PAGE_SIZE;
	}
	n = setup_pool(ex, ARRAY_SIZE(ex));
	/* More ranges than the pool can describe: the rest is left unmanaged, never misdescribed. */
	assert_int_equal(pool.nranges, ARRAY_SIZE(pool.range));
	assert_true(n > 0 && n < model_count(ex, ARRAY_SIZE(ex)));
	check_descriptors(n, ex, ARRAY_SIZE(ex));
	assert_int_equal(pool_free_pages(&pool), n);
}

static void init_nothing_usable(void **state)
{
	const struct region all[] = { { 0x40000000, MiB(1) } };

	(void)state;
	add_mem(&mach, 0x40000000, MiB(1));
	assert_int_equal(setup_pool(all, 1), 0);
	assert_int_equal(pool_free_pages(&pool), 0);
	assert_int_equal(pool_alloc(&pool, 0), PIDX_NONE);
	assert_int_equal(pool_alloc(&pool, 0), PIDX_NONE);
	assert_int_equal(pool_pidx_of(&pool, 0x40000000), PIDX_NONE);
}

static void init_no_memory(void **state)
{
	(void)state;
	assert_int_equal(setup_pool(NULL, 0), 0);
	assert_int_equal(pool_alloc(&pool, 3), PIDX_NONE);
	pool_drain_cache(&pool, 3);
	assert_int_equal(pool_free_pages(&pool), 0);
}

/* ---- allocation --------------------------------------------------------- */

static void alloc_until_empty_then_free_all(void **state)
{
	u32 n, got;
	pidx_t *all;

	(void)state;
	setup_holey_machine();
	n = setup_pool(holes, ARRAY_SIZE(holes));
	all = malloc(n * sizeof(*all));
	assert_non_null(all);

	got = alloc_all(0, all, n);
	assert_int_equal(got, n);
	assert_int_equal(pool_free_pages(&pool), 0);
	for (int k = 0; k < 5; k++) {
		assert_int_equal(pool_alloc(&pool, 0), PIDX_NONE);
		assert_int_equal(pool_alloc(&pool, MAX_CPUS - 1), PIDX_NONE);
	}

	/* Free on several CPUs: the count balances at every step. */
	for (u32 k = 0; k < n; k++) {
		pool_free(&pool, k % MAX_CPUS, all[k], false);
		assert_int_equal(pool_free_pages(&pool), k + 1);
	}
	for (unsigned c = 0; c < MAX_CPUS; c++)
		pool_drain_cache(&pool, c);
	assert_int_equal(cached(), 0);
	assert_int_equal(atomic_load(&pool.free.count), n);

	/* And every page comes back exactly once. */
	got = alloc_all(5, all, n);
	assert_int_equal(got, n);
	for (u32 k = 0; k < n; k++)
		pool_free(&pool, 5, all[k], false);
	assert_int_equal(pool_free_pages(&pool), n);
	free(all);
}

static void cache_refill_and_spill(void **state)
{
	pidx_t held[PCPU_CACHE_MAX + 2 * PCPU_CACHE_BATCH];
	u32 n, nheld = 0, global;

	(void)state;
	/* Not a whole 2 MiB run in it: every page starts on the shared stack. */
	add_mem(&mach, 0x40001000, MiB(4) - 2 * PAGE_SIZE);
	n = setup_pool(NULL, 0);
	assert_int_equal(pool_free_runs(&pool), 0);

	/* The first allocation on a CPU takes a whole batch from the global stack. */
	held[nheld++] = pool_alloc(&pool, 2);
	assert_int_equal(pool.cache[2].n, PCPU_CACHE_BATCH - 1);
	assert_int_equal(atomic_load(&pool.free.count), n - PCPU_CACHE_BATCH);
	for (int k = 1; k < PCPU_CACHE_BATCH; k++)
		held[nheld++] = pool_alloc(&pool, 2);
	assert_int_equal(pool.cache[2].n, 0);
	assert_int_equal(atomic_load(&pool.free.count), n - PCPU_CACHE_BATCH);
	held[nheld++] = pool_alloc(&pool, 2);
	assert_int_equal(pool.cache[2].n, PCPU_CACHE_BATCH - 1);
	assert_int_equal(atomic_load(&pool.free.count), n - 2 * PCPU_CACHE_BATCH);
	/* Other CPUs are untouched. */
	for (unsigned c = 0; c < MAX_CPUS; c++)
		if (c != 2)
			assert_int_equal(pool.cache[c].n, 0);

	/* Pages from CPU 3, freed on CPU 2 until its cache is full: no spill up to the maximum. */
	while (nheld < ARRAY_SIZE(held))
		held[nheld++] = pool_alloc(&pool, 3);
	global = atomic_load(&pool.free.count);
	u32 k = 0;
	while (pool.cache[2].n < PCPU_CACHE_MAX)
		pool_free(&pool, 2, held[k++], false);
	assert_int_equal(atomic_load(&pool.free.count), global);
	/* One more spills a batch in one push. */
	pool_free(&pool, 2, held[k++], false);
	assert_int_equal(pool.cache[2].n, PCPU_CACHE_MAX - PCPU_CACHE_BATCH + 1);
	assert_int_equal(atomic_load(&pool.free.count), global + PCPU_CACHE_BATCH);
	while (k < nheld)
		pool_free(&pool, 2, held[k++], false);
	assert_int_equal(pool_free_pages(&pool), n);

	/* A CPU's cache is LIFO: the page just freed comes back first. */
	pidx_t x = pool_alloc(&pool, 4), y = pool_alloc(&pool, 4);
	pool_free(&pool, 4, x, false);
	assert_int_equal(pool_alloc(&pool, 4), x);
	pool_free(&pool, 4, y, false);
	pool_free(&pool, 4, x, false);

	/* Draining moves a cache to the global stack; draining an empty cache does nothing. */
	global = atomic_load(&pool.free.count);
	u32 c2 = pool.cache[2].n;
	assert_true(c2 > 0);
	pool_drain_cache(&pool, 2);
	assert_int_equal(pool.cache[2].n, 0);
	assert_int_equal(atomic_load(&pool.free.count), global + c2);
	pool_drain_cache(&pool, 2);
	assert_int_equal(atomic_load(&pool.free.count), global + c2);
	for (unsigned c = 0; c < MAX_CPUS; c++)
		pool_drain_cache(&pool, c);
	assert_int_equal(atomic_load(&pool.free.count), n);

	/* The spilled chains are intact: every page once. */
	pidx_t *all = malloc(n * sizeof(*all));
	assert_non_null(all);
	assert_int_equal(alloc_all(6, all, n), n);
	free(all);
}

/* Allocate on cpu until page i comes back (the others are freed again). */
static void alloc_back(unsigned cpu, pidx_t i)
{
	pidx_t *others = malloc(pool.ndesc * sizeof(*others)), j;
	u32 n = 0;

	assert_non_null(others);
	while ((j = pool_alloc(&pool, cpu)) != i) {
		assert_int_not_equal(j, PIDX_NONE);
		others[n++] = j;
	}
	while (n)
		pool_free(&pool, cpu, others[--n], false);
	free(others);
}

static void free_resets_descriptor(void **state)
{
	pidx_t i;
	struct mpage *d;

	(void)state;
	add_mem(&mach, 0x40000000, MiB(1));
	setup_pool(NULL, 0);
	i = pool_alloc(&pool, 0);
	d = pool_desc(&pool, i);
	assert_int_equal(atomic_load(&d->flags), 0); /* IDLE cleared; never zeroed yet */
	d->owner = 3;
	d->gpn = 0x12345;
	atomic_store(&d->refcount, 7);
	atomic_store(&d->flags, MP_ACTIVE | MP_SHARED);
	pool_free(&pool, 0, i, true);
	assert_int_equal(atomic_load(&d->flags), MP_IDLE | MP_ZEROED);
	assert_int_equal(d->owner, 0);
	assert_int_equal(d->gpn, 0);
	assert_int_equal(atomic_load(&d->refcount), 0);
	alloc_back(0, i);
	assert_int_equal(atomic_load(&d->flags), MP_ZEROED); /* zeroed survives allocation */
	pool_free(&pool, 0, i, false);
	assert_int_equal(atomic_load(&d->flags), MP_IDLE);
	alloc_back(0, i);
	assert_int_equal(atomic_load(&d->flags), 0);
	pool_free(&pool, 0, i, false);
	assert_int_equal(pool_free_pages(&pool), pool.ndesc);
}

static void lfstack_basics(void **state)
{
	struct lfstack s;
	struct mpage d[8];

	(void)state;
	memset(d, 0, sizeof(d));
	lfstack_init(&s);
	assert_int_equal(lfstack_pop(&s, d), PIDX_NONE);
	lfstack_push(&s, d, 3);
	lfstack_push(&s, d, 5);
	atomic_store(&d[1].next, 2);
	atomic_store(&d[2].next, 7);
	lfstack_push_chain(&s, d, 1, 7, 3); /* 1 -> 2 -> 7 */
	assert_int_equal(atomic_load(&s.count), 5);
	const pidx_t expect[] = { 1, 2, 7, 5, 3 };
	for (unsigned k = 0; k < ARRAY_SIZE(expect); k++)
		assert_int_equal(lfstack_pop(&s, d), expect[k]);
	assert_int_equal(lfstack_pop(&s, d), PIDX_NONE);
	assert_int_equal(atomic_load(&s.count), 0);
	/* Every successful operation moves the tag. */
	assert_int_equal(atomic_load(&s.head) >> 32, 8); /* 3 pushes, 5 pops */
}

/* ---- the VM pool -------------------------------------------------------- */

static struct vm_pool vp;

static u32 setup_small(u32 pages)
{
	add_mem(&mach, 0x80000000, pages * PAGE_SIZE);
	return setup_pool(NULL, 0);
}

/* Dirty every page and give it back as not zeroed. */
static void dirty_all(void)
{
	pidx_t *all = malloc(pool.ndesc * sizeof(*all));
	u32 n;

	assert_non_null(all);
	n = alloc_all(0, all, pool.ndesc);
	for (u32 k = 0; k < n; k++) {
		hostmem_write(pool_pa(&pool, all[k]), 0xab);
		pool_free(&pool, 0, all[k], false);
	}
	pool_drain_cache(&pool, 0);
	free(all);
}

static void vmpool_quota_exact(void **state)
{
	pidx_t held[10];
	int why;

	(void)state;
	setup_small(64);
	vmpool_init(&vp, &pool, 2, 10);
	for (unsigned k = 0; k < 10; k++) {
		why = 0;
		held[k] = vmpool_take(&vp, 0, &why);
		assert_int_not_equal(held[k], PIDX_NONE);
		assert_int_equal(atomic_load(&vp.charged), k + 1);
		assert_int_equal(pool_desc(&pool, held[k])->owner, 2);
		assert_int_equal(atomic_load(&pool_desc(&pool, held[k])->flags), MP_ZEROED);
	}
	for (int k = 0; k < 3; k++) {
		why = 0;
		assert_int_equal(vmpool_take(&vp, k, &why), PIDX_NONE);
		assert_int_equal(why, 1);
		assert_int_equal(atomic_load(&vp.charged), 10);
	}
	assert_int_equal(pool_free_pages(&pool), 64 - 10);
	vmpool_give_back(&vp, 1, held[4], false);
	assert_int_equal(atomic_load(&vp.charged), 9);
	assert_int_equal(pool_free_pages(&pool), 64 - 9);
	held[4] = vmpool_take(&vp, 1, &why);
	assert_int_not_equal(held[4], PIDX_NONE);
	assert_int_equal(atomic_load(&vp.charged), 10);
	for (unsigned k = 0; k < 10; k++)
		vmpool_give_back(&vp, 0, held[k], false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(pool_free_pages(&pool), 64);
}

static void vmpool_quota_zero(void **state)
{
	int why = 0;

	(void)state;
	setup_small(8);
	vmpool_init(&vp, &pool, 1, 0);
	assert_int_equal(vmpool_take(&vp, 0, &why), PIDX_NONE);
	assert_int_equal(why, 1);
	assert_int_equal(vmpool_reserve_idle(&vp, 0, 4), 0);
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(pool_free_pages(&pool), 8);
}

static void vmpool_pages_come_zeroed(void **state)
{
	pidx_t held[32];
	unsigned long z0;
	int why;

	(void)state;
	setup_small(32);
	dirty_all();
	vmpool_init(&vp, &pool, 1, 100);
	for (unsigned k = 0; k < 32; k++) {
		held[k] = vmpool_take(&vp, 0, &why);
		assert_int_not_equal(held[k], PIDX_NONE);
		assert_true(hostmem_page_is_zero(pool_pa(&pool, held[k])));
		memset(hostmem_ptr(pool_pa(&pool, held[k])), 0x11, PAGE_SIZE);
	}
	/* Given back dirty (zeroed = false): zeroed again on the next take. */
	for (unsigned k = 0; k < 32; k++)
		vmpool_give_back(&vp, 0, held[k], false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	z0 = atomic_load(&hostmem_zero_calls);
	for (unsigned k = 0; k < 32; k++) {
		held[k] = vmpool_take(&vp, 0, &why);
		assert_true(hostmem_page_is_zero(pool_pa(&pool, held[k])));
	}
	assert_int_equal(atomic_load(&hostmem_zero_calls) - z0, 32);
	/* Given back known-zero: not zeroed a second time. */
	for (unsigned k = 0; k < 32; k++)
		vmpool_give_back(&vp, 0, held[k], true);
	z0 = atomic_load(&hostmem_zero_calls);
	for (unsigned k = 0; k < 32; k++) {
		held[k] = vmpool_take(&vp, 0, &why);
		assert_true(hostmem_page_is_zero(pool_pa(&pool, held[k])));
	}
	assert_int_equal(atomic_load(&hostmem_zero_calls), z0);
	for (unsigned k = 0; k < 32; k++)
		vmpool_give_back(&vp, 0, held[k], false);
}

static void vmpool_idle_reserve_and_take(void **state)
{
	pidx_t held[12];
	unsigned long z0;
	int why;

	(void)state;
	setup_small(64);
	dirty_all();
	vmpool_init(&vp, &pool, 4, 12);

	/* Reserve within the quota: charged now, zeroed now, flagged idle, owned. */
	assert_int_equal(vmpool_reserve_idle(&vp, 1, 8), 8);
	assert_int_equal(atomic_load(&vp.charged), 8);
	assert_int_equal(atomic_load(&vp.idle.count), 8);
	assert_int_equal(pool_free_pages(&pool), 64 - 8);
	/* Only as many as the quota leaves. */
	assert_int_equal(vmpool_reserve_idle(&vp, 1, 10), 4);
	assert_int_equal(atomic_load(&vp.charged), 12);
	assert_int_equal(atomic_load(&vp.idle.count), 12);
	assert_int_equal(vmpool_reserve_idle(&vp, 1, 1), 0);

	/* Takes come from the idle set: no new charge, no zeroing, still zero. */
	z0 = atomic_load(&hostmem_zero_calls);
	for (unsigned k = 0; k < 12; k++) {
		why = 0;
		held[k] = vmpool_take(&vp, 2, &why);
		assert_int_not_equal(held[k], PIDX_NONE);
		struct mpage *d = pool_desc(&pool, held[k]);
		assert_int_equal(atomic_load(&d->flags), MP_ZEROED);
		assert_int_equal(d->owner, 4);
		assert_true(hostmem_page_is_zero(pool_pa(&pool, held[k])));
		assert_int_equal(atomic_load(&vp.charged), 12);
		memset(hostmem_ptr(pool_pa(&pool, held[k])), 0x77, PAGE_SIZE);
	}
	assert_int_equal(atomic_load(&hostmem_zero_calls), z0);
	assert_int_equal(atomic_load(&vp.idle.count), 0);
	assert_int_equal(vmpool_take(&vp, 2, &why), PIDX_NONE);
	assert_int_equal(why, 1);

	/* Give back uncharges; dirty pages are zeroed when reserved again. */
	for (unsigned k = 0; k < 12; k++)
		vmpool_give_back(&vp, 3, held[k], false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(pool_free_pages(&pool), 64);
	assert_int_equal(vmpool_reserve_idle(&vp, 3, 12), 12);
	for (unsigned k = 0; k < 12; k++) {
		held[k] = vmpool_take(&vp, 0, &why);
		assert_true(hostmem_page_is_zero(pool_pa(&pool, held[k])));
	}
	for (unsigned k = 0; k < 12; k++)
		vmpool_give_back(&vp, 0, held[k], false);
	assert_int_equal(pool_free_pages(&pool), 64);
}

static void vmpool_idle_set_flags(void **state)
{
	pidx_t i;

	(void)state;
	setup_small(16);
	vmpool_init(&vp, &pool, 6, 16);
	assert_int_equal(vmpool_reserve_idle(&vp, 0, 3), 3);
	/* Peek at the idle set without taking: flagged idle and zeroed, owned by the VM. */
	i = (pidx_t)atomic_load(&vp.idle.head);
	for (unsigned k = 0; k < 3; k++) {
		assert_int_not_equal(i, PIDX_NONE);
		assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), MP_IDLE | MP_ZEROED);
		assert_int_equal(pool_desc(&pool, i)->owner, 6);
		i = atomic_load(&pool_desc(&pool, i)->next);
	}
	assert_int_equal(i, PIDX_NONE);
	while ((i = lfstack_pop(&vp.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&vp, 0, i, true);
	assert_int_equal(atomic_load(&vp.charged), 0);
}

static void vmpool_why_machine_empty(void **state)
{
	struct vm_pool other;
	pidx_t held[8];
	int why;

	(void)state;
	setup_small(8);
	vmpool_init(&vp, &pool, 1, 100);
	vmpool_init(&other, &pool, 2, 100);
	for (unsigned k = 0; k < 8; k++) {
		held[k] = vmpool_take(k & 1 ? &other : &vp, 0, &why);
		assert_int_not_equal(held[k], PIDX_NONE);
	}
	why = 0;
	assert_int_equal(vmpool_take(&vp, 0, &why), PIDX_NONE);
	assert_int_equal(why, 2);
	/* The failed take left no charge behind. */
	assert_int_equal(atomic_load(&vp.charged), 4);
	assert_int_equal(atomic_load(&other.charged), 4);
	assert_int_equal(vmpool_reserve_idle(&vp, 0, 4), 0);
	assert_int_equal(atomic_load(&vp.charged), 4);
	/* Quota and machine both exhausted: the quota is checked first. */
	vp.quota = 4;
	assert_int_equal(vmpool_take(&vp, 0, &why), PIDX_NONE);
	assert_int_equal(why, 1);
	vp.quota = 100;
	/* A page given back by one VM can be taken by the other. */
	vmpool_give_back(&vp, 0, held[0], false);
	held[0] = vmpool_take(&other, 0, &why);
	assert_int_not_equal(held[0], PIDX_NONE);
	assert_int_equal(pool_desc(&pool, held[0])->owner, 2);
	assert_int_equal(atomic_load(&vp.charged), 3);
	assert_int_equal(atomic_load(&other.charged), 5);
	for (unsigned k = 0; k < 8; k++)
		vmpool_give_back(k == 0 || k & 1 ? &other : &vp, 0, held[k], false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(atomic_load(&other.charged), 0);
	assert_int_equal(pool_free_pages(&pool), 8);
}

/*
 * Promises: each VM is kept its guarantee; one guaranteed less than its
 * quota (it can swap) takes pages past its guarantee only while more than
 * the promises and the low water are free (why 3 after that).
 */
static void vmpool_promises(void **state)
{
	struct vm_pool kept;
	pidx_t held[64], kheld[20];
	unsigned n = 0;
	pidx_t i;
	int why = 0;

	(void)state;
	setup_small(64);
	pool.low_water = 4;
	vmpool_init(&kept, &pool, 2, 20);
	vmpool_init(&vp, &pool, 1, 60);
	assert_int_equal(atomic_load(&pool.promised), 80);
	vmpool_overcommit(&vp, 10);
	assert_int_equal(atomic_load(&pool.promised), 30);
	while ((i = vmpool_take(&vp, 0, &why)) != PIDX_NONE)
		held[n++] = i;
	assert_int_equal(why, 3);
	/* 64 pages: it stops where 20 promised to the other and 4 of low water are left. */
	assert_int_equal(n, 40);
	assert_int_equal(pool_free_pages(&pool), 24);
	assert_true(vmpool_short(&vp));
	assert_false(vmpool_short(&kept));
	assert_int_equal(atomic_load(&pool.promised), 20);
	/* The other VM gets all it was promised, then meets its quota. */
	for (unsigned k = 0; k < 20; k++) {
		kheld[k] = vmpool_take(&kept, 0, &why);
		assert_int_not_equal(kheld[k], PIDX_NONE);
	}
	assert_int_equal(vmpool_take(&kept, 0, &why), PIDX_NONE);
	assert_int_equal(why, 1);
	assert_int_equal(atomic_load(&pool.promised), 0);
	/* Pages given back past a guarantee are nobody's promise; below it, its owner's again. */
	for (unsigned k = 0; k < 30; k++)
		vmpool_give_back(&vp, 0, held[--n], false);
	assert_int_equal(atomic_load(&pool.promised), 0);
	vmpool_give_back(&vp, 0, held[--n], false);
	assert_int_equal(atomic_load(&pool.promised), 1);
	for (unsigned k = 0; k < 20; k++)
		vmpool_give_back(&kept, 0, kheld[k], false);
	assert_int_equal(atomic_load(&pool.promised), 21);
	vmpool_fini(&kept);
	assert_int_equal(atomic_load(&pool.promised), 1);
	while (n)
		vmpool_give_back(&vp, 0, held[--n], false);
	vmpool_fini(&vp);
	assert_int_equal(atomic_load(&pool.promised), 0);
	assert_int_equal(pool_free_pages(&pool), 64);
}

/* ---- regressions -------------------------------------------------------- */

/*
 * Pages freed on one CPU stay in its cache (up to PCPU_CACHE_MAX) and no other
 * CPU can reach them: pool_alloc on CPU 1 answers PIDX_NONE, "the machine is
 * out of memory", while every page of the machine is free in CPU 0's cache.
 * With 8 CPUs up to 512 pages (2 MiB) can be stranded, and a VM faulting on
 * the wrong CPU gets an external abort (VIO_SEA_NOMEM) it should not.
 */
static void regression_alloc_fails_while_other_cpu_caches_pages(void **state)
{
	pidx_t held[64];

	(void)state;
	setup_small(64);
	for (unsigned k = 0; k < 64; k++)
		held[k] = pool_alloc(&pool, 0);
	for (unsigned k = 0; k < 64; k++)
		pool_free(&pool, 0, held[k], false);
	assert_int_equal(pool_free_pages(&pool), 64);
	held[0] = pool_alloc(&pool, 1);
	assert_int_not_equal(held[0], PIDX_NONE);
	pool_free(&pool, 1, held[0], false);
}

/*
 * pool_pidx_of truncates pa >> 12 to the 32-bit mpn before the range check, so
 * an address 16 TiB above a managed page aliases it instead of being PIDX_NONE.
 */
static void regression_pidx_of_high_address_aliases(void **state)
{
	(void)state;
	add_mem(&mach, 0x40000000, MiB(1));
	setup_pool(NULL, 0);
	assert_int_equal(pool_pidx_of(&pool, 0x40000000), 0);
	assert_int_equal(pool_pidx_of(&pool, 0x40000000 + (1ULL << 44)), PIDX_NONE);
}

/*
 * pool_init stores pa >> 12 in the 32-bit mpn without checking it fits: RAM
 * at or above 16 TiB gets descriptors whose pool_pa() is 16 TiB lower, i.e.
 * another machine page (here the first MiB of the address space).
 * pool_init never touches page memory, so no backing is needed.
 */
static void regression_init_ram_beyond_mpn_reach(void **state)
{
	const paddr_t base = (1ULL << 44) - MiB(1);
	u32 n;

	(void)state;
	mach.mem[0].base = base;
	mach.mem[0].size = MiB(2);
	mach.nmem = 1;
	mach.mem_total = MiB(2);
	desc = malloc(pool_desc_bytes(&mach));
	assert_non_null(desc);
	n = pool_init(&pool, &mach, NULL, 0, desc);
	assert_true(n >= MiB(1) / PAGE_SIZE);
	for (u32 i = 0; i < n; i++) {
		assert_true(pool_pa(&pool, i) >= base);
		assert_true(pool_pa(&pool, i) < base + MiB(2));
	}
}

/* ---- what the pool refuses ------------------------------------------------ */

static char logbuf[2048];
static unsigned loglen;

static void log_putc(char c)
{
	if (loglen + 1 < sizeof(logbuf))
		logbuf[loglen++] = c;
	logbuf[loglen] = 0;
}

static void log_start(void)
{
	loglen = 0;
	logbuf[0] = 0;
	console_set_output(log_putc);
}

/* One line was logged since log_start, naming the page at pa (if any) and saying why. */
static void assert_logged(paddr_t pa, const char *why)
{
	char name[32];

	console_set_output(NULL);
	if (pa) {
		snprintf(name, sizeof(name), "page 0x%lx ", (unsigned long)pa);
		if (!strstr(logbuf, name))
			fail_msg("no \"%s\" in: %s", name, logbuf);
	}
	if (!strstr(logbuf, why))
		fail_msg("no \"%s\" in: %s", why, logbuf);
	assert_non_null(strstr(logbuf, "kept out of the pool") ? logbuf : strstr(logbuf, "ignored"));
	assert_int_equal(strchr(logbuf, '\n') - logbuf + 1, (long)loglen);
}

static int teardown_log(void **state)
{
	console_set_output(NULL);
	return teardown(state);
}

/* Every page once, and page i not among them. */
static void assert_pool_holds_all_but(pidx_t i, u32 want)
{
	pidx_t *all = malloc(pool.ndesc * sizeof(*all));

	assert_non_null(all);
	assert_int_equal(pool_free_pages(&pool), want);
	assert_int_equal(alloc_all(0, all, pool.ndesc), want);
	for (u32 k = 0; k < want; k++) {
		assert_int_not_equal(all[k], i);
		assert_true(pool_free(&pool, 0, all[k], false));
	}
	free(all);
}

/* A page freed twice: refused and logged, and the pool holds it once (it once went on the stack twice). */
static void free_twice_refused(void **state)
{
	pidx_t i;

	(void)state;
	setup_small(16);
	i = pool_alloc(&pool, 0);
	assert_true(pool_free(&pool, 0, i, true));
	log_start();
	assert_false(pool_free(&pool, 0, i, false));
	assert_logged(pool_pa(&pool, i), "already free");
	/* Still the first free's page: zeroed, in the pool once. */
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), MP_IDLE | MP_ZEROED);
	assert_pool_holds_all_but(PIDX_NONE, 16);
	/* Freed twice from another CPU's cache, and after a drain to the shared stack: the same. */
	i = pool_alloc(&pool, 1);
	assert_true(pool_free(&pool, 1, i, false));
	pool_drain_cache(&pool, 1);
	log_start();
	assert_false(pool_free(&pool, 2, i, false));
	assert_logged(pool_pa(&pool, i), "already free");
	assert_pool_holds_all_but(PIDX_NONE, 16);
}

/* A pinned page (the zero page, the swap slot map) or a stage-2 table is never freed as data. */
static void free_pinned_or_table_refused(void **state)
{
	pidx_t i, t;

	(void)state;
	setup_small(16);
	i = pool_alloc(&pool, 0);
	atomic_store(&pool_desc(&pool, i)->flags, MP_SHARED | MP_PINNED | MP_ZEROED);
	log_start();
	assert_false(pool_free(&pool, 0, i, false));
	assert_logged(pool_pa(&pool, i), "pinned");
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), MP_SHARED | MP_PINNED | MP_ZEROED);
	log_start();
	assert_false(pool_free_table(&pool, 0, i));
	assert_logged(pool_pa(&pool, i), "not a stage-2 table");

	t = pool_alloc(&pool, 0);
	atomic_store(&pool_desc(&pool, t)->flags, MP_PGTABLE | MP_PINNED);
	log_start();
	assert_false(pool_free(&pool, 0, t, true));
	assert_logged(pool_pa(&pool, t), "a stage-2 table");
	assert_pool_holds_all_but(i, 14);
	/* Through its own path the table goes back, not marked zeroed. */
	assert_true(pool_free_table(&pool, 0, t));
	assert_int_equal(atomic_load(&pool_desc(&pool, t)->flags), MP_IDLE);
	assert_pool_holds_all_but(i, 15);

	/* No descriptor at all. */
	log_start();
	assert_false(pool_free(&pool, 0, PIDX_NONE, false));
	assert_logged(0, "page index 0xffffffff freed is not the pool's");
	log_start();
	assert_false(pool_free(&pool, 0, pool.ndesc, false));
	assert_logged(0, "is not the pool's");
	assert_pool_holds_all_but(i, 15);
}

/* Give-back: only the VM's own pages, once; a refused page stays charged (no uncharge twice). */
static void give_back_refused(void **state)
{
	struct vm_pool other;
	pidx_t i, t, j;
	int why = 0;

	(void)state;
	setup_small(16);
	vmpool_init(&vp, &pool, 1, 8);
	vmpool_init(&other, &pool, 2, 8);
	i = vmpool_take(&vp, 0, &why);
	j = vmpool_take(&other, 0, &why);
	assert_int_equal(atomic_load(&vp.charged), 1);

	/* Another VM's page. */
	log_start();
	vmpool_give_back(&other, 0, i, false);
	assert_logged(pool_pa(&pool, i), "not this VM's");
	assert_int_equal(atomic_load(&other.charged), 1);
	assert_int_equal(pool_free_pages(&pool), 14);

	/* Twice. */
	vmpool_give_back(&vp, 0, i, false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	log_start();
	vmpool_give_back(&vp, 0, i, false);
	assert_logged(pool_pa(&pool, i), "not this VM's");
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(pool_free_pages(&pool), 15);

	/* A table as data, and data as a table: refused, still charged; each through its own path. */
	t = vmpool_take(&vp, 0, &why);
	atomic_store(&pool_desc(&pool, t)->flags, MP_PGTABLE | MP_PINNED);
	log_start();
	vmpool_give_back(&vp, 0, t, true);
	assert_logged(pool_pa(&pool, t), "a stage-2 table");
	assert_int_equal(atomic_load(&vp.charged), 1);
	log_start();
	vmpool_give_back_table(&other, 0, j);
	assert_logged(pool_pa(&pool, j), "not a stage-2 table");
	assert_int_equal(atomic_load(&other.charged), 1);
	vmpool_give_back_table(&vp, 0, t);
	vmpool_give_back(&other, 0, j, false);
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_int_equal(atomic_load(&other.charged), 0);

	/* A page of the VM's idle set (flagged idle, but the VM's) goes back. */
	assert_int_equal(vmpool_reserve_idle(&vp, 0, 1), 1);
	i = lfstack_pop(&vp.idle, pool.desc);
	vmpool_give_back(&vp, 0, i, true);
	assert_int_equal(atomic_load(&vp.charged), 0);
	log_start();
	vmpool_give_back(&vp, 0, PIDX_NONE, false);
	assert_logged(0, "is not the pool's");
	assert_int_equal(atomic_load(&vp.charged), 0);
	assert_pool_holds_all_but(PIDX_NONE, 16);
}

/*
 * take_new marked every page it handed out MP_ZEROED, also a page for a
 * copy (vmpool_take_for_copy) that was never zeroed and still held its last
 * owner's data. A page that is zero keeps the mark.
 */
static void regression_take_for_copy_marked_zeroed(void **state)
{
	pidx_t i;
	int why = 0;

	(void)state;
	setup_small(4);
	dirty_all();
	vmpool_init(&vp, &pool, 1, 8);
	i = vmpool_take_for_copy(&vp, 0, &why);
	assert_int_not_equal(i, PIDX_NONE);
	assert_false(hostmem_page_is_zero(pool_pa(&pool, i)));
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), 0);
	assert_int_equal(pool_desc(&pool, i)->owner, 1);
	page_zero(pool_pa(&pool, i));
	vmpool_give_back(&vp, 0, i, true);
	/* Copies take dirty pages while there are any (the 3 others), the zeroed one last. */
	pidx_t dirty[3];
	for (unsigned k = 0; k < 3; k++) {
		dirty[k] = vmpool_take_for_copy(&vp, 0, &why);
		assert_int_not_equal(dirty[k], i);
		assert_int_equal(atomic_load(&pool_desc(&pool, dirty[k])->flags), 0);
	}
	assert_int_equal(vmpool_take_for_copy(&vp, 0, &why), i);
	assert_true(hostmem_page_is_zero(pool_pa(&pool, i)));
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), MP_ZEROED);
	vmpool_give_back(&vp, 0, i, false);
	for (unsigned k = 0; k < 3; k++)
		vmpool_give_back(&vp, 0, dirty[k], false);
}

/* take_mapped and adopt: the resident limit first, nothing counted when refused. */
static void vmpool_take_mapped_and_adopt(void **state)
{
	pidx_t i, j;
	int why = 0;

	(void)state;
	setup_small(8);
	dirty_all();
	vmpool_init(&vp, &pool, 1, 3);
	vp.data_limit = 2;
	i = vmpool_take_mapped(&vp, 0, true, &why);
	assert_int_not_equal(i, PIDX_NONE);
	assert_true(hostmem_page_is_zero(pool_pa(&pool, i)));
	j = vmpool_take_mapped(&vp, 0, false, &why);
	assert_int_not_equal(j, PIDX_NONE);
	assert_int_equal(atomic_load(&pool_desc(&pool, j)->flags), 0);
	assert_int_equal(atomic_load(&vp.active), 2);
	assert_int_equal(atomic_load(&vp.charged), 2);
	why = 0;
	assert_int_equal(vmpool_take_mapped(&vp, 0, true, &why), PIDX_NONE);
	assert_int_equal(why, VMPOOL_LIMIT);
	assert_int_equal(vmpool_adopt(&vp), VMPOOL_LIMIT);
	assert_int_equal(atomic_load(&vp.active), 2);
	assert_int_equal(atomic_load(&vp.charged), 2);
	/* Below the limit, at the quota. */
	vp.data_limit = 10;
	assert_int_equal(vmpool_adopt(&vp), 0);
	assert_int_equal(atomic_load(&vp.charged), 3);
	assert_int_equal(vmpool_adopt(&vp), VMPOOL_QUOTA);
	why = 0;
	assert_int_equal(vmpool_take_mapped(&vp, 0, true, &why), PIDX_NONE);
	assert_int_equal(why, VMPOOL_QUOTA);
	assert_int_equal(atomic_load(&vp.active), 3);
	assert_int_equal(atomic_load(&vp.charged), 3);
	vmpool_give_back(&vp, 0, i, false);
	vmpool_give_back(&vp, 0, j, false);
	vmpool_uncharge(&vp);
	assert_int_equal(atomic_load(&vp.charged), 0);
}


/* ---- the pre-zeroed stack and the idle zeroer ------------------------------ */

static bool never(void)
{
	return false;
}

static unsigned stop_after, stop_calls;

/* Says "an interrupt waits" from its stop_after'th call on. */
static bool stop_later(void)
{
	return ++stop_calls > stop_after;
}

static struct pool_zero_stats zstats(void)
{
	struct pool_zero_stats st;

	pool_zero_stats(&pool, &st);
	return st;
}

/*
 * The check every page handed out pre-zeroed must pass: page_zero()
 * zeroed it (and so cleaned it to PoC, on the arch), nothing wrote it
 * since, and it is still all zero.
 */
static void assert_zero_clean(pidx_t i)
{
	assert_int_not_equal(i, PIDX_NONE);
	assert_true(hostmem_page_zero_clean(pool_pa(&pool, i)));
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags) & (MP_IDLE | MP_ZEROED), MP_ZEROED);
}

/* Every page taken pre-zeroed was zeroed and cleaned by page_zero; the budget per slice holds. */
static void prezero_budget_and_pages(void **state)
{
	const u64 slice = 1000;
	u32 n = setup_small(4096);
	unsigned long z0;
	pidx_t held[2 * PREZERO_SLICE_PAGES + 1];
	int why;

	(void)state;
	dirty_all();
	assert_int_equal(pool.prezero_cap, 4096 / PREZERO_CAP_DIV);
	/* Nothing pre-zeroed yet: the fault path's check says so without popping. */
	assert_int_equal(pool_alloc_zeroed(&pool, 0), PIDX_NONE);

	/* One slice's budget, not a page more however often the idle loop calls. */
	assert_int_equal(pool_prezero(&pool, 1, 0, slice, never), slice);
	assert_int_equal(zstats().prezeroed, PREZERO_SLICE_PAGES);
	assert_int_equal(zstats().zeroed_idle, PREZERO_SLICE_PAGES);
	assert_int_equal(pool_prezero(&pool, 1, slice - 1, slice, never), slice);
	assert_int_equal(zstats().prezeroed, PREZERO_SLICE_PAGES);
	/* Each CPU has its own budget. */
	assert_int_equal(pool_prezero(&pool, 2, slice - 1, slice, never), 2 * slice - 1);
	assert_int_equal(zstats().prezeroed, 2 * PREZERO_SLICE_PAGES);
	/* Counted as free, once. */
	assert_int_equal(pool_free_pages(&pool), n);

	/* Fills take them without zeroing, each zero and clean. */
	vmpool_init(&vp, &pool, 1, n);
	z0 = atomic_load(&hostmem_zero_calls);
	for (unsigned k = 0; k < 2 * PREZERO_SLICE_PAGES; k++) {
		held[k] = vmpool_take(&vp, 3, &why);
		assert_zero_clean(held[k]);
		hostmem_write(pool_pa(&pool, held[k]), 0x33); /* the guest uses it */
	}
	assert_int_equal(atomic_load(&hostmem_zero_calls), z0);
	assert_int_equal(zstats().took_prezeroed, 2 * PREZERO_SLICE_PAGES);
	assert_int_equal(zstats().zeroed_on_take, 0);
	assert_int_equal(zstats().prezeroed, 0);
	/* None left: the fill zeroes its own, as before. */
	held[2 * PREZERO_SLICE_PAGES] = vmpool_take(&vp, 3, &why);
	assert_true(hostmem_page_zero_clean(pool_pa(&pool, held[2 * PREZERO_SLICE_PAGES])));
	assert_int_equal(atomic_load(&hostmem_zero_calls), z0 + 1);
	assert_int_equal(zstats().zeroed_on_take, 1);

	/* Given back dirty: never handed out pre-zeroed until the zeroer has been over it again. */
	for (unsigned k = 0; k < ARRAY_SIZE(held); k++)
		vmpool_give_back(&vp, 0, held[k], false);
	assert_int_equal(pool_alloc_zeroed(&pool, 0), PIDX_NONE);
	assert_int_equal(pool_free_pages(&pool), n);
}

/* The cap: the zeroer stops there and asks to be called no more; frees as zeroed still go on. */
static void prezero_cap(void **state)
{
	u32 n = setup_small(256), cap = 256 / PREZERO_CAP_DIV, rounds = 0;
	u64 now = 0;
	pidx_t i;

	(void)state;
	assert_true(cap < PREZERO_SLICE_PAGES);
	while (pool_prezero(&pool, 0, now, 10, never) != ~0UL && rounds++ < 100)
		now += 10;
	assert_int_equal(rounds, 0); /* the cap is below one slice's budget */
	assert_int_equal(zstats().prezeroed, cap);
	assert_int_equal(zstats().zeroed_idle, cap);
	now += 10;
	assert_int_equal(pool_prezero(&pool, 0, now, 10, never), ~0UL);
	assert_int_equal(zstats().zeroed_idle, cap);
	/* A page freed zeroed (an idle-set page of a VM going) joins them past the cap: it cost nothing. */
	i = pool_alloc(&pool, 1);
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), 0); /* dirty first */
	page_zero(pool_pa(&pool, i));
	pool_free(&pool, 1, i, true);
	assert_int_equal(zstats().prezeroed, cap + 1);
	assert_int_equal(pool_free_pages(&pool), n);
	/* Below the cap again, it works again. */
	for (unsigned k = 0; k < 2; k++)
		assert_zero_clean(pool_alloc_zeroed(&pool, 0));
	assert_int_equal(pool_prezero(&pool, 0, now + 10, 10, never), ~0UL);
	assert_int_equal(zstats().prezeroed, cap);
}

/* One page between looks at the interrupt line; and quire.prezero=off does nothing at all. */
static void prezero_stops_and_off(void **state)
{
	(void)state;
	setup_small(4096);
	dirty_all(); /* single dirty pages, not runs: the zeroer takes those first */
	stop_calls = 0;
	stop_after = 3;
	pool_prezero(&pool, 0, 0, 10, stop_later);
	assert_int_equal(zstats().prezeroed, 3);
	assert_int_equal(stop_calls, 4);
	/* The rest of the budget is still there once the interrupt is handled. */
	pool_prezero(&pool, 0, 5, 10, never);
	assert_int_equal(zstats().prezeroed, PREZERO_SLICE_PAGES);

	pool_prezero_start(&pool, false);
	assert_int_equal(pool_prezero(&pool, 0, 100, 10, never), ~0UL);
	assert_int_equal(pool_idle_zero(0, 100, 10, never), ~0UL);
	assert_int_equal(zstats().prezeroed, PREZERO_SLICE_PAGES);
	assert_int_equal(zstats().cap, 0);
	pool_prezero_start(&pool, true);
	pool_idle_zero(0, 100, 10, never);
	assert_int_equal(zstats().prezeroed, 2 * PREZERO_SLICE_PAGES);
}

/* Copies and other overwrites take dirty pages while there are any; the machine is never "empty" early. */
static void prezero_copies_take_dirty(void **state)
{
	u32 n = setup_small(64);
	pidx_t i, all[64];
	int why;

	(void)state;
	pool_prezero(&pool, 0, 0, 10, never);
	assert_int_equal(zstats().prezeroed, n / PREZERO_CAP_DIV);
	vmpool_init(&vp, &pool, 1, n + 1);
	for (u32 k = 0; k < n - n / PREZERO_CAP_DIV; k++) {
		all[k] = vmpool_take_for_copy(&vp, 0, &why);
		assert_int_equal(atomic_load(&pool_desc(&pool, all[k])->flags), 0);
	}
	assert_int_equal(zstats().prezeroed, n / PREZERO_CAP_DIV);
	for (u32 k = n - n / PREZERO_CAP_DIV; k < n; k++) {
		all[k] = vmpool_take_for_copy(&vp, 0, &why);
		assert_zero_clean(all[k]);
	}
	assert_int_equal(vmpool_take_for_copy(&vp, 0, &why), PIDX_NONE);
	assert_int_equal(why, VMPOOL_NOMEM);
	for (u32 k = 0; k < n; k++)
		vmpool_give_back(&vp, 0, all[k], false);
	/* pool_alloc too: dirty first. */
	pool_prezero(&pool, 0, 10, 10, never);
	i = pool_alloc(&pool, 0);
	assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags), 0);
	pool_free(&pool, 0, i, false);
}

/*
 * The check itself: a page written behind the pool's back while on the
 * pre-zeroed stack (a bug somewhere), or one zeroed without the clean and
 * freed as zeroed (a caller breaking the promise), is caught when taken.
 */
static void prezero_check_catches_bugs(void **state)
{
	pidx_t i, j;

	(void)state;
	setup_small(64);
	pool_prezero(&pool, 0, 0, 10, never);
	i = (pidx_t)atomic_load(&pool.zeroed.head); /* the top of the stack: taken next */
	((u8 *)hostmem_ptr(pool_pa(&pool, i)))[100] = 1;
	j = pool_alloc_zeroed(&pool, 0);
	assert_int_equal(j, i);
	assert_false(hostmem_page_zero_clean(pool_pa(&pool, j)));

	j = pool_alloc(&pool, 0);
	hostmem_write(pool_pa(&pool, j), 0); /* zero, but not by page_zero: not cleaned */
	pool_free(&pool, 0, j, true);
	assert_int_equal(pool_alloc_zeroed(&pool, 0), j);
	assert_false(hostmem_page_zero_clean(pool_pa(&pool, j)));
	/* A page page_zero left alone passes. */
	assert_zero_clean(pool_alloc_zeroed(&pool, 0));
}

/* ---- runs, for stage-2 blocks ------------------------------------------- */

static void runs_carved_taken_and_given_back(void **state)
{
	u32 n, got;
	pidx_t r, all[2048];

	(void)state;
	/* 8 MiB from 12 KiB past a 2 MiB boundary: three whole aligned runs, 512 single pages around them. */
	add_mem(&mach, 0x40003000, MiB(8));
	n = setup_pool(NULL, 0);
	assert_int_equal(n, 2048);
	assert_int_equal(pool_free_runs(&pool), 3);
	assert_int_equal(atomic_load(&pool.free.count), 512);
	assert_int_equal(pool_free_pages(&pool), n);
	/* The lowest run first; no page of it zeroed yet. */
	r = pool_alloc_run(&pool, 0, &got);
	assert_int_equal(pool_pa(&pool, r), 0x40200000);
	assert_int_equal(got, 0);
	assert_int_equal(pool_free_pages(&pool), n - RUN_PAGES);
	for (u32 k = 0; k < RUN_PAGES; k++)
		atomic_store(&pool_desc(&pool, r + k)->flags, MP_ACTIVE);
	assert_int_equal(pool_free_run(&pool, 1, r), RUN_PAGES);
	assert_int_equal(pool_free_runs(&pool), 3);
	/* Twice, or from a page that starts no run: refused, logged, nothing changes. */
	assert_int_equal(pool_free_run(&pool, 1, r), 0);
	assert_int_equal(pool_free_run(&pool, 1, r + 1), 0);
	assert_int_equal(pool_free_run(&pool, 1, n + 5), 0);
	assert_int_equal(pool_free_pages(&pool), n);
	/* One page of it pinned: the others go back one by one, the pinned one stays out. */
	r = pool_alloc_run(&pool, 0, &got);
	for (u32 k = 0; k < RUN_PAGES; k++)
		atomic_store(&pool_desc(&pool, r + k)->flags, k == 7 ? MP_ACTIVE | MP_PINNED : MP_ACTIVE);
	assert_int_equal(pool_free_run(&pool, 1, r), RUN_PAGES - 1);
	assert_int_equal(pool_free_runs(&pool), 2);
	assert_int_equal(pool_free_pages(&pool), n - 1);
	/* Single pages first; runs broken only when none is left; every page handed out once. */
	assert_int_equal(alloc_all(2, all, 2048), n - 1);
	assert_int_equal(pool_free_runs(&pool), 0);
	assert_int_equal(pool_alloc_run(&pool, 0, &got), PIDX_NONE);
}

static void prezero_zeroes_runs_a_slice_at_a_time(void **state)
{
	u32 got, slices = 0;
	pidx_t r, all[16384];
	u64 now = 0;

	(void)state;
	/* 64 MiB, all runs: a cap of 1024 pages, singles first (runs broken for them), then two runs. */
	setup_small(16384);
	assert_int_equal(pool_free_runs(&pool), 32);
	while (zstats().prezeroed < zstats().cap && slices++ < 100)
		pool_prezero(&pool, 0, now += 10, 10, never);
	assert_int_equal(slices, 1024 / PREZERO_SLICE_PAGES);
	assert_int_equal(pool_free_runs(&pool), 30);
	assert_int_equal(zstats().zeroed_runs, 0);
	/* One slice more: a run begun. Taken half done, the pages zeroed so far are said, zero and cleaned. */
	pool_prezero(&pool, 0, now += 10, 10, never);
	r = pool_alloc_run(&pool, 0, &got);
	assert_int_equal(got, PREZERO_SLICE_PAGES);
	for (u32 k = 0; k < got; k++)
		assert_true(hostmem_page_zero_clean(pool_pa(&pool, r + k)));
	for (u32 k = 0; k < RUN_PAGES; k++)
		atomic_store(&pool_desc(&pool, r + k)->flags, MP_ACTIVE);
	assert_int_equal(pool_free_run(&pool, 0, r), RUN_PAGES);
	/* Slices go on until two runs are pre-zeroed, then it stops. */
	for (unsigned k = 0; k < 40; k++)
		pool_prezero(&pool, 0, now += 10, 10, never);
	assert_int_equal(zstats().zeroed_runs, 2);
	assert_int_equal(pool_prezero(&pool, 0, now += 10, 10, never), ~0UL);
	r = pool_alloc_run(&pool, 1, &got);
	assert_int_equal(got, RUN_PAGES);
	for (u32 k = 0; k < RUN_PAGES; k++)
		assert_true(hostmem_page_zero_clean(pool_pa(&pool, r + k)));
	/* Every other page can still be had one by one: the other pre-zeroed run broken last. */
	assert_int_equal(alloc_all(3, all, 16384), 16384 - RUN_PAGES);
	assert_int_equal(pool_free_runs(&pool), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(descriptor_is_16_bytes, teardown),
		cmocka_unit_test_teardown(init_one_region, teardown),
		cmocka_unit_test_teardown(init_regions_with_holes, teardown),
		cmocka_unit_test_teardown(init_too_fragmented_stays_in_bounds, teardown),
		cmocka_unit_test_teardown(init_nothing_usable, teardown),
		cmocka_unit_test_teardown(init_no_memory, teardown),
		cmocka_unit_test_teardown(alloc_until_empty_then_free_all, teardown),
		cmocka_unit_test_teardown(cache_refill_and_spill, teardown),
		cmocka_unit_test_teardown(free_resets_descriptor, teardown),
		cmocka_unit_test_teardown(lfstack_basics, teardown),
		cmocka_unit_test_teardown(vmpool_quota_exact, teardown),
		cmocka_unit_test_teardown(vmpool_quota_zero, teardown),
		cmocka_unit_test_teardown(vmpool_pages_come_zeroed, teardown),
		cmocka_unit_test_teardown(vmpool_idle_reserve_and_take, teardown),
		cmocka_unit_test_teardown(vmpool_idle_set_flags, teardown),
		cmocka_unit_test_teardown(vmpool_promises, teardown),
		cmocka_unit_test_teardown(vmpool_why_machine_empty, teardown),
		cmocka_unit_test_teardown(regression_alloc_fails_while_other_cpu_caches_pages, teardown),
		cmocka_unit_test_teardown(regression_pidx_of_high_address_aliases, teardown),
		cmocka_unit_test_teardown(regression_init_ram_beyond_mpn_reach, teardown),
		cmocka_unit_test_teardown(free_twice_refused, teardown_log),
		cmocka_unit_test_teardown(free_pinned_or_table_refused, teardown_log),
		cmocka_unit_test_teardown(give_back_refused, teardown_log),
		cmocka_unit_test_teardown(regression_take_for_copy_marked_zeroed, teardown),
		cmocka_unit_test_teardown(vmpool_take_mapped_and_adopt, teardown),
		cmocka_unit_test_teardown(prezero_budget_and_pages, teardown),
		cmocka_unit_test_teardown(prezero_cap, teardown),
		cmocka_unit_test_teardown(prezero_stops_and_off, teardown),
		cmocka_unit_test_teardown(prezero_copies_take_dirty, teardown),
		cmocka_unit_test_teardown(prezero_check_catches_bugs, teardown),
		cmocka_unit_test_teardown(runs_carved_taken_and_given_back, teardown),
		cmocka_unit_test_teardown(prezero_zeroes_runs_a_slice_at_a_time, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
