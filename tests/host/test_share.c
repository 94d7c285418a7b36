/*
 * Sharing identical guest pages (core/share.c, share_merge.c, share_scan.c,
 * page_hash.c) over the real pools, the real stage-2 walker on the fake arch (fake_arch.c) and host
 * memory (hostmem.c): the zero page, stable and unstable merging, the
 * reverse map and refcounts, copy-on-write through violation_handle, groups,
 * images, quotas, the scanner's budget, and the page hashes.
 *
 * A guest is simulated as a writer: a write to an unmapped page takes a
 * translation fault, a write to a read-only page a write permission fault
 * (both through fault_decode + violation_handle), then the bytes land in the
 * machine page it maps. Every write also goes into a model of each VM's
 * memory (plain bytes), and check_all() compares the two and every
 * invariant of the sharing books after each step of a test: contents,
 * descriptors, refcounts against the leaves that map a page, the reverse
 * map, the hash table, groups, per-VM counters and the pool's pages.
 *
 * Tests named regression_* pin down defects found in the code under test;
 * they fail until the defect is fixed, so they are not in the run list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arch/fault_decode.h>
#include <quire/console.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>
#include "../../core/share_priv.h"
#include "fake_arch.h"
#include "hostmem.h"
#include "vm_registry.h"

#define MACH_BASE 0x80000000UL
#define IMG_BASE 0x20000000UL /* images: machine memory outside the pool */
#define IMG_PAGES 8
#define RAM GUEST_RAM_BASE
#define PG(n) (RAM + (u64)(n) * PAGE_SIZE)
#define GPN(n) (PG(n) >> PAGE_SHIFT)

#define FSC_TRANS_L3 0x07
#define FSC_PERM_L3 0x0f

#define NSLOTS 4	/* VMs at once: ids 1..NSLOTS, registry[id - 1] */
#define MAXPAGES 512	/* guest pages per VM at most: one last-level table */
#define TABLES (1 + FAKE_S2_PATH_TABLES) /* a VM's root and the tables to its pages */
#define SLICE 1000	/* scanner slice, in made-up ticks */

/* ---- the machine and its VMs -------------------------------------------- */

struct slot {
	struct vm vm;
	bool alive;
	u32 pages;
	u8 *model;			 /* what the guest wrote: its memory as it must see it */
	struct s2_leaf shadow[MAXPAGES]; /* leaves at the last check (pa 0: none) */
	bool dirty[MAXPAGES];		 /* written since the last check */
	u64 cow;			 /* write permission faults answered with VIO_MAPPED */
};

static struct pool pool;
static void *desc, *meta;
static u32 total;
static struct slot slots[NSLOTS];
static u8 img_orig[IMG_PAGES * PAGE_SIZE]; /* what the images hold, to see they never change */
static u64 now_ticks = SLICE;		   /* the scanner's clock: only ever goes forward (static state) */

/* Per machine page, rebuilt by check_all. */
static u16 *nmaps;	/* leaves mapping it */
static s8 *first_slot;	/* a shared page: the first VM found mapping it */
static u8 *in_table;	/* times found in the hash table */
static bool *was_shared; /* a shared page at the last check */
static u16 *nrmap;	/* reverse-map entries naming it */
static u32 seen_gen, seen[NSLOTS][MAXPAGES]; /* rmap entries met in this check */

static u64 rng = 1;

static u64 rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static u32 rnd_below(u32 n)
{
	return (u32)(rnd() % n);
}

/* Page contents from a small alphabet, so duplicates are frequent: 0 is all zeros. */
#define NALPHA 6
static void content(unsigned c, u8 *page)
{
	u64 x = 0x9e3779b97f4a7c15ULL * (c > 3 ? 3 : c);

	memset(page, 0, PAGE_SIZE);
	if (!c)
		return;
	for (unsigned k = 0; k < PAGE_SIZE; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		page[k] = (u8)x;
	}
	/* 4 and 5 differ from 3 in one byte only (last, middle): same first bytes, so weak hashes collide. */
	if (c == 4)
		page[PAGE_SIZE - 1] ^= 1;
	if (c == 5)
		page[PAGE_SIZE / 2] ^= 0x80;
}

static u64 weak_hash(const void *page)
{
	return ((const u8 *)page)[0] & 3;
}

static u64 const_hash(const void *page)
{
	(void)page;
	return 42;
}

/* A pool of `pages` machine pages, the images, and sharing over them with hash h. */
static void setup_machine(u32 pages, u64 (*h)(const void *))
{
	struct region img = { IMG_BASE, IMG_PAGES * PAGE_SIZE };
	u8 *ip;

	hostmem_pool(&pool, MACH_BASE, pages, &desc);
	total = pages;

	ip = hostmem_add(IMG_BASE, IMG_PAGES * PAGE_SIZE);
	for (unsigned k = 0; k < IMG_PAGES * PAGE_SIZE; k++)
		ip[k] = (u8)(k * 7 + k / PAGE_SIZE * 13 + 1);
	memcpy(img_orig, ip, sizeof(img_orig));

	share_hash = h; /* before share_init: it hashes the zero page */
	meta = aligned_alloc(PAGE_SIZE, share_meta_bytes(pool.ndesc));
	assert_non_null(meta);
	share_init(&pool, meta, &img, 1, 0x1234);
	assert_int_not_equal(sh.zero_pidx, PIDX_NONE);
	assert_int_equal(pool_free_pages(&pool), total - 1);

	nmaps = calloc(total, sizeof(*nmaps));
	first_slot = calloc(total, sizeof(*first_slot));
	in_table = calloc(total, sizeof(*in_table));
	was_shared = calloc(total, sizeof(*was_shared));
	nrmap = calloc(total, sizeof(*nrmap));
	assert_true(nmaps && first_slot && in_table && was_shared && nrmap);
}

static void vm_make(unsigned s, enum vm_sharing pol, const char *domain, u32 pages, u32 quota)
{
	struct slot *sl = &slots[s];
	struct vm *v = &sl->vm;

	assert_true(pages <= MAXPAGES);
	assert_false(sl->alive);
	memset(v, 0, sizeof(*v));
	v->id = s + 1;
	snprintf(v->name, sizeof(v->name), "vm%u", v->id);
	v->ram_base = IPA(RAM);
	v->ram_size = (u64)pages * PAGE_SIZE;
	v->cfg.sharing = pol;
	snprintf(v->cfg.share_domain, sizeof(v->cfg.share_domain), "%s", domain ? domain : "");
	v->cfg.scan_pages = 1u << 16;
	vmpool_init(&v->pool, &pool, v->id, quota);
	assert_int_equal(s2_init(v, 0), 0);
	share_vm_init(v);
	registry[s] = v;
	sl->alive = true;
	sl->pages = pages;
	sl->cow = 0;
	free(sl->model);
	sl->model = calloc(pages, PAGE_SIZE);
	assert_non_null(sl->model);
	memset(sl->shadow, 0, sizeof(sl->shadow));
	memset(sl->dirty, 0, sizeof(sl->dirty));
}

/* Tear a VM down as vm_reap does; quiet = no checks (teardown after a failure). */
static void vm_unmake_(unsigned s, unsigned cpu, bool quiet)
{
	struct slot *sl = &slots[s];
	struct vm *v = &sl->vm;
	pidx_t i;

	share_vm_stop(v);
	s2_destroy(v, swap_page_release, swap_release, NULL, cpu);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, cpu, i, true);
	registry[s] = NULL;
	sl->alive = false;
	if (quiet)
		return;
	assert_int_equal(atomic_load(&v->pool.charged), 0);
	assert_int_equal(atomic_load(&v->pool.active), 0);
	assert_int_equal(atomic_load(&v->pool.pgtables), 0);
	assert_int_equal(atomic_load(&v->pool.zero), 0);
	assert_int_equal(atomic_load(&v->pool.shared), 0);
}

static void vm_unmake(unsigned s, unsigned cpu)
{
	vm_unmake_(s, cpu, false);
}

static bool pt_running;
static u64 pt_seed;
static unsigned pt_step;

static int teardown(void **state)
{
	(void)state;
	if (pt_running)
		print_message("property run failed: seed %llu, step %u\n", (unsigned long long)pt_seed, pt_step);
	pt_running = false;
	for (unsigned s = 0; s < NSLOTS; s++) {
		if (slots[s].alive)
			vm_unmake_(s, 0, true);
		free(slots[s].model);
		slots[s].model = NULL;
		registry[s] = NULL;
	}
	free(nmaps);
	free(first_slot);
	free(in_table);
	free(was_shared);
	free(nrmap);
	nrmap = NULL;
	nmaps = NULL;
	first_slot = NULL;
	in_table = NULL;
	was_shared = NULL;
	free(desc);
	free(meta);
	desc = meta = NULL;
	hostmem_reset();
	share_hash = page_hash_mul;
	console_set_output(NULL);
	return 0;
}

static struct vm *V(unsigned s)
{
	return &slots[s].vm;
}

static u8 *model_page(unsigned s, u32 g)
{
	return slots[s].model + (u64)g * PAGE_SIZE;
}

static enum vio_result fault_on(struct vm *v, u64 ipa, u32 fsc, bool write, unsigned cpu)
{
	struct s2_fault f;
	u64 esr = (u64)0x24 << 26 | 1u << 25 | (write ? 1u << 6 : 0) | fsc;

	if (!fault_decode(esr, 0xffff000000000000ULL | (ipa & 0xfff), (ipa >> 12) << 4, &f))
		abort();
	return violation_handle(v, &f, cpu);
}

/*
 * The guest in slot s writes len bytes at offset off of its page g, faulting
 * as the hardware would. VIO_MAPPED when the write happened (the model has it
 * too), else what refused it (the model is unchanged).
 */
static enum vio_result guest_write(unsigned s, u32 g, unsigned off, const void *buf, unsigned len, unsigned cpu)
{
	struct slot *sl = &slots[s];
	u64 ipa = PG(g) + off;

	assert_true(g < sl->pages && off + len <= PAGE_SIZE);
	for (int tries = 0; tries < 3; tries++) {
		struct s2_leaf l;
		enum vio_result r;

		if (!s2_get(&sl->vm, IPA(PG(g)), &l)) {
			r = fault_on(&sl->vm, ipa, FSC_TRANS_L3, true, cpu);
		} else if (!(l.prot & S2_W)) {
			r = fault_on(&sl->vm, ipa, FSC_PERM_L3, true, cpu);
			if (r == VIO_MAPPED)
				sl->cow++;
		} else {
			memcpy((u8 *)hostmem_ptr(l.pa) + off, buf, len);
			memcpy(model_page(s, g) + off, buf, len);
			sl->dirty[g] = true;
			return VIO_MAPPED;
		}
		if (r != VIO_MAPPED && r != VIO_RACED)
			return r;
	}
	fail_msg("vm%u: a write to page %u does not stick", s + 1, g);
	return VIO_UNHANDLED;
}

/* Write content c over page g; it must work. */
static void write_page(unsigned s, u32 g, unsigned c)
{
	u8 buf[PAGE_SIZE];

	content(c, buf);
	assert_int_equal(guest_write(s, g, 0, buf, PAGE_SIZE, 0), VIO_MAPPED);
}

static void write_byte(unsigned s, u32 g, unsigned off, u8 val)
{
	assert_int_equal(guest_write(s, g, off, &val, 1, 0), VIO_MAPPED);
}

/* The guest reads its page g (an unmapped page reads as zeros and stays unmapped). */
static void guest_read(unsigned s, u32 g, u8 *buf)
{
	struct s2_leaf l;

	if (s2_get(V(s), IPA(PG(g)), &l))
		memcpy(buf, hostmem_ptr(l.pa), PAGE_SIZE);
	else
		memset(buf, 0, PAGE_SIZE);
}

static void assert_reads(unsigned s, u32 g, unsigned c)
{
	u8 want[PAGE_SIZE], got[PAGE_SIZE];

	content(c, want);
	guest_read(s, g, got);
	assert_memory_equal(got, want, PAGE_SIZE);
}

static paddr_t pa_of(unsigned s, u32 g)
{
	return s2_lookup(V(s), IPA(PG(g)));
}

static unsigned prot_of(unsigned s, u32 g)
{
	return fake_s2_prot(V(s), IPA(PG(g)));
}

static bool is_ro(unsigned s, u32 g)
{
	unsigned p = prot_of(s, g);

	return p && !(p & S2_W);
}

static u16 refs(paddr_t pa)
{
	pidx_t i = pool_pidx_of(&pool, pa);

	assert_int_not_equal(i, PIDX_NONE);
	return atomic_load(&pool_desc(&pool, i)->refcount);
}

static void map_image(unsigned s, u32 g, unsigned k)
{
	assert_int_equal(share_map_image(V(s), IPA(PG(g)), IMG_BASE + (u64)k * PAGE_SIZE, 0), 0);
	memcpy(model_page(s, g), img_orig + (u64)k * PAGE_SIZE, PAGE_SIZE);
}

/* One full pass of the scanner over a VM, in IPA order (share_scan_next until it wraps). */
static void scan_pass(unsigned s)
{
	for (u32 n = 0;; n++) {
		int r = share_scan_next(V(s), 0);

		if (r != SCAN_PAGE) {
			assert_true(r == SCAN_WRAPPED || r == SCAN_NOT_LIVE);
			return;
		}
		assert_true(n <= slots[s].pages);
	}
}

/* n full passes over every VM, lowest slot first. */
static void scan_rounds(unsigned n)
{
	while (n--)
		for (unsigned s = 0; s < NSLOTS; s++)
			if (slots[s].alive)
				scan_pass(s);
}

static bool never_stop(void)
{
	return false;
}

static int stop_countdown;

static bool stop_after_countdown(void)
{
	return stop_countdown-- <= 0;
}

static bool same_group(unsigned a, unsigned b)
{
	const struct vm_config *x = &V(a)->cfg, *y = &V(b)->cfg;

	if (x->sharing == SHARE_SELF || y->sharing == SHARE_SELF)
		return a == b && x->sharing == y->sharing;
	return x->sharing == SHARE_DOMAIN && y->sharing == SHARE_DOMAIN && !strcmp(x->share_domain, y->share_domain);
}

/* ---- the invariants ------------------------------------------------------ */

/* What changed since the last check_all. */
struct delta {
	unsigned made_ro;	/* leaves writable then, read-only now */
	unsigned made_rw;	/* read-only then, writable now */
	unsigned new_shared;	/* machine pages that became shared pages */
	unsigned gone_shared;	/* ... that stopped being shared pages */
};

static void check_contents(unsigned s, u32 g, paddr_t pa)
{
	if (memcmp(hostmem_ptr(pa), model_page(s, g), PAGE_SIZE))
		fail_msg("vm%u page %u (pa 0x%llx): the guest does not see what it wrote", s + 1, g,
			 (unsigned long long)pa);
}

/*
 * Every invariant of the sharing books, over every live VM. Contents of pages
 * whose leaf changed or that were written since the last check are compared
 * with the model; all of them when full (pages never change behind a leaf
 * otherwise: a page is mapped writable at one place only, which is checked).
 */
static void check_all(bool full, struct delta *dl)
{
	static const u8 zero[PAGE_SIZE];
	u32 nshared = 0, sum_zero = 0, sum_sharing = 0, sum_charged = 0, rmap_used = 0, n_rmapped = 0, n;
	struct share_stats st;
	struct delta dummy;

	if (!dl)
		dl = &dummy;
	memset(dl, 0, sizeof(*dl));
	memset(nmaps, 0, total * sizeof(*nmaps));
	memset(first_slot, -1, total * sizeof(*first_slot));
	memset(in_table, 0, total * sizeof(*in_table));
	memset(nrmap, 0, total * sizeof(*nrmap));
	seen_gen++;

	/*
	 * The reverse map: each entry a (live VM, guest page) whose leaf maps its
	 * page read-only, none twice, each reachable from its home slot without
	 * a free slot on the way (what a lookup or a removal relies on).
	 */
	for (u32 e = 0; e < sh.rmap_cap; e++) {
		u32 key = sh.rmap[e].vm_gpn, id = key >> RMAP_VM_SHIFT, g;
		u64 gpn = key & ((1u << RMAP_VM_SHIFT) - 1);
		struct s2_leaf l;

		if (!key) {
			assert_int_equal(sh.rmap[e].page, 0);
			continue;
		}
		rmap_used++;
		assert_true(sh.rmap[e].page < total);
		nrmap[sh.rmap[e].page]++;
		assert_true(id >= 1 && id <= NSLOTS && slots[id - 1].alive);
		assert_true(gpn >= GPN(0) && gpn - GPN(0) < slots[id - 1].pages);
		g = (u32)(gpn - GPN(0));
		assert_int_not_equal(seen[id - 1][g], seen_gen); /* no entry twice */
		seen[id - 1][g] = seen_gen;
		assert_true(s2_get(V(id - 1), IPA(PG(g)), &l));
		assert_int_equal(l.pa, pool_pa(&pool, sh.rmap[e].page));
		assert_false(l.prot & S2_W);
		for (u32 k = share_rmap_home(key); k != e; k = k + 1 == sh.rmap_cap ? 0 : k + 1)
			assert_int_not_equal(sh.rmap[k].vm_gpn, 0);
	}
	assert_int_equal(rmap_used, sh.rmap_used);
	assert_true(sh.rmap_used <= sh.rmap_limit && sh.rmap_limit < sh.rmap_cap);

	for (unsigned s = 0; s < NSLOTS; s++) {
		struct slot *sl = &slots[s];
		struct vm *v = &sl->vm;
		enum vm_sharing pol = v->cfg.sharing;
		u32 zero_n = 0, shared_n = 0, active_n = 0, leaves = 0;
		struct fake_s2_stats fs;

		if (!sl->alive)
			continue;
		assert_ptr_equal(vm_get(v->id), v);
		assert_int_equal(v->share.live, pol != SHARE_OFF);
		for (u32 g = 0; g < sl->pages; g++) {
			struct s2_leaf l, *old = &sl->shadow[g];
			struct mpage *d;
			pidx_t i;
			u8 f;

			if (!s2_get(v, IPA(PG(g)), &l)) {
				assert_int_equal(old->pa, 0); /* nothing unmaps a page while the VM lives */
				if (full && memcmp(model_page(s, g), zero, PAGE_SIZE))
					fail_msg("vm%u page %u: written but not mapped", s + 1, g);
				continue;
			}
			leaves++;
			/* Execute-never until a fetch, if a data access filled it (core/violation.c). */
			assert_int_equal(l.prot & ~(S2_W | S2_X), S2_R);
			if (old->pa && (old->prot & S2_W) && !(l.prot & S2_W))
				dl->made_ro++;
			if (old->pa && !(old->prot & S2_W) && (l.prot & S2_W))
				dl->made_rw++;
			if (full || sl->dirty[g] || old->pa != l.pa || old->prot != l.prot)
				check_contents(s, g, l.pa);
			*old = l;
			sl->dirty[g] = false;

			if (l.pa == sh.zero_pa) {
				assert_false(l.prot & S2_W);
				assert_int_not_equal(pol, SHARE_OFF);
				zero_n++;
				continue;
			}
			if (share_is_image(l.pa)) {
				assert_false(l.prot & S2_W);
				assert_int_not_equal(pol, SHARE_OFF);
				assert_int_equal(pool_pidx_of(&pool, l.pa), PIDX_NONE);
				shared_n++;
				continue;
			}
			i = pool_pidx_of(&pool, l.pa);
			assert_int_not_equal(i, PIDX_NONE);
			d = pool_desc(&pool, i);
			f = atomic_load(&d->flags);
			nmaps[i]++;
			if (l.prot & S2_W) {
				/* Private: this VM's alone, charged to it, once (ZEROED: as first mapped). */
				assert_int_equal(f & ~(MP_UNSTABLE | MP_ZEROED), MP_ACTIVE);
				assert_int_equal(d->owner, v->id);
				assert_int_equal(d->gpn, GPN(g));
				assert_int_equal(atomic_load(&d->refcount), 1);
				if (f & MP_UNSTABLE)
					assert_true(pol == SHARE_SELF || pol == SHARE_DOMAIN);
				active_n++;
			} else {
				/* Read-only RAM: a shared page of this VM's group (never for 'off' or 'zero' VMs). */
				if (pol != SHARE_SELF && pol != SHARE_DOMAIN)
					fail_msg("vm%u (policy %d) maps a shared page at page %u", s + 1, pol, g);
				assert_int_equal(f, MP_ACTIVE | MP_SHARED);
				assert_int_equal(d->owner, v->share.group);
				if (first_slot[i] < 0)
					first_slot[i] = (s8)s;
				else if (!same_group((unsigned)first_slot[i], s))
					fail_msg("vm%u and vm%u, in different groups, share a page", first_slot[i] + 1,
						 s + 1);
				shared_n++;
			}
		}
		assert_int_equal(atomic_load(&v->pool.zero), zero_n);
		assert_int_equal(atomic_load(&v->pool.shared), shared_n);
		assert_int_equal(atomic_load(&v->pool.active), active_n);
		fake_s2_stats(v, &fs);
		assert_int_equal(fs.leaves, leaves);
		assert_int_equal(atomic_load(&v->pool.pgtables), fs.tables);
		assert_int_equal(atomic_load(&v->pool.charged),
				 active_n + atomic_load(&v->pool.pgtables) + atomic_load(&v->pool.idle.count));
		assert_int_equal(atomic_load(&v->share.cow), sl->cow);
		sum_zero += zero_n;
		sum_sharing += shared_n;
		sum_charged += atomic_load(&v->pool.charged);
	}

	/* The table: chains in the right buckets, of candidates and shared pages, each once. */
	for (u32 b = 0; b <= sh.bucket_mask; b++) {
		n = 0;
		for (pidx_t e = sh.bucket[b]; e != PIDX_NONE; e = sh.meta[e].hnext) {
			u8 f;

			assert_true(e < total);
			assert_true(++n <= total); /* no cycle */
			f = share_flags(e);
			assert_int_not_equal(sh.meta[e].key, 0);
			assert_int_equal(sh.meta[e].key & sh.bucket_mask, b);
			assert_true(!(f & MP_UNSTABLE) != !(f & MP_SHARED));
			assert_int_not_equal(e, sh.zero_pidx);
			in_table[e]++;
		}
	}

	/* Every machine page. */
	for (pidx_t i = 0; i < total; i++) {
		struct mpage *d = pool_desc(&pool, i);
		u8 f = atomic_load(&d->flags);
		bool is_sh = (f & MP_SHARED) && i != sh.zero_pidx;

		if (i == sh.zero_pidx) {
			assert_int_equal(f, MP_SHARED | MP_PINNED | MP_ZEROED);
			assert_int_equal(nmaps[i], 0);
			assert_int_equal(in_table[i], 0);
		} else if (is_sh) {
			/* A shared page: refcount = leaves mapping it = its rmap, in the table. */
			nshared++;
			assert_true(nmaps[i] >= 1);
			assert_int_equal(atomic_load(&d->refcount), nmaps[i]);
			assert_int_equal(in_table[i], 1);
			assert_int_equal(nrmap[i], nmaps[i]);
			n_rmapped += nrmap[i];
		} else if (f & MP_UNSTABLE) {
			/* A candidate: a private page, mapped once, in the table. */
			assert_int_equal(nmaps[i], 1);
			assert_int_equal(in_table[i], 1);
		} else {
			assert_int_equal(in_table[i], 0);
			assert_true(nmaps[i] <= 1);
		}
		dl->new_shared += is_sh && !was_shared[i];
		dl->gone_shared += !is_sh && was_shared[i];
		was_shared[i] = is_sh;
	}

	/* The reverse map names shared pages only. */
	assert_int_equal(n_rmapped, rmap_used);

	/* Free pages said to be zeroed are: a VM never gets another's data in a fresh page. */
	if (full)
		for (pidx_t i = 0; i < total; i++)
			if (atomic_load(&pool_desc(&pool, i)->flags) == (MP_IDLE | MP_ZEROED) &&
			    !hostmem_page_is_zero(pool_pa(&pool, i)))
				fail_msg("free page %u is marked zeroed but holds data", i);
	assert_int_equal(share_shared_pages(), nshared);
	share_stats(&st);
	assert_int_equal(st.shared, nshared);
	assert_int_equal(st.zero, sum_zero);
	assert_int_equal(st.sharing, sum_sharing);
	/* No page lost or counted twice: free + held by VMs + shared + the zero page. */
	assert_int_equal(pool_free_pages(&pool) + sum_charged + nshared + 1, total);
	assert_true(hostmem_page_is_zero(sh.zero_pa));
	assert_memory_equal(hostmem_ptr(IMG_BASE), img_orig, sizeof(img_orig));
}

/* After every VM is gone: everything back but the zero page, the table and the rmap empty. */
static void check_empty(void)
{
	u32 n = 0;

	assert_int_equal(pool_free_pages(&pool) + 1, total);
	assert_int_equal(share_shared_pages(), 0);
	for (u32 b = 0; b <= sh.bucket_mask; b++)
		assert_int_equal(sh.bucket[b], PIDX_NONE);
	for (u32 e = 0; e < sh.rmap_cap; e++)
		n += sh.rmap[e].vm_gpn != 0;
	assert_int_equal(n, 0);
	assert_int_equal(sh.rmap_used, 0);
}

/* ---- property test against the model ------------------------------------- */

struct spec {
	enum vm_sharing pol;
	const char *domain;
	u32 pages, quota, scan;
};

static struct spec specs[NSLOTS];
#define PT_IMAGES 3 /* image pages mapped at the top of every sharing VM's RAM */

static void pt_make(unsigned s)
{
	struct spec *p = &specs[s];

	vm_make(s, p->pol, p->domain, p->pages, p->quota);
	V(s)->cfg.scan_pages = p->scan;
	vmpool_reserve_idle(&V(s)->pool, rnd_below(MAX_CPUS), rnd_below(4)); /* faults and COW take these first */
	if (p->pol != SHARE_OFF) {
		atomic_store(&V(s)->share.scan_pages, p->scan);
		for (unsigned k = 0; k < PT_IMAGES; k++)
			map_image(s, p->pages - PT_IMAGES + k, (s + k) % IMG_PAGES);
	}
}

/* A random live VM; NSLOTS if none is. */
static unsigned pick_alive(void)
{
	unsigned s = rnd_below(NSLOTS);

	for (unsigned k = 0; k < NSLOTS; k++, s = (s + 1) % NSLOTS)
		if (slots[s].alive)
			return s;
	return NSLOTS;
}

static u32 pick_page(unsigned s)
{
	u32 r = rnd_below(100), pages = slots[s].pages;

	if (r < 45)
		return rnd_below(8); /* a few hot pages: written often, volatile */
	if (r < 55)
		return pages - 1 - rnd_below(PT_IMAGES + 1); /* the images and a page below */
	return rnd_below(pages);
}

static u64 merged_total(void)
{
	u64 m = 0;

	for (unsigned s = 0; s < NSLOTS; s++)
		if (slots[s].alive)
			m += atomic_load(&V(s)->share.merged);
	return m;
}

struct pt_counts {
	u64 writes, refused, cows, scans, merges, destroys;
};

/*
 * One run: random writes (whole pages from the alphabet, single bytes,
 * copies of other VMs' pages), scanner slices, VM teardown and re-creation;
 * check_all after every step, and what each kind of step may change.
 */
static void property_run(u64 seed, unsigned steps, u64 (*h)(const void *), struct pt_counts *pc)
{
	u8 buf[PAGE_SIZE];
	struct delta dl;

	rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	pt_seed = seed;
	/* Two VMs in one domain, one sharing with itself (tight quota), one zero-only, off or in another domain. */
	specs[0] = (struct spec){ SHARE_DOMAIN, "dA", 128, 140, 24 };
	specs[1] = (struct spec){ SHARE_DOMAIN, "dA", 96, 110, 40 };
	specs[2] = (struct spec){ SHARE_SELF, NULL, 128, 24, 32 };
	specs[3] = (struct spec){ seed % 3 == 0 ? SHARE_OFF : SHARE_ZERO, NULL, 64, 72, 16 };
	if (seed % 3 == 2) /* or in another domain, with identical pages to the first two's */
		specs[3] = (struct spec){ SHARE_DOMAIN, "dB", 64, 72, 16 };
	setup_machine(1536, h);
	for (unsigned s = 0; s < NSLOTS; s++)
		pt_make(s);
	check_all(true, NULL);

	pt_running = true;
	for (unsigned step = 0; step < steps; step++) {
		unsigned r = rnd_below(100), cpu = rnd_below(MAX_CPUS), s = pick_alive();
		u64 cows, merged0 = merged_total();
		enum vio_result vr = VIO_MAPPED;
		enum { OP_WRITE, OP_SCAN, OP_LIFE } op = OP_WRITE;

		pt_step = step;
		if (s == NSLOTS) {
			r = 99; /* every VM is gone: make one */
			s = 0;
		}
		cows = slots[s].cow;
		if (r < 35) {
			/* A whole page from the alphabet. */
			content(rnd_below(NALPHA), buf);
			vr = guest_write(s, pick_page(s), 0, buf, PAGE_SIZE, cpu);
		} else if (r < 52) {
			/* One byte: often a page no other has, sometimes the same value again. */
			static const unsigned offs[] = { 0, 1, PAGE_SIZE / 2, PAGE_SIZE - 1 };
			u32 g = pick_page(s);
			unsigned off = rnd_below(3) ? offs[rnd_below(4)] : rnd_below(PAGE_SIZE);
			u8 cur = model_page(s, g)[off];
			u8 vals[] = { 0, 0xff, (u8)(cur ^ 1), cur };

			vr = guest_write(s, g, off, &vals[rnd_below(4)], 1, cpu);
		} else if (r < 60) {
			/* A copy of any VM's page, of any group. */
			unsigned s2 = pick_alive(); /* s is alive: so is some VM */

			memcpy(buf, model_page(s2, pick_page(s2)), PAGE_SIZE);
			vr = guest_write(s, pick_page(s), 0, buf, PAGE_SIZE, cpu);
		} else if (r < 99) {
			u32 q = rnd_below(100);

			op = OP_SCAN;
			if (q < 2) /* the monitor's 'share': another rate, sometimes 0 (not scanned) */
				assert_int_equal(share_set_rate(V(s), rnd_below(3) ? rnd_below(64) : 0),
						 V(s)->cfg.sharing == SHARE_OFF ? -1 : 0);
			if (q < 75) {
				now_ticks += SLICE;
				share_scan(cpu, now_ticks, SLICE, never_stop);
			} else if (q < 85) {
				share_scan(cpu, now_ticks, SLICE, never_stop); /* budgets spent: little or nothing */
			} else {
				now_ticks += SLICE;
				stop_countdown = (int)rnd_below(20);
				share_scan(cpu, now_ticks, SLICE, stop_after_countdown);
			}
			pc->scans++;
		} else {
			op = OP_LIFE;
			s = rnd_below(NSLOTS);
			if (slots[s].alive) {
				vm_unmake(s, cpu);
				if (rnd_below(2))
					pt_make(s);
			} else {
				pt_make(s);
			}
			pc->destroys++;
		}
		if (op == OP_WRITE) {
			pc->writes++;
			/* Only the self VM's quota is tight; nothing else may refuse a write. */
			if (vr != VIO_MAPPED) {
				assert_int_equal(vr, VIO_SEA_QUOTA);
				assert_int_equal(s, 2);
				pc->refused++;
			}
			pc->cows += slots[s].cow - cows;
		}
		check_all(step % 64 == 63, &dl);
		switch (op) {
		case OP_WRITE:
			/* A write makes nothing read-only and shares nothing; a COW frees at most its page. */
			assert_int_equal(dl.made_ro, 0);
			assert_int_equal(dl.new_shared, 0);
			assert_int_equal(dl.made_rw, slots[s].cow - cows);
			assert_true(dl.gone_shared <= dl.made_rw);
			break;
		case OP_SCAN:
			/*
			 * The scanner only merges: each merge makes one page read-only, and
			 * its partner too when a new shared page starts.
			 */
			assert_int_equal(dl.made_rw, 0);
			assert_int_equal(dl.gone_shared, 0);
			assert_int_equal(merged_total() - merged0, dl.made_ro - dl.new_shared);
			pc->merges += merged_total() - merged0;
			break;
		case OP_LIFE:
			break;
		}
	}
	pt_step = steps;
	check_all(true, NULL);
	for (unsigned s = 0; s < NSLOTS; s++)
		if (slots[s].alive)
			vm_unmake(s, rnd_below(MAX_CPUS));
	check_empty();
	pt_running = false;
}

static void property_runs(const char *name, u64 (*h)(const void *), unsigned seeds, unsigned steps)
{
	struct pt_counts pc = { 0 };

	for (unsigned k = 0; k < seeds; k++) {
		property_run(1000 + k, steps, h, &pc);
		teardown(NULL);
	}
	printf("%s: %u seeds x %u steps: %llu writes (%llu refused for the quota, %llu COW), %llu scans, "
	       "%llu merges, %llu VM teardowns\n",
	       name, seeds, steps, (unsigned long long)pc.writes, (unsigned long long)pc.refused,
	       (unsigned long long)pc.cows, (unsigned long long)pc.scans, (unsigned long long)pc.merges,
	       (unsigned long long)pc.destroys);
	assert_true(pc.cows > 0 && pc.merges > 0 && pc.refused > 0);
}

/* The model property with the scanner's default hash. */
static void property_default_hash(void **state)
{
	(void)state;
	property_runs("mul hash", page_hash_mul, 9, 4000);
}

/* ... with the CRC32C hash. */
static void property_crc_hash(void **state)
{
	(void)state;
	property_runs("crc hash", page_hash_crc, 3, 4000);
}

/* ... with a 2-bit hash: every bucket full of different pages; they must never merge. */
static void property_weak_hash(void **state)
{
	(void)state;
	property_runs("2-bit hash", weak_hash, 6, 4000);
}

/* ... with a constant hash: every page collides with every other and with the zero page. */
static void property_constant_hash(void **state)
{
	(void)state;
	property_runs("constant hash", const_hash, 3, 4000);
}

/* ---- focused: merging ----------------------------------------------------- */

/* All-zero pages go to the zero page at their first scan; 'zero' VMs too, 'off' VMs never. */
static void zero_pages_merge_on_first_scan(void **state)
{
	u32 free0;
	paddr_t p4;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_SELF, NULL, 64, 100);
	vm_make(1, SHARE_ZERO, NULL, 64, 100);
	vm_make(2, SHARE_OFF, NULL, 64, 100);
	for (unsigned s = 0; s < 3; s++) {
		write_page(s, 3, 0); /* a fresh page, written with zeros */
		write_page(s, 4, 1);
		write_page(s, 5, 2);
		write_page(s, 5, 0); /* was not zero, is now */
	}
	p4 = pa_of(0, 4);
	check_all(true, NULL);
	free0 = pool_free_pages(&pool);
	scan_rounds(1);
	check_all(true, NULL);
	for (unsigned s = 0; s < 2; s++) {
		assert_int_equal(pa_of(s, 3), sh.zero_pa);
		assert_int_equal(pa_of(s, 5), sh.zero_pa);
		assert_int_equal(prot_of(s, 3), S2_R); /* executable only after a fetch faults */
		assert_int_equal(atomic_load(&V(s)->pool.zero), 2);
		assert_int_equal(atomic_load(&V(s)->pool.active), 1);
		assert_int_equal(atomic_load(&V(s)->share.merged), 2);
		assert_int_equal(atomic_load(&V(s)->share.scans), 1);
		assert_int_equal(atomic_load(&V(s)->share.scanned), 3);
		assert_false(is_ro(s, 4));
		assert_reads(s, 3, 0);
	}
	assert_int_equal(pa_of(0, 4), p4);
	/* 'off': never scanned, its zero pages stay its own. */
	assert_int_equal(share_scan_next(V(2), 0), SCAN_NOT_LIVE);
	assert_int_equal(atomic_load(&V(2)->share.scanned), 0);
	assert_int_not_equal(pa_of(2, 3), sh.zero_pa);
	assert_int_equal(atomic_load(&V(2)->pool.zero), 0);
	assert_int_equal(pool_free_pages(&pool), free0 + 4);
	/* A write to the zero page: a page of its own, zeroed but for the write. */
	write_byte(1, 3, 100, 0xab);
	assert_int_not_equal(pa_of(1, 3), sh.zero_pa);
	assert_false(is_ro(1, 3));
	assert_int_equal(atomic_load(&V(1)->pool.zero), 1);
	assert_int_equal(atomic_load(&V(1)->share.cow), 1);
	check_all(true, NULL);
	/* Zero pages only: equal non-zero pages of a 'zero' VM never merge. */
	write_page(1, 6, 1);
	scan_rounds(3);
	assert_false(is_ro(1, 4));
	assert_false(is_ro(1, 6));
	check_all(true, NULL);
	for (unsigned s = 0; s < 3; s++)
		vm_unmake(s, s);
	check_empty();
}

/* A non-zero page merges only when seen unchanged twice: never at its first sighting. */
static void nonzero_page_needs_a_stable_scan(void **state)
{
	paddr_t a, b;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_DOMAIN, "dA", 64, 100);
	write_page(0, 7, 1);
	write_page(1, 7, 1);
	a = pa_of(0, 7);
	b = pa_of(1, 7);
	scan_rounds(1);
	check_all(true, NULL);
	assert_int_equal(pa_of(0, 7), a);
	assert_int_equal(pa_of(1, 7), b);
	assert_false(is_ro(0, 7));
	assert_false(is_ro(1, 7));
	assert_int_equal(atomic_load(&V(0)->share.merged) + atomic_load(&V(1)->share.merged), 0);
	assert_int_equal(share_shared_pages(), 0);
	/* The second scan: vm1's page becomes a candidate, vm2's merges with it. */
	scan_rounds(1);
	check_all(true, NULL);
	assert_int_equal(pa_of(0, 7), a);
	assert_int_equal(pa_of(1, 7), a);
	assert_true(is_ro(0, 7) && is_ro(1, 7));
	assert_int_equal(refs(a), 2);
	assert_int_equal(share_shared_pages(), 1);
	assert_int_equal(atomic_load(&V(1)->share.merged), 1);
	assert_int_equal(atomic_load(&V(0)->pool.active), 0);
	assert_int_equal(atomic_load(&V(0)->pool.shared), 1);
	assert_int_equal(atomic_load(&V(1)->pool.shared), 1);
	assert_reads(0, 7, 1);
	assert_reads(1, 7, 1);
	vm_unmake(0, 0);
	check_all(true, NULL);
	assert_int_equal(refs(a), 1);
	vm_unmake(1, 1);
	check_empty();
}

/*
 * A change the sample misses (16 bytes of every 128 are sampled: offset 64
 * is not): the stale key merges nothing, and the full hash (every fourth
 * scan) sees the change within four scans; back to page 1's contents, the
 * two merge a scan after the next full hash.
 */
static void change_outside_the_sample(void **state)
{
	u32 seen = 0, r;

	(void)state;
	setup_machine(512, page_hash_crc);
	vm_make(0, SHARE_SELF, NULL, 64, 100);
	write_page(0, 1, 2);
	write_page(0, 2, 2);
	scan_rounds(1);
	write_byte(0, 2, 64, 0x77);
	for (r = 0; r < 4; r++) {
		scan_rounds(1);
		check_all(true, NULL);
		seen += atomic_load(&V(0)->share.volatile_pages);
		assert_false(is_ro(0, 2));
	}
	assert_int_equal(seen, 1);
	assert_int_equal(atomic_load(&V(0)->share.merged), 0);
	write_page(0, 2, 2);
	for (r = 0; r < 6 && !is_ro(0, 2); r++) {
		scan_rounds(1);
		check_all(true, NULL);
	}
	assert_true(r <= 5);
	assert_true(is_ro(0, 1) && is_ro(0, 2));
	assert_int_equal(pa_of(0, 1), pa_of(0, 2));
	assert_int_equal(atomic_load(&V(0)->share.merged), 1);
	vm_unmake(0, 0);
	check_empty();
}

/* A page that changed since its last scan is counted volatile and not merged until it holds still. */
static void changing_page_is_volatile(void **state)
{
	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_SELF, NULL, 64, 100);
	write_page(0, 1, 2);
	write_page(0, 2, 2);
	scan_rounds(1);
	write_byte(0, 2, 9, 0x77);
	scan_rounds(1);
	check_all(true, NULL);
	assert_int_equal(atomic_load(&V(0)->share.volatile_pages), 1);
	assert_int_equal(share_flags(pool_pidx_of(&pool, pa_of(0, 1))) & ~MP_ZEROED, MP_ACTIVE | MP_UNSTABLE);
	assert_false(is_ro(0, 2));
	/* Back to the same contents as page 1: changed again, so still volatile, still private. */
	write_page(0, 2, 2);
	scan_rounds(1);
	check_all(true, NULL);
	assert_int_equal(atomic_load(&V(0)->share.volatile_pages), 1);
	assert_false(is_ro(0, 2));
	assert_int_equal(atomic_load(&V(0)->share.merged), 0);
	/* Unchanged for a scan: merged. */
	scan_rounds(1);
	check_all(true, NULL);
	assert_int_equal(atomic_load(&V(0)->share.volatile_pages), 0);
	assert_true(is_ro(0, 1) && is_ro(0, 2));
	assert_int_equal(pa_of(0, 1), pa_of(0, 2));
	assert_int_equal(atomic_load(&V(0)->share.merged), 1);
	assert_int_equal(atomic_load(&V(0)->share.scans), 4);
	vm_unmake(0, 0);
	check_empty();
}

/* A shared page's 256th mapping is its last: more duplicates start a second copy. */
static void max_refs_starts_a_second_copy(void **state)
{
	paddr_t a, b = 0;
	unsigned na = 0, nb = 0;

	(void)state;
	setup_machine(1024, page_hash_mul);
	vm_make(0, SHARE_SELF, NULL, 512, 600);
	for (u32 g = 0; g < 300; g++)
		write_page(0, g, 3);
	scan_rounds(2);
	check_all(true, NULL);
	a = pa_of(0, 0);
	for (u32 g = 0; g < 300; g++) {
		paddr_t p = pa_of(0, g);

		assert_true(is_ro(0, g));
		if (p == a) {
			na++;
		} else {
			if (!b)
				b = p;
			assert_int_equal(p, b);
			nb++;
		}
	}
	assert_int_equal(na, SHARE_MAX_REFS);
	assert_int_equal(nb, 300 - SHARE_MAX_REFS);
	assert_int_equal(refs(a), SHARE_MAX_REFS);
	assert_int_equal(refs(b), 300 - SHARE_MAX_REFS);
	assert_int_equal(share_shared_pages(), 2);
	/* One mapping of the full page breaks away; a new duplicate joins one of the two, no third copy. */
	write_byte(0, 0, 0, (u8)~model_page(0, 0)[0]);
	assert_int_equal(refs(a), SHARE_MAX_REFS - 1);
	write_page(0, 300, 3);
	scan_rounds(2);
	check_all(true, NULL);
	assert_true(pa_of(0, 300) == a || pa_of(0, 300) == b);
	assert_int_equal(refs(a) + refs(b), 300);
	assert_int_equal(share_shared_pages(), 2);
	assert_false(is_ro(0, 0));
	vm_unmake(0, 0);
	check_empty();
}

/* Pages merge within a domain or within a self VM, never across groups. */
static void groups_are_isolated(void **state)
{
	paddr_t seen_pa[4];

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_DOMAIN, "dB", 64, 100);
	vm_make(2, SHARE_SELF, NULL, 64, 100);
	vm_make(3, SHARE_SELF, NULL, 64, 100);
	for (unsigned s = 0; s < 4; s++) {
		write_page(s, 0, 4);
		write_page(s, 1, 4);
		write_page(s, 2, 5); /* once per VM: nothing to merge with in its group */
	}
	scan_rounds(3);
	check_all(true, NULL);
	for (unsigned s = 0; s < 4; s++) {
		seen_pa[s] = pa_of(s, 0);
		assert_true(is_ro(s, 0));
		assert_int_equal(pa_of(s, 1), seen_pa[s]);
		assert_int_equal(refs(seen_pa[s]), 2);
		assert_false(is_ro(s, 2));
		for (unsigned t = 0; t < s; t++)
			assert_int_not_equal(seen_pa[t], seen_pa[s]);
	}
	assert_int_equal(share_shared_pages(), 4);
	/* A second VM in domain dB joins vm2's page, not vm1's. */
	vm_unmake(3, 0);
	vm_make(3, SHARE_DOMAIN, "dB", 64, 100);
	write_page(3, 9, 4);
	scan_rounds(2);
	check_all(true, NULL);
	assert_int_equal(pa_of(3, 9), seen_pa[1]);
	assert_int_equal(refs(seen_pa[1]), 3);
	for (unsigned s = 0; s < 4; s++)
		vm_unmake(s, s);
	check_empty();
}

static char console_buf[1024];
static unsigned console_len;

static void capture(char c)
{
	if (console_len + 1 < sizeof(console_buf))
		console_buf[console_len++] = c;
}

/* The reverse map is full: merging pauses (logged), nothing breaks, and resumes when entries free. */
static void full_rmap_pauses_merging(void **state)
{
	unsigned ro = 0;
	char want[64];

	(void)state;
	console_len = 0;
	memset(console_buf, 0, sizeof(console_buf));
	console_set_output(capture);
	setup_machine(160, page_hash_mul); /* 160 rmap slots: 140 entries (7/8) */
	assert_int_equal(sh.rmap_limit, 140);
	vm_make(0, SHARE_SELF, NULL, 512, 1000);
	for (u32 g = 0; g < 100; g++)
		write_page(0, g, 1);
	scan_rounds(2);
	check_all(true, NULL);
	for (u32 g = 100; g < 200; g++)
		write_page(0, g, 2);
	scan_rounds(2);
	check_all(true, NULL);
	assert_int_equal(sh.rmap_used, sh.rmap_limit);
	for (u32 g = 0; g < 200; g++)
		ro += is_ro(0, g);
	assert_int_equal(ro, 140);
	snprintf(want, sizeof(want), "the reverse map is full (%u entries)", sh.rmap_limit);
	assert_non_null(strstr(console_buf, want));
	/* Ten breaks free ten entries: ten more merge. */
	for (u32 g = 0; g < 10; g++)
		write_byte(0, g, 1, 1);
	scan_rounds(2);
	check_all(true, NULL);
	ro = 0;
	for (u32 g = 0; g < 200; g++)
		ro += is_ro(0, g);
	assert_int_equal(ro, 140);
	vm_unmake(0, 0);
	check_empty();
}

/* ---- focused: copy-on-write ----------------------------------------------- */

/* COW of a page shared by three VMs: private copies with the right contents; the last user keeps the page. */
static void cow_of_a_page_shared_by_three(void **state)
{
	paddr_t s, c0, c1;
	u32 free0, charged2;

	(void)state;
	setup_machine(512, page_hash_mul);
	for (unsigned k = 0; k < 3; k++) {
		vm_make(k, SHARE_DOMAIN, "dA", 64, 100);
		write_page(k, 9, 2);
	}
	scan_rounds(2);
	check_all(true, NULL);
	s = pa_of(0, 9);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(pa_of(k, 9), s);
	assert_int_equal(refs(s), 3);

	free0 = pool_free_pages(&pool);
	write_byte(0, 9, 17, 0xee);
	c0 = pa_of(0, 9);
	assert_int_not_equal(c0, s);
	assert_false(is_ro(0, 9));
	assert_int_equal(refs(s), 2);
	assert_int_equal(pool_free_pages(&pool), free0 - 1);
	assert_int_equal(((u8 *)hostmem_ptr(c0))[17], 0xee);
	assert_reads(1, 9, 2);
	assert_reads(2, 9, 2);
	check_all(true, NULL);

	write_page(1, 9, 3);
	c1 = pa_of(1, 9);
	assert_int_not_equal(c1, s);
	assert_int_equal(refs(s), 1);
	assert_reads(1, 9, 3);
	assert_reads(2, 9, 2);
	check_all(true, NULL);

	/* The last user: the same machine page, writable again, no copy, charged to it now. */
	charged2 = atomic_load(&V(2)->pool.charged);
	free0 = pool_free_pages(&pool);
	write_byte(2, 9, 0, 0x01);
	assert_int_equal(pa_of(2, 9), s);
	assert_false(is_ro(2, 9));
	assert_int_equal(pool_free_pages(&pool), free0);
	assert_int_equal(atomic_load(&V(2)->pool.charged), charged2 + 1);
	assert_int_equal(share_shared_pages(), 0);
	assert_int_equal(share_flags(pool_pidx_of(&pool, s)), MP_ACTIVE);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(atomic_load(&V(k)->share.cow), 1);
	check_all(true, NULL);
	for (unsigned k = 0; k < 3; k++)
		vm_unmake(k, k);
	check_empty();
}

/* A shared page goes back to the pool when its last user leaves, by COW elsewhere and teardown. */
static void shared_page_freed_when_the_last_user_goes(void **state)
{
	paddr_t s;
	u32 free0;

	(void)state;
	setup_machine(512, page_hash_mul);
	for (unsigned k = 0; k < 3; k++) {
		vm_make(k, SHARE_DOMAIN, "dA", 64, 100);
		write_page(k, 4, 1);
	}
	scan_rounds(2);
	s = pa_of(0, 4);
	assert_int_equal(refs(s), 3);
	write_byte(0, 4, 0, 0);
	write_byte(1, 4, 0, 0);
	check_all(true, NULL);
	assert_int_equal(refs(s), 1);
	free0 = pool_free_pages(&pool);
	vm_unmake(2, 0);
	/* Its root, its tables and the shared page. */
	assert_int_equal(pool_free_pages(&pool), free0 + TABLES + 1);
	assert_int_equal(share_shared_pages(), 0);
	assert_int_equal(atomic_load(&pool_desc(&pool, pool_pidx_of(&pool, s))->flags) & ~MP_ZEROED, MP_IDLE);
	check_all(true, NULL);
	vm_unmake(0, 0);
	vm_unmake(1, 0);
	check_empty();
}

/* Images map read-only, read right, COW to private copies; the image itself never changes. */
static void image_pages_read_and_cow(void **state)
{
	u8 buf[PAGE_SIZE];

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_SELF, NULL, 64, 100);
	assert_true(share_is_image(IMG_BASE));
	assert_true(share_is_image(IMG_BASE + IMG_PAGES * PAGE_SIZE - 1));
	assert_false(share_is_image(IMG_BASE + IMG_PAGES * PAGE_SIZE));
	assert_false(share_is_image(MACH_BASE));
	for (unsigned k = 0; k < 4; k++) {
		map_image(0, 10 + k, k);
		map_image(1, 20 + k, k);
	}
	assert_int_equal(atomic_load(&V(0)->pool.shared), 4);
	check_all(true, NULL);
	guest_read(0, 12, buf);
	assert_memory_equal(buf, img_orig + 2 * PAGE_SIZE, PAGE_SIZE);
	assert_int_equal(pa_of(0, 12), IMG_BASE + 2 * PAGE_SIZE);
	assert_true(is_ro(0, 12));

	write_byte(0, 12, 5, 0x42);
	assert_int_not_equal(pool_pidx_of(&pool, pa_of(0, 12)), PIDX_NONE);
	assert_false(is_ro(0, 12));
	guest_read(0, 12, buf);
	assert_int_equal(buf[5], 0x42);
	assert_memory_equal(buf + 6, img_orig + 2 * PAGE_SIZE + 6, PAGE_SIZE - 6);
	guest_read(1, 22, buf);
	assert_memory_equal(buf, img_orig + 2 * PAGE_SIZE, PAGE_SIZE);
	assert_int_equal(atomic_load(&V(0)->pool.shared), 3);
	assert_int_equal(atomic_load(&V(0)->pool.active), 1);
	assert_int_equal(atomic_load(&V(0)->share.cow), 1);
	/* Scans pass images by; copies of equal images (one VM, one group) merge like any page. */
	write_byte(1, 21, 0, img_orig[PAGE_SIZE]);
	write_byte(1, 23, 0, img_orig[3 * PAGE_SIZE]);
	scan_rounds(3);
	check_all(true, NULL);
	assert_int_equal(pa_of(1, 20), IMG_BASE);
	assert_false(is_ro(1, 21));
	vm_unmake(0, 0);
	vm_unmake(1, 1);
	check_empty();
}

/* COW at the quota (shared, image and zero page): an external abort (VIO_SEA_QUOTA), the mapping left as it was. */
static void cow_at_quota_keeps_the_mapping(void **state)
{
	paddr_t s, im;
	u8 one = 1;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_DOMAIN, "dA", 64, TABLES + 3); /* root, tables, three data pages */
	write_page(0, 0, 1);
	write_page(1, 0, 1);
	write_page(1, 4, 0);
	scan_rounds(2);
	s = pa_of(1, 0);
	assert_true(is_ro(1, 0));
	assert_int_equal(pa_of(1, 4), sh.zero_pa);
	map_image(1, 3, 5);
	im = pa_of(1, 3);
	write_page(1, 1, 2);
	write_page(1, 2, 3);
	write_page(1, 5, 4);
	assert_int_equal(atomic_load(&V(1)->pool.charged), V(1)->pool.quota);
	check_all(true, NULL);

	assert_int_equal(guest_write(1, 0, 7, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(pa_of(1, 0), s);
	assert_true(is_ro(1, 0));
	assert_reads(1, 0, 1);
	assert_int_equal(refs(s), 2);
	assert_int_equal(guest_write(1, 3, 7, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(pa_of(1, 3), im);
	assert_true(is_ro(1, 3));
	assert_int_equal(atomic_load(&V(1)->pool.quota_hits), 2);
	/* The zero page (its quota hit was once uncounted: regression_zero_page_cow_quota_hit_not_counted). */
	assert_int_equal(guest_write(1, 4, 7, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(pa_of(1, 4), sh.zero_pa);
	assert_true(is_ro(1, 4));
	assert_reads(1, 4, 0);
	assert_int_equal(atomic_load(&V(1)->share.cow), 0);
	check_all(true, NULL);
	/* With room again (vm2's pages 1, 2 and 5 merge with vm1's), the same writes work. */
	write_page(0, 1, 2);
	write_page(0, 2, 3);
	write_page(0, 5, 4);
	scan_rounds(2);
	assert_int_equal(atomic_load(&V(1)->pool.charged), TABLES);
	assert_int_equal(guest_write(1, 0, 7, &one, 1, 0), VIO_MAPPED);
	assert_int_equal(guest_write(1, 3, 7, &one, 1, 0), VIO_MAPPED);
	assert_int_equal(guest_write(1, 4, 7, &one, 1, 0), VIO_MAPPED);
	assert_int_equal(atomic_load(&V(1)->share.cow), 3);
	check_all(true, NULL);
	vm_unmake(0, 0);
	vm_unmake(1, 0);
	check_empty();
}

/*
 * The last user of a shared page takes it back with no copy, but it is one
 * more page charged and resident: at its quota or its resident limit the
 * write is refused as a fill would be (VIO_SEA_QUOTA, counted), the page
 * stays shared and mapped read-only. It was once charged with no check
 * (vmpool_charge_force and a bare active++), so a VM could hold more than
 * its quota and map more than its limit.
 */
static void last_user_cow_within_quota_and_limit(void **state)
{
	paddr_t s;
	u8 one = 1;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_DOMAIN, "dA", 64, TABLES + 3); /* root, tables, three data pages */
	write_page(0, 0, 1);
	write_page(1, 0, 1);
	scan_rounds(2);
	s = pa_of(1, 0);
	assert_int_equal(pa_of(0, 0), s);
	write_byte(0, 0, 9, 0x99); /* vm1 becomes the last user */
	assert_int_equal(refs(s), 1);
	write_page(1, 1, 2);
	write_page(1, 2, 3);
	write_page(1, 3, 4);
	assert_int_equal(atomic_load(&V(1)->pool.charged), V(1)->pool.quota);
	check_all(true, NULL);

	/* At its quota. */
	assert_int_equal(guest_write(1, 0, 7, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(atomic_load(&V(1)->pool.charged), V(1)->pool.quota);
	assert_int_equal(atomic_load(&V(1)->pool.active), 3);
	assert_int_equal(pa_of(1, 0), s);
	assert_true(is_ro(1, 0));
	assert_int_equal(refs(s), 1);
	assert_int_equal(share_flags(pool_pidx_of(&pool, s)), MP_ACTIVE | MP_SHARED);
	assert_int_equal(atomic_load(&V(1)->pool.quota_hits), 1);
	assert_reads(1, 0, 1);
	check_all(true, NULL);

	/* Room in the quota, but at its resident limit. */
	V(1)->pool.quota = 100;
	V(1)->pool.data_limit = 3;
	assert_int_equal(guest_write(1, 0, 7, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(atomic_load(&V(1)->pool.active), 3);
	assert_int_equal(atomic_load(&V(1)->pool.charged), TABLES + 3);
	assert_true(is_ro(1, 0));
	assert_int_equal(atomic_load(&V(1)->pool.quota_hits), 2);
	check_all(true, NULL);

	/* Below both: the page is its own again, charged and counted once. */
	V(1)->pool.data_limit = 4;
	assert_int_equal(guest_write(1, 0, 7, &one, 1, 0), VIO_MAPPED);
	assert_int_equal(pa_of(1, 0), s);
	assert_false(is_ro(1, 0));
	assert_int_equal(atomic_load(&V(1)->pool.active), 4);
	assert_int_equal(atomic_load(&V(1)->pool.charged), TABLES + 4);
	assert_int_equal(share_flags(pool_pidx_of(&pool, s)), MP_ACTIVE);
	check_all(true, NULL);
	vm_unmake(0, 0);
	vm_unmake(1, 0);
	check_empty();
}

/* ---- focused: the scanner ------------------------------------------------- */

/* share_scan: each VM's budget per slice, refilled at the next slice; stop() ends it; rates; next wake. */
static void scanner_budget_and_stop(void **state)
{
	u64 t;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_SELF, NULL, 64, 100);
	vm_make(1, SHARE_OFF, NULL, 64, 100);
	assert_int_equal(share_set_rate(V(0), 4), 0);
	assert_int_equal(share_set_rate(V(1), 4), -1);
	assert_int_equal(share_set_rate(V(0), 65537), -1);
	for (u32 g = 0; g < 10; g++)
		write_page(0, g, 1 + g % 3);
	write_page(1, 0, 1);
	t = now_ticks += 10 * SLICE;
	assert_int_equal(share_scan(0, t, SLICE, never_stop), 4);
	assert_int_equal(share_next_wake(t, SLICE), t + SLICE);
	/* A refill time already past (another CPU scans): a slice later, never at once. */
	assert_int_equal(share_next_wake(t + 3 * SLICE, SLICE), t + 4 * SLICE);
	assert_int_equal(share_scan(0, t + SLICE - 1, SLICE, never_stop), 0); /* budget spent */
	assert_int_equal(share_scan(0, t + SLICE, SLICE, never_stop), 4);
	/* Pages 8 and 9, the wrap (a full scan), page 0 again. */
	assert_int_equal(share_scan(0, t + 2 * SLICE, SLICE, never_stop), 3);
	assert_int_equal(atomic_load(&V(0)->share.scans), 1);
	assert_int_equal(atomic_load(&V(0)->share.scanned), 11);
	stop_countdown = 0;
	assert_int_equal(share_scan(0, t + 3 * SLICE, SLICE, stop_after_countdown), 0);
	stop_countdown = 2;
	assert_int_equal(share_scan(0, t + 4 * SLICE, SLICE, stop_after_countdown), 2);
	assert_int_equal(atomic_load(&V(1)->share.scanned), 0);
	/* Rate 0: not scanned, and nobody to wake for. */
	assert_int_equal(share_set_rate(V(0), 0), 0);
	assert_int_equal(share_scan(0, t + 5 * SLICE, SLICE, never_stop), 0);
	assert_int_equal(share_next_wake(t + 5 * SLICE, SLICE), ~0UL);
	now_ticks = t + 6 * SLICE;
	check_all(true, NULL);
	vm_unmake(0, 0);
	vm_unmake(1, 0);
	check_empty();
}

/* share_stats adds up every VM's counters; saved = mappings of shared and zero pages less the pages they use. */
static void stats_add_up(void **state)
{
	struct share_stats st;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_DOMAIN, "dA", 64, 100);
	vm_make(1, SHARE_DOMAIN, "dA", 64, 100);
	for (unsigned s = 0; s < 2; s++) {
		write_page(s, 0, 1);
		write_page(s, 1, 1);
		write_page(s, 2, 0);
		write_page(s, 3, 0);
	}
	scan_rounds(2);
	check_all(true, NULL);
	share_stats(&st);
	assert_int_equal(st.shared, 1);
	assert_int_equal(st.sharing, 4);
	assert_int_equal(st.zero, 4);
	assert_int_equal(st.saved, 4 + 4 - 1 - 1);
	assert_int_equal(st.merged, 4 + 3);
	assert_int_equal(st.scans, 2);
	/* All 8 pages in the first scan, then only the 4 not on the zero page. */
	assert_int_equal(st.scanned, 8 + 4);
	write_byte(0, 0, 0, 0);
	share_stats(&st);
	assert_int_equal(st.cow, 1);
	vm_unmake(0, 0);
	vm_unmake(1, 0);
	check_empty();
}

/* ---- hashes ---------------------------------------------------------------- */

/* CRC32C (Castagnoli, reflected 0x82f63b78), bit by bit, over bytes; no final inversion. */
static u32 crc32c_bits(u32 crc, const u8 *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return crc;
}

/* page_hash_crc by its definition: lane a over the even words from ~0, lane b over the odd ones. */
static u64 crc_reference(const u8 *page)
{
	u32 a = 0xffffffffu, b = 0x5bd1e995u;

	for (unsigned w = 0; w < PAGE_SIZE / 8; w++) {
		if (w & 1)
			b = crc32c_bits(b, page + 8 * w, 8);
		else
			a = crc32c_bits(a, page + 8 * w, 8);
	}
	return (u64)a << 32 | b;
}

/* The software CRC path computes CRC32C (what CRC32CX gives) in the documented two-lane layout. */
static void crc_hash_is_crc32c(void **state)
{
	static u8 page[PAGE_SIZE] __attribute__((aligned(8)));

	(void)state;
	/* The reference itself: the CRC-32C check value. */
	assert_int_equal(~crc32c_bits(~0u, (const u8 *)"123456789", 9), 0xe3069283u);
	memset(page, 0, sizeof(page));
	assert_int_equal(page_hash_crc(page), crc_reference(page));
	memset(page, 0xff, sizeof(page));
	assert_int_equal(page_hash_crc(page), crc_reference(page));
	rng = 77;
	for (int n = 0; n < 16; n++) {
		for (unsigned k = 0; k < PAGE_SIZE; k++)
			page[k] = (u8)rnd();
		assert_int_equal(page_hash_crc(page), crc_reference(page));
	}
	for (unsigned k = 0; k < PAGE_SIZE; k++)
		page[k] = (u8)k;
	assert_int_equal(page_hash_crc(page), crc_reference(page));
}

/* Both hashes change on every single-bit flip of a page. */
static void hashes_see_every_bit_flip(void **state)
{
	static u64 w[PAGE_SIZE / 8];
	u64 hc, hm;

	(void)state;
	rng = 4242;
	for (unsigned k = 0; k < ARRAY_SIZE(w); k++)
		w[k] = rnd();
	hc = page_hash_crc(w);
	hm = page_hash_mul(w);
	for (unsigned n = 0; n < 4096; n++) {
		/* Every bit of a few words, then random ones. */
		unsigned bit = n < 4 * 64 ? (n / 64) * 64 * 3 + n % 64 : rnd_below(PAGE_SIZE * 8);

		w[bit / 64] ^= 1ULL << (bit % 64);
		if (page_hash_crc(w) == hc || page_hash_mul(w) == hm)
			fail_msg("flipping bit %u does not change a hash", bit);
		w[bit / 64] ^= 1ULL << (bit % 64);
	}
	assert_int_equal(page_hash_crc(w), hc);
	assert_int_equal(page_hash_mul(w), hm);
	/* The zero page too (a common case: a page with one bit set). */
	memset(w, 0, sizeof(w));
	hc = page_hash_crc(w);
	hm = page_hash_mul(w);
	for (unsigned bit = 0; bit < PAGE_SIZE * 8; bit += 61) {
		w[bit / 64] ^= 1ULL << (bit % 64);
		assert_int_not_equal(page_hash_crc(w), hc);
		assert_int_not_equal(page_hash_mul(w), hm);
		w[bit / 64] ^= 1ULL << (bit % 64);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static void no_collisions(const char *name, u64 *h, size_t n)
{
	qsort(h, n, sizeof(*h), cmp_u64);
	for (size_t k = 1; k < n; k++)
		if (h[k] == h[k - 1])
			fail_msg("%s: two different pages hash to 0x%016llx", name, (unsigned long long)h[k]);
}

/* 2^16 random pages and 2^16 pages that differ from the zero page in one word: no 64-bit collision. */
static void hashes_spread(void **state)
{
	enum { N = 1 << 16 };
	static u64 w[PAGE_SIZE / 8];
	u64 *hc = malloc(2 * N * sizeof(u64) + 8), *hm = malloc(2 * N * sizeof(u64) + 8);
	size_t n = 0;

	(void)state;
	assert_true(hc && hm);
	rng = 99;
	for (unsigned p = 0; p < N; p++, n++) {
		for (unsigned k = 0; k < ARRAY_SIZE(w); k++)
			w[k] = rnd();
		hc[n] = page_hash_crc(w);
		hm[n] = page_hash_mul(w);
	}
	memset(w, 0, sizeof(w));
	hc[n] = page_hash_crc(w);
	hm[n++] = page_hash_mul(w);
	/* Word k = v, for every word and 128 small values: structure a weak hash would fold. */
	for (unsigned k = 0; k < ARRAY_SIZE(w); k++) {
		for (u64 v = 1; v <= 128; v++, n++) {
			w[k] = v;
			hc[n] = page_hash_crc(w);
			hm[n] = page_hash_mul(w);
		}
		w[k] = 0;
	}
	assert_int_equal(n, 2 * N + 1);
	no_collisions("crc", hc, n);
	no_collisions("mul", hm, n);
	free(hc);
	free(hm);
}

/* ---- regressions ------------------------------------------------------------ */

/*
 * A write to the zero page refused for the quota was not counted: share_cow's
 * zero-page path returned VIO_SEA_QUOTA without adding to
 * vm->pool.quota_hits, unlike its image and shared-page paths and
 * violation_handle. Now all three take their page through copy_of.
 */
static void regression_zero_page_cow_quota_hit_not_counted(void **state)
{
	u8 one = 1;

	(void)state;
	setup_machine(512, page_hash_mul);
	vm_make(0, SHARE_SELF, NULL, 64, TABLES + 1); /* root, tables, one data page */
	write_page(0, 0, 0);
	scan_rounds(1);
	assert_int_equal(pa_of(0, 0), sh.zero_pa);
	write_page(0, 1, 1);
	assert_int_equal(atomic_load(&V(0)->pool.charged), V(0)->pool.quota);
	assert_int_equal(guest_write(0, 0, 0, &one, 1, 0), VIO_SEA_QUOTA);
	assert_int_equal(pa_of(0, 0), sh.zero_pa);
	check_all(true, NULL);
	assert_int_equal(atomic_load(&V(0)->pool.quota_hits), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(zero_pages_merge_on_first_scan, teardown),
		cmocka_unit_test_teardown(nonzero_page_needs_a_stable_scan, teardown),
		cmocka_unit_test_teardown(changing_page_is_volatile, teardown),
		cmocka_unit_test_teardown(change_outside_the_sample, teardown),
		cmocka_unit_test_teardown(max_refs_starts_a_second_copy, teardown),
		cmocka_unit_test_teardown(groups_are_isolated, teardown),
		cmocka_unit_test_teardown(full_rmap_pauses_merging, teardown),
		cmocka_unit_test_teardown(cow_of_a_page_shared_by_three, teardown),
		cmocka_unit_test_teardown(shared_page_freed_when_the_last_user_goes, teardown),
		cmocka_unit_test_teardown(image_pages_read_and_cow, teardown),
		cmocka_unit_test_teardown(cow_at_quota_keeps_the_mapping, teardown),
		cmocka_unit_test_teardown(last_user_cow_within_quota_and_limit, teardown),
		cmocka_unit_test_teardown(scanner_budget_and_stop, teardown),
		cmocka_unit_test_teardown(stats_add_up, teardown),
		cmocka_unit_test(crc_hash_is_crc32c),
		cmocka_unit_test(hashes_see_every_bit_flip),
		cmocka_unit_test(hashes_spread),
		cmocka_unit_test_teardown(property_default_hash, teardown),
		cmocka_unit_test_teardown(property_crc_hash, teardown),
		cmocka_unit_test_teardown(property_weak_hash, teardown),
		cmocka_unit_test_teardown(property_constant_hash, teardown),
		/* A defect found in share_cow, fixed: */
		cmocka_unit_test_teardown(regression_zero_page_cow_quota_hit_not_counted, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
