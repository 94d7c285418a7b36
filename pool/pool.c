/*
 * The VMM's pool: every free machine page, as descriptors on a lock-free
 * stack, with a small cache per physical CPU in front so the fault path
 * usually touches only CPU-local memory. A cache refills and spills in
 * batches, one CAS per spilled batch.
 */
#include <string.h>
#include <quire/console.h>
#include <quire/pool.h>

/* The end of [base, base + size), saturated: a region that wraps runs to the top. */
static u64 end_of(u64 base, u64 size)
{
	return size > ~0UL - base ? ~0UL : base + size;
}

static bool overlaps(u64 a, u64 asz, u64 b, u64 bsz)
{
	return a < end_of(b, bsz) && b < end_of(a, asz);
}

/* The first page boundary at or after the end of region e, or 0 if there is none below 2^64. */
static paddr_t page_after(const struct region *e)
{
	u64 end = end_of(e->base, e->size);

	return end > ~0UL - (PAGE_SIZE - 1) ? 0 : ALIGN_UP(end, PAGE_SIZE);
}

u64 pool_desc_bytes(const struct machine *m)
{
	return ALIGN_UP((m->mem_total >> PAGE_SHIFT) * sizeof(struct mpage), PAGE_SIZE);
}

bool pool_place(const struct machine *m, const struct region *ex, unsigned nex, u64 size,
		paddr_t *where)
{
	for (unsigned r = 0; r < m->nmem; r++) {
		paddr_t a = ALIGN_UP(m->mem[r].base, PAGE_SIZE), end = end_of(m->mem[r].base, m->mem[r].size);

		/* Written so that nothing overflows: a wrapped end would loop for ever. */
		while (a >= m->mem[r].base && a <= end && size <= end - a) {
			unsigned i;

			for (i = 0; i < nex; i++)
				if (overlaps(a, size, ex[i].base, ex[i].size))
					break;
			if (i == nex) {
				*where = a;
				return true;
			}
			/* Skip past the region in the way (it ends above a, since it overlaps). */
			a = page_after(&ex[i]);
			if (!a)
				break;
		}
	}
	return false;
}

/*
 * Where the usable run starting at pa ends (exclusive), or, if pa itself is
 * excluded, 0 with *skip_to set past the region in the way (0 if that runs to
 * the top of the address space).
 */
static paddr_t run_end(paddr_t pa, paddr_t end, const struct region *ex, unsigned nex, paddr_t *skip_to)
{
	for (unsigned i = 0; i < nex; i++) {
		if (overlaps(pa, PAGE_SIZE, ex[i].base, ex[i].size)) {
			*skip_to = page_after(&ex[i]);
			return 0;
		}
		if (ex[i].base > pa && ex[i].base < end)
			end = ALIGN_DOWN(ex[i].base, PAGE_SIZE);
	}
	return end;
}

u32 pool_init(struct pool *p, const struct machine *m, const struct region *ex, unsigned nex,
	      void *desc)
{
	pidx_t n = 0;

	memset(p, 0, sizeof(*p));
	p->desc = desc;
	lfstack_init(&p->free);
	lfstack_init(&p->zeroed);
	for (unsigned r = 0; r < m->nmem; r++) {
		paddr_t pa = ALIGN_UP(m->mem[r].base, PAGE_SIZE);
		paddr_t end = ALIGN_DOWN(end_of(m->mem[r].base, m->mem[r].size), PAGE_SIZE);

		/* Page numbers are 32 bits: RAM from 16 TiB up stays unmanaged. */
		end = MIN(end, (paddr_t)1 << (32 + PAGE_SHIFT));
		while (pa < end) {
			paddr_t skip = end, stop = run_end(pa, end, ex, nex, &skip);
			struct pool_range *cur;

			/*
			 * Never a page twice, even from banks that overlap
			 * (machine_from_fdt merges them): two descriptors would
			 * give it two owners. So earlier banks are excluded too.
			 */
			if (stop)
				stop = run_end(pa, stop, m->mem, r, &skip);

			if (!stop) {
				if (skip <= pa)
					break; /* excluded to the top of the address space */
				pa = skip;
				continue;
			}
			if (p->nranges == ARRAY_SIZE(p->range))
				break; /* too fragmented: leave the rest unmanaged */
			cur = &p->range[p->nranges++];
			cur->first = pa >> PAGE_SHIFT;
			cur->count = (stop - pa) >> PAGE_SHIFT;
			cur->base = n;
			/* Chained in address order, so low pages are handed out first. */
			for (; pa < stop; pa += PAGE_SIZE, n++)
				p->desc[n] = (struct mpage){ .mpn = pa >> PAGE_SHIFT, .next = n + 1, .flags = MP_IDLE };
		}
	}
	p->ndesc = n;
	p->prezero_cap = n / PREZERO_CAP_DIV;
	p->prezero_on = true;
	if (n) {
		atomic_store_explicit(&p->desc[n - 1].next, PIDX_NONE, memory_order_relaxed);
		lfstack_push_chain(&p->free, p->desc, 0, n - 1, n);
	}
	return n;
}

pidx_t pool_pidx_of(const struct pool *p, paddr_t pa)
{
	mpn_t mpn = pa >> PAGE_SHIFT;

	if (pa >> (32 + PAGE_SHIFT))
		return PIDX_NONE;
	for (unsigned r = 0; r < p->nranges; r++)
		if (mpn >= p->range[r].first && mpn - p->range[r].first < p->range[r].count)
			return p->range[r].base + (mpn - p->range[r].first);
	return PIDX_NONE;
}

static bool cache_get(struct pcpu_cache *c)
{
	return !atomic_exchange_explicit(&c->busy, 1, memory_order_acquire);
}

static void cache_put(struct pcpu_cache *c)
{
	atomic_store_explicit(&c->busy, 0, memory_order_release);
}

static u32 cache_n(const struct pcpu_cache *c)
{
	return atomic_load_explicit(&c->n, memory_order_relaxed);
}

static void set_n(struct pcpu_cache *c, u32 n)
{
	atomic_store_explicit(&c->n, n, memory_order_relaxed);
}

/* Push the top n cached pages to the shared stack as one chain. */
static void spill(struct pool *p, struct pcpu_cache *c, u32 n)
{
	u32 have = cache_n(c);
	pidx_t first = c->slot[have - n], last = c->slot[have - 1];

	for (u32 k = have - n; k + 1 < have; k++)
		atomic_store_explicit(&p->desc[c->slot[k]].next, c->slot[k + 1], memory_order_relaxed);
	lfstack_push_chain(&p->free, p->desc, first, last, n);
	set_n(c, have - n);
}

/* From the cache, refilling it from the shared stack when empty. Cache held. */
static pidx_t cache_take(struct pool *p, struct pcpu_cache *c)
{
	u32 n = cache_n(c);

	if (!n) {
		pidx_t i;

		n = lfstack_pop_chain(&p->free, p->desc, p->ndesc, PCPU_CACHE_BATCH, &i);
		for (u32 k = 0; k < n; k++) {
			c->slot[k] = i;
			i = atomic_load_explicit(&p->desc[i].next, memory_order_relaxed);
		}
	}
	if (!n)
		return PIDX_NONE;
	set_n(c, n - 1);
	return c->slot[n - 1];
}

/* The shared stack is empty: take a page another CPU has cached. */
static pidx_t steal(struct pool *p, unsigned cpu)
{
	for (unsigned k = 0; k < MAX_CPUS; k++) {
		struct pcpu_cache *c = &p->cache[k];
		pidx_t i = PIDX_NONE;

		if (k == cpu || !cache_n(c) || !cache_get(c))
			continue;
		if (cache_n(c)) {
			i = c->slot[cache_n(c) - 1];
			set_n(c, cache_n(c) - 1);
		}
		cache_put(c);
		if (i != PIDX_NONE)
			return i;
	}
	return PIDX_NONE;
}

/* The page is ours alone now: no RMW atomic needed to drop MP_IDLE. */
static void taken(struct pool *p, pidx_t i)
{
	struct mpage *d = &p->desc[i];

	atomic_store_explicit(&d->flags, atomic_load_explicit(&d->flags, memory_order_relaxed) & ~MP_IDLE,
			      memory_order_relaxed);
}

/* Bump a counter only this CPU writes: a load and a store, no RMW. */
static void count(_Atomic u64 *n)
{
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
}

pidx_t pool_pop_zeroed(struct pool *p, unsigned cpu)
{
	pidx_t i = lfstack_pop(&p->zeroed, p->desc);

	if (i != PIDX_NONE) {
		taken(p, i);
		count(&p->cache[cpu].took_prezeroed);
	}
	return i;
}

/* A dirty page: this CPU's cache (refilled from the shared stack), the shared stack, another CPU's cache. Inlined: a call more cost the fill 8 instructions. */
static inline __attribute__((always_inline)) pidx_t alloc_dirty(struct pool *p, unsigned cpu)
{
	struct pcpu_cache *c = &p->cache[cpu];
	pidx_t i = PIDX_NONE;

	if (cache_get(c)) {
		i = cache_take(p, c);
		cache_put(c);
	}
	if (i == PIDX_NONE)
		i = lfstack_pop(&p->free, p->desc);
	if (i == PIDX_NONE)
		i = steal(p, cpu);
	return i;
}

static inline __attribute__((always_inline)) pidx_t alloc(struct pool *p, unsigned cpu, bool to_zero)
{
	pidx_t i = alloc_dirty(p, cpu);

	if (i != PIDX_NONE) {
		if (to_zero)
			count(&p->cache[cpu].zeroed_on_take);
	} else {
		/* Zeroed pages last: whoever wants one asked pool_alloc_zeroed first. */
		i = lfstack_pop(&p->zeroed, p->desc);
		if (i != PIDX_NONE && to_zero)
			count(&p->cache[cpu].took_prezeroed);
	}
	if (i != PIDX_NONE)
		taken(p, i);
	return i;
}

pidx_t pool_alloc(struct pool *p, unsigned cpu)
{
	return alloc(p, cpu, false);
}

pidx_t pool_alloc_to_zero(struct pool *p, unsigned cpu)
{
	return alloc(p, cpu, true);
}

bool pool_index_ok(const struct pool *p, pidx_t i, const char *what)
{
	if (i < p->ndesc)
		return true;
	printk("quire: pool: page index 0x%x %s is not the pool's (%u pages); ignored\n", i, what, p->ndesc);
	return false;
}

void pool_refuse(const struct pool *p, pidx_t i, const char *what, const char *why)
{
	const struct mpage *d = &p->desc[i];

	printk("quire: pool: page 0x%lx (index %u, flags 0x%x, owner %u) %s: %s; kept out of the pool\n",
	       (unsigned long)pool_pa(p, i), i, atomic_load_explicit(&d->flags, memory_order_relaxed), d->owner,
	       what, why);
}

/* Why a page with flags f may not be freed (as a table if 'table'), or NULL. */
static const char *bad_free(const struct mpage *d, u8 f, bool table)
{
	/* In the VMM pool a page is idle and Quire's; a VM's idle-set page (owner set) may go back. */
	if (f & MP_IDLE && !d->owner)
		return "already free";
	if (table && !(f & MP_PGTABLE))
		return "not a stage-2 table";
	if (!table && f & MP_PGTABLE)
		return "a stage-2 table";
	if (!table && f & MP_PINNED)
		return "pinned";
	return NULL;
}

static bool release(struct pool *p, unsigned cpu, pidx_t i, bool zeroed, bool table)
{
	struct pcpu_cache *c = &p->cache[cpu];
	struct mpage *d;
	const char *why;
	u8 f;

	if (i >= p->ndesc)
		return pool_index_ok(p, i, "freed"); /* says why: false */
	d = &p->desc[i];
	f = atomic_load_explicit(&d->flags, memory_order_relaxed);
	/* The reasons are looked for only when this one test fails: freeing is on every fault's path. */
	why = (f & (table ? MP_IDLE : MP_IDLE | MP_PGTABLE | MP_PINNED)) || (table && !(f & MP_PGTABLE)) ?
		bad_free(d, f, table) : NULL;
	if (!why) {
		d->owner = 0;
		d->gpn = 0;
		atomic_store_explicit(&d->refcount, 0, memory_order_relaxed);
		/*
		 * A CAS, not a store: a second free racing this one finds the flags
		 * changed, or, after it, an idle page that is Quire's (owner cleared first).
		 */
		if (!atomic_compare_exchange_strong_explicit(&d->flags, &f, MP_IDLE | (zeroed ? MP_ZEROED : 0),
							     memory_order_relaxed, memory_order_relaxed))
			why = "changed while being freed";
	}
	if (why) {
		pool_refuse(p, i, table ? "freed as a table" : "freed", why);
		return false;
	}
	/* Zeroed and cleaned: straight to the pre-zeroed stack, past the cap too (it cost nothing). */
	if (zeroed) {
		lfstack_push(&p->zeroed, p->desc, i);
		return true;
	}
	if (!cache_get(c)) {
		lfstack_push(&p->free, p->desc, i);
		return true;
	}
	if (cache_n(c) == PCPU_CACHE_MAX)
		spill(p, c, PCPU_CACHE_BATCH);
	c->slot[cache_n(c)] = i;
	set_n(c, cache_n(c) + 1);
	cache_put(c);
	return true;
}

bool pool_free(struct pool *p, unsigned cpu, pidx_t i, bool zeroed)
{
	return release(p, cpu, i, zeroed, false);
}

bool pool_free_table(struct pool *p, unsigned cpu, pidx_t i)
{
	return release(p, cpu, i, false, true);
}

void pool_drain_cache(struct pool *p, unsigned cpu)
{
	struct pcpu_cache *c = &p->cache[cpu];

	if (!cache_get(c))
		return;
	if (cache_n(c))
		spill(p, c, cache_n(c));
	cache_put(c);
}

/* Free pages not pre-zeroed, cached ones included. */
static u32 dirty_pages(const struct pool *p)
{
	u32 n = atomic_load_explicit(&p->free.count, memory_order_relaxed);

	for (unsigned c = 0; c < MAX_CPUS; c++)
		n += cache_n(&p->cache[c]);
	return n;
}

u32 pool_free_pages(const struct pool *p)
{
	return dirty_pages(p) + atomic_load_explicit(&p->zeroed.count, memory_order_relaxed);
}

/* ---- the idle zeroer ------------------------------------------------------ */

static bool prezero_wanted(const struct pool *p)
{
	return atomic_load_explicit(&p->zeroed.count, memory_order_relaxed) < p->prezero_cap && dirty_pages(p);
}

u64 pool_prezero(struct pool *p, unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void))
{
	struct pcpu_cache *c = &p->cache[cpu];

	if (!p->prezero_on)
		return ~0UL;
	if (now >= c->zero_refill) {
		c->zero_budget = PREZERO_SLICE_PAGES;
		c->zero_refill = now + slice_ticks;
	}
	/* One page at a time between looks at stop(): an interrupt waits at most one page_zero. */
	while (c->zero_budget && prezero_wanted(p) && !stop()) {
		/* The shared stack first: this CPU's cache is for its own faults. */
		pidx_t i = lfstack_pop(&p->free, p->desc);

		if (i == PIDX_NONE)
			i = alloc_dirty(p, cpu);
		if (i == PIDX_NONE)
			break;
		page_zero(pool_pa(p, i));
		/* Not on any stack meanwhile, so ours to store; the push's release publishes the zeroes. */
		atomic_store_explicit(&p->desc[i].flags, MP_IDLE | MP_ZEROED, memory_order_relaxed);
		lfstack_push(&p->zeroed, p->desc, i);
		c->zero_budget--;
		count(&c->zeroed_idle);
	}
	return prezero_wanted(p) ? c->zero_refill : ~0UL;
}

static struct pool *_Atomic idle_pool;

void pool_prezero_start(struct pool *p, bool on)
{
	p->prezero_on = on;
	/* Release: a CPU that sees the pool sees it whole. */
	atomic_store_explicit(&idle_pool, p, memory_order_release);
}

u64 pool_idle_zero(unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void))
{
	struct pool *p = atomic_load_explicit(&idle_pool, memory_order_acquire);

	return p ? pool_prezero(p, cpu, now, slice_ticks, stop) : ~0UL;
}

void pool_zero_stats(const struct pool *p, struct pool_zero_stats *st)
{
	*st = (struct pool_zero_stats){ .prezeroed = atomic_load_explicit(&p->zeroed.count, memory_order_relaxed),
					.cap = p->prezero_on ? p->prezero_cap : 0 };
	for (unsigned c = 0; c < MAX_CPUS; c++) {
		st->took_prezeroed += atomic_load_explicit(&p->cache[c].took_prezeroed, memory_order_relaxed);
		st->zeroed_on_take += atomic_load_explicit(&p->cache[c].zeroed_on_take, memory_order_relaxed);
		st->zeroed_idle += atomic_load_explicit(&p->cache[c].zeroed_idle, memory_order_relaxed);
	}
}
