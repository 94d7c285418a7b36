/* The host tests' fake arch under core/stage2.c: see fake_arch.h and fake_arch/include/arch/s2_desc.h. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <quire/fault.h>
#include <arch/s2_desc.h>
#include "fake_arch.h"
#include "hostmem.h"

_Static_assert(FAKE_S2_PATH_TABLES == S2_LAST_LEVEL - S2_START_LEVEL, "the tests' sums");

_Atomic bool fake_arch_yield;
_Atomic unsigned long fake_tlbi_ipa, fake_tlbi_local, fake_tlbi_vm;
void (*fake_tlbi_observer)(struct vm *vm, u64 ipa, enum fake_tlbi_kind kind);
_Atomic unsigned long fake_arch_icache_syncs, fake_arch_x_unsynced, fake_arch_dcache_pages;

/* A full barrier TSan understands (it has no model of atomic_thread_fence). */
static _Atomic unsigned long fence_word;

void fake_arch_fence(void)
{
	atomic_fetch_add(&fence_word, 1);
}

void fake_arch_barrier(void)
{
	fake_arch_fence();
	if (atomic_load_explicit(&fake_arch_yield, memory_order_relaxed))
		sched_yield();
}

/* The walker publishes a table: it must be zero (vmpool_take zeroes), or stale entries would show. */
void fake_arch_table_made(paddr_t pa)
{
	if (!hostmem_page_is_zero(pa)) {
		fprintf(stderr, "fake_arch: a new stage-2 table page is not zero\n");
		abort();
	}
}

static void tlbi(struct vm *vm, u64 ipa, enum fake_tlbi_kind kind, _Atomic unsigned long *count)
{
	atomic_fetch_add(count, 1);
	if (fake_tlbi_observer)
		fake_tlbi_observer(vm, ipa, kind);
}

void s2_tlbi_ipa(struct vm *vm, u64 ipa)
{
	tlbi(vm, ipa, FAKE_TLBI_IPA, &fake_tlbi_ipa);
}

void s2_tlbi_ipa_local(struct vm *vm, u64 ipa)
{
	tlbi(vm, ipa, FAKE_TLBI_LOCAL, &fake_tlbi_local);
}

void s2_tlbi_vm(struct vm *vm)
{
	tlbi(vm, 0, FAKE_TLBI_VM, &fake_tlbi_vm);
}

void s2_flush_tlb_local(struct vm *vm)
{
	tlbi(vm, 0, FAKE_TLBI_LOCAL, &fake_tlbi_local);
}

void s2_dcache_clean_page(paddr_t pa)
{
	(void)hostmem_ptr(pa);
	atomic_fetch_add(&fake_arch_dcache_pages, 1);
}

void s2_dcache_done(void)
{
}

/* ---- the instruction caches, as far as the contract goes ------------------ */

#define SYNCED_MAX 1024
static pthread_mutex_t synced_lock = PTHREAD_MUTEX_INITIALIZER;
static paddr_t synced[SYNCED_MAX]; /* pages page_sync_icache'd and not mapped executable since */
static unsigned nsynced;
/* The page this thread's last executable leaf took: a CAS retried on it takes no second mark. */
static _Thread_local paddr_t last_exec;

void page_sync_icache(paddr_t pa)
{
	(void)hostmem_ptr(pa);
	atomic_fetch_add(&fake_arch_icache_syncs, 1);
	pthread_mutex_lock(&synced_lock);
	if (nsynced < SYNCED_MAX)
		synced[nsynced++] = pa;
	pthread_mutex_unlock(&synced_lock);
}

void fake_arch_exec_leaf(paddr_t pa)
{
	bool found = false;

	if (!hostmem_in_pool(pa))
		return; /* an image page: nobody else's instructions were ever there */
	pthread_mutex_lock(&synced_lock);
	for (unsigned k = 0; k < nsynced && !found; k++)
		if (synced[k] == pa) {
			synced[k] = synced[--nsynced];
			found = true;
		}
	pthread_mutex_unlock(&synced_lock);
	if (!found && pa != last_exec)
		atomic_fetch_add(&fake_arch_x_unsynced, 1);
	last_exec = pa;
}

void fake_arch_reset(void)
{
	pthread_mutex_lock(&synced_lock);
	nsynced = 0;
	pthread_mutex_unlock(&synced_lock);
	last_exec = 0;
	atomic_store(&fake_arch_icache_syncs, 0);
	atomic_store(&fake_arch_x_unsynced, 0);
	atomic_store(&fake_arch_dcache_pages, 0);
	atomic_store(&fake_tlbi_ipa, 0);
	atomic_store(&fake_tlbi_local, 0);
	atomic_store(&fake_tlbi_vm, 0);
	fake_tlbi_observer = NULL;
}

/* ---- the tables, read with the fake's own format -------------------------- */

static void count(paddr_t table, unsigned level, struct fake_s2_stats *st)
{
	_Atomic u64 *t = hostmem_ptr(table);

	st->tables++;
	for (unsigned i = 0; i < 512; i++) {
		u64 d = atomic_load(&t[i]);

		if (!(d & FD_VALID))
			continue;
		if (level == S2_BLOCK_LEVEL && (d & FD_BLOCK)) {
			/* 512 pages, and the table its split will take, held already. */
			st->blocks++;
			st->leaves += 512;
			st->tables++;
		} else if (level < S2_LAST_LEVEL) {
			if (!(d & FD_TABLE)) {
				fprintf(stderr, "fake_arch: a leaf above the last level\n");
				abort();
			}
			count(d & FD_ADDR_MASK, level + 1, st);
		} else {
			st->leaves++;
		}
	}
}

void fake_s2_stats(struct vm *vm, struct fake_s2_stats *st)
{
	st->leaves = st->tables = st->blocks = 0;
	st->table_races = atomic_load(&vm->s2.table_races);
	if (vm->s2.root)
		count(vm->s2.root, S2_START_LEVEL, st);
}

u64 fake_s2_raw(struct vm *vm, ipa_t ipa)
{
	paddr_t table = vm->s2.root;

	for (unsigned level = S2_START_LEVEL;; level++) {
		unsigned shift = PAGE_SHIFT + 9 * (S2_LAST_LEVEL - level);
		u64 d = atomic_load((_Atomic u64 *)hostmem_ptr(table) + ((ipa.bits >> shift) & 511));

		if (level == S2_LAST_LEVEL)
			return d;
		if (!(d & FD_VALID))
			return 0;
		if (level == S2_BLOCK_LEVEL && (d & FD_BLOCK))
			return d; /* the block's attributes are each page's */
		table = d & FD_ADDR_MASK;
	}
}

unsigned fake_s2_prot(struct vm *vm, ipa_t ipa)
{
	u64 d = fake_s2_raw(vm, ipa);

	return d & FD_VALID ? (unsigned)((d & FD_PROT_MASK) >> FD_PROT_SHIFT) : 0;
}

bool fake_s2_young(struct vm *vm, ipa_t ipa)
{
	return (fake_s2_raw(vm, ipa) & (FD_VALID | FD_AF)) == (FD_VALID | FD_AF);
}
