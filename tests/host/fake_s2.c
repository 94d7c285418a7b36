/* Host fake of stage-2 translation: see fake_s2.h. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <quire/errno.h>
#include <quire/fault.h>
#include <quire/s2_entry.h>
#include <quire/vm.h>
#include "fake_s2.h"
#include "hostmem.h"

#define REGION_SHIFT 21 /* one table page per 2 MiB */
#define ENTRIES 512
#define FALLBACK_SLOTS 64
#define LEAF_VALID S2E_VALID
#define LEAF_BUSY S2E_BUSY /* claimed: invalid but not empty (quire/s2_entry.h) */
#define PROT_MASK (S2_RWX | S2_DEVICE)
#define LEAF_PROT_SHIFT 2
#define LEAF_AF (1ull << 6)
#define LEAF_AHEAD (1ull << 55)
#define LEAF_SEEN (1ull << 56)
#define LEAF_ADDR(e) ((e) & 0x0000fffffffff000ull)

struct fallback_slot {
	_Atomic u64 key; /* region number + 1; 0 = free */
	_Atomic pidx_t table;
};

_Atomic bool fake_s2_yield;

/* Widen the window between reading an empty entry and installing one. */
static void maybe_yield(void)
{
	if (atomic_load_explicit(&fake_s2_yield, memory_order_relaxed))
		sched_yield();
}

struct fake_s2 {
	pidx_t root;
	u64 ram_first; /* first 2 MiB region of RAM */
	u64 nram;
	_Atomic pidx_t *ram_dir;
	struct fallback_slot fallback[FALLBACK_SLOTS];
	_Atomic u64 maps, eexist, table_races;
};

static struct fake_s2 *state(struct vm *vm)
{
	struct fake_s2 *s = (struct fake_s2 *)(uintptr_t)vm->s2.root;

	if (!s) {
		fprintf(stderr, "fake_s2: VM %u has no stage-2 (s2_init not called)\n", vm->id);
		abort();
	}
	return s;
}

static int take_table(struct vm *vm, unsigned cpu, pidx_t *out)
{
	struct pool *p = vm->pool.vmm;
	int why = 0;
	pidx_t t = vmpool_take(&vm->pool, cpu, &why);

	if (t == PIDX_NONE)
		return why == 2 ? -ENOMEM : -EDQUOT;
	if (!hostmem_page_is_zero(pool_pa(p, t))) {
		fprintf(stderr, "fake_s2: vmpool_take gave a page that is not zero\n");
		abort();
	}
	atomic_store_explicit(&pool_desc(p, t)->flags, MP_PGTABLE, memory_order_relaxed);
	*out = t;
	return 0;
}

/* The directory slot of a 2 MiB region; NULL if it has none and create is false (or no room). */
static _Atomic pidx_t *dir_slot(struct fake_s2 *s, u64 region, bool create)
{
	if (region - s->ram_first < s->nram)
		return &s->ram_dir[region - s->ram_first];
	for (unsigned k = 0; k < FALLBACK_SLOTS; k++) {
		struct fallback_slot *sl = &s->fallback[(region + k) % FALLBACK_SLOTS];
		u64 key = atomic_load_explicit(&sl->key, memory_order_acquire);

		if (key == region + 1)
			return &sl->table;
		if (key)
			continue;
		if (!create)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(&sl->key, &key, region + 1, memory_order_acq_rel,
							    memory_order_acquire) ||
		    key == region + 1)
			return &sl->table;
	}
	return NULL;
}

/* The table page (as host memory) covering ipa; creates it if asked. */
static int table_of(struct vm *vm, ipa_t ipa, bool create, unsigned cpu, _Atomic u64 **out)
{
	struct fake_s2 *s = state(vm);
	struct pool *p = vm->pool.vmm;
	_Atomic pidx_t *slot = dir_slot(s, ipa.bits >> REGION_SHIFT, create);
	pidx_t t, mine;
	int rc;

	if (!slot)
		return create ? -ENOMEM : -EINVAL;
	t = atomic_load_explicit(slot, memory_order_acquire);
	if (t == PIDX_NONE) {
		if (!create)
			return -EINVAL;
		rc = take_table(vm, cpu, &mine);
		if (rc)
			return rc;
		maybe_yield();
		if (atomic_compare_exchange_strong_explicit(slot, &t, mine, memory_order_acq_rel,
							    memory_order_acquire)) {
			atomic_fetch_add_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
			t = mine;
		} else {
			/* Another vCPU installed one first: ours was never written, so it is still zero. */
			vmpool_give_back_table(&vm->pool, cpu, mine);
			atomic_fetch_add_explicit(&s->table_races, 1, memory_order_relaxed);
		}
	}
	*out = hostmem_ptr(pool_pa(p, t));
	return 0;
}

/* ---- the instruction caches, as far as the contract goes ------------------ */

#define SYNCED_MAX 1024
static pthread_mutex_t synced_lock = PTHREAD_MUTEX_INITIALIZER;
static paddr_t synced[SYNCED_MAX]; /* pages page_sync_icache'd and not mapped executable since */
static unsigned nsynced;
_Atomic unsigned long fake_s2_icache_syncs, fake_s2_x_unsynced, fake_s2_local_flushes, fake_s2_vm_flushes;

void page_sync_icache(paddr_t pa)
{
	(void)hostmem_ptr(pa);
	atomic_fetch_add(&fake_s2_icache_syncs, 1);
	pthread_mutex_lock(&synced_lock);
	if (nsynced < SYNCED_MAX)
		synced[nsynced++] = pa;
	pthread_mutex_unlock(&synced_lock);
}

/* A leaf is about to let the guest execute pa: a pool page must have been synced since it was last. */
static void check_synced(struct vm *vm, paddr_t pa)
{
	bool found = false;

	if (pool_pidx_of(vm->pool.vmm, pa) == PIDX_NONE)
		return; /* an image page: nobody else's instructions were ever there */
	pthread_mutex_lock(&synced_lock);
	for (unsigned k = 0; k < nsynced && !found; k++)
		if (synced[k] == pa) {
			synced[k] = synced[--nsynced];
			found = true;
		}
	pthread_mutex_unlock(&synced_lock);
	if (!found)
		atomic_fetch_add(&fake_s2_x_unsynced, 1);
}

void fake_s2_cache_reset(void)
{
	pthread_mutex_lock(&synced_lock);
	nsynced = 0;
	pthread_mutex_unlock(&synced_lock);
	atomic_store(&fake_s2_icache_syncs, 0);
	atomic_store(&fake_s2_x_unsynced, 0);
	atomic_store(&fake_s2_local_flushes, 0);
	atomic_store(&fake_s2_vm_flushes, 0);
}

int s2_init(struct vm *vm, unsigned cpu)
{
	struct fake_s2 *s = calloc(1, sizeof(*s));
	u64 first = ALIGN_DOWN(vm->ram_base.bits, SZ_2M) >> REGION_SHIFT;
	u64 end = ALIGN_UP(vm->ram_base.bits + vm->ram_size, SZ_2M) >> REGION_SHIFT;
	int rc;

	if (!s)
		return -ENOMEM;
	s->ram_first = first;
	s->nram = end - first;
	s->ram_dir = calloc(s->nram ? s->nram : 1, sizeof(*s->ram_dir));
	if (!s->ram_dir) {
		free(s);
		return -ENOMEM;
	}
	for (u64 r = 0; r < s->nram; r++)
		atomic_init(&s->ram_dir[r], PIDX_NONE);
	for (unsigned k = 0; k < FALLBACK_SLOTS; k++) {
		atomic_init(&s->fallback[k].key, 0);
		atomic_init(&s->fallback[k].table, PIDX_NONE);
	}
	rc = take_table(vm, cpu, &s->root);
	if (rc) {
		free(s->ram_dir);
		free(s);
		return rc;
	}
	atomic_fetch_add_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
	vm->s2.root = (paddr_t)(uintptr_t)s;
	vm->s2.vmid = vm->id;
	vm->s2.start_level = 1;
	return 0;
}

int s2_prepare(struct vm *vm, ipa_t ipa, unsigned cpu, struct s2_slot *slot)
{
	_Atomic u64 *table;
	int rc;

	if (ipa.bits & (PAGE_SIZE - 1))
		return -EINVAL;
	rc = table_of(vm, ipa, true, cpu, &table);
	if (rc)
		return rc;
	slot->e = &table[(ipa.bits >> PAGE_SHIFT) % ENTRIES];
	return atomic_load_explicit(slot->e, memory_order_acquire) ? -EEXIST : 0;
}

int s2_fill(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	struct fake_s2 *s = state(vm);
	u64 old = 0;

	if (pa & (PAGE_SIZE - 1) || !pa || prot & ~PROT_MASK)
		return -EINVAL;
	maybe_yield();
	if (prot & S2_X)
		check_synced(vm, pa);
	if (!atomic_compare_exchange_strong_explicit(slot->e, &old, pa | (u64)prot << LEAF_PROT_SHIFT | LEAF_VALID | LEAF_AF,
						     memory_order_release, memory_order_acquire)) {
		atomic_fetch_add_explicit(&s->eexist, 1, memory_order_relaxed);
		return -EEXIST;
	}
	atomic_fetch_add_explicit(&s->maps, 1, memory_order_relaxed);
	return 0;
}

static unsigned leaf_prot(u64 e)
{
	return ((e >> LEAF_PROT_SHIFT) & PROT_MASK) | (e & LEAF_AHEAD ? S2_AHEAD : 0);
}

static u64 leaf(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *table;

	if (table_of(vm, ipa, false, 0, &table))
		return 0;
	return atomic_load_explicit(&table[(ipa.bits >> PAGE_SHIFT) % ENTRIES], memory_order_acquire);
}

paddr_t s2_lookup(struct vm *vm, ipa_t ipa)
{
	u64 e = leaf(vm, ipa);

	return e & LEAF_VALID ? LEAF_ADDR(e) : 0;
}

unsigned fake_s2_prot(struct vm *vm, ipa_t ipa)
{
	u64 e = leaf(vm, ipa);

	return e & LEAF_VALID ? (e >> LEAF_PROT_SHIFT) & PROT_MASK : 0;
}

bool s2_get(struct vm *vm, ipa_t ipa, struct s2_leaf *out)
{
	u64 e = leaf(vm, ipa);

	if (!(e & LEAF_VALID))
		return false;
	out->pa = LEAF_ADDR(e);
	out->prot = leaf_prot(e);
	return true;
}

u64 s2_next_leaf(struct vm *vm, u64 from, u64 end)
{
	for (u64 ipa = ALIGN_DOWN(from, PAGE_SIZE); ipa < end;) {
		_Atomic u64 *table;

		if (table_of(vm, IPA(ipa), false, 0, &table)) {
			ipa = ALIGN_DOWN(ipa, 1ull << REGION_SHIFT) + (1ull << REGION_SHIFT);
			continue;
		}
		if (atomic_load_explicit(&table[(ipa >> PAGE_SHIFT) % ENTRIES], memory_order_acquire) & LEAF_VALID)
			return ipa;
		ipa += PAGE_SIZE;
	}
	return end;
}

_Atomic unsigned long fake_s2_claims;

int s2_claim(struct vm *vm, ipa_t ipa, struct s2_slot *slot, struct s2_leaf *old)
{
	_Atomic u64 *table;
	u64 e;

	if (table_of(vm, ipa, false, 0, &table))
		return -ENOENT;
	slot->e = &table[(ipa.bits >> PAGE_SHIFT) % ENTRIES];
	e = atomic_load_explicit(slot->e, memory_order_acquire);
	maybe_yield();
	if (!(e & LEAF_VALID) ||
	    !atomic_compare_exchange_strong_explicit(slot->e, &e, LEAF_BUSY, memory_order_acq_rel, memory_order_relaxed))
		return -ENOENT;
	atomic_fetch_add(&fake_s2_claims, 1);
	old->pa = LEAF_ADDR(e);
	old->prot = leaf_prot(e);
	return 0;
}

void s2_install(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	(void)vm;
	u64 e = atomic_load(slot->e);

	if ((e != LEAF_BUSY && !s2e_transit(e)) || !pa || pa & (PAGE_SIZE - 1) || prot & ~(PROT_MASK | S2_OLD | S2_AHEAD)) {
		fprintf(stderr, "fake_s2: s2_install on a slot that is not claimed, or a bad page\n");
		abort();
	}
	/* As arch/arm64/stage2.c: never executable; the first fetch faults and grants it. */
	prot &= ~S2_X;
	atomic_store_explicit(slot->e, pa | (u64)(prot & PROT_MASK) << LEAF_PROT_SHIFT | LEAF_VALID |
			      (prot & S2_OLD ? 0 : LEAF_AF) | (prot & S2_AHEAD ? LEAF_AHEAD : 0), memory_order_release);
}

static _Atomic u64 *leaf_slot(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *table;

	return table_of(vm, ipa, false, 0, &table) ? NULL : &table[(ipa.bits >> PAGE_SHIFT) % ENTRIES];
}

bool s2_test_clear_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_slot(vm, ipa);
	u64 v = e ? atomic_load(e) : 0;

	if (!(v & LEAF_VALID))
		return false;
	if (v & LEAF_AF) {
		atomic_compare_exchange_strong(e, &v, v & ~(LEAF_AF | LEAF_AHEAD | LEAF_SEEN));
		return true;
	}
	if ((v & (LEAF_AHEAD | LEAF_SEEN)) != LEAF_AHEAD)
		return false;
	atomic_compare_exchange_strong(e, &v, v | LEAF_SEEN);
	return true;
}

int s2_set_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_slot(vm, ipa);
	u64 v = e ? atomic_load(e) : 0;

	while (v & LEAF_VALID)
		if (atomic_compare_exchange_weak(e, &v, (v | LEAF_AF) & ~(LEAF_AHEAD | LEAF_SEEN)))
			return v & LEAF_AHEAD ? 2 : 1;
	return 0;
}

_Atomic unsigned long fake_s2_flushes;

void s2_flush_young(struct vm *vm)
{
	(void)vm;
	atomic_fetch_add(&fake_s2_flushes, 1);
}

void s2_flush_tlb_local(struct vm *vm)
{
	(void)state(vm);
	atomic_fetch_add(&fake_s2_local_flushes, 1);
}

int s2_grant_exec(struct vm *vm, ipa_t ipa, paddr_t pa)
{
	_Atomic u64 *e = leaf_slot(vm, ipa);
	u64 v = e ? atomic_load(e) : 0;

	while ((v & LEAF_VALID) && LEAF_ADDR(v) == pa && !(v >> LEAF_PROT_SHIFT & S2_DEVICE)) {
		if (v >> LEAF_PROT_SHIFT & S2_X) {
			atomic_fetch_add(&fake_s2_local_flushes, 1); /* the stale XN entry goes */
			return 0;
		}
		if (atomic_compare_exchange_weak(e, &v, v | (u64)S2_X << LEAF_PROT_SHIFT)) {
			check_synced(vm, pa);
			atomic_fetch_add(&fake_s2_local_flushes, 1);
			return 1;
		}
	}
	return -ENOENT;
}

bool fake_s2_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_slot(vm, ipa);

	return e && (atomic_load(e) & (LEAF_VALID | LEAF_AF)) == (LEAF_VALID | LEAF_AF);
}

u64 fake_s2_raw(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_slot(vm, ipa);

	return e ? atomic_load(e) : 0;
}

/* Visit every table: fn(region, table pidx, slot). */
static void each_table(struct fake_s2 *s, void (*fn)(void *arg, u64 region, _Atomic pidx_t *slot), void *arg)
{
	for (u64 r = 0; r < s->nram; r++)
		if (atomic_load_explicit(&s->ram_dir[r], memory_order_acquire) != PIDX_NONE)
			fn(arg, s->ram_first + r, &s->ram_dir[r]);
	for (unsigned k = 0; k < FALLBACK_SLOTS; k++) {
		u64 key = atomic_load_explicit(&s->fallback[k].key, memory_order_acquire);

		if (key && atomic_load_explicit(&s->fallback[k].table, memory_order_acquire) != PIDX_NONE)
			fn(arg, key - 1, &s->fallback[k].table);
	}
}

struct count_arg {
	struct vm *vm;
	struct fake_s2_stats *st;
};

static void count_table(void *arg, u64 region, _Atomic pidx_t *slot)
{
	struct count_arg *a = arg;
	_Atomic u64 *table = hostmem_ptr(pool_pa(a->vm->pool.vmm, atomic_load(slot)));

	(void)region;
	a->st->tables++;
	for (unsigned k = 0; k < ENTRIES; k++)
		if (atomic_load_explicit(&table[k], memory_order_acquire) & LEAF_VALID)
			a->st->leaves++;
}

void fake_s2_stats(struct vm *vm, struct fake_s2_stats *st)
{
	struct fake_s2 *s = state(vm);
	struct count_arg a = { vm, st };

	st->maps = atomic_load(&s->maps);
	st->eexist = atomic_load(&s->eexist);
	st->table_races = atomic_load(&s->table_races);
	st->leaves = 0;
	st->tables = 1; /* the root */
	each_table(s, count_table, &a);
}

struct destroy_arg {
	struct vm *vm;
	void (*fn)(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu);
	void (*swapped)(struct vm *vm, u64 swap_slot, unsigned cpu);
	unsigned cpu;
};

static void destroy_table(void *arg, u64 region, _Atomic pidx_t *slot)
{
	struct destroy_arg *a = arg;
	pidx_t t = atomic_exchange(slot, PIDX_NONE);
	_Atomic u64 *table = hostmem_ptr(pool_pa(a->vm->pool.vmm, t));

	for (unsigned k = 0; k < ENTRIES; k++) {
		u64 e = atomic_exchange(&table[k], 0);

		if (e == LEAF_BUSY || s2e_transit(e)) {
			fprintf(stderr, "fake_s2: s2_destroy found a leaf still claimed or in transit\n");
			abort();
		}
		if (s2e_swapped(e) && a->swapped)
			a->swapped(a->vm, s2e_slot(e), a->cpu);
		if (e & LEAF_VALID)
			a->fn(a->vm, IPA(region << REGION_SHIFT | (u64)k << PAGE_SHIFT), LEAF_ADDR(e), a->cpu);
	}
	/* Every entry was just cleared: the page is zero again. */
	vmpool_give_back_table(&a->vm->pool, a->cpu, t);
	atomic_fetch_sub_explicit(&a->vm->pool.pgtables, 1, memory_order_relaxed);
}

void s2_destroy(struct vm *vm, void (*fn)(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu),
		void (*swapped)(struct vm *vm, u64 swap_slot, unsigned cpu), unsigned cpu)
{
	struct fake_s2 *s = state(vm);
	struct destroy_arg a = { vm, fn, swapped, cpu };

	/* As arch/arm64/stage2.c: the VM's TLB entries go before any page does. */
	atomic_fetch_add(&fake_s2_vm_flushes, 1);
	each_table(s, destroy_table, &a);
	vmpool_give_back_table(&vm->pool, cpu, s->root);
	atomic_fetch_sub_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
	free(s->ram_dir);
	free(s);
	vm->s2.root = 0;
}
