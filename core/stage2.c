/*
 * The stage-2 walker and its concurrency protocol, the same on any
 * architecture; the descriptor format and the TLB and cache maintenance are
 * the arch's (arch/s2_desc.h), as small inline primitives.
 *
 * Tables come from the VM's own pool and count against its quota. Filling an
 * invalid entry needs no TLB maintenance (invalid entries are never cached),
 * so the fault path installs tables and leaves with a CAS and no lock; a
 * racing vCPU that loses gives its page back. Changing a valid leaf is
 * break-before-make: s2_claim() swaps it for S2E_BUSY (invalid, but not
 * empty, so a fault there retries instead of filling it) and invalidates the
 * TLBs; s2_install() makes the new one. Invalid leaves may hold a swap entry
 * (quire/s2_entry.h); nothing here takes one for a mapping.
 *
 * Executable leaves and the instruction caches: a leaf the fault path fills
 * for a data access is execute-never, and s2_grant_exec() allows execution
 * after the first fetch faults (core/violation.c invalidates the page's
 * instruction-cache lines first). s2_install() never makes a leaf
 * executable: it serves sharing and swap, whose pages get new contents (a
 * copy, a merge, a read from disk), so they too wait for their first fetch,
 * as KVM's do; a copy-on-write or swap-in of data pays no invalidation.
 *
 * 2 MiB blocks: s2_fill_block() maps a whole pool run with one level-2
 * block descriptor (the fault path's fill-ahead, core/violation.c), and
 * takes the level-3 table it will need to split into at the same time, so
 * a split never needs a page. Every change to one page of a block (a claim,
 * execute permission) splits it first, by break-before-make at level 2:
 * the block entry becomes S2E_BUSY, the TLBs forget it, the table gets 512
 * page leaves with the block's attributes, and the table entry is
 * published. A walker that meets S2E_BUSY above the last level waits for
 * the split (a few microseconds, never a fault or an I/O). Reads (s2_get,
 * the access flag) use the block as it is: it ages as one.
 */
#include <quire/errno.h>
#include <quire/fault.h>
#include <quire/s2_entry.h>
#include <quire/vm.h>
#include <arch/s2_desc.h>

#define ENTRIES (1u << S2_TABLE_BITS)
#define BLOCK_MASK (S2_BLOCK_SIZE - 1)

_Static_assert(PAGE_SHIFT + S2_TABLE_BITS * (S2_LAST_LEVEL - S2_BLOCK_LEVEL) == RUN_SHIFT,
	       "a stage-2 block maps one pool run");

static inline unsigned level_shift(unsigned level)
{
	return PAGE_SHIFT + S2_TABLE_BITS * (S2_LAST_LEVEL - level);
}

static inline _Atomic u64 *entry_at(paddr_t table, unsigned level, u64 ipa)
{
	return s2_table(table) + ((ipa >> level_shift(level)) & (ENTRIES - 1));
}

/* A zeroed page from the VM's pool, for a table. */
static int table_alloc(struct vm *vm, unsigned cpu, paddr_t *pa)
{
	int why = 0;
	pidx_t i = vmpool_take(&vm->pool, cpu, &why);

	if (i == PIDX_NONE)
		return why == 2 ? -ENOMEM : -EDQUOT;
	atomic_store_explicit(&pool_desc(vm->pool.vmm, i)->flags, MP_PGTABLE | MP_PINNED,
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
	*pa = pool_pa(vm->pool.vmm, i);
	return 0;
}

static void table_free(struct vm *vm, paddr_t pa, unsigned cpu)
{
	vmpool_give_back_table(&vm->pool, cpu, pool_pidx_of(vm->pool.vmm, pa));
	atomic_fetch_sub_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
}

bool s2_blocks_default = true;

int s2_init(struct vm *vm, unsigned cpu)
{
	vm->s2.vmid = vm->id;
	vm->s2.start_level = S2_START_LEVEL;
	atomic_store_explicit(&vm->s2.table_races, 0, memory_order_relaxed);
	vm->s2.blocks_on = s2_blocks_default;
	atomic_store_explicit(&vm->s2.blocks, 0, memory_order_relaxed);
	atomic_store_explicit(&vm->s2.block_fills, 0, memory_order_relaxed);
	atomic_store_explicit(&vm->s2.splits, 0, memory_order_relaxed);
	atomic_store_explicit(&vm->s2.seq_next, 0, memory_order_relaxed);
	return table_alloc(vm, cpu, &vm->s2.root);
}

/* An entry above the last level, once no split holds it (S2E_BUSY there: a block being split). */
static inline u64 settled(_Atomic u64 *e)
{
	u64 v;

	while ((v = atomic_load_explicit(e, memory_order_acquire)) == S2E_BUSY)
		;
	return v;
}

static inline bool is_block(u64 v, unsigned level)
{
	return level == S2_BLOCK_LEVEL && s2d_valid(v) && s2d_is_block(v);
}

/*
 * An entry on the way that is no table: wait out a split, install a table
 * if it is empty (a racing vCPU may install one first), and say -EAGAIN if
 * a block is there. Out of line: the walk's common case is one test.
 */
static __attribute__((noinline)) int make_table(struct vm *vm, _Atomic u64 *e, unsigned cpu, u64 *out)
{
	u64 v = settled(e);

	while (!s2d_valid(v)) {
		paddr_t t;
		int rc = table_alloc(vm, cpu, &t);

		if (rc)
			return rc;
		s2_before_publish(); /* the zeroed table, before the entry that points to it */
		u64 nv = s2d_table(t);
		if (atomic_compare_exchange_strong_explicit(e, &v, nv, memory_order_acq_rel, memory_order_acquire)) {
			v = nv;
		} else {
			/* Another vCPU installed one (or a block, perhaps being split); v is it. */
			table_free(vm, t, cpu);
			atomic_fetch_add_explicit(&vm->s2.table_races, 1, memory_order_relaxed);
			v = settled(e);
		}
	}
	if (!s2d_is_table(v))
		return -EAGAIN;
	*out = v;
	return 0;
}

/* The table at level 'to' for ipa, created on the way if need be; -EAGAIN if a block maps ipa. */
static int walk_create(struct vm *vm, u64 ipa, unsigned cpu, unsigned to, paddr_t *out)
{
	paddr_t table = vm->s2.root;

	for (unsigned level = S2_START_LEVEL; level < to; level++) {
		_Atomic u64 *e = entry_at(table, level, ipa);
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		if (!s2d_is_table(v)) {
			int rc = make_table(vm, e, cpu, &v);

			if (rc)
				return rc;
		}
		table = s2d_addr(v);
	}
	*out = table;
	return 0;
}

int s2_prepare(struct vm *vm, ipa_t ipa, unsigned cpu, struct s2_slot *slot)
{
	paddr_t last;
	int rc = walk_create(vm, ipa.bits, cpu, S2_LAST_LEVEL, &last);

	if (rc)
		return rc;
	slot->e = entry_at(last, S2_LAST_LEVEL, ipa.bits);
	/* Valid, busy being changed, or swapped: either way not ours to fill. */
	return atomic_load_explicit(slot->e, memory_order_relaxed) ? -EEXIST : 0;
}

int s2_fill(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	u64 expected = 0;

	(void)vm;
	s2_before_publish(); /* the page's contents (zeroes), before the mapping */
	if (!atomic_compare_exchange_strong_explicit(slot->e, &expected, s2d_leaf(pa, prot),
						     memory_order_release, memory_order_relaxed))
		return -EEXIST;
	s2_after_fill();
	return 0;
}

/*
 * The entry that maps ipa: a last-level one, or the block that maps it
 * (*block set); NULL if a table on the way is missing.
 */
static _Atomic u64 *leaf_entry(struct vm *vm, u64 ipa, bool *block)
{
	paddr_t table = vm->s2.root;

	*block = false;
	for (unsigned level = S2_START_LEVEL; level < S2_LAST_LEVEL; level++) {
		_Atomic u64 *e = entry_at(table, level, ipa);
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		/* A table, the common case, in one test; else empty, a block, or a split to wait out. */
		if (!s2d_is_table(v)) {
			v = settled(e);
			if (!s2d_valid(v))
				return NULL;
			if (!s2d_is_table(v)) {
				*block = true;
				return e;
			}
		}
		table = s2d_addr(v);
	}
	return entry_at(table, S2_LAST_LEVEL, ipa);
}

/* The leaf at ipa (0 if no table leads there), with the given order; a block's is the block's. */
static u64 leaf_at(struct vm *vm, u64 ipa, _Atomic u64 **e, memory_order mo, bool *block)
{
	*e = leaf_entry(vm, ipa, block);
	return *e ? atomic_load_explicit(*e, mo) : 0;
}

/* The machine page that leaf v maps at ipa: a block's page is ipa's offset into it. */
static inline paddr_t page_of(u64 v, bool block, u64 ipa)
{
	return s2d_addr(v) + (block ? ipa & BLOCK_MASK & ~(PAGE_SIZE - 1) : 0);
}

/*
 * Split the block at e (mapping ipa) into 512 pages by break-before-make.
 * Losing a race (the block changed or is being split) is fine: the caller
 * walks again.
 */
static void split(struct vm *vm, _Atomic u64 *e, u64 ipa)
{
	struct pool *p = vm->pool.vmm;
	u64 v = atomic_load_explicit(e, memory_order_acquire), td;
	_Atomic u64 *t;
	pidx_t first, ti;

	if (!s2d_valid(v) || !s2d_is_block(v) ||
	    !atomic_compare_exchange_strong_explicit(e, &v, S2E_BUSY, memory_order_acq_rel, memory_order_relaxed))
		return;
	/* Break: no walker sees the block any more, and then no TLB holds it (TLBI by IPA takes any size). */
	s2_tlbi_ipa(vm, ALIGN_DOWN(ipa, S2_BLOCK_SIZE));
	first = pool_pidx_of(p, s2d_addr(v));
	ti = atomic_exchange_explicit(&pool_desc(p, first)->next, PIDX_NONE, memory_order_relaxed);
	t = s2_table(pool_pa(p, ti));
	td = s2d_table(pool_pa(p, ti)); /* made while it is still the zeroed page it was taken as */
	for (unsigned k = 0; k < ENTRIES; k++)
		atomic_store_explicit(&t[k], s2d_block_page(v, k), memory_order_relaxed);
	s2_before_publish(); /* make: the table's leaves, before the entry that points to it */
	atomic_store_explicit(e, td, memory_order_release);
	s2_after_install();
	atomic_fetch_sub_explicit(&vm->s2.blocks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->s2.splits, 1, memory_order_relaxed);
}

/* The last-level entry for ipa, a block that maps it split first; NULL if nothing maps it. */
static _Atomic u64 *leaf_to_change(struct vm *vm, u64 ipa)
{
	_Atomic u64 *e;
	bool block;

	while ((e = leaf_entry(vm, ipa, &block)) && block)
		split(vm, e, ipa);
	return e;
}

paddr_t s2_lookup(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e;
	bool block;
	u64 v = leaf_at(vm, ipa.bits, &e, memory_order_acquire, &block);

	return s2d_valid(v) ? page_of(v, block, ipa.bits) : 0;
}

bool s2_get(struct vm *vm, ipa_t ipa, struct s2_leaf *out)
{
	_Atomic u64 *e;
	bool block;
	u64 v = leaf_at(vm, ipa.bits, &e, memory_order_acquire, &block);

	if (!s2d_valid(v))
		return false;
	out->pa = page_of(v, block, ipa.bits);
	out->prot = s2d_prot(v);
	return true;
}

bool s2_is_block(struct vm *vm, ipa_t ipa)
{
	bool block;
	_Atomic u64 *e = leaf_entry(vm, ipa.bits, &block);

	return e && block;
}

int s2_fill_block(struct vm *vm, ipa_t ipa, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;
	u64 base = ALIGN_DOWN(ipa.bits, S2_BLOCK_SIZE), expected = 0;
	_Atomic u64 *e;
	paddr_t l2, t;
	u32 zeroed;
	pidx_t r;
	int rc = walk_create(vm, base, cpu, S2_BLOCK_LEVEL, &l2);

	if (rc)
		return rc;
	e = entry_at(l2, S2_BLOCK_LEVEL, base);
	if (atomic_load_explicit(e, memory_order_relaxed))
		return -EEXIST; /* a table (pages mapped there), a block, or a split */
	r = vmpool_take_run(&vm->pool, cpu, &zeroed);
	if (r == PIDX_NONE)
		return -ENOMEM;
	/* The table a split will need, now: a split then never fails for want of a page. */
	rc = table_alloc(vm, cpu, &t);
	if (rc) {
		vmpool_give_back_run(&vm->pool, cpu, r);
		return rc;
	}
	for (u32 k = zeroed; k < RUN_PAGES; k++)
		page_zero(pool_pa(p, r + k));
	for (u32 k = 0; k < RUN_PAGES; k++) {
		struct mpage *d = pool_desc(p, r + k);

		d->gpn = (u32)(base >> PAGE_SHIFT) + k;
		atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
		atomic_store_explicit(&d->flags, MP_ACTIVE | MP_ZEROED, memory_order_relaxed);
	}
	atomic_store_explicit(&pool_desc(p, r)->next, pool_pidx_of(p, t), memory_order_relaxed);
	s2_before_publish(); /* the zeroes, before the block that maps them */
	if (!atomic_compare_exchange_strong_explicit(e, &expected, s2d_block(pool_pa(p, r), S2_R | S2_W),
						     memory_order_release, memory_order_relaxed)) {
		/* A vCPU filled a page there meanwhile: its table won. */
		atomic_store_explicit(&pool_desc(p, r)->next, PIDX_NONE, memory_order_relaxed);
		table_free(vm, t, cpu);
		vmpool_give_back_run(&vm->pool, cpu, r);
		return -EEXIST;
	}
	s2_after_fill();
	atomic_fetch_add_explicit(&vm->s2.blocks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->s2.block_fills, 1, memory_order_relaxed);
	return 0;
}

u64 s2_next_leaf(struct vm *vm, u64 from, u64 end)
{
	u64 ipa = ALIGN_DOWN(from, PAGE_SIZE);

	while (ipa < end) {
		paddr_t table = vm->s2.root;
		unsigned level;

		for (level = S2_START_LEVEL; level <= S2_LAST_LEVEL; level++) {
			u64 v = atomic_load_explicit(entry_at(table, level, ipa), memory_order_acquire);

			if (!s2d_valid(v)) {
				/* Nothing mapped below this entry (or a block being split): the next one at this level. */
				ipa = ALIGN_DOWN(ipa, 1UL << level_shift(level)) + (1UL << level_shift(level));
				break;
			}
			if (is_block(v, level))
				return ipa;
			table = s2d_addr(v);
		}
		if (level > S2_LAST_LEVEL)
			return ipa;
	}
	return end;
}

int s2_claim(struct vm *vm, ipa_t ipa, struct s2_slot *slot, struct s2_leaf *old)
{
	_Atomic u64 *e = leaf_to_change(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_acquire) : 0;

	if (!s2d_valid(v) || !atomic_compare_exchange_strong_explicit(e, &v, S2E_BUSY, memory_order_acq_rel,
								      memory_order_relaxed))
		return -ENOENT;
	/* Break: no walker sees the old leaf, and then no TLB holds it. */
	s2_tlbi_ipa(vm, ipa.bits);
	slot->e = e;
	old->pa = s2d_addr(v);
	old->prot = s2d_prot(v);
	return 0;
}

void s2_install(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	(void)vm;
	s2_before_publish(); /* make: the page's contents, before the leaf that maps them */
	/* Execute-never: the first fetch faults and invalidates the instruction caches (violation.c). */
	atomic_store_explicit(slot->e, s2d_leaf(pa, prot & ~S2_X), memory_order_release);
	s2_after_install();
}

void s2_clear(struct vm *vm, struct s2_slot *slot)
{
	(void)vm;
	/* Claimed, so broken already: no walker or TLB holds the page; an empty leaf needs no barrier before it. */
	atomic_store_explicit(slot->e, 0, memory_order_release);
}

int s2_take_swapped(struct vm *vm, ipa_t ipa, u64 *swap_slot)
{
	_Atomic u64 *e;
	bool block;
	u64 v = leaf_at(vm, ipa.bits, &e, memory_order_acquire, &block);

	/* On its way to or from the disk: once the disk is done. */
	if (s2e_transit(v))
		return -EAGAIN;
	/* Mapped after all (the claim lost a race with a change), or claimed: in a moment. */
	if (s2d_valid(v) || (v & S2E_BUSY))
		return -EBUSY;
	if (!s2e_swapped(v))
		return -ENOENT;
	/* Only the swapped entry it saw: a swap-in taking it meanwhile wins. */
	if (!atomic_compare_exchange_strong_explicit(e, &v, 0, memory_order_acq_rel, memory_order_relaxed))
		return -EBUSY;
	*swap_slot = s2e_slot(v);
	return 0;
}

bool s2_test_clear_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e;
	bool block;
	u64 v = leaf_at(vm, ipa.bits, &e, memory_order_relaxed, &block);

	/*
	 * No break-before-make: only the access flag and software bits change
	 * (a failed CAS means it changed: young). A page read ahead is spared once.
	 */
	if (!s2d_valid(v))
		return false;
	/* A block ages as one: its flag is cleared as the clock passes its first page only. */
	if (block && (ipa.bits & BLOCK_MASK) >= PAGE_SIZE)
		return s2d_young(v);
	if (s2d_young(v)) {
		atomic_compare_exchange_strong_explicit(e, &v, s2d_make_old(v), memory_order_relaxed,
							memory_order_relaxed);
		return true;
	}
	if (!s2d_ahead(v) || s2d_seen(v))
		return false;
	atomic_compare_exchange_strong_explicit(e, &v, s2d_mark_seen(v), memory_order_relaxed, memory_order_relaxed);
	return true;
}

int s2_set_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e;
	bool block;
	u64 v = leaf_at(vm, ipa.bits, &e, memory_order_relaxed, &block);

	while (s2d_valid(v))
		if (atomic_compare_exchange_weak_explicit(e, &v, s2d_make_young(v), memory_order_release,
							  memory_order_relaxed))
			return s2d_ahead(v) ? 2 : 1;
	return 0;
}

void s2_flush_young(struct vm *vm)
{
	s2_tlbi_vm(vm);
}

int s2_grant_exec(struct vm *vm, ipa_t ipa, paddr_t pa)
{
	/* A block is split: its other pages' instruction caches were never synced. */
	_Atomic u64 *e = leaf_to_change(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_relaxed) : 0;
	int rc = -ENOENT;

	/*
	 * Only the execute permission changes (no break-before-make). The
	 * I-cache invalidation the caller did completed before this release
	 * store. Other CPUs that cached the execute-never entry fault, find it
	 * executable and drop their entry the same way.
	 */
	while (s2d_valid(v) && s2d_addr(v) == pa && !s2d_device(v)) {
		if (s2d_exec(v)) {
			rc = 0;
			break;
		}
		if (atomic_compare_exchange_weak_explicit(e, &v, s2d_grant_exec(v), memory_order_release,
							  memory_order_relaxed)) {
			rc = 1;
			break;
		}
	}
	if (rc >= 0)
		s2_tlbi_ipa_local(vm, ipa.bits); /* this CPU's stale execute-never entry */
	return rc;
}

/* Clean and invalidate every Normal page mapped below table to the point of coherency. */
static u64 flush_level(paddr_t table, unsigned level)
{
	u64 pages = 0;

	for (unsigned i = 0; i < ENTRIES; i++) {
		u64 v = atomic_load_explicit(s2_table(table) + i, memory_order_acquire);

		if (!s2d_valid(v))
			continue;
		if (is_block(v, level)) {
			for (unsigned k = 0; k < ENTRIES; k++)
				s2_dcache_clean_page(s2d_addr(v) + ((paddr_t)k << PAGE_SHIFT));
			pages += ENTRIES;
		} else if (level < S2_LAST_LEVEL) {
			pages += flush_level(s2d_addr(v), level + 1);
		} else if (!s2d_device(v)) {
			s2_dcache_clean_page(s2d_addr(v));
			pages++;
		}
	}
	return pages;
}

u64 s2_flush_dcache(struct vm *vm)
{
	/*
	 * Runs in a trap of one of the VM's vCPUs, so its tables stay (they are
	 * freed only when every vCPU is gone). A page that leaves the VM while
	 * it is walked is cleaned and invalidated anyway: harmless to its next
	 * owner, as both keep the data.
	 */
	u64 pages = flush_level(vm->s2.root, S2_START_LEVEL);

	s2_dcache_done();
	return pages;
}

struct destroy_fns {
	void (*page)(struct vm *, ipa_t, paddr_t, unsigned);
	void (*swapped)(struct vm *, u64, unsigned);
	bool (*block)(struct vm *, ipa_t, pidx_t, unsigned);
};

/* Each of the 512 pages at pa (a run) to fn->page. */
static void destroy_pages(struct vm *vm, u64 ipa, paddr_t pa, const struct destroy_fns *fn, unsigned cpu)
{
	for (unsigned k = 0; k < ENTRIES; k++)
		fn->page(vm, IPA(ipa + ((u64)k << PAGE_SHIFT)), pa + ((paddr_t)k << PAGE_SHIFT), cpu);
}

/* An unsplit block: its spare table goes back here, its run through the callback (else page by page). */
static void destroy_block(struct vm *vm, u64 ipa, u64 v, const struct destroy_fns *fn, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;
	pidx_t first = pool_pidx_of(p, s2d_addr(v));
	pidx_t ti = atomic_exchange_explicit(&pool_desc(p, first)->next, PIDX_NONE, memory_order_relaxed);

	table_free(vm, pool_pa(p, ti), cpu);
	atomic_fetch_sub_explicit(&vm->s2.blocks, 1, memory_order_relaxed);
	if (!fn->block || !fn->block(vm, IPA(ipa), first, cpu))
		destroy_pages(vm, ipa, s2d_addr(v), fn, cpu);
}

/*
 * A last-level table whose 512 leaves still map one pool run in order (a
 * split block whose pages all stayed): the run's first page, else PIDX_NONE.
 * Such a run goes back whole, so splits do not use runs up for good.
 */
static pidx_t run_shaped(struct vm *vm, paddr_t table)
{
	_Atomic u64 *t = s2_table(table);
	u64 v0 = atomic_load_explicit(&t[0], memory_order_relaxed);
	paddr_t pa = s2d_addr(v0);

	if (!s2d_valid(v0) || s2d_device(v0) || pa & BLOCK_MASK)
		return PIDX_NONE;
	for (unsigned k = 1; k < ENTRIES; k++) {
		u64 v = atomic_load_explicit(&t[k], memory_order_relaxed);

		if (!s2d_valid(v) || s2d_addr(v) != pa + ((paddr_t)k << PAGE_SHIFT))
			return PIDX_NONE;
	}
	return pool_pidx_of(vm->pool.vmm, pa);
}

static void destroy_level(struct vm *vm, paddr_t table, unsigned level, u64 base,
			  const struct destroy_fns *fn, unsigned cpu)
{
	for (u64 i = 0; i < ENTRIES; i++) {
		_Atomic u64 *e = s2_table(table) + i;
		u64 v = atomic_load_explicit(e, memory_order_relaxed);
		u64 ipa = base + (i << level_shift(level));
		pidx_t run;

		if (level == S2_LAST_LEVEL && s2e_swapped(v) && fn->swapped)
			fn->swapped(vm, s2e_slot(v), cpu);
		if (!s2d_valid(v))
			continue;
		atomic_store_explicit(e, 0, memory_order_relaxed);
		if (level == S2_LAST_LEVEL) {
			fn->page(vm, IPA(ipa), s2d_addr(v), cpu);
		} else if (is_block(v, level)) {
			destroy_block(vm, ipa, v, fn, cpu);
		} else if (level == S2_BLOCK_LEVEL && fn->block && (run = run_shaped(vm, s2d_addr(v))) != PIDX_NONE &&
			   fn->block(vm, IPA(ipa), run, cpu)) {
			table_free(vm, s2d_addr(v), cpu);
		} else {
			destroy_level(vm, s2d_addr(v), level + 1, ipa, fn, cpu);
		}
	}
	table_free(vm, table, cpu);
}

void s2_destroy(struct vm *vm, void (*fn)(struct vm *, ipa_t, paddr_t, unsigned),
		void (*swapped)(struct vm *, u64, unsigned), bool (*block)(struct vm *, ipa_t, pidx_t, unsigned),
		unsigned cpu)
{
	struct destroy_fns fns = { fn, swapped, block };

	/*
	 * The TLBs forget the VM before any of its pages or tables goes back to
	 * the pool: a page freed while a TLB still mapped it could be read or
	 * written through that entry by its next owner's time. Nothing fills
	 * the TLBs for this VMID again: none of its vCPUs runs any more (every
	 * CPU that ran one left with stage 2 off), so no stage-2 walk of these
	 * tables happens between this flush and the frees below.
	 */
	s2_tlbi_vm(vm);
	destroy_level(vm, vm->s2.root, S2_START_LEVEL, 0, &fns, cpu);
	vm->s2.root = 0;
}
