/*
 * The access-violation handler (core/violation.c) over the real pools and a
 * the real stage-2 walker (core/stage2.c) on the fake arch (fake_arch.c): first touch, races between vCPUs, faults outside
 * RAM, unhandled classes, quota and machine exhaustion, and teardown.
 * Faults are built as ESR/FAR/HPFAR values and go through fault_decode.
 *
 * Tests named regression_* pin down defects found in the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arch/fault_decode.h>
#include <quire/errno.h>
#include <quire/share.h>
#include <quire/vm.h>
#include "fake_arch.h"
#include "hostmem.h"

#define MACH_BASE 0x80000000UL
#define RAM GUEST_RAM_BASE
#define PG(n) (RAM + (u64)(n) * PAGE_SIZE)
#define REGION_PAGES 512 /* one last-level table per 2 MiB */
#define T FAKE_S2_PATH_TABLES /* tables below the root on the way to the first leaf */

#define FSC_TRANS_L3 0x07
#define FSC_TRANS_L2 0x06
#define FSC_AF_L3 0x0b
#define FSC_PERM_L3 0x0f
#define FSC_ADDR_L1 0x01
#define FSC_SEA 0x10
#define FSC_ALIGN 0x21
#define FSC_TLB_CONFLICT 0x30
#define ISS_S1PTW (1u << 7)
#define IMG_BASE 0x20000000UL /* an image: machine memory outside the pool */

static struct pool pool;
static void *desc;
static u32 total;
static struct vm vm, vm2;

/* ---- helpers ---------------------------------------------------------- */

static void setup_machine(u32 pages)
{
	hostmem_pool(&pool, MACH_BASE, pages, &desc);
	total = pages;
}

static void setup_vm(struct vm *v, u8 id, u64 ram_size, u32 quota)
{
	memset(v, 0, sizeof(*v));
	v->id = id;
	snprintf(v->name, sizeof(v->name), "vm%u", id);
	v->ram_base = IPA(RAM);
	v->ram_size = ram_size;
	vmpool_init(&v->pool, &pool, id, quota);
	assert_int_equal(s2_init(v, 0), 0);
}

static void setup(u32 machine_pages, u64 ram_size, u32 quota)
{
	setup_machine(machine_pages);
	setup_vm(&vm, 1, ram_size, quota);
}

static _Atomic unsigned given_back, bad_give_back;

static void give_back(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i = pool_pidx_of(v->pool.vmm, pa);
	struct mpage *d;

	if (i == PIDX_NONE) {
		atomic_fetch_add(&bad_give_back, 1);
		return;
	}
	d = pool_desc(v->pool.vmm, i);
	if (d->gpn != ipa.bits >> PAGE_SHIFT || d->owner != v->id || !(atomic_load(&d->flags) & MP_ACTIVE))
		atomic_fetch_add(&bad_give_back, 1);
	atomic_fetch_sub(&v->pool.active, 1);
	vmpool_give_back(&v->pool, cpu, i, false);
	atomic_fetch_add(&given_back, 1);
}

/* Tear a VM down and check it gave back every page it held. */
static void destroy_vm(struct vm *v, unsigned cpu)
{
	struct fake_s2_stats st;
	pidx_t i;

	fake_s2_stats(v, &st);
	atomic_store(&given_back, 0);
	atomic_store(&bad_give_back, 0);
	s2_destroy(v, give_back, NULL, NULL, cpu);
	assert_int_equal(atomic_load(&given_back), st.leaves);
	assert_int_equal(atomic_load(&bad_give_back), 0);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, cpu, i, true);
	assert_int_equal(atomic_load(&v->pool.charged), 0);
	assert_int_equal(atomic_load(&v->pool.pgtables), 0);
	assert_int_equal(atomic_load(&v->pool.active), 0);
	assert_int_equal(v->s2.root, 0);
}

static void *share_meta_mem;
static _Atomic bool freed_any; /* destroy_flushes_tlb_before_freeing */

static int teardown(void **state)
{
	(void)state;
	atomic_store(&fake_arch_yield, false);
	if (vm.s2.root)
		s2_destroy(&vm, give_back, NULL, NULL, 0);
	if (vm2.s2.root)
		s2_destroy(&vm2, give_back, NULL, NULL, 0);
	memset(&vm, 0, sizeof(vm));
	memset(&vm2, 0, sizeof(vm2));
	free(desc);
	desc = NULL;
	free(share_meta_mem);
	share_meta_mem = NULL;
	hostmem_reset();
	fake_arch_reset();
	atomic_store(&freed_any, false);
	return 0;
}

static enum vio_result fault_esr(struct vm *v, u64 ipa, u64 esr, unsigned cpu)
{
	struct s2_fault f;

	if (!fault_decode(esr, 0xffff000000000000ULL | (ipa & 0xfff), (ipa >> 12) << 4, &f))
		abort();
	return violation_handle(v, &f, cpu);
}

static enum vio_result fault_on(struct vm *v, u64 ipa, u32 fsc, bool write, bool instr, unsigned cpu)
{
	struct s2_fault f;
	u64 esr = (u64)(instr ? 0x20 : 0x24) << 26 | 1u << 25 | (write ? 1u << 6 : 0) | fsc;

	if (!fault_decode(esr, 0xffff000000000000ULL | (ipa & 0xfff), (ipa >> 12) << 4, &f))
		abort();
	return violation_handle(v, &f, cpu);
}

static enum vio_result touch(u64 ipa)
{
	return fault_on(&vm, ipa, FSC_TRANS_L3, true, false, 0);
}

/* The books of one VM alone on the machine, with nothing running. */
static void check_books(struct vm *v)
{
	struct fake_s2_stats st;
	u32 charged = atomic_load(&v->pool.charged);

	fake_s2_stats(v, &st);
	assert_true(charged <= v->pool.quota);
	assert_int_equal(atomic_load(&v->pool.pgtables), st.tables);
	assert_int_equal(atomic_load(&v->pool.active), st.leaves);
	/* A block is one fill for its 512 pages. */
	assert_int_equal(atomic_load(&v->pool.fills), st.leaves - 511 * atomic_load(&v->s2.block_fills));
	assert_int_equal(charged, st.leaves + st.tables + atomic_load(&v->pool.idle.count));
}

static void check_machine(void)
{
	u32 held = 0;

	if (vm.s2.root)
		held += atomic_load(&vm.pool.charged);
	if (vm2.s2.root)
		held += atomic_load(&vm2.pool.charged);
	assert_int_equal(pool_free_pages(&pool) + held, total);
}

/* The page mapped at ipa: mapped, owned, zero-filled. */
static pidx_t check_mapped(struct vm *v, u64 ipa)
{
	paddr_t pa = s2_lookup(v, IPA(ALIGN_DOWN(ipa, PAGE_SIZE)));
	pidx_t i;
	struct mpage *d;

	assert_int_not_equal(pa, 0);
	assert_int_equal(s2_lookup(v, IPA(ipa)), pa);
	i = pool_pidx_of(&pool, pa);
	assert_int_not_equal(i, PIDX_NONE);
	d = pool_desc(&pool, i);
	assert_int_equal(d->gpn, ipa >> PAGE_SHIFT);
	assert_int_equal(d->owner, v->id);
	assert_int_equal(atomic_load(&d->flags), MP_ACTIVE | MP_ZEROED);
	assert_int_equal(atomic_load(&d->refcount), 1);
	/* Executable only if an instruction fetch filled it (see regression_fill_* below). */
	assert_int_equal(fake_s2_prot(v, IPA(ipa)) & ~S2_X, S2_R | S2_W);
	return i;
}

/* ---- single vCPU -------------------------------------------------------- */

static void first_touch_maps_once(void **state)
{
	struct fake_s2_stats st;
	pidx_t i;

	(void)state;
	setup(1024, MiB(64), 1000);
	assert_int_equal(atomic_load(&vm.pool.charged), 1); /* the root table */
	assert_int_equal(atomic_load(&vm.pool.pgtables), 1);
	/* Quire's pages are dirty: the guest must still see zeros. */
	assert_int_equal(touch(PG(5) + 0x123), VIO_MAPPED);
	i = check_mapped(&vm, PG(5) + 0x123);
	assert_true(hostmem_page_is_zero(pool_pa(&pool, i)));
	assert_int_equal(atomic_load(&vm.pool.fills), 1);
	assert_int_equal(atomic_load(&vm.pool.active), 1);
	assert_int_equal(atomic_load(&vm.pool.pgtables), 1 + T);
	assert_int_equal(atomic_load(&vm.pool.charged), 2 + T);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 0);
	fake_s2_stats(&vm, &st);
	assert_int_equal(st.leaves, 1);
	assert_int_equal(s2_lookup(&vm, IPA(PG(4))), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(6))), 0);

	/* Same 2 MiB: no new table. Another 2 MiB: one more. Reads and fetches map too. */
	assert_int_equal(fault_on(&vm, PG(6), FSC_TRANS_L3, false, false, 0), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.pool.charged), 3 + T);
	assert_int_equal(fault_on(&vm, PG(REGION_PAGES + 1), FSC_TRANS_L2, false, true, 3), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.pool.charged), 5 + T);
	check_mapped(&vm, PG(6));
	check_mapped(&vm, PG(REGION_PAGES + 1));
	/* The first and last pages of RAM. */
	assert_int_equal(touch(PG(0)), VIO_MAPPED);
	assert_int_equal(touch(RAM + MiB(64) - 1), VIO_MAPPED);
	check_mapped(&vm, RAM + MiB(64) - PAGE_SIZE);
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 0);
	assert_int_equal(pool_free_pages(&pool), total);
}

static void second_fault_on_same_page_races(void **state)
{
	struct fake_s2_stats st;
	paddr_t pa;
	u32 charged, free_pages;

	(void)state;
	setup(1024, MiB(64), 1000);
	assert_int_equal(touch(PG(7)), VIO_MAPPED);
	pa = s2_lookup(&vm, IPA(PG(7)));
	memcpy(hostmem_ptr(pa), "guest data", 11);
	charged = atomic_load(&vm.pool.charged);
	free_pages = pool_free_pages(&pool);
	/* A stale TLB entry, or a vCPU that lost the race: nothing changes. */
	for (int k = 0; k < 3; k++) {
		assert_int_equal(fault_on(&vm, PG(7) + 8 * k, FSC_TRANS_L3, k & 1, false, k), VIO_RACED);
		assert_int_equal(atomic_load(&vm.pool.charged), charged);
		assert_int_equal(pool_free_pages(&pool), free_pages);
	}
	assert_int_equal(s2_lookup(&vm, IPA(PG(7))), pa);
	assert_memory_equal(hostmem_ptr(pa), "guest data", 11);
	assert_int_equal(atomic_load(&vm.pool.fills), 1);
	assert_int_equal(atomic_load(&vm.pool.active), 1);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 0);
	fake_s2_stats(&vm, &st);
	assert_int_equal(st.leaves, 1);
	check_books(&vm);
	check_machine();
}

static void outside_ram(void **state)
{
	static const u64 where[] = { 0, RAM - 1, RAM - PAGE_SIZE, RAM + MiB(16), RAM + MiB(16) + 0x123,
				     0x09000000, 1ULL << 40, 0xffffffffff000ULL };

	(void)state;
	setup(256, MiB(16), 1000);
	for (unsigned k = 0; k < ARRAY_SIZE(where); k++) {
		assert_int_equal(touch(where[k]), VIO_SEA_OUTSIDE);
		assert_int_equal(fault_on(&vm, where[k], FSC_PERM_L3, false, true, 1), VIO_SEA_OUTSIDE);
	}
	assert_int_equal(atomic_load(&vm.pool.charged), 1);
	assert_int_equal(atomic_load(&vm.pool.fills), 0);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 0);
	check_books(&vm);
	check_machine();
}

static void other_fault_classes_unhandled(void **state)
{
	static const u32 fsc[] = { FSC_PERM_L3, 0x0d, FSC_ADDR_L1, FSC_SEA, FSC_ALIGN };

	(void)state;
	setup(256, MiB(16), 1000);
	for (unsigned k = 0; k < ARRAY_SIZE(fsc); k++) {
		/* A write permission fault is sharing's (copy-on-write), a fetch's is execution's: below. */
		if ((fsc[k] & 0x3c) != 0x0c) {
			assert_int_equal(fault_on(&vm, PG(3), fsc[k], true, false, 0), VIO_UNHANDLED);
			assert_int_equal(fault_on(&vm, PG(3), fsc[k], false, true, 0), VIO_UNHANDLED);
		}
	}
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), 0);
	/* On a mapped page too. */
	assert_int_equal(touch(PG(3)), VIO_MAPPED);
	u32 charged = atomic_load(&vm.pool.charged);
	assert_int_equal(fault_on(&vm, PG(3), FSC_PERM_L3, false, false, 0), VIO_UNHANDLED);
	assert_int_equal(atomic_load(&vm.pool.charged), charged);
	assert_int_equal(atomic_load(&vm.pool.fills), 1);
	check_books(&vm);
	check_machine();
}

/*
 * A write permission fault where the page is writable already, or not
 * mapped at all, can only be stale (a TLB entry since replaced): the guest
 * retries, and nothing changes.
 */
/* An access-flag fault (the swap clock cleared the flag; the CPU does not set it): set it, retry. */
static void access_flag_fault_sets_the_flag(void **state)
{
	(void)state;
	setup(256, MiB(16), 1000);
	/* Nothing mapped: retry, and the retry is a translation fault; nothing is filled by it. */
	assert_int_equal(fault_on(&vm, PG(3), FSC_AF_L3, false, false, 0), VIO_RACED);
	assert_int_equal(fault_on(&vm, PG(3), 0x09, true, false, 0), VIO_RACED);
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), 0);
	assert_int_equal(touch(PG(3)), VIO_MAPPED);
	assert_true(fake_s2_young(&vm, IPA(PG(3))));
	assert_true(s2_test_clear_young(&vm, IPA(PG(3))));
	assert_false(fake_s2_young(&vm, IPA(PG(3))));
	assert_false(s2_test_clear_young(&vm, IPA(PG(3))));
	assert_int_equal(fault_on(&vm, PG(3), FSC_AF_L3, true, false, 0), VIO_RACED);
	assert_true(fake_s2_young(&vm, IPA(PG(3))));
	assert_int_equal(atomic_load(&vm.pool.fills), 1);
	check_books(&vm);
}

static void stale_write_permission_fault_retries(void **state)
{
	(void)state;
	setup(256, MiB(16), 1000);
	assert_int_equal(fault_on(&vm, PG(3), FSC_PERM_L3, true, false, 0), VIO_RACED);
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), 0);
	assert_int_equal(touch(PG(3)), VIO_MAPPED);
	paddr_t pa = s2_lookup(&vm, IPA(PG(3)));
	u32 charged = atomic_load(&vm.pool.charged);
	assert_int_equal(fault_on(&vm, PG(3), FSC_PERM_L3, true, false, 0), VIO_RACED);
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), pa);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(3))), S2_R | S2_W);
	assert_int_equal(atomic_load(&vm.pool.charged), charged);
	assert_int_equal(atomic_load(&vm.share.cow), 0);
	check_books(&vm);
	check_machine();
}

static void quota_exhaustion(void **state)
{
	(void)state;
	/* Root + the tables to the first leaf + 10 data pages. */
	setup(1024, MiB(64), 11 + T);
	for (unsigned k = 0; k < 10; k++)
		assert_int_equal(touch(PG(k)), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.pool.charged), 11 + T);
	for (unsigned k = 10; k < 13; k++) {
		assert_int_equal(touch(PG(k)), VIO_SEA_QUOTA);
		assert_int_equal(s2_lookup(&vm, IPA(PG(k))), 0);
		assert_int_equal(atomic_load(&vm.pool.quota_hits), k - 9);
	}
	assert_int_equal(touch(PG(3 * REGION_PAGES)), VIO_SEA_QUOTA);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 4);
	assert_int_equal(atomic_load(&vm.pool.charged), 11 + T);
	assert_int_equal(atomic_load(&vm.pool.fills), 10);
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 0);
	assert_int_equal(pool_free_pages(&pool), total);
}

static void quota_exhausted_by_table_page(void **state)
{
	(void)state;
	setup(1024, MiB(64), 11 + T);
	for (unsigned k = 0; k < 9; k++)
		assert_int_equal(touch(PG(k)), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.pool.charged), 10 + T);
	/* The new region's table takes the last unit of quota; then no data page can be had. */
	assert_int_equal(touch(PG(REGION_PAGES)), VIO_SEA_QUOTA);
	assert_int_equal(atomic_load(&vm.pool.charged), 11 + T);
	assert_int_equal(atomic_load(&vm.pool.pgtables), 2 + T);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 1);
	assert_int_equal(s2_lookup(&vm, IPA(PG(REGION_PAGES))), 0);
	check_books(&vm);
	check_machine();
	/* The quota is used up for every page now, under the old table too. */
	assert_int_equal(touch(PG(9)), VIO_SEA_QUOTA);
	assert_int_equal(atomic_load(&vm.pool.charged), 11 + T);
	check_books(&vm);
	check_machine();
}

static void machine_exhaustion(void **state)
{
	unsigned k;

	(void)state;
	setup(64, MiB(64), 100000);
	/* Root and the tables to the first leaf, then data pages until one page is left. */
	for (k = 0; pool_free_pages(&pool) > 1; k++)
		assert_int_equal(touch(PG(k)), VIO_MAPPED);
	assert_int_equal(k, 64 - 2 - T);
	/* The last page becomes the new region's table; no data page is left for it. */
	assert_int_equal(touch(PG(REGION_PAGES)), VIO_SEA_NOMEM);
	assert_int_equal(pool_free_pages(&pool), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(REGION_PAGES))), 0);
	check_books(&vm);
	check_machine();
	assert_int_equal(touch(PG(k)), VIO_SEA_NOMEM);
	assert_int_equal(touch(PG(k + 1)), VIO_SEA_NOMEM);
	assert_int_equal(touch(PG(2 * REGION_PAGES)), VIO_SEA_NOMEM);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 0);
	assert_int_equal(atomic_load(&vm.pool.charged), total);
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 0);
	assert_int_equal(pool_free_pages(&pool), total);
}

static void idle_set_used_first(void **state)
{
	unsigned long z0;

	(void)state;
	setup(256, MiB(16), 100);
	assert_int_equal(vmpool_reserve_idle(&vm.pool, 0, T + 3), T + 3);
	assert_int_equal(atomic_load(&vm.pool.charged), T + 4);
	z0 = atomic_load(&hostmem_zero_calls);
	/* Data page and table pages all from the idle set: no new charge, no zeroing. */
	assert_int_equal(touch(PG(1)), VIO_MAPPED);
	assert_int_equal(atomic_load(&hostmem_zero_calls), z0);
	assert_int_equal(atomic_load(&vm.pool.charged), T + 4);
	assert_int_equal(atomic_load(&vm.pool.idle.count), 2);
	check_mapped(&vm, PG(1));
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 0);
	assert_int_equal(pool_free_pages(&pool), total);
}

static void two_vms_share_the_machine(void **state)
{
	paddr_t a, b;

	(void)state;
	setup(256, MiB(16), 100);
	setup_vm(&vm2, 2, MiB(16), 100);
	assert_int_equal(touch(PG(0)), VIO_MAPPED);
	assert_int_equal(fault_on(&vm2, PG(0), FSC_TRANS_L3, true, false, 1), VIO_MAPPED);
	a = s2_lookup(&vm, IPA(PG(0)));
	b = s2_lookup(&vm2, IPA(PG(0)));
	assert_int_not_equal(a, b);
	check_mapped(&vm, PG(0));
	check_mapped(&vm2, PG(0));
	check_books(&vm);
	check_books(&vm2);
	check_machine();
	destroy_vm(&vm2, 1);
	check_mapped(&vm, PG(0));
	check_machine();
	destroy_vm(&vm, 0);
	assert_int_equal(pool_free_pages(&pool), total);
}

/* ---- racing vCPUs ------------------------------------------------------- */

#define NTHREADS 4
#define NPAGES 600
#define PASSES 3

static u64 race_page[NPAGES];
static _Atomic unsigned mapped_count[NPAGES];
static _Atomic unsigned result_count[VIO_UNHANDLED + 1];
static pthread_barrier_t barrier;

struct racer {
	unsigned cpu;
	unsigned seed;
};

static void *racer(void *arg)
{
	struct racer *r = arg;
	unsigned order[NPAGES];

	for (unsigned k = 0; k < NPAGES; k++)
		order[k] = k;
	pthread_barrier_wait(&barrier);
	for (int pass = 0; pass < PASSES; pass++) {
		for (unsigned k = NPAGES - 1; k > 0; k--) {
			unsigned j = rand_r(&r->seed) % (k + 1), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		for (unsigned k = 0; k < NPAGES; k++) {
			unsigned p = order[k];
			enum vio_result v = fault_on(&vm, race_page[p] + (k & 0xff8), FSC_TRANS_L3, k & 1,
						     false, r->cpu);

			atomic_fetch_add(&result_count[v], 1);
			if (v == VIO_MAPPED)
				atomic_fetch_add(&mapped_count[p], 1);
		}
	}
	return NULL;
}

static void run_racers(void)
{
	pthread_t t[NTHREADS];
	struct racer r[NTHREADS];

	memset(mapped_count, 0, sizeof(mapped_count));
	memset(result_count, 0, sizeof(result_count));
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (unsigned k = 0; k < NTHREADS; k++) {
		r[k].cpu = k;
		r[k].seed = 1234 + k * 77;
		assert_int_equal(pthread_create(&t[k], NULL, racer, &r[k]), 0);
	}
	for (unsigned k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&barrier);
}

static void vcpus_race_on_the_same_pages(void **state)
{
	struct fake_s2_stats st;
	u64 table_races = 0;

	(void)state;
	setup_machine(4096);
	/* Every third page of 7 MiB: four 2 MiB tables, racing for those too. */
	for (unsigned k = 0; k < NPAGES; k++)
		race_page[k] = PG(3 * k);
	for (int round = 0; round < 8; round++) {
		setup_vm(&vm, 1, MiB(64), 100000);
		run_racers();
		for (unsigned k = 0; k < NPAGES; k++)
			assert_int_equal(atomic_load(&mapped_count[k]), 1);
		assert_int_equal(result_count[VIO_MAPPED], NPAGES);
		assert_int_equal(result_count[VIO_RACED], NTHREADS * PASSES * NPAGES - NPAGES);
		assert_int_equal(atomic_load(&vm.pool.fills), NPAGES);
		assert_int_equal(atomic_load(&vm.pool.charged), atomic_load(&vm.pool.fills) +
				 atomic_load(&vm.pool.pgtables) + atomic_load(&vm.pool.idle.count));
		fake_s2_stats(&vm, &st);
		assert_int_equal(st.tables, 1 + (T - 1) + 4);
		assert_int_equal(st.leaves, NPAGES);
		table_races += st.table_races;
		for (unsigned k = 0; k < NPAGES; k++) {
			pidx_t i = check_mapped(&vm, race_page[k]);

			assert_true(hostmem_page_is_zero(pool_pa(&pool, i)));
		}
		check_books(&vm);
		check_machine();
		destroy_vm(&vm, round % NTHREADS);
		assert_int_equal(pool_free_pages(&pool), total);
	}
	printf("%llu table installs lost to a racing vCPU\n", (unsigned long long)table_races);
}

static void vcpus_race_under_quota_pressure(void **state)
{
	(void)state;
	setup_machine(4096);
	for (unsigned k = 0; k < NPAGES; k++)
		race_page[k] = PG(3 * k);
	for (int round = 0; round < 4; round++) {
		u32 mapped = 0;

		setup_vm(&vm, 1, MiB(64), 300);
		run_racers();
		for (unsigned k = 0; k < NPAGES; k++) {
			assert_true(atomic_load(&mapped_count[k]) <= 1);
			mapped += atomic_load(&mapped_count[k]);
			assert_int_equal(s2_lookup(&vm, IPA(race_page[k])) != 0, atomic_load(&mapped_count[k]));
		}
		assert_int_equal(result_count[VIO_MAPPED], mapped);
		assert_int_equal(result_count[VIO_SEA_NOMEM], 0);
		assert_int_equal(result_count[VIO_SEA_QUOTA], atomic_load(&vm.pool.quota_hits));
		assert_true(result_count[VIO_SEA_QUOTA] > 0);
		assert_int_equal(mapped + atomic_load(&vm.pool.pgtables) + atomic_load(&vm.pool.idle.count),
				 atomic_load(&vm.pool.charged));
		assert_true(atomic_load(&vm.pool.charged) <= 300);
		check_books(&vm);
		check_machine();
		destroy_vm(&vm, 0);
		assert_int_equal(pool_free_pages(&pool), total);
	}
}

static _Atomic unsigned one_page_results[VIO_UNHANDLED + 1];

static void *one_page_racer(void *arg)
{
	unsigned cpu = (unsigned)(uintptr_t)arg;

	pthread_barrier_wait(&barrier);
	atomic_fetch_add(&one_page_results[fault_on(&vm, PG(REGION_PAGES + 9), FSC_TRANS_L3, true, false, cpu)], 1);
	return NULL;
}

/* All vCPUs fault on one page of an untouched 2 MiB at once: they race for the table too. */
static void vcpus_race_on_one_page(void **state)
{
	struct fake_s2_stats st;
	u64 table_races = 0;

	(void)state;
	setup_machine(256);
	atomic_store(&fake_arch_yield, true);
	for (int round = 0; round < 200; round++) {
		pthread_t t[NTHREADS];

		setup_vm(&vm, 1, MiB(16), 1000);
		memset(one_page_results, 0, sizeof(one_page_results));
		pthread_barrier_init(&barrier, NULL, NTHREADS);
		for (unsigned k = 0; k < NTHREADS; k++)
			assert_int_equal(pthread_create(&t[k], NULL, one_page_racer, (void *)(uintptr_t)k), 0);
		for (unsigned k = 0; k < NTHREADS; k++)
			pthread_join(t[k], NULL);
		pthread_barrier_destroy(&barrier);
		assert_int_equal(one_page_results[VIO_MAPPED], 1);
		assert_int_equal(one_page_results[VIO_RACED], NTHREADS - 1);
		fake_s2_stats(&vm, &st);
		table_races += st.table_races;
		assert_int_equal(st.tables, 1 + T);
		assert_int_equal(atomic_load(&vm.pool.charged) - atomic_load(&vm.pool.idle.count), 2 + T);
		check_mapped(&vm, PG(REGION_PAGES + 9));
		check_books(&vm);
		check_machine();
		destroy_vm(&vm, 0);
		assert_int_equal(pool_free_pages(&pool), total);
	}
	atomic_store(&fake_arch_yield, false);
	printf("one page, 200 rounds: %llu table installs lost to a racing vCPU\n",
	       (unsigned long long)table_races);
}

static void destroy_returns_every_page(void **state)
{
	(void)state;
	setup(2048, MiB(64), 100000);
	assert_int_equal(vmpool_reserve_idle(&vm.pool, 1, 5), 5);
	for (unsigned k = 0; k < 40; k++)
		assert_int_equal(fault_on(&vm, PG(k * 97), FSC_TRANS_L3, k & 1, k & 2, k % MAX_CPUS), VIO_MAPPED);
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 2);
	assert_int_equal(pool_free_pages(&pool), total);
	for (unsigned c = 0; c < MAX_CPUS; c++)
		pool_drain_cache(&pool, c);
	for (u32 i = 0; i < total; i++) {
		assert_int_equal(atomic_load(&pool_desc(&pool, i)->flags) & ~MP_ZEROED, MP_IDLE);
		assert_int_equal(pool_desc(&pool, i)->owner, 0);
	}
	assert_int_equal(atomic_load(&pool.free.count) + atomic_load(&pool.zeroed.count) + pool_free_runs(&pool) * RUN_PAGES,
			 total);
}

/* ---- regressions -------------------------------------------------------- */

/*
 * violation_handle takes (and charges) a new page before it learns that the
 * page is already mapped. A vCPU that faults on a page another vCPU just
 * mapped, or through a stale TLB entry, gets an external abort instead of
 * VIO_RACED when the VM is at its quota (and a quota hit is counted).
 */
static void regression_raced_fault_at_quota_is_refused(void **state)
{
	(void)state;
	setup(1024, MiB(64), 11 + T);
	for (unsigned k = 0; k < 10; k++)
		assert_int_equal(touch(PG(k)), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.pool.charged), vm.pool.quota);
	assert_int_equal(touch(PG(4)), VIO_RACED);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 0);
}

/* The same when the machine is out of pages: VIO_SEA_NOMEM for a mapped page. */
static void regression_raced_fault_with_machine_empty_is_refused(void **state)
{
	(void)state;
	setup(16, MiB(64), 1000);
	for (unsigned k = 0; k < 15 - T; k++)
		assert_int_equal(touch(PG(k)), VIO_MAPPED);
	assert_int_equal(pool_free_pages(&pool), 0);
	assert_int_equal(touch(PG(4)), VIO_RACED);
}

/*
 * A raced fault takes a page from the VM's idle set and gives it to the VMM
 * pool (vmpool_give_back) rather than back to the idle set: each spurious
 * fault shrinks the VM's reservation by one page.
 */
static void regression_raced_fault_drains_idle_set(void **state)
{
	(void)state;
	setup(256, MiB(16), 100);
	assert_int_equal(touch(PG(0)), VIO_MAPPED);
	assert_int_equal(vmpool_reserve_idle(&vm.pool, 0, 4), 4);
	u32 charged = atomic_load(&vm.pool.charged);
	assert_int_equal(touch(PG(0)), VIO_RACED);
	assert_int_equal(atomic_load(&vm.pool.idle.count), 4);
	assert_int_equal(atomic_load(&vm.pool.charged), charged);
}

/* ---- caches, TLBs and stage-1 walks (issue 14) ----------------------------- */

/*
 * A page filled for a data access is execute-never; the first fetch from it
 * invalidates its instruction-cache lines, then makes it executable. A page
 * first touched by a fetch is synced before it is mapped. So no page is ever
 * executable with its previous owner's instructions possibly cached.
 */
static void regression_fill_syncs_icache_before_exec(void **state)
{
	paddr_t pa;

	(void)state;
	setup(256, MiB(16), 1000);
	/* A previous owner ran code from every page of the machine. */
	assert_int_equal(touch(PG(1)), VIO_MAPPED);
	pa = s2_lookup(&vm, IPA(PG(1)));
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(1))), S2_R | S2_W);
	assert_int_equal(atomic_load(&fake_arch_icache_syncs), 0); /* the fill path pays nothing */
	/* The first fetch: a permission fault; synced, then executable, same page. */
	assert_int_equal(fault_on(&vm, PG(1) + 0x40, FSC_PERM_L3, false, true, 0), VIO_MAPPED);
	assert_int_equal(s2_lookup(&vm, IPA(PG(1))), pa);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(1))), S2_RWX);
	assert_int_equal(atomic_load(&fake_arch_icache_syncs), 1);
	assert_int_equal(atomic_load(&fake_tlbi_local), 1);
	/* Another vCPU's stale XN entry: nothing to grant, its TLB entry goes, it retries. */
	assert_int_equal(fault_on(&vm, PG(1), FSC_PERM_L3, false, true, 1), VIO_RACED);
	assert_int_equal(atomic_load(&fake_tlbi_local), 2);
	/* First touch by a fetch: synced and executable at once. */
	assert_int_equal(fault_on(&vm, PG(2), FSC_TRANS_L3, false, true, 0), VIO_MAPPED);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(2))), S2_RWX);
	assert_int_equal(atomic_load(&fake_arch_icache_syncs), 2);
	/* A fetch from a page not mapped at all (unmapped meanwhile): retry, nothing granted. */
	assert_int_equal(fault_on(&vm, PG(3), FSC_PERM_L3, false, true, 0), VIO_RACED);
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), 0);
	assert_int_equal(atomic_load(&fake_arch_x_unsynced), 0);
	assert_int_equal(atomic_load(&vm.pool.fills), 2);
	check_books(&vm);
	check_machine();
}

/* Pages that go from one VM to the next are synced again before they run code there. */
static void regression_reused_page_synced_for_its_next_owner(void **state)
{
	paddr_t pa;

	(void)state;
	setup(256, MiB(16), 1000);
	setup_vm(&vm2, 2, MiB(16), 1000);
	assert_int_equal(fault_on(&vm, PG(4), FSC_TRANS_L3, false, true, 0), VIO_MAPPED);
	pa = s2_lookup(&vm, IPA(PG(4)));
	destroy_vm(&vm, 0);
	/* The same CPU's cache hands the same page to the next VM. */
	for (unsigned g = 0; g < 8 && s2_lookup(&vm2, IPA(PG(g))) != pa; g++)
		assert_int_equal(fault_on(&vm2, PG(g), FSC_TRANS_L3, true, false, 0), VIO_MAPPED);
	for (unsigned g = 0; g < 8; g++)
		assert_int_equal(fault_on(&vm2, PG(g), FSC_PERM_L3, false, true, 0),
				 s2_lookup(&vm2, IPA(PG(g))) ? VIO_MAPPED : VIO_RACED);
	assert_int_equal(atomic_load(&fake_arch_x_unsynced), 0);
}

/* Sharing over an image, for the S1PTW tests: the image page at IMG_BASE mapped at PG(g). */
static void setup_image(struct vm *v, u32 g)
{
	struct region img = { IMG_BASE, PAGE_SIZE };
	u8 *ip = hostmem_add(IMG_BASE, PAGE_SIZE);

	memset(ip, 0x3c, PAGE_SIZE);
	share_meta_mem = aligned_alloc(PAGE_SIZE, share_meta_bytes(pool.ndesc));
	assert_non_null(share_meta_mem);
	share_init(&pool, share_meta_mem, &img, 1, 0x1234);
	share_vm_init(v);
	assert_int_equal(share_map_image(v, IPA(PG(g)), IMG_BASE, 0), 0);
	assert_int_equal(fake_s2_prot(v, IPA(PG(g))), S2_R | S2_X);
}

/*
 * The guest's stage-1 walker sets an access or dirty flag (FEAT_HAFDBS) in a
 * table that sits in a read-only page: a stage-2 permission fault with
 * S1PTW, from a data or an instruction abort, WnR not set. It is a write:
 * the VM gets its own copy, instead of an external abort.
 */
static void regression_s1ptw_permission_fault_is_a_write(void **state)
{
	u64 dabt = 0x24UL << 26 | 1u << 25 | ISS_S1PTW | FSC_PERM_L3;
	u64 iabt = 0x20UL << 26 | 1u << 25 | ISS_S1PTW | FSC_PERM_L3;

	(void)state;
	setup(256, MiB(16), 1000);
	setup_image(&vm, 5);
	assert_int_equal(fault_esr(&vm, PG(5) + 0x18, dabt, 0), VIO_MAPPED);
	assert_int_not_equal(pool_pidx_of(&pool, s2_lookup(&vm, IPA(PG(5)))), PIDX_NONE);
	assert_true(fake_s2_prot(&vm, IPA(PG(5))) & S2_W);
	assert_int_equal(((u8 *)hostmem_ptr(s2_lookup(&vm, IPA(PG(5)))))[0x18], 0x3c);
	assert_int_equal(atomic_load(&vm.share.cow), 1);
	/* The same from the walk for an instruction fetch; never a fetch of the table page itself. */
	assert_int_equal(share_map_image(&vm, IPA(PG(6)), IMG_BASE, 0), 0);
	assert_int_equal(fault_esr(&vm, PG(6), iabt, 0), VIO_MAPPED);
	assert_true(fake_s2_prot(&vm, IPA(PG(6))) & S2_W);
	assert_int_equal(atomic_load(&vm.share.cow), 2);
	/* A translation fault on a walk reads (WnR is no guide there): a data page, not executable. */
	assert_int_equal(fault_esr(&vm, PG(7), 0x20UL << 26 | ISS_S1PTW | FSC_TRANS_L3, 0), VIO_MAPPED);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(7))), S2_R | S2_W);
	assert_int_equal(atomic_load(&fake_arch_x_unsynced), 0);
	share_vm_stop(&vm);
}

/* A TLB conflict abort: this CPU's TLB forgets the VM and the guest retries; HPFAR is no guide. */
static void regression_tlb_conflict_flushes_and_retries(void **state)
{
	(void)state;
	setup(256, MiB(16), 1000);
	assert_int_equal(fault_on(&vm, PG(2), FSC_TLB_CONFLICT, false, false, 0), VIO_RACED);
	assert_int_equal(fault_on(&vm, PG(2), FSC_TLB_CONFLICT, false, true, 1), VIO_RACED);
	/* HPFAR_EL2 is UNKNOWN for it: an address outside RAM changes nothing. */
	assert_int_equal(fault_on(&vm, RAM - PAGE_SIZE, FSC_TLB_CONFLICT, true, false, 0), VIO_RACED);
	assert_int_equal(atomic_load(&fake_tlbi_local), 3);
	assert_int_equal(s2_lookup(&vm, IPA(PG(2))), 0);
	assert_int_equal(atomic_load(&vm.pool.fills), 0);
	check_books(&vm);
}

/* vm_copy_in: a page copied but not mapped (no room for its table) goes back, uncharged. */
static void regression_copy_in_gives_back_an_unmapped_page(void **state)
{
	static u8 image[PAGE_SIZE + 100];
	struct fake_s2_stats st;

	(void)state;
	memset(image, 0xa5, sizeof(image));
	/* Room for the root table and one page: the page is taken, its level-3 table is refused. */
	setup(256, MiB(16), 2);
	vm.cfg.sharing = SHARE_OFF;
	assert_int_equal(vm_copy_in(&vm, RAM, image, sizeof(image), 0), -EDQUOT);
	fake_s2_stats(&vm, &st);
	assert_int_equal(st.leaves, 0);
	assert_int_equal(atomic_load(&vm.pool.active), 0);
	assert_int_equal(atomic_load(&vm.pool.charged), st.tables);
	check_machine();
	teardown(NULL);
	/* With room, both pages (the second one partial, zeroed past its 100 bytes) are mapped and counted. */
	setup(256, MiB(16), 1000);
	vm.cfg.sharing = SHARE_OFF;
	assert_int_equal(vm_copy_in(&vm, RAM, image, sizeof(image), 0), 0);
	assert_int_equal(atomic_load(&vm.pool.active), 2);
	assert_int_equal(((u8 *)hostmem_ptr(s2_lookup(&vm, IPA(PG(1)))))[99], 0xa5);
	assert_int_equal(((u8 *)hostmem_ptr(s2_lookup(&vm, IPA(PG(1)))))[100], 0);
	/* Mapped executable at once, so synced first. */
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(0))), S2_RWX);
	assert_int_equal(atomic_load(&fake_arch_x_unsynced), 0);
	/* A resident limit of one page refuses the second: the first stays, counted. */
	teardown(NULL);
	setup(256, MiB(16), 1000);
	vm.cfg.sharing = SHARE_OFF;
	vm.pool.data_limit = 1;
	assert_int_equal(vm_copy_in(&vm, RAM, image, sizeof(image), 0), -EDQUOT);
	assert_int_equal(atomic_load(&vm.pool.active), 1);
	fake_s2_stats(&vm, &st);
	assert_int_equal(atomic_load(&vm.pool.charged), st.tables + 1);
}

/* s2_destroy: the VM's TLB entries go before its first page goes back (the fake keeps the arch's order). */
static _Atomic unsigned long flushes_at_first_free;

static void give_back_after_flush(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	if (!atomic_exchange(&freed_any, true))
		atomic_store(&flushes_at_first_free, atomic_load(&fake_tlbi_vm));
	give_back(v, ipa, pa, cpu);
}

static void destroy_flushes_tlb_before_freeing(void **state)
{
	(void)state;
	setup(256, MiB(16), 1000);
	for (unsigned g = 0; g < 4; g++)
		assert_int_equal(touch(PG(g)), VIO_MAPPED);
	s2_destroy(&vm, give_back_after_flush, NULL, NULL, 0);
	assert_true(atomic_load(&freed_any));
	assert_int_equal(atomic_load(&flushes_at_first_free), 1);
}

static void class_names(void **state)
{
	(void)state;
	assert_string_equal(fault_class_name(FAULT_TRANSLATION), "translation fault");
	assert_string_equal(fault_class_name(FAULT_PERMISSION), "permission fault");
	for (int c = FAULT_ADDR_SIZE; c <= FAULT_OTHER; c++) {
		assert_non_null(fault_class_name(c));
		for (int d = FAULT_ADDR_SIZE; d < c; d++)
			assert_string_not_equal(fault_class_name(c), fault_class_name(d));
	}
	assert_string_equal(fault_class_name(FAULT_OTHER + 1), "invalid fault class");
	assert_string_equal(fault_class_name((enum fault_class)-1), "invalid fault class");
}

/* ---- 2 MiB blocks --------------------------------------------------------- */

#define BLOCK REGION_PAGES

static void seq_faults(u64 from, u64 n)
{
	for (u64 k = from; k < from + n; k++)
		assert_int_equal(fault_on(&vm, PG(k), FSC_TRANS_L3, true, false, 0), VIO_MAPPED);
}

/* The block at page b: its pages mapped in order on one run, each owned, zeroed, counted once. */
static paddr_t check_block(u64 b)
{
	paddr_t base = s2_lookup(&vm, IPA(PG(b)));

	assert_int_equal(base & (S2_BLOCK_SIZE - 1), 0);
	for (u64 k = 0; k < BLOCK; k++) {
		check_mapped(&vm, PG(b + k) + 8 * k);
		assert_int_equal(s2_lookup(&vm, IPA(PG(b + k))), base + k * PAGE_SIZE);
		assert_true(hostmem_page_is_zero(base + k * PAGE_SIZE));
	}
	return base;
}

static void fill_ahead_maps_a_block_after_a_sequential_walk(void **state)
{
	(void)state;
	setup(8192, MiB(64), 100000);
	/* The first block page by page: nothing came before it. */
	seq_faults(0, BLOCK);
	assert_int_equal(atomic_load(&vm.s2.block_fills), 0);
	/* Its next page starts the next block: all of it at once. */
	seq_faults(BLOCK, 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 1);
	assert_int_equal(atomic_load(&vm.pool.fills), BLOCK + 1);
	assert_int_equal(atomic_load(&vm.pool.active), 2 * BLOCK);
	assert_true(s2_is_block(&vm, IPA(PG(BLOCK + 77))));
	check_block(BLOCK);
	/* The walk goes on into the one after: a block again. */
	seq_faults(2 * BLOCK, 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 2);
	check_block(2 * BLOCK);
	/* Not a walk: a first touch far away, then its neighbour's block start from elsewhere. */
	seq_faults(6 * BLOCK + 9, 1);
	seq_faults(5 * BLOCK, 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 2);
	/* An instruction fetch continuing a walk gets a page, not a block (blocks are execute-never). */
	seq_faults(7 * BLOCK - 1, 1);
	assert_int_equal(fault_on(&vm, PG(7 * BLOCK), FSC_TRANS_L3, false, true, 0), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.s2.blocks), 2);
	assert_false(s2_is_block(&vm, IPA(PG(7 * BLOCK))));
	/* Set/way emulation cleans a block's 512 pages as it does pages. */
	fake_arch_reset();
	assert_int_equal(s2_flush_dcache(&vm), atomic_load(&vm.pool.active));
	assert_int_equal(atomic_load(&fake_arch_dcache_pages), atomic_load(&vm.pool.active));
	check_books(&vm);
	check_machine();
	destroy_vm(&vm, 1);
	check_machine();
}

static void no_block_past_the_quota_the_limit_or_the_ram(void **state)
{
	(void)state;
	/* Room for the first block's pages and tables, not for a second block's 512 pages. */
	setup(8192, MiB(64), BLOCK + 300);
	seq_faults(0, BLOCK + 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 0);
	check_books(&vm);
	destroy_vm(&vm, 0);
	/* A resident limit below the block's pages. */
	setup_vm(&vm, 1, MiB(64), 100000);
	vm.pool.data_limit = BLOCK + 100;
	seq_faults(0, BLOCK + 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 0);
	destroy_vm(&vm, 0);
	/* RAM that ends inside the block: never a block past its end. */
	setup_vm(&vm, 1, MiB(3), 100000);
	seq_faults(0, BLOCK + 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 0);
	destroy_vm(&vm, 0);
	/* Blocks off for the VM. */
	setup_vm(&vm, 1, MiB(64), 100000);
	vm.s2.blocks_on = false;
	seq_faults(0, BLOCK + 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 0);
	destroy_vm(&vm, 0);
	check_machine();
}

static void a_fetch_or_a_claim_splits_a_block_and_keeps_its_data(void **state)
{
	struct s2_slot slot;
	struct s2_leaf old;
	paddr_t base;

	(void)state;
	setup(8192, MiB(64), 100000);
	seq_faults(0, BLOCK + 1);
	base = check_block(BLOCK);
	for (u64 k = 0; k < BLOCK; k++)
		memset(hostmem_ptr(base + k * PAGE_SIZE), (int)(k & 0xff) | 1, PAGE_SIZE);
	atomic_store(&fake_tlbi_ipa, 0);
	/* The first fetch from page 88 of it: split, then execute allowed there only. */
	assert_int_equal(fault_on(&vm, PG(BLOCK + 88), FSC_PERM_L3, false, true, 2), VIO_MAPPED);
	assert_int_equal(atomic_load(&vm.s2.blocks), 0);
	assert_int_equal(atomic_load(&vm.s2.splits), 1);
	assert_true(atomic_load(&fake_tlbi_ipa) >= 1); /* break: the TLBs forgot the block */
	assert_false(s2_is_block(&vm, IPA(PG(BLOCK + 88))));
	assert_true(fake_s2_prot(&vm, IPA(PG(BLOCK + 88))) & S2_X);
	assert_false(fake_s2_prot(&vm, IPA(PG(BLOCK + 89))) & S2_X);
	for (u64 k = 0; k < BLOCK; k++) {
		const u8 *p = hostmem_ptr(base + k * PAGE_SIZE);

		assert_int_equal(s2_lookup(&vm, IPA(PG(BLOCK + k))), base + k * PAGE_SIZE);
		assert_int_equal(fake_s2_prot(&vm, IPA(PG(BLOCK + k))) & (S2_R | S2_W), S2_R | S2_W);
		assert_int_equal(p[0], (k & 0xff) | 1);
		assert_int_equal(p[PAGE_SIZE - 1], (k & 0xff) | 1);
	}
	/* The split took no page: its table was held since the fill. */
	check_books(&vm);
	/* A claim of a page of another block (sharing, swap, balloon) splits it too, and only it. */
	seq_faults(2 * BLOCK, 1);
	assert_int_equal(atomic_load(&vm.s2.blocks), 1);
	assert_int_equal(s2_claim(&vm, IPA(PG(2 * BLOCK + 5)), &slot, &old), 0);
	assert_int_equal(atomic_load(&vm.s2.splits), 2);
	assert_int_equal(old.pa, s2_lookup(&vm, IPA(PG(2 * BLOCK))) + 5 * PAGE_SIZE);
	assert_int_equal(s2_lookup(&vm, IPA(PG(2 * BLOCK + 5))), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(2 * BLOCK + 6))), old.pa + PAGE_SIZE);
	s2_install(&vm, &slot, old.pa, old.prot);
	check_books(&vm);
	destroy_vm(&vm, 3);
	check_machine();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(first_touch_maps_once, teardown),
		cmocka_unit_test_teardown(second_fault_on_same_page_races, teardown),
		cmocka_unit_test_teardown(outside_ram, teardown),
		cmocka_unit_test_teardown(other_fault_classes_unhandled, teardown),
		cmocka_unit_test_teardown(stale_write_permission_fault_retries, teardown),
		cmocka_unit_test_teardown(access_flag_fault_sets_the_flag, teardown),
		cmocka_unit_test_teardown(quota_exhaustion, teardown),
		cmocka_unit_test_teardown(quota_exhausted_by_table_page, teardown),
		cmocka_unit_test_teardown(machine_exhaustion, teardown),
		cmocka_unit_test_teardown(idle_set_used_first, teardown),
		cmocka_unit_test_teardown(two_vms_share_the_machine, teardown),
		cmocka_unit_test_teardown(vcpus_race_on_the_same_pages, teardown),
		cmocka_unit_test_teardown(vcpus_race_on_one_page, teardown),
		cmocka_unit_test_teardown(vcpus_race_under_quota_pressure, teardown),
		cmocka_unit_test_teardown(destroy_returns_every_page, teardown),
		cmocka_unit_test_teardown(regression_raced_fault_at_quota_is_refused, teardown),
		cmocka_unit_test_teardown(regression_raced_fault_with_machine_empty_is_refused, teardown),
		cmocka_unit_test_teardown(regression_raced_fault_drains_idle_set, teardown),
		cmocka_unit_test_teardown(regression_fill_syncs_icache_before_exec, teardown),
		cmocka_unit_test_teardown(regression_reused_page_synced_for_its_next_owner, teardown),
		cmocka_unit_test_teardown(regression_s1ptw_permission_fault_is_a_write, teardown),
		cmocka_unit_test_teardown(regression_tlb_conflict_flushes_and_retries, teardown),
		cmocka_unit_test_teardown(destroy_flushes_tlb_before_freeing, teardown),
		cmocka_unit_test_teardown(regression_copy_in_gives_back_an_unmapped_page, teardown),
		cmocka_unit_test_teardown(fill_ahead_maps_a_block_after_a_sequential_walk, teardown),
		cmocka_unit_test_teardown(no_block_past_the_quota_the_limit_or_the_ram, teardown),
		cmocka_unit_test_teardown(a_fetch_or_a_claim_splits_a_block_and_keeps_its_data, teardown),
		cmocka_unit_test(class_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
