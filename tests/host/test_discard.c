/*
 * Pages leaving a running VM (core/discard.c, what the balloon does with a
 * page its guest gave back), on the real pools, the real stage-2 walker on
 * the fake arch, real sharing and real swap over a fake disk (fake_blk.c):
 * a private page, an untouched one, one shared with another VM, the zero
 * page, an image page, a sharing candidate, a page out in swap, a clean
 * page read back from swap, and pages that must stay because they are on
 * their way to or from the disk or claimed by another changer. After each,
 * the books: the VM's counters against its leaves, and every machine page
 * and swap slot accounted for; after the VM goes, nothing left behind.
 * The machine and the VMs' set-up are virtio_helpers.c's.
 *
 * Threads discarding while others touch the same pages: test_discard_stress.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <quire/discard.h>
#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>
#include "../../core/share_priv.h"
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "fake_blk.h"
#include "hostmem.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

#define MACH_PAGES 1024
#define DISK_PAGES 256

static u32 free_start; /* free pages once sharing and swap took theirs */
static struct vm vm2;

/* ---- the machine and its VMs (virtio_helpers.c) ------------------------------ */

/* A pool, sharing over it with one image page, and a swap disk whose requests wait for fake_blk_complete. */
static void setup(void)
{
	setup_machine(MACH_PAGES);
	setup_swap_disk(DISK_PAGES);
	free_start = pool_free_pages(&pool);
}

/*
 * VM id in *v: 16 MiB of RAM; with limit, swap: at most limit pages
 * resident, the rest in swap; without, a quota of 300 pages.
 */
static void vm_make(struct vm *v, u8 id, enum vm_sharing pol, u32 limit)
{
	setup_vm(v, id, limit ? limit + 64 : 300, pol);
	setup_vm_swap(v, limit, limit ? DISK_PAGES : 0);
	assert_int_equal(v->swap.on, limit != 0);
}

/* The VM's counters against its leaves (nothing on the disk). */
static void check_books(struct vm *v)
{
	struct fake_s2_stats st;
	u32 charged = atomic_load(&v->pool.charged), active = atomic_load(&v->pool.active);
	u32 swapped = 0;

	fake_s2_stats(v, &st);
	for (u64 ipa = RAM; ipa < RAM + RAM_SIZE; ipa += PAGE_SIZE) {
		u64 e = fake_s2_raw(v, IPA(ipa));

		assert_false(s2e_transit(e));
		assert_true(e != S2E_BUSY);
		swapped += s2e_swapped(e);
	}
	assert_int_equal(atomic_load(&v->pool.pgtables), st.tables);
	assert_int_equal(active + atomic_load(&v->pool.zero) + atomic_load(&v->pool.shared), st.leaves);
	assert_int_equal(charged, active + st.tables + atomic_load(&v->pool.idle.count));
	assert_int_equal(atomic_load(&v->pool.swapped), swapped);
}

/* Every machine page: free, charged to a VM, shared, or the zero page and the swap map (free_start). */
static void check_machine(void)
{
	u32 charged = 0;
	struct swap_stats st;
	u64 slots = 0;

	for (unsigned id = 1; id <= 2; id++) {
		struct vm *v = registry[id - 1];

		if (v) {
			check_books(v);
			charged += atomic_load(&v->pool.charged);
			slots += atomic_load(&v->swap.slots);
		}
	}
	assert_int_equal(pool_free_pages(&pool) + charged + share_shared_pages(), free_start);
	swap_stats(&st);
	assert_int_equal(st.used, slots);
}

static _Atomic unsigned given_back;

static void give_back(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	atomic_fetch_add(&given_back, 1);
	swap_page_release(v, ipa, pa, cpu);
}

/* Tear a VM down as vm_reap does, and check it gave back every page and slot it held. */
static void destroy_vm(struct vm *v)
{
	struct fake_s2_stats st;
	pidx_t i;

	assert_true(swap_vm_idle(v));
	share_vm_stop(v);
	fake_s2_stats(v, &st);
	atomic_store(&given_back, 0);
	s2_destroy(v, give_back, swap_release, NULL, 0);
	assert_int_equal(atomic_load(&given_back), st.leaves);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, 0, i, true);
	vmpool_fini(&v->pool);
	assert_int_equal(atomic_load(&v->pool.charged), 0);
	assert_int_equal(atomic_load(&v->pool.pgtables), 0);
	assert_int_equal(atomic_load(&v->pool.active), 0);
	assert_int_equal(atomic_load(&v->pool.zero), 0);
	assert_int_equal(atomic_load(&v->pool.shared), 0);
	assert_int_equal(atomic_load(&v->pool.swapped), 0);
	assert_int_equal(atomic_load(&v->swap.slots), 0);
	registry[v->id - 1] = NULL;
}

/* Every page and slot back once every VM is gone. */
static void check_empty(void)
{
	struct swap_stats st;

	swap_stats(&st);
	assert_int_equal(st.used, 0);
	assert_int_equal(fake_blk_pending(), 0);
	assert_int_equal(share_shared_pages(), 0);
	assert_int_equal(pool_free_pages(&pool), free_start);
	assert_int_equal(atomic_load(&pool.promised), 0);
}

/* ---- guest memory ------------------------------------------------------------- */

static void pattern(u8 *b, u8 seed)
{
	for (unsigned k = 0; k < PAGE_SIZE; k++)
		b[k] = (u8)(seed + k * 31 + (k >> 8));
	b[0] |= 1; /* never all zero */
}

/* gmem_copy as a device does it, the disk completing what it waits for. */
static void copy(struct vm *v, u64 ipa, void *buf, u64 len, bool to_guest)
{
	for (unsigned tries = 0; tries < 100; tries++) {
		int rc = gmem_copy(v, ipa, buf, len, to_guest, 0);

		if (!rc)
			return;
		if (rc != -EAGAIN)
			fail_msg("gmem_copy at %#lx said %d", ipa, rc);
		fake_blk_complete(~0u, 0);
	}
	fail_msg("gmem_copy at %#lx: no progress", ipa);
}

static void put_page(struct vm *v, u64 ipa, u8 seed)
{
	static u8 b[PAGE_SIZE];

	pattern(b, seed);
	copy(v, ipa, b, PAGE_SIZE, true);
}

/* The page at ipa reads as pattern seed (or zeros, seed 0). */
static void expect_page(struct vm *v, u64 ipa, u8 seed)
{
	static u8 want[PAGE_SIZE], got[PAGE_SIZE];

	if (seed)
		pattern(want, seed);
	else
		memset(want, 0, PAGE_SIZE);
	memset(got, 0xee, PAGE_SIZE);
	copy(v, ipa, got, PAGE_SIZE, false);
	assert_memory_equal(got, want, PAGE_SIZE);
}

static void scan_pass(struct vm *v)
{
	for (unsigned n = 0; share_scan_next(v, 0) == SCAN_PAGE; n++)
		assert_true(n <= RAM_SIZE / PAGE_SIZE);
}

/* Entries in shared page s's reverse map, and whether (v, ipa) is among them. */
static unsigned rmap_count(pidx_t s, const struct vm *v, u64 ipa, bool *found)
{
	u32 want = (u32)v->id << RMAP_VM_SHIFT | (u32)(ipa >> PAGE_SHIFT);
	unsigned n = 0;

	*found = false;
	for (u32 e = 0; e < sh.rmap_cap; e++)
		if (sh.rmap[e].vm_gpn && sh.rmap[e].page == s) {
			n++;
			*found |= sh.rmap[e].vm_gpn == want;
		}
	return n;
}

/* Is page i anywhere in the sharing table? */
static bool in_table(pidx_t i)
{
	for (u32 b = 0; b <= sh.bucket_mask; b++)
		for (pidx_t p = sh.bucket[b]; p != PIDX_NONE; p = sh.meta[p].hnext)
			if (p == i)
				return true;
	return false;
}

static bool slot_used(u64 s)
{
	return sw.map[s / SWAP_MAP_BITS][s % SWAP_MAP_BITS / 64] >> (s % 64) & 1;
}

/* ---- private pages ------------------------------------------------------------- */

static void private_page_leaves(void **state)
{
	u32 free0, charged0, active0, tables0;
	unsigned long tlbi0;
	paddr_t pa;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_OFF, 0);
	put_page(&vm, PG(5), 1);
	put_page(&vm, PG(6), 2);
	pa = s2_lookup(&vm, IPA(PG(5)));
	assert_int_not_equal(pa, 0);
	check_machine();
	free0 = pool_free_pages(&pool);
	charged0 = atomic_load(&vm.pool.charged);
	active0 = atomic_load(&vm.pool.active);
	tables0 = atomic_load(&vm.pool.pgtables);
	tlbi0 = atomic_load(&fake_tlbi_ipa);

	assert_int_equal(vm_discard_page(&vm, PG(5), 0), 1);
	assert_int_equal(s2_lookup(&vm, IPA(PG(5))), 0);
	assert_int_equal(fake_s2_raw(&vm, IPA(PG(5))), 0);
	assert_int_equal(pool_free_pages(&pool), free0 + 1);
	assert_int_equal(atomic_load(&vm.pool.charged), charged0 - 1);
	assert_int_equal(atomic_load(&vm.pool.active), active0 - 1);
	assert_int_equal(atomic_load(&vm.pool.pgtables), tables0);
	/* Break-before-make: no TLB keeps the page it no longer has. */
	assert_int_equal(atomic_load(&fake_tlbi_ipa), tlbi0 + 1);
	check_machine();
	/* Its neighbour keeps its bytes. */
	expect_page(&vm, PG(6), 2);

	/* The next access fills a zeroed page: the old bytes are gone. */
	expect_page(&vm, PG(5), 0);
	assert_int_not_equal(s2_lookup(&vm, IPA(PG(5))), 0);
	assert_int_equal(atomic_load(&vm.pool.active), active0);
	check_machine();
	/* And again, with a store this time: a page of its own, written. */
	assert_int_equal(vm_discard_page(&vm, PG(5), 0), 1);
	put_page(&vm, PG(5), 3);
	expect_page(&vm, PG(5), 3);
	check_machine();

	/* Untouched: nothing there, nothing done, no table made for it. */
	free0 = pool_free_pages(&pool);
	assert_int_equal(vm_discard_page(&vm, PG(7), 0), 0);
	assert_int_equal(vm_discard_page(&vm, PG(3000), 0), 0); /* under a table never made */
	assert_int_equal(vm_discard_page(&vm, RAM + RAM_SIZE - PAGE_SIZE, 0), 0);
	assert_int_equal(atomic_load(&vm.pool.pgtables), tables0);
	assert_int_equal(pool_free_pages(&pool), free0);
	/* Twice: the second finds nothing. */
	assert_int_equal(vm_discard_page(&vm, PG(6), 0), 1);
	assert_int_equal(vm_discard_page(&vm, PG(6), 0), 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* The page a fill takes after a discard may well be the one that left: it must come zeroed. */
static void reused_page_comes_zeroed(void **state)
{
	paddr_t pa;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_OFF, 0);
	for (u32 g = 0; g < 16; g++)
		put_page(&vm, PG(g), (u8)(g + 1));
	for (u32 g = 0; g < 16; g++) {
		pa = s2_lookup(&vm, IPA(PG(g)));
		assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
		/* Another page of the VM's takes the next free page: this one, likely. */
		expect_page(&vm, PG(100 + g), 0);
		if (s2_lookup(&vm, IPA(PG(100 + g))) == pa)
			assert_true(hostmem_page_is_zero(pa));
	}
	for (u32 g = 0; g < 16; g++)
		expect_page(&vm, PG(g), 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* ---- shared, zero and image pages ------------------------------------------------- */

static void shared_page_drops_one_reference(void **state)
{
	paddr_t s;
	pidx_t si;
	u32 free0, charged0;
	bool found;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_DOMAIN, 0);
	vm_make(&vm2, 2, SHARE_DOMAIN, 0);
	put_page(&vm, PG(9), 9);
	put_page(&vm2, PG(9), 9);
	put_page(&vm2, PG(10), 9); /* a third mapping of the same bytes */
	for (unsigned r = 0; r < 4 && (s2_lookup(&vm, IPA(PG(9))) != s2_lookup(&vm2, IPA(PG(9))) ||
				       s2_lookup(&vm2, IPA(PG(10))) != s2_lookup(&vm, IPA(PG(9)))); r++) {
		scan_pass(&vm);
		scan_pass(&vm2);
	}
	s = s2_lookup(&vm, IPA(PG(9)));
	si = pool_pidx_of(&pool, s);
	assert_int_equal(s2_lookup(&vm2, IPA(PG(9))), s);
	assert_int_equal(s2_lookup(&vm2, IPA(PG(10))), s);
	assert_int_equal(atomic_load(&pool.desc[si].refcount), 3);
	assert_int_equal(share_shared_pages(), 1);
	assert_int_equal(atomic_load(&vm.pool.shared), 1);
	check_machine();
	free0 = pool_free_pages(&pool);
	charged0 = atomic_load(&vm.pool.charged);

	/* vm's mapping goes; the page stays for vm2, out of vm's reverse map. */
	assert_int_equal(vm_discard_page(&vm, PG(9), 0), 1);
	assert_int_equal(s2_lookup(&vm, IPA(PG(9))), 0);
	assert_int_equal(atomic_load(&pool.desc[si].refcount), 2);
	assert_int_equal(rmap_count(si, &vm, PG(9), &found), 2);
	assert_false(found);
	assert_int_equal(atomic_load(&vm.pool.shared), 0);
	assert_int_equal(atomic_load(&vm.pool.charged), charged0); /* a shared page was never charged */
	assert_int_equal(pool_free_pages(&pool), free0);
	assert_int_equal(share_shared_pages(), 1);
	assert_true(atomic_load(&pool.desc[si].flags) & MP_SHARED);
	assert_true(in_table(si)); /* still there for others to merge into */
	expect_page(&vm2, PG(9), 9);
	expect_page(&vm2, PG(10), 9);
	expect_page(&vm, PG(9), 0);
	check_machine();

	/* One of vm2's two: still shared, by one mapping. */
	assert_int_equal(vm_discard_page(&vm2, PG(10), 0), 1);
	assert_int_equal(atomic_load(&pool.desc[si].refcount), 1);
	assert_int_equal(rmap_count(si, &vm2, PG(9), &found), 1);
	assert_true(found);
	assert_int_equal(atomic_load(&vm2.pool.shared), 1);
	assert_true(in_table(si));
	expect_page(&vm2, PG(9), 9);
	check_machine();
	/* The last: the page goes back to the pool, out of the table. */
	free0 = pool_free_pages(&pool);
	assert_int_equal(vm_discard_page(&vm2, PG(9), 0), 1);
	assert_int_equal(share_shared_pages(), 0);
	assert_int_equal(atomic_load(&vm2.pool.shared), 0);
	assert_int_equal(pool_free_pages(&pool), free0 + 1);
	assert_false(in_table(si));
	expect_page(&vm2, PG(9), 0);
	check_machine();
	destroy_vm(&vm);
	destroy_vm(&vm2);
	check_empty();
}

/* A shared page whose other user then writes (copy-on-write with one mapping left): nothing leaks. */
static void shared_page_then_cow(void **state)
{
	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_DOMAIN, 0);
	vm_make(&vm2, 2, SHARE_DOMAIN, 0);
	put_page(&vm, PG(4), 4);
	put_page(&vm2, PG(4), 4);
	for (unsigned r = 0; r < 4 && s2_lookup(&vm, IPA(PG(4))) != s2_lookup(&vm2, IPA(PG(4))); r++) {
		scan_pass(&vm);
		scan_pass(&vm2);
	}
	assert_int_equal(s2_lookup(&vm, IPA(PG(4))), s2_lookup(&vm2, IPA(PG(4))));
	assert_int_equal(vm_discard_page(&vm2, PG(4), 0), 1);
	put_page(&vm, PG(4), 44);
	expect_page(&vm, PG(4), 44);
	check_machine();
	assert_int_equal(vm_discard_page(&vm, PG(4), 0), 1);
	check_machine();
	destroy_vm(&vm);
	destroy_vm(&vm2);
	check_empty();
}

static void zero_page_mapping_leaves(void **state)
{
	static const u8 zero[PAGE_SIZE];
	u32 free0;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_SELF, 0);
	copy(&vm, PG(30), (void *)zero, PAGE_SIZE, true);
	copy(&vm, PG(31), (void *)zero, PAGE_SIZE, true);
	scan_pass(&vm);
	assert_int_equal(s2_lookup(&vm, IPA(PG(30))), sh.zero_pa);
	assert_int_equal(s2_lookup(&vm, IPA(PG(31))), sh.zero_pa);
	assert_int_equal(atomic_load(&vm.pool.zero), 2);
	check_machine();
	free0 = pool_free_pages(&pool);
	assert_int_equal(vm_discard_page(&vm, PG(30), 0), 1);
	assert_int_equal(atomic_load(&vm.pool.zero), 1);
	assert_int_equal(s2_lookup(&vm, IPA(PG(30))), 0);
	/* The zero page is nobody's to free. */
	assert_int_equal(pool_free_pages(&pool), free0);
	assert_true(hostmem_page_is_zero(sh.zero_pa));
	assert_int_equal(s2_lookup(&vm, IPA(PG(31))), sh.zero_pa);
	check_machine();
	/* Its next access: a page of its own (a write), or the zero page again after a scan. */
	put_page(&vm, PG(30), 30);
	assert_int_not_equal(s2_lookup(&vm, IPA(PG(30))), sh.zero_pa);
	expect_page(&vm, PG(30), 30);
	check_machine();
	assert_int_equal(vm_discard_page(&vm, PG(31), 0), 1);
	assert_int_equal(atomic_load(&vm.pool.zero), 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

static void image_page_leaves(void **state)
{
	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_DOMAIN, 0);
	assert_int_equal(share_map_image(&vm, IPA(PG(20)), IMG_BASE, 0), 0);
	assert_int_equal(atomic_load(&vm.pool.shared), 1);
	check_machine();
	assert_int_equal(vm_discard_page(&vm, PG(20), 0), 1);
	assert_int_equal(atomic_load(&vm.pool.shared), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(20))), 0);
	assert_memory_equal(hostmem_ptr(IMG_BASE), img_orig, PAGE_SIZE);
	expect_page(&vm, PG(20), 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* A candidate in the sharing table: out of it as it goes, so nothing merges with a freed page. */
static void sharing_candidate_leaves_the_table(void **state)
{
	pidx_t i;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_SELF, 0);
	put_page(&vm, PG(40), 40);
	scan_pass(&vm); /* hashed */
	scan_pass(&vm); /* unchanged: a candidate */
	i = pool_pidx_of(&pool, s2_lookup(&vm, IPA(PG(40))));
	assert_true(atomic_load(&pool.desc[i].flags) & MP_UNSTABLE);
	assert_true(in_table(i));
	assert_int_equal(vm_discard_page(&vm, PG(40), 0), 1);
	assert_false(in_table(i));
	assert_int_equal(sh.meta[i].key, 0);
	check_machine();
	/* The same bytes elsewhere become a candidate of their own, merged with nothing. */
	put_page(&vm, PG(41), 40);
	scan_pass(&vm);
	scan_pass(&vm);
	scan_pass(&vm);
	assert_int_equal(atomic_load(&vm.pool.shared), 0);
	assert_int_equal(share_shared_pages(), 0);
	expect_page(&vm, PG(41), 40);
	/* Two of them merge as usual. */
	put_page(&vm, PG(42), 40);
	for (unsigned r = 0; r < 4 && !share_shared_pages(); r++)
		scan_pass(&vm);
	assert_int_equal(share_shared_pages(), 1);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* ---- swap ------------------------------------------------------------------------ */

#define SWAP_VM_PAGES 96
#define SWAP_LIMIT 32

/* A swapping VM with pages 0..SWAP_VM_PAGES-1 written (page g pattern g + 1), the disk idle. */
static void swap_vm_filled(void)
{
	setup();
	vm_make(&vm, 1, SHARE_OFF, SWAP_LIMIT);
	for (u32 g = 0; g < SWAP_VM_PAGES; g++)
		put_page(&vm, PG(g), (u8)(g + 1));
	fake_blk_complete(~0u, 0);
	assert_int_equal(fake_blk_pending(), 0);
	check_machine();
}

/* The first of pages 0..SWAP_VM_PAGES-1 whose leaf says what ok wants, or ~0u. */
static u32 find_page(bool (*ok)(u64 e))
{
	for (u32 g = 0; g < SWAP_VM_PAGES; g++)
		if (ok(fake_s2_raw(&vm, IPA(PG(g)))))
			return g;
	return ~0u;
}

static void swapped_page_frees_its_slot(void **state)
{
	struct swap_stats st;
	u32 g, slots0, swapped0, free0;
	u64 slot, reads0;

	(void)state;
	swap_vm_filled();
	g = find_page(s2e_swapped);
	assert_true(g != ~0u);
	slot = s2e_slot(fake_s2_raw(&vm, IPA(PG(g))));
	assert_true(slot_used(slot));
	slots0 = atomic_load(&vm.swap.slots);
	swapped0 = atomic_load(&vm.pool.swapped);
	free0 = pool_free_pages(&pool);
	swap_stats(&st);
	assert_int_equal(st.used, slots0);

	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
	assert_int_equal(fake_s2_raw(&vm, IPA(PG(g))), 0);
	assert_false(slot_used(slot));
	assert_int_equal(atomic_load(&vm.swap.slots), slots0 - 1);
	assert_int_equal(atomic_load(&vm.pool.swapped), swapped0 - 1);
	swap_stats(&st);
	assert_int_equal(st.used, slots0 - 1);
	assert_int_equal(pool_free_pages(&pool), free0); /* it held no page */
	check_machine();
	/* The next access is a first one: zeros, nothing read from the disk. */
	reads0 = fake_blk_reads;
	expect_page(&vm, PG(g), 0);
	assert_int_equal(fake_blk_reads, reads0);
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 0);

	/* Every swapped page: no slot left behind. */
	for (u32 p = 0; p < SWAP_VM_PAGES; p++)
		if (s2e_swapped(fake_s2_raw(&vm, IPA(PG(p)))))
			assert_int_equal(vm_discard_page(&vm, PG(p), 0), 1);
	fake_blk_complete(~0u, 0);
	check_machine();
	for (u32 p = 0; p < SWAP_VM_PAGES; p++) {
		u64 e = fake_s2_raw(&vm, IPA(PG(p)));

		assert_false(s2e_swapped(e));
		if (!(e & S2E_VALID))
			expect_page(&vm, PG(p), 0);
	}
	fake_blk_complete(~0u, 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* A page read back from swap and not written since keeps its copy in its slot: both go. */
static void clean_page_frees_page_and_slot(void **state)
{
	u32 g, slots0, active0, free0;
	u64 slot;
	pidx_t i;

	(void)state;
	swap_vm_filled();
	g = find_page(s2e_swapped);
	assert_true(g != ~0u);
	slot = s2e_slot(fake_s2_raw(&vm, IPA(PG(g))));
	expect_page(&vm, PG(g), (u8)(g + 1)); /* read back: clean */
	fake_blk_complete(~0u, 0);
	i = pool_pidx_of(&pool, s2_lookup(&vm, IPA(PG(g))));
	assert_true(i != PIDX_NONE);
	assert_true(atomic_load(&pool.desc[i].flags) & MP_SWAPCACHE);
	assert_int_equal(atomic_load(&pool.desc[i].next) & SWAPC_SLOT, slot);
	assert_true(slot_used(slot));
	check_machine();
	slots0 = atomic_load(&vm.swap.slots);
	active0 = atomic_load(&vm.pool.active);
	free0 = pool_free_pages(&pool);

	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
	assert_int_equal(fake_s2_raw(&vm, IPA(PG(g))), 0);
	assert_false(slot_used(slot));
	assert_int_equal(atomic_load(&vm.swap.slots), slots0 - 1);
	assert_int_equal(atomic_load(&vm.pool.active), active0 - 1);
	assert_int_equal(pool_free_pages(&pool), free0 + 1);
	assert_false(atomic_load(&pool.desc[i].flags) & MP_SWAPCACHE);
	check_machine();
	expect_page(&vm, PG(g), 0);
	fake_blk_complete(~0u, 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* On its way from the disk (a read waiting): -EAGAIN (wait for the disk), and the leaf as it was; it goes once it is in. */
static void page_coming_in_stays(void **state)
{
	u8 b;
	u32 g;
	u64 e;

	(void)state;
	swap_vm_filled();
	g = find_page(s2e_swapped);
	assert_true(g != ~0u);
	/* At its limit, the fault may first make room (writes): the disk completes those, not the read. */
	for (unsigned tries = 0; !s2e_transit(fake_s2_raw(&vm, IPA(PG(g)))); tries++) {
		assert_true(tries < 10);
		assert_int_equal(gmem_copy(&vm, PG(g), &b, 1, false, 0), -EAGAIN);
		if (!s2e_transit(fake_s2_raw(&vm, IPA(PG(g)))))
			fake_blk_complete(~0u, 0);
	}
	e = fake_s2_raw(&vm, IPA(PG(g)));
	assert_true(fake_blk_pending() > 0);
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), -EAGAIN);
	assert_int_equal(fake_s2_raw(&vm, IPA(PG(g))), e);
	fake_blk_complete(~0u, 0);
	expect_page(&vm, PG(g), (u8)(g + 1));
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
	fake_blk_complete(~0u, 0);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* On its way to the disk (its write waiting): -EAGAIN, the leaf as it was, the write completes and counts. */
static void page_going_out_stays(void **state)
{
	u32 g = ~0u, slots0;
	u64 e = 0;

	(void)state;
	setup();
	vm_make(&vm, 1, SHARE_OFF, SWAP_LIMIT);
	/* Past the limit, with the disk never completing: writes wait. */
	for (u32 p = 0; p < SWAP_VM_PAGES && g == ~0u; p++) {
		static u8 b[PAGE_SIZE];

		pattern(b, (u8)(p + 1));
		int rc = gmem_copy(&vm, PG(p), b, PAGE_SIZE, true, 0);

		g = find_page(s2e_transit);
		if (rc)
			break;
	}
	assert_true(g != ~0u);
	e = fake_s2_raw(&vm, IPA(PG(g)));
	assert_true(fake_blk_pending() > 0);
	slots0 = atomic_load(&vm.swap.slots);
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), -EAGAIN);
	assert_int_equal(fake_s2_raw(&vm, IPA(PG(g))), e);
	assert_int_equal(atomic_load(&vm.swap.slots), slots0);
	fake_blk_complete(~0u, 0);
	assert_true(s2e_swapped(fake_s2_raw(&vm, IPA(PG(g)))));
	check_machine();
	assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

/* Crafted invalid leaves: in transit (-EAGAIN), claimed (S2E_BUSY, -EBUSY): untouched. */
static void busy_leaves_stay(void **state)
{
	struct s2_slot slot;
	struct s2_leaf old;
	u64 slots0;
	paddr_t pa;

	(void)state;
	swap_vm_filled();
	slots0 = atomic_load(&vm.swap.slots);

	/* A page claimed by another changer (a copy, a merge, the swap clock): s2_claim fails, and so must the rest. */
	pa = 0;
	for (u32 g = 0; g < SWAP_VM_PAGES && !pa; g++)
		if (s2_lookup(&vm, IPA(PG(g))) && !s2_claim(&vm, IPA(PG(g)), &slot, &old)) {
			pa = old.pa;
			assert_int_equal(atomic_load(slot.e), S2E_BUSY);
			assert_int_equal(vm_discard_page(&vm, PG(g), 0), -EBUSY);
			assert_int_equal(atomic_load(slot.e), S2E_BUSY);
			s2_install(&vm, &slot, old.pa, old.prot);
			assert_int_equal(s2_lookup(&vm, IPA(PG(g))), pa);
			expect_page(&vm, PG(g), (u8)(g + 1));
		}
	assert_int_not_equal(pa, 0);

	/* A swapped page made to look in transit: a swap-in or write-out owns it. */
	for (u32 g = 0; g < SWAP_VM_PAGES; g++) {
		_Atomic u64 *e;
		u64 v;
		struct s2_slot sl;

		v = fake_s2_raw(&vm, IPA(PG(g)));
		if (!s2e_swapped(v))
			continue;
		assert_int_equal(s2_prepare(&vm, IPA(PG(g)), 0, &sl), -EEXIST);
		e = sl.e;
		atomic_store(e, s2e_make(s2e_slot(v), true));
		assert_int_equal(vm_discard_page(&vm, PG(g), 0), -EAGAIN);
		assert_int_equal(atomic_load(e), s2e_make(s2e_slot(v), true));
		/* Busy without a slot (a claim in the middle of a change): the same. */
		atomic_store(e, S2E_BUSY);
		assert_int_equal(vm_discard_page(&vm, PG(g), 0), -EBUSY);
		assert_int_equal(atomic_load(e), S2E_BUSY);
		atomic_store(e, v);
		assert_int_equal(atomic_load(&vm.swap.slots), slots0);
		assert_int_equal(vm_discard_page(&vm, PG(g), 0), 1);
		assert_int_equal(atomic_load(&vm.swap.slots), slots0 - 1);
		break;
	}
	check_machine();
	destroy_vm(&vm);
	check_empty();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(private_page_leaves, teardown),
		cmocka_unit_test_teardown(reused_page_comes_zeroed, teardown),
		cmocka_unit_test_teardown(shared_page_drops_one_reference, teardown),
		cmocka_unit_test_teardown(shared_page_then_cow, teardown),
		cmocka_unit_test_teardown(zero_page_mapping_leaves, teardown),
		cmocka_unit_test_teardown(image_page_leaves, teardown),
		cmocka_unit_test_teardown(sharing_candidate_leaves_the_table, teardown),
		cmocka_unit_test_teardown(swapped_page_frees_its_slot, teardown),
		cmocka_unit_test_teardown(clean_page_frees_page_and_slot, teardown),
		cmocka_unit_test_teardown(page_coming_in_stays, teardown),
		cmocka_unit_test_teardown(page_going_out_stays, teardown),
		cmocka_unit_test_teardown(busy_leaves_stay, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
