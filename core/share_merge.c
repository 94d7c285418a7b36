/*
 * Merging: the scanner's work on one page, under the share lock (see
 * share.c for what the lock guards and how a leaf is claimed).
 */
#include <string.h>
#include <quire/console.h>
#include "share_priv.h"

static bool same(paddr_t a, paddr_t b)
{
	return page_same(a, b);
}

static bool is_zero(paddr_t a)
{
	return page_same(a, sh.zero_pa);
}

/* Claim vm's leaf at ipa if it still maps pa writable; its contents are then fixed and in memory. */
static bool claim_private(struct vm *vm, ipa_t ipa, paddr_t pa, struct s2_slot *slot)
{
	struct s2_leaf old;

	if (s2_claim(vm, ipa, slot, &old))
		return false;
	if (old.pa != pa || !(old.prot & S2_W)) {
		s2_install(vm, slot, old.pa, old.prot);
		return false;
	}
	page_sync_for_quire(pa);
	return true;
}

static void unclaim(struct vm *vm, struct s2_slot *slot, paddr_t pa)
{
	s2_install(vm, slot, pa, S2_RWX);
}

/* vm's page i (at ipa) now maps shared page s (already in its rmap). */
static void merged_into(struct vm *vm, struct s2_slot *slot, pidx_t i, paddr_t to, unsigned cpu, bool zero)
{
	s2_install(vm, slot, to, S2_R | S2_X);
	/*
	 * Never as zeroed, even a page merged into the zero page: it is zero in
	 * memory, but is_zero() read it back into the caches after the clean,
	 * and the pre-zeroed stack takes only what page_zero() left.
	 */
	share_drop_private(vm, i, cpu, false);
	atomic_fetch_add_explicit(zero ? &vm->pool.zero : &vm->pool.shared, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->share.merged, 1, memory_order_relaxed);
}

static bool merge_zero(struct vm *vm, ipa_t ipa, pidx_t i, unsigned cpu)
{
	paddr_t pa = pool_pa(sh.pool, i);
	struct s2_slot slot;

	if (sh.zero_pidx == PIDX_NONE || !claim_private(vm, ipa, pa, &slot))
		return false;
	if (!is_zero(pa)) {
		unclaim(vm, &slot, pa);
		return false;
	}
	merged_into(vm, &slot, i, sh.zero_pa, cpu, true);
	return true;
}

static bool rmap_room(unsigned n)
{
	if (sh.rmap_used + n <= sh.rmap_limit)
		return true;
	if (!sh.rmap_full_logged) {
		sh.rmap_full_logged = true;
		printk("quire: sharing: the reverse map is full (%u entries); merging pauses until "
		       "shared pages are freed\n", sh.rmap_limit);
	}
	return false;
}

/* Into a shared page with the same key and contents. */
static bool merge_stable(struct vm *vm, ipa_t ipa, pidx_t i, u64 key, unsigned cpu)
{
	paddr_t pa = pool_pa(sh.pool, i);

	for (pidx_t s = sh.bucket[key & sh.bucket_mask]; s != PIDX_NONE; s = sh.meta[s].hnext) {
		struct mpage *d = pool_desc(sh.pool, s);
		struct s2_slot slot;

		if (sh.meta[s].key != key || !(share_flags(s) & MP_SHARED) || d->owner != vm->share.group ||
		    atomic_load_explicit(&d->refcount, memory_order_relaxed) >= SHARE_MAX_REFS ||
		    !same(pa, pool_pa(sh.pool, s)))
			continue;
		/* Equal at a glance: now hold the page still and compare for real. */
		if (!rmap_room(1) || !claim_private(vm, ipa, pa, &slot))
			return false;
		if (!same(pa, pool_pa(sh.pool, s))) {
			unclaim(vm, &slot, pa);
			return false;
		}
		share_rmap_add(s, vm, ipa.bits >> PAGE_SHIFT);
		atomic_fetch_add_explicit(&d->refcount, 1, memory_order_relaxed);
		merged_into(vm, &slot, i, pool_pa(sh.pool, s), cpu, false);
		return true;
	}
	return false;
}

/* With a candidate of the same key and contents: it becomes a shared page. */
static bool merge_unstable(struct vm *vm, ipa_t ipa, pidx_t i, u64 key, unsigned cpu)
{
	paddr_t pa = pool_pa(sh.pool, i);

	for (pidx_t u = sh.bucket[key & sh.bucket_mask]; u != PIDX_NONE; u = sh.meta[u].hnext) {
		struct mpage *d = pool_desc(sh.pool, u);
		struct vm *owner = vm_get(d->owner);
		paddr_t upa = pool_pa(sh.pool, u);
		ipa_t uipa = IPA((u64)d->gpn << PAGE_SHIFT);
		struct s2_slot uslot, slot;

		if (u == i || sh.meta[u].key != key || !(share_flags(u) & MP_UNSTABLE) || !owner || !owner->share.live ||
		    owner->share.group != vm->share.group || !same(pa, upa))
			continue;
		if (!rmap_room(2))
			return false;
		if (!claim_private(owner, uipa, upa, &uslot))
			continue;
		if (!claim_private(vm, ipa, pa, &slot)) {
			unclaim(owner, &uslot, upa);
			return false;
		}
		if (!same(pa, upa)) {
			unclaim(vm, &slot, pa);
			unclaim(owner, &uslot, upa);
			return false;
		}
		/* u leaves its owner for the group: uncharged, in the table as shared, mapped read-only. */
		share_table_remove(u);
		share_rmap_add(u, owner, uipa.bits >> PAGE_SHIFT);
		share_rmap_add(u, vm, ipa.bits >> PAGE_SHIFT);
		d->owner = vm->share.group;
		atomic_store_explicit(&d->refcount, 2, memory_order_relaxed);
		share_set_flags(u, MP_ACTIVE | MP_SHARED);
		share_table_insert(u, key);
		atomic_fetch_add(&sh.shared_pages, 1);
		atomic_fetch_sub_explicit(&owner->pool.active, 1, memory_order_relaxed);
		vmpool_uncharge(&owner->pool);
		s2_install(owner, &uslot, upa, S2_R | S2_X);
		atomic_fetch_add_explicit(&owner->pool.shared, 1, memory_order_relaxed);
		merged_into(vm, &slot, i, upa, cpu, false);
		return true;
	}
	return false;
}

/*
 * A page hashed before is hashed in full only every SHARE_FULL_EVERY-th
 * scan (which scan depends on its guest page number, so each scan does its
 * share); in between a sample of it (page_sample_*, 1/8 of its bytes, about
 * a ninth of the instructions) stands in: a changed sample is a changed page
 * (hashed in full at once), an unchanged one keeps the key of its last full
 * hash. A change the sample misses leaves the key stale for at most
 * SHARE_FULL_EVERY - 1 scans: a merge delayed, or a compare that fails,
 * never a merge of different pages (every merge compares all the bytes
 * after the claim).
 */
#define SHARE_FULL_EVERY 4

static u32 sample_of(const void *page)
{
	return share_hash == page_hash_crc ? page_sample_crc(page) : page_sample_mul(page);
}

/*
 * Sample or hash the page at ipa (without the lock: the page may change
 * under it, which only makes it look volatile), then merge it with the zero
 * page, a shared page or a candidate, or make it a candidate. key0 and
 * sample0: its key and sample when share_scan_next found it; full: hash it
 * in full whatever its sample says.
 */
static void scan_page(struct vm *vm, ipa_t ipa, pidx_t i, unsigned cpu, u64 key0, u32 sample0, bool full)
{
	const void *p = page_va(pool_pa(sh.pool, i));
	u32 sample = sample_of(p);
	bool quick = !full && key0 && sample == sample0;
	u64 h = quick ? 0 : share_hash(p), key;
	struct s2_leaf l;

	atomic_fetch_add_explicit(&vm->share.scanned, 1, memory_order_relaxed);
	spin_lock(&sh.lock);
	/* The VM may have stopped and the page gone meanwhile: look again under the lock. */
	if (!vm->share.live || !s2_get(vm, ipa, &l) || pool_pidx_of(sh.pool, l.pa) != i || !(l.prot & S2_W))
		goto out;
	if (quick) {
		/* Unchanged at a glance: its key still stands, unless someone reset it meanwhile. */
		if (sh.meta[i].key != key0)
			goto out;
		key = key0;
	} else {
		if (h == sh.zero_hash && merge_zero(vm, ipa, i, cpu))
			goto out;
		if (!vm->share.group)
			goto out; /* zero pages only */
		key = share_salted(h, vm->share.group);
		sh.meta[i].sample = sample;
		if (sh.meta[i].key != key) {
			if (sh.meta[i].key)
				vm->share.seen_volatile++;
			if (share_flags(i) & MP_UNSTABLE) {
				share_table_remove(i);
				share_set_flags(i, share_flags(i) & ~MP_UNSTABLE);
			}
			sh.meta[i].key = key;
			goto out;
		}
	}
	if (merge_stable(vm, ipa, i, key, cpu) || (share_flags(i) & MP_UNSTABLE) ||
	    merge_unstable(vm, ipa, i, key, cpu))
		goto out;
	share_table_insert(i, key);
	share_set_flags(i, share_flags(i) | MP_UNSTABLE);
out:
	spin_unlock(&sh.lock);
}

int share_scan_next(struct vm *vm, unsigned cpu)
{
	struct vm_share *s = &vm->share;
	u64 end = vm->ram_base.bits + vm->ram_size, ipa;
	struct s2_leaf l;
	bool found, full;
	pidx_t i = PIDX_NONE;
	u64 key0 = 0;
	u32 sample0 = 0;

	spin_lock(&sh.lock);
	if (!s->live) {
		spin_unlock(&sh.lock);
		return SCAN_NOT_LIVE;
	}
	/* Tables are freed only after share_vm_stop, so the walk is safe under the lock. */
	ipa = s2_next_leaf(vm, MAX(s->cursor, vm->ram_base.bits), end);
	found = ipa < end && s2_get(vm, IPA(ipa), &l);
	/* Read-only pages are shared, zero or image pages already. */
	if (found && !(l.prot & S2_DEVICE) && (l.prot & S2_W) && (i = pool_pidx_of(sh.pool, l.pa)) != PIDX_NONE) {
		key0 = sh.meta[i].key;
		sample0 = sh.meta[i].sample;
	}
	spin_unlock(&sh.lock);
	if (ipa >= end) {
		s->cursor = vm->ram_base.bits;
		atomic_store_explicit(&s->volatile_pages, s->seen_volatile, memory_order_relaxed);
		s->seen_volatile = 0;
		atomic_fetch_add_explicit(&s->scans, 1, memory_order_relaxed);
		return SCAN_WRAPPED;
	}
	s->cursor = ipa + PAGE_SIZE;
	if (i != PIDX_NONE) {
		full = !((atomic_load_explicit(&s->scans, memory_order_relaxed) + (ipa >> PAGE_SHIFT)) &
			 (SHARE_FULL_EVERY - 1));
		scan_page(vm, IPA(ipa), i, cpu, key0, sample0, full);
	}
	return SCAN_PAGE;
}

u32 share_shared_pages(void)
{
	return atomic_load(&sh.shared_pages);
}
