/*
 * The real stage-2 walker (core/stage2.c), built unchanged over the fake
 * arch (fake_arch.c), under threads: concurrent fills of one page and of
 * one table, claims racing a fill, replacement checked against a model of
 * the vCPUs' TLBs, and swap and busy entries that must never be taken for
 * mappings. Each phase repeats for QUIRE_STRESS_MS (default 400 ms).
 *
 * Built twice by the Makefile: under ASan+UBSan and under TSan.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <quire/errno.h>
#include <quire/s2_entry.h>
#include <quire/vm.h>
#include "fake_arch.h"
#include "hostmem.h"
#define STRESS_NAME "test_stage2"
#include "stress.h"

#define NTHREADS 4
#define MACH_BASE 0x80000000UL
#define MACH_PAGES 2048 /* four 2 MiB runs */
#define RAM 0x40000000UL
#define FAKE_PA 0x200000000UL /* leaf addresses: the walker never touches the pages it maps */

static struct pool pool;
static struct vm vm;
static pthread_barrier_t barrier;
static u64 phase_ms = 400;

static u64 now_ms(void)
{
	return now_ns() / 1000000;
}

static void vm_up(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.id = 1;
	snprintf(vm.name, sizeof(vm.name), "vm1");
	vm.ram_base = IPA(RAM);
	vm.ram_size = 1UL << 30;
	vmpool_init(&vm.pool, &pool, 1, MACH_PAGES);
	if (s2_init(&vm, 0))
		FAIL("s2_init failed\n");
}

static _Atomic unsigned long pages_given;

static void count_page(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	(void)v, (void)ipa, (void)pa, (void)cpu;
	atomic_fetch_add(&pages_given, 1);
}

/* Tear down (leaves to page, runs to block) and check that every page went back: nothing leaked by a lost race. */
static void vm_down_by(void (*page)(struct vm *, ipa_t, paddr_t, unsigned),
		       bool (*block)(struct vm *, ipa_t, pidx_t, unsigned), u32 leaves)
{
	pidx_t i;

	atomic_store(&pages_given, 0);
	s2_destroy(&vm, page, NULL, block, 0);
	CHECK(atomic_load(&pages_given) == leaves, "destroy gave %lu pages, %u mapped\n", atomic_load(&pages_given),
	      leaves);
	for (unsigned c = 0; c < NTHREADS; c++)
		while ((i = lfstack_pop(&vm.pool.idle, pool.desc)) != PIDX_NONE)
			vmpool_give_back(&vm.pool, c, i, true);
	CHECK(atomic_load(&vm.pool.pgtables) == 0, "%u table pages still counted\n", atomic_load(&vm.pool.pgtables));
	CHECK(atomic_load(&vm.pool.charged) == 0, "%u pages still charged\n", atomic_load(&vm.pool.charged));
}

static void vm_down(u32 leaves)
{
	vm_down_by(count_page, NULL, leaves);
}

static void run(void *(*fn)(void *))
{
	pthread_t t[NTHREADS];

	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (uintptr_t k = 0; k < NTHREADS; k++)
		pthread_create(&t[k], NULL, fn, (void *)k);
	for (unsigned k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&barrier);
}

/* ---- every thread fills one page of a fresh VM: one wins, tables made once -- */

static _Atomic unsigned one_page_wins;

static void *fill_one_page(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	struct s2_slot slot;
	int rc;

	pthread_barrier_wait(&barrier);
	rc = s2_prepare(&vm, IPA(RAM + 0x5000), me, &slot);
	if (!rc)
		rc = s2_fill(&vm, &slot, FAKE_PA + me * PAGE_SIZE, S2_R | S2_W);
	if (!rc)
		atomic_fetch_add(&one_page_wins, 1);
	else
		CHECK(rc == -EEXIST, "a losing fill said %d\n", rc);
	return NULL;
}

static void fills_of_one_page(void)
{
	unsigned rounds = 0, races = 0;

	for (u64 end = now_ms() + phase_ms; now_ms() < end; rounds++) {
		struct fake_s2_stats st;
		struct s2_leaf l;

		vm_up();
		atomic_store(&one_page_wins, 0);
		run(fill_one_page);
		fake_s2_stats(&vm, &st);
		races += st.table_races;
		CHECK(atomic_load(&one_page_wins) == 1, "%u fills of one page won\n", atomic_load(&one_page_wins));
		CHECK(st.leaves == 1 && st.tables == 1 + FAKE_S2_PATH_TABLES, "%u leaves, %u tables\n", st.leaves,
		      st.tables);
		CHECK(atomic_load(&vm.pool.pgtables) == st.tables, "%u tables counted, %u made\n",
		      atomic_load(&vm.pool.pgtables), st.tables);
		CHECK(s2_get(&vm, IPA(RAM + 0x5000), &l) && l.pa >= FAKE_PA && l.prot == (S2_R | S2_W),
		      "the winner's leaf is not there\n");
		vm_down(1);
	}
	printf("fills of one page: %u rounds, %u table pages lost to a racing fill\n", rounds, races);
	CHECK(races > 0, "no two fills ever raced for a table: the phase tests nothing\n");
}

/* ---- every thread fills its own pages, all under the same fresh tables ----- */

#define SAME_TABLE_PAGES 64

static void *fill_one_table(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;

	pthread_barrier_wait(&barrier);
	for (unsigned k = me; k < SAME_TABLE_PAGES; k += NTHREADS) {
		/* Pages 0-31 in one 2 MiB, 32-63 in the next: two last-level tables, one above them. */
		u64 ipa = RAM + (k < 32 ? k * PAGE_SIZE : SZ_2M + (k - 32) * PAGE_SIZE);
		int rc = s2_map_page(&vm, IPA(ipa), FAKE_PA + k * PAGE_SIZE, S2_R, me);

		CHECK(rc == 0, "fill of page %u said %d\n", k, rc);
	}
	return NULL;
}

static void fills_of_one_table(void)
{
	unsigned rounds = 0;

	for (u64 end = now_ms() + phase_ms; now_ms() < end; rounds++) {
		struct fake_s2_stats st;

		vm_up();
		run(fill_one_table);
		fake_s2_stats(&vm, &st);
		CHECK(st.leaves == SAME_TABLE_PAGES, "%u of %u pages mapped\n", st.leaves, SAME_TABLE_PAGES);
		CHECK(st.tables == FAKE_S2_PATH_TABLES + 2, "%u tables for two 2 MiB blocks\n", st.tables);
		for (unsigned k = 0; k < SAME_TABLE_PAGES; k++) {
			u64 ipa = RAM + (k < 32 ? k * PAGE_SIZE : SZ_2M + (k - 32) * PAGE_SIZE);

			CHECK(s2_lookup(&vm, IPA(ipa)) == FAKE_PA + k * PAGE_SIZE, "page %u maps the wrong page\n", k);
		}
		CHECK(s2_next_leaf(&vm, RAM + 32 * PAGE_SIZE, RAM + SZ_2M + PAGE_SIZE) == RAM + SZ_2M,
		      "s2_next_leaf does not skip the hole\n");
		vm_down(SAME_TABLE_PAGES);
	}
	printf("fills of one table: %u rounds\n", rounds);
}

/*
 * ---- a claim racing a fill: thread 0 fills an empty leaf while the others
 * try to claim it. A claim before the fill finds nothing (-ENOENT); after
 * it, exactly one claim wins, its TLB invalidation is made, and its install
 * is what stays. Nobody fills over the claimed (busy) leaf.
 */
#define CLAIM_IPA (RAM + 0xb000)
static _Atomic unsigned claim_wins, claim_fill_ok, claims_before, claimers_in;
static _Atomic bool claim_done;

static void *claim_thread(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	struct s2_slot slot;
	struct s2_leaf old;

	pthread_barrier_wait(&barrier);
	if (me == 0) {
		if (!s2_map_page(&vm, IPA(CLAIM_IPA), FAKE_PA, S2_R | S2_W, me))
			atomic_fetch_add(&claim_fill_ok, 1);
		/* The claimed leaf is busy: a second fill must not go over it. */
		while (!atomic_load(&claim_done))
			CHECK(s2_map_page(&vm, IPA(CLAIM_IPA), FAKE_PA + PAGE_SIZE, S2_R, me) == -EEXIST,
			      "a fill over a mapped or claimed leaf\n");
		return NULL;
	}
	while (!atomic_load(&claim_done)) {
		if (s2_claim(&vm, IPA(CLAIM_IPA), &slot, &old)) {
			atomic_fetch_add(&claims_before, 1);
			sched_yield(); /* two cores: let the filler in */
			continue;
		}
		CHECK(!atomic_exchange(&claim_done, true), "two claims of one leaf won\n");
		CHECK(old.pa == FAKE_PA && old.prot == (S2_R | S2_W), "the claim saw 0x%llx\n",
		      (unsigned long long)old.pa);
		atomic_fetch_add(&claim_wins, 1);
		/* Install once the other claimers have stopped: a claim of the new leaf would be fair game. */
		atomic_fetch_sub(&claimers_in, 1);
		while (atomic_load(&claimers_in))
			sched_yield();
		s2_install(&vm, &slot, FAKE_PA + me * 2 * PAGE_SIZE, S2_R);
		return NULL;
	}
	atomic_fetch_sub(&claimers_in, 1);
	return NULL;
}

static void claim_races_fill(void)
{
	unsigned rounds = 0;

	for (u64 end = now_ms() + phase_ms; now_ms() < end; rounds++) {
		unsigned long tlbi0 = atomic_load(&fake_tlbi_ipa);
		paddr_t pa;

		vm_up();
		atomic_store(&claim_wins, 0);
		atomic_store(&claim_fill_ok, 0);
		atomic_store(&claim_done, false);
		atomic_store(&claimers_in, NTHREADS - 1);
		run(claim_thread);
		pa = s2_lookup(&vm, IPA(CLAIM_IPA));
		CHECK(atomic_load(&claim_fill_ok) == 1 && atomic_load(&claim_wins) == 1, "%u fills, %u claims won\n",
		      atomic_load(&claim_fill_ok), atomic_load(&claim_wins));
		CHECK(pa != FAKE_PA && pa != FAKE_PA + PAGE_SIZE && pa > FAKE_PA, "the install did not stay\n");
		CHECK(atomic_load(&fake_tlbi_ipa) == tlbi0 + 1, "%lu invalidations for one claim\n",
		      atomic_load(&fake_tlbi_ipa) - tlbi0);
		vm_down(1);
	}
	printf("claims racing a fill: %u rounds, %u claims found nothing yet\n", rounds, atomic_load(&claims_before));
}

/*
 * ---- a model of the vCPUs' TLBs: replacement never leaves a stale entry ----
 *
 * Thread 0 replaces the leaf of one page over and over (s2_claim, then
 * s2_install of the next "generation" of page), and calls a generation dead
 * once s2_claim has returned: its page may then belong to anyone. The others
 * are vCPUs with a one-entry TLB each: a miss walks (s2_get) and caches what
 * it found, a hit uses the cached page, which must not be dead. A walk and
 * its caching are one step under the vCPU's lock, as a hardware walk and its
 * TLB fill are one step for a TLBI that completes after them; the fake's
 * broadcast invalidation takes each vCPU's lock to drop the entry.
 */
#define MODEL_IPA (RAM + 0x7000)
#define GEN_PA(g) (FAKE_PA + (g) * PAGE_SIZE)

struct model_tlb {
	pthread_mutex_t lock;
	bool valid;
	u64 gen;
};
static struct model_tlb tlb[NTHREADS];
static _Atomic u64 dead_below; /* generations below this have left the VM */
static _Atomic bool model_stop, model_ignore_tlbi;
static _Atomic unsigned long stale_uses, tlb_hits, tlb_walks;

static void model_tlbi(struct vm *v, u64 ipa, enum fake_tlbi_kind kind)
{
	(void)v;
	if (kind == FAKE_TLBI_LOCAL || atomic_load(&model_ignore_tlbi))
		return;
	for (unsigned c = 1; c < NTHREADS; c++) {
		pthread_mutex_lock(&tlb[c].lock);
		if (kind == FAKE_TLBI_VM || ipa == MODEL_IPA)
			tlb[c].valid = false;
		pthread_mutex_unlock(&tlb[c].lock);
	}
}

static void *model_thread(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;

	if (me == 0) {
		pthread_barrier_wait(&barrier);
		for (u64 gen = 1; !atomic_load(&model_stop); gen++) {
			struct s2_slot slot;
			struct s2_leaf old;

			if (s2_claim(&vm, IPA(MODEL_IPA), &slot, &old)) {
				FAIL("claim of a mapped page failed\n");
				break;
			}
			CHECK(old.pa == GEN_PA(gen - 1), "claimed the wrong page\n");
			atomic_store(&dead_below, gen); /* generation gen - 1 is gone */
			s2_install(&vm, &slot, GEN_PA(gen), S2_R | S2_W);
			sched_yield(); /* let the vCPUs use it */
		}
		return NULL;
	}
	/* Every vCPU caches the first page before the replacing starts. */
	struct s2_leaf l;
	unsigned spins = 0;

	pthread_mutex_lock(&tlb[me].lock);
	tlb[me].valid = s2_get(&vm, IPA(MODEL_IPA), &l);
	tlb[me].gen = 0;
	pthread_mutex_unlock(&tlb[me].lock);
	pthread_barrier_wait(&barrier);
	while (!atomic_load(&model_stop)) {
		pthread_mutex_lock(&tlb[me].lock);
		if (tlb[me].valid) {
			atomic_fetch_add(&tlb_hits, 1);
			if (tlb[me].gen < atomic_load(&dead_below))
				atomic_fetch_add(&stale_uses, 1);
		} else if (s2_get(&vm, IPA(MODEL_IPA), &l)) {
			atomic_fetch_add(&tlb_walks, 1);
			tlb[me].valid = true;
			tlb[me].gen = (l.pa - FAKE_PA) / PAGE_SIZE; /* GEN_PA's inverse */
		}
		pthread_mutex_unlock(&tlb[me].lock);
		if (!(++spins % 16))
			sched_yield(); /* two cores: let the replacing thread in */
	}
	return NULL;
}

static unsigned long model_run(bool ignore_tlbi)
{
	vm_up();
	for (unsigned c = 0; c < NTHREADS; c++)
		pthread_mutex_init(&tlb[c].lock, NULL);
	if (s2_map_page(&vm, IPA(MODEL_IPA), GEN_PA(0), S2_R | S2_W, 0))
		FAIL("first map failed\n");
	atomic_store(&dead_below, 0);
	atomic_store(&model_stop, false);
	atomic_store(&model_ignore_tlbi, ignore_tlbi);
	atomic_store(&stale_uses, 0);
	fake_tlbi_observer = model_tlbi;
	{
		pthread_t t[NTHREADS];
		u64 start = now_ms();

		pthread_barrier_init(&barrier, NULL, NTHREADS);
		for (uintptr_t k = 0; k < NTHREADS; k++)
			pthread_create(&t[k], NULL, model_thread, (void *)k);
		/* The phase's time, and enough done to tell (a loaded machine may need longer), within 20 s. */
		while (now_ms() < start + 20000 &&
		       (now_ms() < start + phase_ms ||
			(!ignore_tlbi && (atomic_load(&dead_below) < 200 || atomic_load(&tlb_walks) < 200))))
			sched_yield();
		atomic_store(&model_stop, true);
		for (unsigned k = 0; k < NTHREADS; k++)
			pthread_join(t[k], NULL);
		pthread_barrier_destroy(&barrier);
	}
	fake_tlbi_observer = NULL;
	for (unsigned c = 0; c < NTHREADS; c++)
		pthread_mutex_destroy(&tlb[c].lock);
	vm_down(1);
	return atomic_load(&stale_uses);
}

static void replacement_keeps_tlbs_honest(void)
{
	unsigned long stale, replaced;

	/* The model itself: with the invalidations dropped, it must see stale entries used. */
	stale = model_run(true);
	CHECK(stale > 0, "the TLB model saw no stale use with invalidations ignored: it checks nothing\n");
	atomic_store(&tlb_hits, 0);
	atomic_store(&tlb_walks, 0);
	stale = model_run(false);
	replaced = atomic_load(&dead_below);
	printf("replacement: %lu replacements, %lu TLB hits, %lu walks, %lu stale uses\n", replaced,
	       atomic_load(&tlb_hits), atomic_load(&tlb_walks), stale);
	CHECK(stale == 0, "%lu uses of a page after it left the VM\n", stale);
	CHECK(replaced >= 200 && atomic_load(&tlb_walks) >= 200, "too little happened to tell\n");
}

/*
 * ---- swap and busy entries are never taken for mappings ---------------------
 *
 * Thread 0 moves one leaf around the swap's states as core/swap.c does:
 * valid, claimed (busy), in transit to a slot, swapped, in transit back, and
 * valid again (s2_install). Each invalid state it stores must stay exactly
 * as stored until it changes it (compare-and-swap from it). The others look
 * with every walker entry point and must see a mapping only when one is
 * there: never a slot number as an address, never a fill over it.
 */
#define SWAP_IPA (RAM + 0x9000)
#define SWAP_PA (FAKE_PA + 0x123000)
static _Atomic unsigned long swap_cycles, seen_valid, seen_invalid;

static void *swap_thread(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;

	pthread_barrier_wait(&barrier);
	if (me == 0) {
		while (!atomic_load(&model_stop)) {
			struct s2_slot slot;
			struct s2_leaf old;
			u64 slot_no = 77 + atomic_load(&swap_cycles) % 1000, e;
			const u64 steps[] = { s2e_make(slot_no, true), s2e_make(slot_no, false), s2e_make(slot_no, true) };

			/* A walker setting the access flag meanwhile makes a claim fail: again, as swap.c would. */
			while (s2_claim(&vm, IPA(SWAP_IPA), &slot, &old))
				CHECK(s2_lookup(&vm, IPA(SWAP_IPA)) == SWAP_PA, "the mapped leaf went away\n");
			e = S2E_BUSY;
			for (unsigned k = 0; k < 3; k++) {
				u64 was = e;

				if (!atomic_compare_exchange_strong(slot.e, &e, steps[k]))
					FAIL("an invalid leaf 0x%llx was changed to 0x%llx by a walker\n",
					     (unsigned long long)was, (unsigned long long)e);
				e = steps[k];
			}
			if (atomic_load(slot.e) != e)
				FAIL("a transit leaf was changed by a walker\n");
			s2_install(&vm, &slot, SWAP_PA, S2_R | S2_W | S2_AHEAD);
			atomic_fetch_add(&swap_cycles, 1);
		}
		return NULL;
	}
	while (!atomic_load(&model_stop)) {
		struct s2_leaf l;
		struct s2_slot slot;
		paddr_t pa = s2_lookup(&vm, IPA(SWAP_IPA));
		int rc;

		CHECK(pa == 0 || pa == SWAP_PA, "s2_lookup gave 0x%llx\n", (unsigned long long)pa);
		if (s2_get(&vm, IPA(SWAP_IPA), &l)) {
			atomic_fetch_add(&seen_valid, 1);
			CHECK(l.pa == SWAP_PA && (l.prot & ~S2_AHEAD) == (S2_R | S2_W), "s2_get gave 0x%llx/%x\n",
			      (unsigned long long)l.pa, l.prot);
		} else {
			atomic_fetch_add(&seen_invalid, 1);
		}
		(void)s2_test_clear_young(&vm, IPA(SWAP_IPA));
		(void)s2_set_young(&vm, IPA(SWAP_IPA));
		CHECK(s2_grant_exec(&vm, IPA(SWAP_IPA), 77UL << PAGE_SHIFT) == -ENOENT,
		      "execution granted on a page not mapped there\n");
		rc = s2_prepare(&vm, IPA(SWAP_IPA), me, &slot);
		CHECK(rc == -EEXIST, "s2_prepare on a leaf that is never empty said %d\n", rc);
		if (rc == -EEXIST)
			CHECK(s2_fill(&vm, &slot, FAKE_PA, S2_R) == -EEXIST, "a fill over a non-empty leaf\n");
		CHECK(s2_next_leaf(&vm, SWAP_IPA, SWAP_IPA + PAGE_SIZE) >= SWAP_IPA, "s2_next_leaf went back\n");
		sched_yield(); /* two cores: let the swapping thread in */
	}
	return NULL;
}

static void swap_and_busy_never_valid(void)
{
	pthread_t t[NTHREADS];
	u64 start = now_ms();

	vm_up();
	if (s2_map_page(&vm, IPA(SWAP_IPA), SWAP_PA, S2_R | S2_W, 0))
		FAIL("first map failed\n");
	atomic_store(&model_stop, false);
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (uintptr_t k = 0; k < NTHREADS; k++)
		pthread_create(&t[k], NULL, swap_thread, (void *)k);
	/* The phase's time, and enough seen to tell (a loaded machine may need longer), within 20 s. */
	while (now_ms() < start + 20000 &&
	       (now_ms() < start + phase_ms || atomic_load(&swap_cycles) < 100 || atomic_load(&seen_valid) < 50 ||
		atomic_load(&seen_invalid) < 50))
		sched_yield();
	atomic_store(&model_stop, true);
	for (unsigned k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&barrier);
	printf("swap states: %lu cycles, walkers saw it mapped %lu times, not %lu times\n",
	       atomic_load(&swap_cycles), atomic_load(&seen_valid), atomic_load(&seen_invalid));
	CHECK(atomic_load(&swap_cycles) >= 100 && atomic_load(&seen_invalid) >= 50 && atomic_load(&seen_valid) >= 50,
	      "too little happened to tell\n");
	vm_down(1);
}

/* ---- teardown: swapped leaves give their slots, busy and empty ones nothing ---- */

static _Atomic unsigned long slots_given;

static void count_slot(struct vm *v, u64 slot, unsigned cpu)
{
	(void)v, (void)cpu;
	CHECK(slot == 5, "destroy gave slot %llu\n", (unsigned long long)slot);
	atomic_fetch_add(&slots_given, 1);
}

static void destroy_sorts_leaves(void)
{
	struct s2_slot slot;

	vm_up();
	CHECK(!s2_map_page(&vm, IPA(RAM), FAKE_PA, S2_R, 0), "map failed\n");
	CHECK(s2_prepare(&vm, IPA(RAM + PAGE_SIZE), 0, &slot) == 0, "prepare failed\n");
	atomic_store(slot.e, s2e_make(5, false));
	CHECK(s2_map_page(&vm, IPA(RAM + PAGE_SIZE), FAKE_PA, S2_R, 0) == -EEXIST, "a fill over a swapped leaf\n");
	CHECK(!s2_lookup(&vm, IPA(RAM + PAGE_SIZE)), "a swapped leaf looked up as a mapping\n");
	CHECK(!s2_map_page(&vm, IPA(1UL << 40), FAKE_PA + PAGE_SIZE, S2_R, 0), "a map far away failed\n");
	atomic_store(&slots_given, 0);
	atomic_store(&pages_given, 0);
	s2_destroy(&vm, count_page, count_slot, NULL, 0);
	CHECK(atomic_load(&slots_given) == 1 && atomic_load(&pages_given) == 2, "destroy gave %lu slots, %lu pages\n",
	      atomic_load(&slots_given), atomic_load(&pages_given));
	CHECK(atomic_load(&fake_tlbi_vm) >= 1, "destroy invalidated no TLB\n");
}

/*
 * ---- a block split by racing claims while others walk it ------------------
 *
 * Thread 0 and 1 each claim their own page of one block (a merge, an
 * eviction, a balloon page): one of them splits it, the other finds the
 * split done or waits for it. Threads 2 and 3 walk the block meanwhile:
 * every page they see mapped must be the block's page at its offset, and no
 * fill may ever be prepared inside the block (a second mapping).
 */
#define BLK_IPA (RAM + 0x400000)
static paddr_t blk_pa;
static _Atomic unsigned long blk_seen, runs_given;

static void give_page(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i = pool_pidx_of(&pool, pa);

	(void)ipa;
	CHECK(i != PIDX_NONE, "a page not the pool's given back\n");
	atomic_fetch_sub(&v->pool.active, 1);
	vmpool_give_back(&v->pool, cpu, i, false);
	atomic_fetch_add(&pages_given, 1);
}

static bool give_run(struct vm *v, ipa_t ipa, pidx_t first, unsigned cpu)
{
	(void)ipa;
	vmpool_give_back_run(&v->pool, cpu, first);
	atomic_fetch_add(&pages_given, RUN_PAGES);
	atomic_fetch_add(&runs_given, 1);
	return true;
}

static void *block_thread(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;

	pthread_barrier_wait(&barrier);
	if (me < 2) {
		u64 k = 3 + 200 * me;
		struct s2_slot slot;
		struct s2_leaf old;

		if (s2_claim(&vm, IPA(BLK_IPA + k * PAGE_SIZE), &slot, &old)) {
			FAIL("claim of page %llu of a block failed\n", (unsigned long long)k);
			return NULL;
		}
		CHECK(old.pa == blk_pa + k * PAGE_SIZE, "claimed page %llu maps the wrong page\n", (unsigned long long)k);
		s2_install(&vm, &slot, old.pa, old.prot);
		return NULL;
	}
	for (unsigned round = 0; round < 4; round++)
		for (u64 k = me; k < RUN_PAGES; k += 5) {
			struct s2_slot slot;
			struct s2_leaf l;
			int rc;

			if (s2_get(&vm, IPA(BLK_IPA + k * PAGE_SIZE), &l)) {
				atomic_fetch_add(&blk_seen, 1);
				CHECK(l.pa == blk_pa + k * PAGE_SIZE, "page %llu of the block maps the wrong page\n",
				      (unsigned long long)k);
			}
			rc = s2_prepare(&vm, IPA(BLK_IPA + k * PAGE_SIZE), me, &slot);
			CHECK(rc == -EAGAIN || rc == -EEXIST, "a fill prepared inside a mapped block: %d\n", rc);
		}
	return NULL;
}

static void block_down(u32 pages)
{
	vm_down_by(give_page, give_run, pages);
	CHECK(atomic_load(&vm.pool.active) == 0, "%u data pages still counted\n", atomic_load(&vm.pool.active));
}

static void block_splits_under_racing_claims(void)
{
	unsigned rounds = 0;
	u32 runs0 = pool_free_runs(&pool);

	/* Unsplit, a block goes back as a run (the next block can have it). */
	vm_up();
	CHECK(s2_fill_block(&vm, IPA(BLK_IPA + 0x1000), 0) == 0, "a block fill failed\n");
	CHECK(s2_fill_block(&vm, IPA(BLK_IPA), 0) == -EEXIST, "a block filled twice\n");
	CHECK(atomic_load(&vm.pool.active) == RUN_PAGES, "a block counts %u pages\n", atomic_load(&vm.pool.active));
	block_down(RUN_PAGES);
	CHECK(pool_free_runs(&pool) == runs0, "the run did not come back whole: %u runs, %u before\n",
	      pool_free_runs(&pool), runs0);
	for (u64 end = now_ms() + phase_ms; now_ms() < end; rounds++) {
		vm_up();
		if (s2_fill_block(&vm, IPA(BLK_IPA), 0)) {
			FAIL("a block fill failed\n");
			break;
		}
		blk_pa = s2_lookup(&vm, IPA(BLK_IPA));
		run(block_thread);
		CHECK(atomic_load(&vm.s2.splits) == 1 && atomic_load(&vm.s2.blocks) == 0, "%llu splits, %u blocks\n",
		      (unsigned long long)atomic_load(&vm.s2.splits), atomic_load(&vm.s2.blocks));
		for (u64 k = 0; k < RUN_PAGES; k++)
			CHECK(s2_lookup(&vm, IPA(BLK_IPA + k * PAGE_SIZE)) == blk_pa + k * PAGE_SIZE,
			      "page %llu moved in the split\n", (unsigned long long)k);
		/* Split, with every page still in place: the run comes back whole all the same. */
		atomic_store(&runs_given, 0);
		block_down(RUN_PAGES);
		CHECK(atomic_load(&runs_given) == 1 && pool_free_runs(&pool) == runs0, "a split run did not come back\n");
	}
	printf("blocks: %u rounds of a split raced by claims and walks, %lu pages seen mapped\n", rounds,
	       atomic_load(&blk_seen));
	CHECK(atomic_load(&blk_seen) > 0, "the walkers saw nothing\n");
}

int main(void)
{
	void *desc;
	const char *ms = getenv("QUIRE_STRESS_MS");

	if (ms)
		phase_ms = strtoull(ms, NULL, 10);
	hostmem_pool(&pool, MACH_BASE, MACH_PAGES, &desc);
	atomic_store(&fake_arch_yield, true);
	fills_of_one_page();
	fills_of_one_table();
	claim_races_fill();
	block_splits_under_racing_claims();
	replacement_keeps_tlbs_honest();
	atomic_store(&fake_arch_yield, false);
	swap_and_busy_never_valid();
	destroy_sorts_leaves();
	CHECK(pool_free_pages(&pool) == MACH_PAGES, "%u of %u pages free at the end\n", pool_free_pages(&pool),
	      MACH_PAGES);
	free(desc);
	hostmem_reset();
	if (atomic_load(&errors)) {
		fprintf(stderr, "test_stage2: %u errors\n", atomic_load(&errors));
		return 1;
	}
	printf("test_stage2: all passed\n");
	return 0;
}
