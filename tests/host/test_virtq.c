/*
 * Guest memory as device models reach it (core/gmem.c) and split
 * virtqueues over it (core/virtq.c), on the real pools, the real stage-2
 * walker on the fake arch (fake_arch.c), the real violation handler and
 * sharing: first touch, RAM bounds, copy-on-write, quotas, claimed leaves;
 * well-formed rings, and drivers that lie in every way the device checks.
 *
 * The machine, the VMs and the driver's side of a ring are
 * virtio_helpers.c's; the driver writes with gmem_copy too (its own tests
 * come first); what must land in guest memory is also read back through
 * s2_lookup + hostmem_ptr, beside gmem_copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/virtq.h>
#include <quire/vm.h>
#include "../../core/share_priv.h"
#include "fake_arch.h"
#include "hostmem.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

#define T FAKE_S2_PATH_TABLES /* tables below the root on the way to the first leaf */

static struct vm vm2;

/* ---- the machine and its VMs (virtio_helpers.c) ----------------------------- */

static void setup(u32 quota)
{
	setup_machine(512);
	setup_vm(&vm, 1, quota, SHARE_OFF);
}

static _Atomic unsigned given_back;

static void give_back(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	atomic_fetch_add(&given_back, 1);
	swap_page_release(v, ipa, pa, cpu);
}

/* Tear a VM down as vm_reap does, and check it gave back every page it held. */
static void destroy_vm(struct vm *v, unsigned cpu)
{
	struct fake_s2_stats st;
	pidx_t i;

	share_vm_stop(v);
	fake_s2_stats(v, &st);
	atomic_store(&given_back, 0);
	s2_destroy(v, give_back, swap_release, NULL, cpu);
	assert_int_equal(atomic_load(&given_back), st.leaves);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, cpu, i, true);
	assert_int_equal(atomic_load(&v->pool.charged), 0);
	assert_int_equal(atomic_load(&v->pool.pgtables), 0);
	assert_int_equal(atomic_load(&v->pool.active), 0);
	assert_int_equal(atomic_load(&v->pool.zero), 0);
	assert_int_equal(atomic_load(&v->pool.shared), 0);
	assert_int_equal(v->s2.root, 0);
	registry[v->id - 1] = NULL;
}

/* Every page back in the pool but the zero page, and no page left shared. */
static void check_empty(void)
{
	assert_int_equal(pool_free_pages(&pool) + 1, total);
	assert_int_equal(share_shared_pages(), 0);
}

/* The books of one VM without sharing, with nothing running. */
static void check_books(struct vm *v)
{
	struct fake_s2_stats st;
	u32 charged = atomic_load(&v->pool.charged);

	fake_s2_stats(v, &st);
	assert_true(charged <= v->pool.quota);
	assert_int_equal(atomic_load(&v->pool.pgtables), st.tables);
	assert_int_equal(atomic_load(&v->pool.active), st.leaves);
	assert_int_equal(atomic_load(&v->pool.fills), st.leaves);
	assert_int_equal(charged, st.leaves + st.tables + atomic_load(&v->pool.idle.count));
	assert_int_equal(pool_free_pages(&pool) + 1 + charged, total);
}

/* The host address of guest byte ipa (the page must be mapped). */
static u8 *gpa(struct vm *v, u64 ipa)
{
	paddr_t pa = s2_lookup(v, IPA(ALIGN_DOWN(ipa, PAGE_SIZE)));

	assert_int_not_equal(pa, 0);
	return (u8 *)hostmem_ptr(pa) + (ipa & (PAGE_SIZE - 1));
}

static void pattern(u8 *b, u64 len, u8 seed)
{
	for (u64 k = 0; k < len; k++)
		b[k] = (u8)(seed + k * 31 + (k >> 8));
}

/* One full pass of the scanner over a VM (share_scan_next until it wraps). */
static void scan_pass(struct vm *v)
{
	for (unsigned n = 0; share_scan_next(v, 0) == SCAN_PAGE; n++)
		assert_true(n <= RAM_SIZE / PAGE_SIZE);
}

/* ---- gmem_copy ------------------------------------------------------------ */

/* Never-touched RAM: each page is filled (zeroed) as a vCPU's access would; the bytes land across pages. */
static void gmem_fills_untouched_pages(void **state)
{
	static u8 buf[6000], back[6000];
	u64 at = PG(3) + 0xc00; /* 1 KiB in page 3, all of page 4, 880 bytes of page 5 */

	(void)state;
	setup(100);
	assert_int_equal(atomic_load(&vm.pool.active), 0);
	pattern(buf, sizeof(buf), 1);
	assert_int_equal(gmem_copy(&vm, at, buf, sizeof(buf), true, 0), 0);
	assert_int_equal(atomic_load(&vm.pool.active), 3);
	assert_int_equal(atomic_load(&vm.pool.fills), 3);
	assert_int_equal(s2_lookup(&vm, IPA(PG(2))), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(6))), 0);
	/* In guest memory, page by page, and nothing around it: the rest of each new page is zero, not the pool's 0x5a. */
	assert_memory_equal(gpa(&vm, at), buf, 0x400);
	assert_memory_equal(gpa(&vm, PG(4)), buf + 0x400, PAGE_SIZE);
	assert_memory_equal(gpa(&vm, PG(5)), buf + 0x400 + PAGE_SIZE, sizeof(buf) - 0x400 - PAGE_SIZE);
	for (unsigned k = 0; k < 0xc00; k++)
		assert_int_equal(gpa(&vm, PG(3))[k], 0);
	for (u64 k = sizeof(buf) - 0x400 - PAGE_SIZE; k < PAGE_SIZE; k++)
		assert_int_equal(gpa(&vm, PG(5))[k], 0);
	/* Never executable from a device's copy; and read back through gmem_copy itself. */
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(4))), S2_R | S2_W);
	assert_int_equal(gmem_copy(&vm, at, back, sizeof(back), false, 0), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	/* An unaligned piece of it. */
	memset(back, 0xee, sizeof(back));
	assert_int_equal(gmem_copy(&vm, at + 0x3ff, back, 3, false, 0), 0);
	assert_memory_equal(back, buf + 0x3ff, 3);
	assert_int_equal(back[3], 0xee);
	assert_int_equal(atomic_load(&vm.pool.active), 3);

	/* Untouched RAM reads as zeros (its pages filled, as a guest's load would have them). */
	memset(back, 0xff, sizeof(back));
	assert_int_equal(gmem_copy(&vm, PG(10) + 0x800, back, 5000, false, 0), 0);
	for (unsigned k = 0; k < 5000; k++)
		assert_int_equal(back[k], 0);
	assert_int_equal(back[5000], 0xff);
	assert_int_equal(atomic_load(&vm.pool.active), 5);
	assert_true(hostmem_page_is_zero(s2_lookup(&vm, IPA(PG(11)))));

	/* The first and last bytes of RAM; and nothing at all. */
	assert_int_equal(gmem_copy(&vm, RAM, buf, 1, true, 0), 0);
	assert_int_equal(gmem_copy(&vm, RAM_END - 4, buf, 4, true, 0), 0);
	assert_memory_equal(gpa(&vm, RAM_END - 4), buf, 4);
	assert_int_equal(gmem_copy(&vm, PG(200), buf, 0, true, 0), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(200))), 0);
	assert_int_equal(atomic_load(&vm.pool.active), 7);
	check_books(&vm);
	destroy_vm(&vm, 0);
	check_empty();
}

/* Any byte outside RAM, or a range that wraps past 2^64: -EFAULT, nothing copied, nothing mapped. */
static void gmem_outside_ram_refused(void **state)
{
	static const struct {
		u64 ipa, len;
	} bad[] = {
		{ 0, 16 },
		{ RAM - 1, 2 },			  /* straddles the start */
		{ RAM - PAGE_SIZE, PAGE_SIZE },	  /* the page below */
		{ RAM_END - 8, 16 },		  /* straddles the end */
		{ RAM_END, 1 },
		{ RAM_END - 1, 2 },
		{ 0x09000000, 4 },		  /* a device */
		{ ~0ULL - 7, 16 },		  /* wraps to 8 */
		{ ~0ULL, 1 },
		{ PG(1), ~0ULL - PAGE_SIZE + 16 }, /* wraps, its last byte back inside RAM */
		{ RAM, ~0ULL - RAM + 2 },	  /* ends at 2^64 + 1: its last byte is address 0 */
		{ RAM, ~0ULL },
	};
	u8 buf[64];

	(void)state;
	setup(100);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		/* The buffer is 64 bytes: gmem_copy must refuse before it reads or writes any of it (ASan). */
		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(gmem_copy(&vm, bad[k].ipa, buf, bad[k].len, false, 0), -EFAULT);
		for (unsigned b = 0; b < sizeof(buf); b++)
			assert_int_equal(buf[b], 0xee);
		assert_int_equal(gmem_copy(&vm, bad[k].ipa, buf, bad[k].len, true, 0), -EFAULT);
	}
	assert_int_equal(atomic_load(&vm.pool.active), 0);
	assert_int_equal(atomic_load(&vm.pool.fills), 0);
	assert_int_equal(atomic_load(&vm.pool.charged), 1); /* the root table only */
	assert_int_equal(s2_next_leaf(&vm, RAM, RAM_END), RAM_END);
	check_books(&vm);
	destroy_vm(&vm, 0);
	check_empty();
}

/*
 * A write into a read-only page breaks copy-on-write as a vCPU's store
 * would: a page merged between two VMs, an image page, the zero page. The
 * other mappings keep their bytes; a read never breaks anything.
 */
static void gmem_write_breaks_cow(void **state)
{
	static u8 page[PAGE_SIZE], back[PAGE_SIZE];
	static const u8 zero[PAGE_SIZE];
	paddr_t s, mine;

	(void)state;
	setup_machine(512);
	setup_vm(&vm, 1, 100, SHARE_DOMAIN);
	setup_vm(&vm2, 2, 100, SHARE_DOMAIN);
	pattern(page, PAGE_SIZE, 9);
	assert_int_equal(gmem_copy(&vm, PG(9), page, PAGE_SIZE, true, 0), 0);
	assert_int_equal(gmem_copy(&vm2, PG(9), page, PAGE_SIZE, true, 0), 0);
	for (unsigned r = 0; r < 4 && s2_lookup(&vm, IPA(PG(9))) != s2_lookup(&vm2, IPA(PG(9))); r++) {
		scan_pass(&vm);
		scan_pass(&vm2);
	}
	s = s2_lookup(&vm, IPA(PG(9)));
	assert_int_equal(s2_lookup(&vm2, IPA(PG(9))), s);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(9))) & S2_W, 0);
	assert_int_equal(atomic_load(&pool_desc(&pool, pool_pidx_of(&pool, s))->refcount), 2);

	/* A read leaves it shared. */
	assert_int_equal(gmem_copy(&vm, PG(9) + 100, back, 300, false, 0), 0);
	assert_memory_equal(back, page + 100, 300);
	assert_int_equal(s2_lookup(&vm, IPA(PG(9))), s);
	assert_int_equal(atomic_load(&vm.share.cow), 0);

	/* A write across its end into page 10 (never touched): vm's own copy of 9, vm2's stays as it was. */
	memset(back, 0xab, 8);
	assert_int_equal(gmem_copy(&vm, PG(10) - 4, back, 8, true, 0), 0);
	mine = s2_lookup(&vm, IPA(PG(9)));
	assert_int_not_equal(mine, s);
	assert_true(fake_s2_prot(&vm, IPA(PG(9))) & S2_W);
	assert_int_equal(atomic_load(&vm.share.cow), 1);
	assert_memory_equal(hostmem_ptr(mine), page, PAGE_SIZE - 4);
	assert_memory_equal((u8 *)hostmem_ptr(mine) + PAGE_SIZE - 4, back, 4);
	assert_memory_equal(gpa(&vm, PG(10)), back + 4, 4);
	assert_int_equal(s2_lookup(&vm2, IPA(PG(9))), s);
	assert_memory_equal(hostmem_ptr(s), page, PAGE_SIZE);
	assert_int_equal(gmem_copy(&vm2, PG(9), back, PAGE_SIZE, false, 0), 0);
	assert_memory_equal(back, page, PAGE_SIZE);
	assert_int_equal(atomic_load(&vm2.share.cow), 0);

	/* An image page: vm gets a copy with the write in it; the image never changes. */
	assert_int_equal(share_map_image(&vm, IPA(PG(20)), IMG_BASE, 0), 0);
	assert_int_equal(share_map_image(&vm2, IPA(PG(20)), IMG_BASE, 0), 0);
	assert_int_equal(gmem_copy(&vm, PG(20), back, PAGE_SIZE, false, 0), 0);
	assert_memory_equal(back, img_orig, PAGE_SIZE);
	assert_int_equal(s2_lookup(&vm, IPA(PG(20))), IMG_BASE);
	assert_int_equal(gmem_copy(&vm, PG(20) + 0x10, "dev", 3, true, 0), 0);
	mine = s2_lookup(&vm, IPA(PG(20)));
	assert_int_not_equal(pool_pidx_of(&pool, mine), PIDX_NONE);
	assert_memory_equal((u8 *)hostmem_ptr(mine) + 0x10, "dev", 3);
	assert_memory_equal(hostmem_ptr(mine), img_orig, 0x10);
	assert_memory_equal(hostmem_ptr(IMG_BASE), img_orig, PAGE_SIZE);
	assert_int_equal(s2_lookup(&vm2, IPA(PG(20))), IMG_BASE);
	assert_int_equal(atomic_load(&vm.share.cow), 2);

	/* The zero page: reads keep it, a write gets a page of its own; the zero page stays zero. */
	put_in(&vm, PG(30), zero, PAGE_SIZE);
	scan_pass(&vm);
	assert_int_equal(s2_lookup(&vm, IPA(PG(30))), sh.zero_pa);
	memset(back, 0xff, 64);
	assert_int_equal(gmem_copy(&vm, PG(30) + 64, back, 64, false, 0), 0);
	assert_memory_equal(back, zero, 64);
	assert_int_equal(s2_lookup(&vm, IPA(PG(30))), sh.zero_pa);
	assert_int_equal(gmem_copy(&vm, PG(30) + 64, "z", 1, true, 0), 0);
	mine = s2_lookup(&vm, IPA(PG(30)));
	assert_int_not_equal(mine, sh.zero_pa);
	assert_int_equal(((u8 *)hostmem_ptr(mine))[64], 'z');
	assert_int_equal(((u8 *)hostmem_ptr(mine))[63], 0);
	assert_true(hostmem_page_is_zero(sh.zero_pa));
	assert_int_equal(atomic_load(&vm.share.cow), 3);

	destroy_vm(&vm, 0);
	destroy_vm(&vm2, 1);
	check_empty();
}

/*
 * Out of quota: -EFAULT (the device's error), the pages before it copied,
 * the one it could not have left unmapped; a COW refused leaves the
 * read-only mapping as it was; nothing leaks.
 */
static void gmem_quota_runs_out(void **state)
{
	static u8 buf[5 * PAGE_SIZE];

	(void)state;
	setup_machine(512);
	/* Root, the tables to the first leaf, three data pages. */
	setup_vm(&vm, 1, 1 + T + 3, SHARE_DOMAIN);
	assert_int_equal(share_map_image(&vm, IPA(PG(10)), IMG_BASE, 0), 0);
	pattern(buf, sizeof(buf), 3);
	assert_int_equal(gmem_copy(&vm, PG(0), buf, sizeof(buf), true, 0), -EFAULT);
	assert_int_equal(atomic_load(&vm.pool.charged), vm.pool.quota);
	assert_int_equal(atomic_load(&vm.pool.active), 3);
	assert_int_equal(atomic_load(&vm.pool.quota_hits), 1);
	assert_memory_equal(gpa(&vm, PG(2)), buf + 2 * PAGE_SIZE, PAGE_SIZE);
	assert_int_equal(s2_lookup(&vm, IPA(PG(3))), 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(4))), 0);
	/* Reading an untouched page needs one too. */
	assert_int_equal(gmem_copy(&vm, PG(5), buf, 1, false, 0), -EFAULT);
	assert_int_equal(s2_lookup(&vm, IPA(PG(5))), 0);
	/* The image page stays mapped read-only; its bytes can still be read. */
	assert_int_equal(gmem_copy(&vm, PG(10), buf, 1, true, 0), -EFAULT);
	assert_int_equal(s2_lookup(&vm, IPA(PG(10))), IMG_BASE);
	assert_int_equal(fake_s2_prot(&vm, IPA(PG(10))) & S2_W, 0);
	assert_memory_equal(hostmem_ptr(IMG_BASE), img_orig, PAGE_SIZE);
	assert_int_equal(gmem_copy(&vm, PG(10), buf, 16, false, 0), 0);
	assert_memory_equal(buf, img_orig, 16);
	assert_int_equal(atomic_load(&vm.share.cow), 0);
	/* Pages it has take writes still. */
	assert_int_equal(gmem_copy(&vm, PG(1) + 5, "ok", 2, true, 0), 0);
	assert_memory_equal(gpa(&vm, PG(1) + 5), "ok", 2);
	assert_int_equal(atomic_load(&vm.pool.charged), vm.pool.quota);
	assert_int_equal(pool_free_pages(&pool) + 1 + vm.pool.quota, total);
	destroy_vm(&vm, 0);
	check_empty();
}

/* A leaf another changer holds (claimed): gmem_copy gives up with -EBUSY, copies nothing, changes nothing. */
static void gmem_claimed_leaf_is_busy(void **state)
{
	struct s2_slot slot;
	struct s2_leaf old;
	u8 b = 0x77;

	(void)state;
	setup(100);
	assert_int_equal(gmem_copy(&vm, PG(4) + 1, "x", 1, true, 0), 0);
	assert_int_equal(s2_claim(&vm, IPA(PG(4)), &slot, &old), 0);
	assert_int_equal(gmem_copy(&vm, PG(4) + 1, &b, 1, false, 0), -EBUSY);
	assert_int_equal(b, 0x77);
	assert_int_equal(gmem_copy(&vm, PG(4) + 1, "y", 1, true, 0), -EBUSY);
	assert_int_equal(atomic_load(&vm.pool.fills), 1);
	s2_install(&vm, &slot, old.pa, old.prot);
	assert_int_equal(gmem_copy(&vm, PG(4) + 1, &b, 1, false, 0), 0);
	assert_int_equal(b, 'x');
	check_books(&vm);
	destroy_vm(&vm, 0);
	check_empty();
}

/* ---- virtqueues: well-formed ------------------------------------------------ */

/* A readable and a writable segment: popped whole, copied at offsets, pushed to the used ring. */
static void virtq_two_segment_chain(void **state)
{
	static u8 out[40], in[100], got[100];
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;
	u32 id, len;
	u64 out_at = BUF(0) + PAGE_SIZE - 16; /* crosses into the next page */

	(void)state;
	setup(100);
	queue_init(&q, 8);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0); /* nothing offered */
	pattern(out, sizeof(out), 5);
	pattern(in, sizeof(in), 77);
	put(out_at, out, sizeof(out));
	put(BUF(4) + 0x10, in, sizeof(in));
	put_desc(&q, 3, out_at, sizeof(out), VIRTQ_DESC_F_NEXT, 6);
	put_desc(&q, 6, BUF(4) + 0x10, sizeof(in), VIRTQ_DESC_F_WRITE, 0);
	offer(&q, 3);

	q.ready = false;
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0);
	q.ready = true;
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
	assert_null(why);
	assert_int_equal(q.last_avail, 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.out_len, sizeof(out));
	assert_int_equal(c.in_len, sizeof(in));
	assert_int_equal(c.seg[0].addr, out_at);
	assert_int_equal(c.seg[0].len, sizeof(out));
	assert_int_equal(c.seg[1].addr, BUF(4) + 0x10);
	assert_int_equal(c.seg[1].len, sizeof(in));
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0);
	assert_int_equal(q.last_avail, 1);

	/* Reads come from the readable part only, at its offsets (across the page boundary here). */
	memset(got, 0, sizeof(got));
	assert_int_equal(virtq_read(&vm, &c, 10, got, 12, 0), 0);
	assert_memory_equal(got, out + 10, 12);
	assert_int_equal(virtq_read(&vm, &c, 0, got, sizeof(out), 0), 0);
	assert_memory_equal(got, out, sizeof(out));
	/* Writes go to the writable part only. */
	assert_int_equal(virtq_write(&vm, &c, 90, "0123456789", 10, 0), 0);
	assert_memory_equal(gpa(&vm, BUF(4) + 0x10), in, 90);
	assert_memory_equal(gpa(&vm, BUF(4) + 0x10 + 90), "0123456789", 10);
	assert_memory_equal(gpa(&vm, out_at), out, 16);
	assert_memory_equal(gpa(&vm, BUF(1)), out + 16, sizeof(out) - 16);

	assert_int_equal(virtq_push(&vm, &q, c.head, 10, 0), 0);
	assert_int_equal(q.used_idx, 1);
	assert_int_equal(get16(q.used + 2), 1);
	used_elem(&q, 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 10);
	assert_int_equal(get16(q.used), 0); /* used->flags: the device's, untouched */
	check_books(&vm);
	destroy_vm(&vm, 0);
	check_empty();
}

/* Two readable then two writable segments: copies at offsets that span segments. */
static void virtq_copies_span_segments(void **state)
{
	static u8 a[10], b[20], cc[16], d[8], got[64];
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;
	u32 id, len;

	(void)state;
	setup(100);
	queue_init(&q, 16);
	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	memset(cc, 0xcc, sizeof(cc));
	memset(d, 0xdd, sizeof(d));
	put(BUF(0) + 8, a, sizeof(a));
	put(BUF(1) + PAGE_SIZE - 4, b, sizeof(b)); /* itself across a page boundary */
	put(BUF(3), cc, sizeof(cc));
	put(BUF(3) + 0x100, d, sizeof(d));
	put_desc(&q, 0, BUF(0) + 8, sizeof(a), VIRTQ_DESC_F_NEXT, 1);
	put_desc(&q, 1, BUF(1) + PAGE_SIZE - 4, sizeof(b), VIRTQ_DESC_F_NEXT, 15);
	put_desc(&q, 15, BUF(3), sizeof(cc), VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	put_desc(&q, 2, BUF(3) + 0x100, sizeof(d), VIRTQ_DESC_F_WRITE, 0);
	offer(&q, 0);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
	assert_int_equal(c.head, 0);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 2);
	assert_int_equal(c.out_len, 30);
	assert_int_equal(c.in_len, 24);

	/* a[5..9] then b[0..14]. */
	memset(got, 0, sizeof(got));
	assert_int_equal(virtq_read(&vm, &c, 5, got, 20, 0), 0);
	assert_memory_equal(got, a + 5, 5);
	assert_memory_equal(got + 5, b, 15);
	/* b alone, from an offset in it: the first segment skipped whole. */
	assert_int_equal(virtq_read(&vm, &c, 12, got, 18, 0), 0);
	assert_memory_equal(got, b + 2, 18);
	/* cc[12..15] then d[0..5]: the bytes around them untouched. */
	assert_int_equal(virtq_write(&vm, &c, 12, "ABCDEFGHIJ", 10, 0), 0);
	assert_memory_equal(gpa(&vm, BUF(3)), cc, 12);
	assert_memory_equal(gpa(&vm, BUF(3) + 12), "ABCD", 4);
	assert_memory_equal(gpa(&vm, BUF(3) + 0x100), "EFGHIJ", 6);
	assert_memory_equal(gpa(&vm, BUF(3) + 0x106), d + 6, 2);
	/* The readable buffers are never written. */
	assert_memory_equal(gpa(&vm, BUF(0) + 8), a, sizeof(a));
	assert_memory_equal(gpa(&vm, BUF(1) + PAGE_SIZE - 4), b, 4);
	assert_memory_equal(gpa(&vm, BUF(2)), b + 4, sizeof(b) - 4);
	/* Zero bytes at the very end of a part. */
	assert_int_equal(virtq_read(&vm, &c, 30, got, 0, 0), 0);
	assert_int_equal(virtq_write(&vm, &c, 24, got, 0, 0), 0);

	assert_int_equal(virtq_push(&vm, &q, c.head, 24, 0), 0);
	used_elem(&q, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 24);
	assert_int_equal(get16(q.used + 2), 1);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0);
	destroy_vm(&vm, 0);
	check_empty();
}

/* The indices run past 65535 and the rings wrap: entries at index mod num, both ways. */
static void wrap_run(u16 num)
{
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;
	u16 start = 65530;
	u32 id, len;

	queue_init(&q, num);
	for (u16 i = 0; i < num; i++)
		put_desc(&q, i, BUF(i), 100 + i, VIRTQ_DESC_F_WRITE, 0);
	put16(q.avail + 2, start);
	put16(q.used + 2, start);
	q.last_avail = q.used_idx = start;
	for (unsigned k = 0; k < 20; k++) {
		u16 head = (u16)((k * 5 + 3) % num);

		offer(&q, head);
		assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
		assert_int_equal(c.head, head);
		assert_int_equal(c.in_len, 100 + head);
		assert_int_equal(q.last_avail, (u16)(start + k + 1));
		assert_int_equal(virtq_push(&vm, &q, head, k, 0), 0);
		assert_int_equal(get16(q.used + 2), (u16)(start + k + 1));
		used_elem(&q, (u16)(start + k), &id, &len);
		assert_int_equal(id, head);
		assert_int_equal(len, k);
	}
	assert_int_equal(q.used_idx, (u16)(start + 20));
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0);

	/* A full ring: num entries ahead of the device is allowed. */
	for (u16 i = 0; i < num; i++)
		offer(&q, i);
	for (u16 i = 0; i < num; i++) {
		assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
		assert_int_equal(c.head, i);
	}
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 0);
	assert_null(why);
}

static void virtq_indices_wrap(void **state)
{
	(void)state;
	setup(1000);
	wrap_run(8);
	wrap_run(256);
	destroy_vm(&vm, 0);
	check_empty();
}

/*
 * A ring page the VM cannot have (its quota is used up): gmem_copy's
 * -EFAULT, and nothing is taken or published; once the page is there,
 * the same chain is taken.
 */
static void virtq_ring_page_out_of_quota(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;

	(void)state;
	/* Root, the tables to the first leaf, the three ring pages. */
	setup(1 + T + 3);
	queue_init(&q, 8);
	assert_int_equal(atomic_load(&vm.pool.charged), vm.pool.quota);
	offer(&q, 0);
	/* The descriptor table moved to a page never touched: reading it needs a page. */
	q.desc = PG(5);
	assert_true(virtq_areas_ok(&vm, &q));
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), -EFAULT);
	assert_null(why);
	assert_int_equal(q.last_avail, 0);
	/* The same for the used ring. */
	q.desc = Q_DESC;
	put_desc(&q, 0, BUF(0), 16, 0, 0);
	q.used = PG(6);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
	assert_int_equal(virtq_push(&vm, &q, c.head, 0, 0), -EFAULT);
	assert_int_equal(q.used_idx, 0);
	assert_int_equal(s2_lookup(&vm, IPA(PG(6))), 0);
	q.used = Q_USED;
	assert_int_equal(virtq_push(&vm, &q, c.head, 0, 0), 0);
	assert_int_equal(get16(q.used + 2), 1);
	check_books(&vm);
	destroy_vm(&vm, 0);
	check_empty();
}

/* ---- virtqueues: hostile drivers -------------------------------------------- */

/* virtq_pop refuses with a reason containing word, and takes nothing (twice: nothing moved on). */
static void expect_broken(struct virtq *q, const char *word)
{
	struct virtq_chain c;
	u16 last = q->last_avail;

	for (int k = 0; k < 2; k++) {
		const char *why = NULL;

		assert_int_equal(virtq_pop(&vm, q, &c, &why, 0), -EPROTO);
		assert_non_null(why);
		if (!strstr(why, word))
			fail_msg("expected a reason about '%s', got '%s'", word, why);
		assert_int_equal(q->last_avail, last);
		assert_int_equal(q->used_idx, 0);
	}
	assert_int_equal(get16(q->used + 2), 0);
}

static void expect_chain(struct virtq *q, u16 head, unsigned nout, unsigned nin)
{
	struct virtq_chain c;
	const char *why = NULL;
	u16 last = q->last_avail;

	assert_int_equal(virtq_pop(&vm, q, &c, &why, 0), 1);
	assert_int_equal(c.head, head);
	assert_int_equal(c.nout, nout);
	assert_int_equal(c.nin, nin);
	assert_int_equal(q->last_avail, (u16)(last + 1));
}

static void hostile_avail_idx(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 0, BUF(0), 16, 0, 0);
	/* num + 1 ahead, then far ahead, then behind the device. */
	put16(q.avail + 2, 9);
	expect_broken(&q, "ahead");
	put16(q.avail + 2, 0x8000);
	expect_broken(&q, "ahead");
	q.last_avail = 5;
	put16(q.avail + 2, 4);
	expect_broken(&q, "ahead");
	/* Exactly num ahead is a full ring. */
	q.last_avail = 0;
	put16(q.avail + 2, 8);
	expect_chain(&q, 0, 1, 0);
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_head_past_table(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 7, BUF(0), 16, 0, 0);
	offer(&q, 8);
	expect_broken(&q, "avail ring entry");
	put16(q.avail + 4, 0xffff);
	expect_broken(&q, "avail ring entry");
	/* The driver mends the entry: the same one is taken, nothing was skipped. */
	put16(q.avail + 4, 7);
	expect_chain(&q, 7, 1, 0);
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_chain_loops(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	/* a -> b -> a */
	put_desc(&q, 2, BUF(0), 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(&q, 5, BUF(1), 16, VIRTQ_DESC_F_NEXT, 2);
	offer(&q, 2);
	expect_broken(&q, "loops");
	/* a -> a */
	put_desc(&q, 2, BUF(0), 16, VIRTQ_DESC_F_NEXT, 2);
	expect_broken(&q, "loops");
	/* Through the whole table and back to its start. */
	for (u16 i = 0; i < 8; i++)
		put_desc(&q, i, BUF(i), 16, VIRTQ_DESC_F_NEXT, (u16)((i + 1) % 8));
	expect_broken(&q, "loops");
	/* Every descriptor once is a chain, not a loop. */
	put_desc(&q, 1, BUF(1), 16, 0, 0);
	expect_chain(&q, 2, 8, 0);
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_chain_too_long(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;

	(void)state;
	setup(100);
	queue_init(&q, 256);
	assert_int_equal(VIRTQ_SEGS_MAX, 64);
	for (u16 i = 0; i < 65; i++)
		put_desc(&q, i, BUF(0) + i, 1, i < 64 ? VIRTQ_DESC_F_NEXT : 0, (u16)(i + 1));
	offer(&q, 0);
	expect_broken(&q, "longer");
	/* VIRTQ_SEGS_MAX descriptors are taken, every one of them. */
	put_desc(&q, 63, BUF(0) + 63, 1, 0, 0);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
	assert_int_equal(c.nout, VIRTQ_SEGS_MAX);
	assert_int_equal(c.out_len, VIRTQ_SEGS_MAX);
	assert_int_equal(c.seg[VIRTQ_SEGS_MAX - 1].addr, BUF(0) + 63);
	/* A loop in a big table ends at the same bound. */
	put_desc(&q, 200, BUF(0), 1, VIRTQ_DESC_F_NEXT, 201);
	put_desc(&q, 201, BUF(0), 1, VIRTQ_DESC_F_NEXT, 200);
	offer(&q, 200);
	expect_broken(&q, "");
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_next_past_table(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 0, BUF(0), 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(&q, 1, BUF(1), 16, VIRTQ_DESC_F_NEXT, 8);
	offer(&q, 0);
	expect_broken(&q, "next");
	put_desc(&q, 1, BUF(1), 16, VIRTQ_DESC_F_NEXT, 0xffff);
	expect_broken(&q, "next");
	/* Without F_NEXT, next is not looked at. */
	put_desc(&q, 1, BUF(1), 16, 0, 0xffff);
	expect_chain(&q, 0, 2, 0);
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_indirect(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 0, BUF(0), 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(&q, 0);
	expect_broken(&q, "indirect");
	/* Further down a chain too, among other flags. */
	put_desc(&q, 0, BUF(0), 16, VIRTQ_DESC_F_NEXT, 3);
	put_desc(&q, 3, BUF(1), 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	expect_broken(&q, "indirect");
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_readable_after_writable(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 0, BUF(0), 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(&q, 1, BUF(1), 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	put_desc(&q, 2, BUF(2), 16, 0, 0);
	offer(&q, 0);
	expect_broken(&q, "readable");
	put_desc(&q, 2, BUF(2), 16, VIRTQ_DESC_F_WRITE, 0);
	expect_chain(&q, 0, 1, 2);
	destroy_vm(&vm, 0);
	check_empty();
}

static void hostile_buffer_outside_ram(void **state)
{
	static const struct {
		u64 addr;
		u32 len;
	} bad[] = {
		{ 0, 16 },
		{ RAM - 1, 2 },
		{ RAM_END - 8, 16 },
		{ RAM_END, 1 },
		{ 0x09000000, 0x1000 },
		{ ~0ULL - 0xf, 0x100 },	      /* address + len wraps past 2^64 */
		{ ~0ULL, 1 },
		{ ~0ULL - 0xff, 0x40000200 }, /* wraps, its last byte inside RAM */
	};
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	put_desc(&q, 0, BUF(0), 16, VIRTQ_DESC_F_NEXT, 1);
	offer(&q, 0);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		put_desc(&q, 1, bad[k].addr, bad[k].len, VIRTQ_DESC_F_WRITE, 0);
		expect_broken(&q, "outside");
		put_desc(&q, 1, bad[k].addr, bad[k].len, 0, 0);
		expect_broken(&q, "outside");
	}
	/* The last byte of RAM is RAM. */
	put_desc(&q, 1, RAM_END - 16, 16, VIRTQ_DESC_F_WRITE, 0);
	expect_chain(&q, 0, 1, 1);
	destroy_vm(&vm, 0);
	check_empty();
}

/* ---- virtqueues: areas, interrupts, bounds ---------------------------------- */

static void areas_checked(void **state)
{
	struct virtq q = { .num = 8, .ready = true, .desc = PG(0), .avail = PG(0) + 0x200, .used = PG(0) + 0x400 };
	struct virtq b;

	(void)state;
	setup(100);
	assert_true(virtq_areas_ok(&vm, &q));
	/* Sizes. */
	static const u16 bad_num[] = { 0, 3, 6, 7, 12, 255, 257, 512, 1024, 0x8000, 0xffff };
	for (unsigned k = 0; k < ARRAY_SIZE(bad_num); k++) {
		b = q;
		b.num = bad_num[k];
		if (virtq_areas_ok(&vm, &b))
			fail_msg("num %u accepted", bad_num[k]);
	}
	static const u16 good_num[] = { 1, 2, 4, 16, 128, VIRTQ_NUM_MAX };
	for (unsigned k = 0; k < ARRAY_SIZE(good_num); k++) {
		b = (struct virtq){ .num = good_num[k], .desc = PG(0), .avail = PG(2), .used = PG(4) };
		assert_true(virtq_areas_ok(&vm, &b));
	}
	/* Alignment: 16, 2, 4 (2.7). */
	for (u64 m = 1; m < 16; m++) {
		b = q;
		b.desc += m;
		assert_false(virtq_areas_ok(&vm, &b));
	}
	b = q;
	b.avail += 1;
	assert_false(virtq_areas_ok(&vm, &b));
	b.avail += 1;
	assert_true(virtq_areas_ok(&vm, &b));
	for (u64 m = 1; m < 4; m++) {
		b = q;
		b.used += m;
		assert_false(virtq_areas_ok(&vm, &b));
	}
	/* Inside RAM, each area whole: 16 * num, 6 + 2 * num, 6 + 8 * num bytes. */
	static const struct {
		u64 desc, avail, used;
		bool ok;
	} where[] = {
		{ RAM - 16, PG(1), PG(2), false },
		{ RAM_END - 128, PG(1), PG(2), true },
		{ RAM_END - 112, PG(1), PG(2), false },
		{ RAM_END, PG(1), PG(2), false },
		{ 0xfffffffffffffff0ULL, PG(1), PG(2), false },
		{ PG(0), RAM - 2, PG(2), false },
		{ PG(0), RAM_END - 22, PG(2), true },
		{ PG(0), RAM_END - 20, PG(2), false },
		{ PG(0), 0xfffffffffffffffeULL, PG(2), false },
		{ PG(0), PG(1), RAM - 4, false },
		{ PG(0), PG(1), RAM_END - 72, true },
		{ PG(0), PG(1), RAM_END - 68, false },
		{ PG(0), PG(1), 0xfffffffffffffffcULL, false },
		{ 0x09000000, 0x09001000, 0x09002000, false },
	};
	for (unsigned k = 0; k < ARRAY_SIZE(where); k++) {
		b = q;
		b.desc = where[k].desc;
		b.avail = where[k].avail;
		b.used = where[k].used;
		if (virtq_areas_ok(&vm, &b) != where[k].ok)
			fail_msg("areas %u: expected %s", k, where[k].ok ? "ok" : "refused");
	}
	/* The check reads nothing: no page was filled for it. */
	assert_int_equal(atomic_load(&vm.pool.fills), 0);
	destroy_vm(&vm, 0);
	check_empty();
}

static void wants_irq_honours_no_interrupt(void **state)
{
	struct virtq q;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	assert_true(virtq_wants_irq(&vm, &q, 0));
	put16(q.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtq_wants_irq(&vm, &q, 0));
	put16(q.avail, 0xffff);
	assert_false(virtq_wants_irq(&vm, &q, 0));
	put16(q.avail, 0xfffe);
	assert_true(virtq_wants_irq(&vm, &q, 0));
	/* Flags it cannot read (the area left RAM): an interrupt, harmless if spurious. */
	q.avail = RAM_END;
	assert_true(virtq_wants_irq(&vm, &q, 0));
	destroy_vm(&vm, 0);
	check_empty();
}

/* Copies past either part's end: -EINVAL, and no byte moves. */
static void copies_bounded_by_their_part(void **state)
{
	static u8 out[40], in[100], got[160];
	struct virtq q;
	struct virtq_chain c;
	const char *why = NULL;

	(void)state;
	setup(100);
	queue_init(&q, 8);
	pattern(out, sizeof(out), 5);
	pattern(in, sizeof(in), 6);
	put(BUF(0), out, sizeof(out));
	put(BUF(1), in, sizeof(in));
	put_desc(&q, 0, BUF(0), sizeof(out), VIRTQ_DESC_F_NEXT, 1);
	put_desc(&q, 1, BUF(1), sizeof(in), VIRTQ_DESC_F_WRITE, 0);
	offer(&q, 0);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);

	memset(got, 0xee, sizeof(got));
	assert_int_equal(virtq_read(&vm, &c, 0, got, 41, 0), -EINVAL);
	assert_int_equal(virtq_read(&vm, &c, 40, got, 1, 0), -EINVAL);
	assert_int_equal(virtq_read(&vm, &c, 39, got, 2, 0), -EINVAL);
	assert_int_equal(virtq_read(&vm, &c, 41, got, 0, 0), -EINVAL);
	assert_int_equal(virtq_read(&vm, &c, ~0ULL, got, 2, 0), -EINVAL); /* off + len wraps */
	assert_int_equal(virtq_read(&vm, &c, 2, got, ~0ULL - 1, 0), -EINVAL);
	/* Not the writable part's bytes either, though the chain has 140. */
	assert_int_equal(virtq_read(&vm, &c, 0, got, 100, 0), -EINVAL);
	for (unsigned k = 0; k < sizeof(got); k++)
		assert_int_equal(got[k], 0xee);
	assert_int_equal(virtq_write(&vm, &c, 0, got, 101, 0), -EINVAL);
	assert_int_equal(virtq_write(&vm, &c, 100, got, 1, 0), -EINVAL);
	assert_int_equal(virtq_write(&vm, &c, 95, got, 6, 0), -EINVAL);
	assert_int_equal(virtq_write(&vm, &c, ~0ULL - 2, got, 4, 0), -EINVAL);
	assert_memory_equal(gpa(&vm, BUF(1)), in, sizeof(in));
	assert_memory_equal(gpa(&vm, BUF(0)), out, sizeof(out));
	/* The last bytes of each are in bounds. */
	assert_int_equal(virtq_read(&vm, &c, 39, got, 1, 0), 0);
	assert_int_equal(got[0], out[39]);
	assert_int_equal(virtq_write(&vm, &c, 99, "!", 1, 0), 0);
	assert_int_equal(*gpa(&vm, BUF(1) + 99), '!');

	/* A chain with no writable part takes no write at all. */
	put_desc(&q, 1, BUF(1), sizeof(in), 0, 0);
	offer(&q, 0);
	assert_int_equal(virtq_pop(&vm, &q, &c, &why, 0), 1);
	assert_int_equal(c.nin, 0);
	assert_int_equal(virtq_write(&vm, &c, 0, got, 1, 0), -EINVAL);
	assert_int_equal(virtq_write(&vm, &c, 0, got, 0, 0), 0);
	assert_int_equal(virtq_read(&vm, &c, 0, got, 140, 0), 0);
	assert_memory_equal(got, out, sizeof(out));
	destroy_vm(&vm, 0);
	check_empty();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(gmem_fills_untouched_pages, teardown),
		cmocka_unit_test_teardown(gmem_outside_ram_refused, teardown),
		cmocka_unit_test_teardown(gmem_write_breaks_cow, teardown),
		cmocka_unit_test_teardown(gmem_quota_runs_out, teardown),
		cmocka_unit_test_teardown(gmem_claimed_leaf_is_busy, teardown),
		cmocka_unit_test_teardown(virtq_two_segment_chain, teardown),
		cmocka_unit_test_teardown(virtq_copies_span_segments, teardown),
		cmocka_unit_test_teardown(virtq_indices_wrap, teardown),
		cmocka_unit_test_teardown(virtq_ring_page_out_of_quota, teardown),
		cmocka_unit_test_teardown(hostile_avail_idx, teardown),
		cmocka_unit_test_teardown(hostile_head_past_table, teardown),
		cmocka_unit_test_teardown(hostile_chain_loops, teardown),
		cmocka_unit_test_teardown(hostile_chain_too_long, teardown),
		cmocka_unit_test_teardown(hostile_next_past_table, teardown),
		cmocka_unit_test_teardown(hostile_indirect, teardown),
		cmocka_unit_test_teardown(hostile_readable_after_writable, teardown),
		cmocka_unit_test_teardown(hostile_buffer_outside_ram, teardown),
		cmocka_unit_test_teardown(areas_checked, teardown),
		cmocka_unit_test_teardown(wants_irq_honours_no_interrupt, teardown),
		cmocka_unit_test_teardown(copies_bounded_by_their_part, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
