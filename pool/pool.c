/*
 * The VMM's pool: every free machine page, as descriptors on a lock-free
 * stack, with a small cache per physical CPU in front so the fault path
 * usually touches only CPU-local memory. A cache refills and spills in
 * batches, one CAS per spilled batch.
 */
#include <stddef.h>
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

/*
 * A free page's descriptor, { mpn, gpn 0, next PIDX_NONE, refcount 0,
 * MP_IDLE, owner 0 }, as two 8-byte stores (the array is page-aligned and
 * a descriptor 16 bytes; nothing else sees it yet). Field by field, with
 * the atomics and -mstrict-align, it was 13 instructions a page: 3.4 M at
 * every boot of a 1 GiB board.
 */
typedef u64 __attribute__((may_alias, aligned(8))) u64_alias;
_Static_assert(offsetof(struct mpage, gpn) == 4 && offsetof(struct mpage, next) == 8 &&
		       offsetof(struct mpage, refcount) == 12 && offsetof(struct mpage, flags) == 14 &&
		       offsetof(struct mpage, owner) == 15 && sizeof(struct mpage) == 16,
	       "desc_init's two words");

static inline void desc_init(struct mpage *d, mpn_t mpn)
{
	u64_alias *w = (u64_alias *)(void *)d;

	w[0] = mpn;					      /* mpn, gpn 0 */
	w[1] = PIDX_NONE | (u64)MP_IDLE << 48; /* next, refcount 0, flags, owner 0 (little-endian) */
}

/* A chain being built in address order (first..last linked through next), n nodes. */
struct chain {
	pidx_t first, last;
	u32 n;
};

static void chain_add(struct pool *p, struct chain *c, pidx_t i)
{
	if (c->n++)
		atomic_store_explicit(&p->desc[c->last].next, i, memory_order_relaxed);
	else
		c->first = i;
	c->last = i;
}

/*
 * Every 2 MiB-aligned run inside a range onto the runs stack, every other
 * page onto the free stack: both in address order, so low pages and runs
 * are handed out first.
 */
static void chain_free(struct pool *p)
{
	struct chain pages = { 0 }, runs = { 0 };

	for (unsigned r = 0; r < p->nranges; r++) {
		const struct pool_range *g = &p->range[r];

		for (u32 k = 0; k < g->count;) {
			mpn_t mpn = g->first + k;

			if (!(mpn & (RUN_PAGES - 1)) && g->count - k >= RUN_PAGES) {
				chain_add(p, &runs, g->base + k);
				k += RUN_PAGES;
			} else {
				chain_add(p, &pages, g->base + k);
				k++;
			}
		}
	}
	if (pages.n)
		lfstack_push_chain(&p->free, p->desc, pages.first, pages.last, pages.n);
	if (runs.n)
		lfstack_push_chain(&p->runs, p->desc, runs.first, runs.last, runs.n);
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
			/* desc, not p->desc: the may_alias stores would make it reload p->desc each time. */
			for (; pa < stop; pa += PAGE_SIZE, n++)
				desc_init((struct mpage *)desc + n, pa >> PAGE_SHIFT);
		}
	}
	p->ndesc = n;
	p->prezero_cap = n / PREZERO_CAP_DIV;
	p->prezero_on = true;
	lfstack_init(&p->runs);
	lfstack_init(&p->zruns);
	chain_free(p);
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

/* Add to a counter only this CPU writes: a load and a store, no RMW. */
static void count_n(_Atomic u64 *n, u64 k)
{
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + k, memory_order_relaxed);
}

static void count(_Atomic u64 *n)
{
	count_n(n, 1);
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

/*
 * No single free page is left: break a run from s into pages, one to the
 * caller and the rest onto 'to' (zeroed ones flagged so). Out of line: rare.
 */
static __attribute__((noinline)) pidx_t break_run(struct pool *p, struct lfstack *s, struct lfstack *to)
{
	pidx_t r = lfstack_pop(s, p->desc);
	u8 f = s == &p->zruns ? MP_IDLE | MP_ZEROED : MP_IDLE;

	if (r == PIDX_NONE)
		return PIDX_NONE;
	atomic_fetch_add_explicit(&p->runs_out, 1, memory_order_relaxed); /* still free: counted meanwhile */
	p->desc[r].gpn = 0; /* a dirty run's zeroing progress: its pages go as dirty ones */
	for (u32 k = 1; k < RUN_PAGES; k++) {
		atomic_store_explicit(&p->desc[r + k].flags, f, memory_order_relaxed);
		atomic_store_explicit(&p->desc[r + k].next, k + 1 < RUN_PAGES ? r + k + 1 : PIDX_NONE,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&p->desc[r].flags, f, memory_order_relaxed);
	lfstack_push_chain(to, p->desc, r + 1, r + RUN_PAGES - 1, RUN_PAGES - 1);
	atomic_fetch_sub_explicit(&p->runs_out, 1, memory_order_relaxed);
	return r;
}

/*
 * A dirty page: this CPU's cache (refilled from the shared stack), the
 * shared stack, another CPU's cache, then (if 'runs') a broken dirty run.
 * Inlined: a call more cost the fill 8 instructions.
 */
static inline __attribute__((always_inline)) pidx_t alloc_dirty(struct pool *p, unsigned cpu, bool runs)
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
	if (i == PIDX_NONE && runs)
		i = break_run(p, &p->runs, &p->free);
	return i;
}

static inline __attribute__((always_inline)) pidx_t alloc(struct pool *p, unsigned cpu, bool to_zero)
{
	pidx_t i = alloc_dirty(p, cpu, true);

	if (i != PIDX_NONE) {
		if (to_zero)
			count(&p->cache[cpu].zeroed_on_take);
	} else {
		/* Zeroed pages last: whoever wants one asked pool_alloc_zeroed first. */
		i = lfstack_pop(&p->zeroed, p->desc);
		if (i == PIDX_NONE)
			i = break_run(p, &p->zruns, &p->zeroed);
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

u32 pool_free_runs(const struct pool *p)
{
	return atomic_load_explicit(&p->runs.count, memory_order_relaxed) +
	       atomic_load_explicit(&p->zruns.count, memory_order_relaxed) +
	       atomic_load_explicit(&p->runs_out, memory_order_relaxed);
}

u32 pool_free_pages(const struct pool *p)
{
	return dirty_pages(p) + atomic_load_explicit(&p->zeroed.count, memory_order_relaxed) +
	       pool_free_runs(p) * RUN_PAGES;
}

/* ---- runs, for stage-2 blocks -------------------------------------------- */

pidx_t pool_alloc_run(struct pool *p, unsigned cpu, u32 *zeroed)
{
	struct pcpu_cache *c = &p->cache[cpu];
	pidx_t r = lfstack_pop(&p->zruns, p->desc);

	if (r != PIDX_NONE) {
		*zeroed = RUN_PAGES;
	} else {
		r = lfstack_pop(&p->runs, p->desc);
		if (r == PIDX_NONE)
			return PIDX_NONE;
		/* The idle zeroer's progress on it: those pages are zero and cleaned. */
		*zeroed = p->desc[r].gpn;
		p->desc[r].gpn = 0;
	}
	count_n(&c->took_prezeroed, *zeroed);
	count_n(&c->zeroed_on_take, RUN_PAGES - *zeroed);
	return r;
}

u32 pool_free_run(struct pool *p, unsigned cpu, pidx_t first)
{
	u32 k, freed = 0;

	if (first >= p->ndesc || p->ndesc - first < RUN_PAGES || p->desc[first].mpn & (RUN_PAGES - 1) ||
	    p->desc[first + RUN_PAGES - 1].mpn != p->desc[first].mpn + RUN_PAGES - 1) {
		if (pool_index_ok(p, first, "freed as a run"))
			pool_refuse(p, first, "freed as a run", "not the first page of a 2 MiB run");
		return 0;
	}
	for (k = 0; k < RUN_PAGES; k++) {
		const struct mpage *d = &p->desc[first + k];
		u8 f = atomic_load_explicit(&d->flags, memory_order_relaxed);

		if (f & (MP_IDLE | MP_PGTABLE | MP_PINNED | MP_SHARED))
			break;
	}
	/* One page that may not go (logged by pool_free): the others one by one. */
	if (k < RUN_PAGES) {
		for (k = 0; k < RUN_PAGES; k++)
			freed += pool_free(p, cpu, first + k, false);
		return freed;
	}
	for (k = 0; k < RUN_PAGES; k++) {
		struct mpage *d = &p->desc[first + k];

		d->owner = 0;
		d->gpn = 0;
		atomic_store_explicit(&d->refcount, 0, memory_order_relaxed);
		atomic_store_explicit(&d->flags, MP_IDLE, memory_order_relaxed);
	}
	lfstack_push(&p->runs, p->desc, first);
	return RUN_PAGES;
}

/* ---- the idle zeroer ------------------------------------------------------ */

static bool prezero_wanted(const struct pool *p)
{
	return atomic_load_explicit(&p->zeroed.count, memory_order_relaxed) < p->prezero_cap &&
	       (dirty_pages(p) || atomic_load_explicit(&p->runs.count, memory_order_relaxed));
}

/* Pre-zeroed runs: up to prezero_cap pages of them too, beside the single pages. */
static bool runs_wanted(const struct pool *p)
{
	return atomic_load_explicit(&p->zruns.count, memory_order_relaxed) * RUN_PAGES + RUN_PAGES <=
		       p->prezero_cap &&
	       atomic_load_explicit(&p->runs.count, memory_order_relaxed);
}

/*
 * Zero pages of a dirty run, within this CPU's budget, from where the last
 * zeroer stopped (the first page's gpn). A run done goes on the pre-zeroed
 * runs stack; one not done goes back on the dirty one with its progress, so
 * no run is ever held between calls (a fault may need it).
 */
static void prezero_run(struct pool *p, struct pcpu_cache *c, bool (*stop)(void))
{
	pidx_t r = lfstack_pop(&p->runs, p->desc);
	u32 k;

	if (r == PIDX_NONE)
		return;
	atomic_fetch_add_explicit(&p->runs_out, 1, memory_order_relaxed); /* still free: counted meanwhile */
	for (k = p->desc[r].gpn; k < RUN_PAGES && c->zero_budget && !stop(); k++, c->zero_budget--) {
		page_zero(pool_pa(p, r + k));
		count(&c->zeroed_idle);
	}
	p->desc[r].gpn = k < RUN_PAGES ? k : 0;
	/* The push's release publishes the zeroes with the run. */
	lfstack_push(k < RUN_PAGES ? &p->runs : &p->zruns, p->desc, r);
	atomic_fetch_sub_explicit(&p->runs_out, 1, memory_order_relaxed);
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

		/*
		 * Then this CPU's cache, then a dirty run broken, as a fault would
		 * (single pages are what most faults want): at most the cap's
		 * worth of runs, 1/16 of the pool, goes this way.
		 */
		if (i == PIDX_NONE)
			i = alloc_dirty(p, cpu, true);
		if (i == PIDX_NONE)
			break;
		page_zero(pool_pa(p, i));
		/* Not on any stack meanwhile, so ours to store; the push's release publishes the zeroes. */
		atomic_store_explicit(&p->desc[i].flags, MP_IDLE | MP_ZEROED, memory_order_relaxed);
		lfstack_push(&p->zeroed, p->desc, i);
		c->zero_budget--;
		count(&c->zeroed_idle);
	}
	/* Then runs, for blocks. */
	while (c->zero_budget && !prezero_wanted(p) && runs_wanted(p) && !stop())
		prezero_run(p, c, stop);
	return prezero_wanted(p) || runs_wanted(p) ? c->zero_refill : ~0UL;
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
					.runs = pool_free_runs(p),
					.zeroed_runs = atomic_load_explicit(&p->zruns.count, memory_order_relaxed),
					.cap = p->prezero_on ? p->prezero_cap : 0 };
	for (unsigned c = 0; c < MAX_CPUS; c++) {
		st->took_prezeroed += atomic_load_explicit(&p->cache[c].took_prezeroed, memory_order_relaxed);
		st->zeroed_on_take += atomic_load_explicit(&p->cache[c].zeroed_on_take, memory_order_relaxed);
		st->zeroed_idle += atomic_load_explicit(&p->cache[c].zeroed_idle, memory_order_relaxed);
	}
}
