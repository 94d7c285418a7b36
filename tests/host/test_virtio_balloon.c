/*
 * The virtio-balloon (core/virtio_balloon.c) driven as Linux's
 * virtio_balloon drives it, through the virtio-mmio registers alone
 * (virtio_mmio_access): status steps, features, its queues in the guest
 * RAM of a VM on the real pools, stage-2 walker (fake arch), sharing and
 * swap over a fake disk; what leaves the VM is done by the real
 * vm_discard_page (core/discard.c). Machine, VM, rings and registers:
 * virtio_helpers.c.
 *
 * Covered: the features offered; inflate (pages leave the VM: leaves,
 * pool, charges; counters; used ring and interrupt), deflate, free page
 * reporting; drivers that lie (page numbers outside RAM, partial page
 * numbers, reported blocks that are not whole pages); Linux's queue
 * numbering when the stats queue is not negotiated; the stats queue and
 * balloon_info giving its buffer back; the configuration space, target and
 * actual, reset, VMs without a balloon; and requests taken again when a
 * page is busy (claimed, or on its way to or from the swap disk), with
 * nothing counted twice; and a stopped VM's balloon, which must not touch
 * its memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <quire/balloon.h>
#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "fake_blk.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

/* The balloon's features (virtio 1.x, 5.5.3) and the ones Quire does not offer. */
#define F_MUST_TELL_HOST (1UL << 0)
#define F_STATS (1UL << 1)
#define F_DEFLATE_ON_OOM (1UL << 2)
#define F_FREE_PAGE_HINT (1UL << 3)
#define F_PAGE_POISON (1UL << 4)
#define F_REPORTING (1UL << 5)
#define F_INDIRECT (1UL << 28)
#define F_EVENT_IDX (1UL << 29)

#define SLOT VMCFG_BALLOON_SLOT
#define MACH_PAGES 1024
#define QUOTA 400

/* The driver's queues, by its own numbering (Linux: a queue whose feature is not negotiated takes no index). */
enum { INFLATEQ, DEFLATEQ, STATSQ, REPORTQ_WITH_STATS };
#define QN 32		      /* entries of each */
#define RING(i) PG(16 + 4 * (i)) /* queue i's descriptor table; its driver area and device area in the next pages */
#define PFN_BUF PG(40)	      /* page number arrays, up to PG(47) */
#define STATS_BUF PG(48)
#define PFN(n) ((u32)(PG(n) >> PAGE_SHIFT))

static struct virtq ring[4];
static u16 last_head;
static struct vm vm2;

/* ---- the machine, the VM, the balloon ------------------------------------------ */

/* The driver's buffers are its memory already (so the books see only the pages that leave). */
static void touch_buffers(void)
{
	static const u8 zero[PAGE_SIZE];

	for (u64 a = PFN_BUF; a <= STATS_BUF; a += PAGE_SIZE)
		put(a, zero, PAGE_SIZE);
}

static void setup(bool deflate_on_oom)
{
	setup_machine(MACH_PAGES);
	setup_vm(&vm, 1, QUOTA, SHARE_OFF);
	touch_buffers();
	dev_slot = SLOT;
	log_capture();
	balloon_attach(&vm, SLOT, deflate_on_oom);
	assert_non_null(vm.virtio[SLOT]);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

static struct balloon_info info_of(struct vm *v)
{
	struct balloon_info b;

	memset(&b, 0xee, sizeof(b));
	balloon_info(v, &b, 0);
	return b;
}

static struct balloon_info info(void)
{
	return info_of(&vm);
}

/* The device's own view of queue q (the driver's index). */
static struct virtq *devq(unsigned q)
{
	return &vm.virtio[SLOT]->q[q];
}

/* ---- the driver ------------------------------------------------------------------- */

/* The driver's queue i, in its pages (RING(i)), zeroed, made ready. */
static void queue_up(unsigned i)
{
	queue_init_at(&ring[i], QN, RING(i), RING(i) + PAGE_SIZE, RING(i) + 2 * PAGE_SIZE);
	set_queue(i, QN, ring[i].desc, ring[i].avail, ring[i].used);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
}

/*
 * As Linux's probe: reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 and
 * feats), FEATURES_OK, then its queues, numbered as virtio_find_vqs does:
 * inflate, deflate, stats (with STATS_VQ), reporting (with PAGE_REPORTING).
 * Not DRIVER_OK yet (Linux gives the stats buffer first): driver_ok().
 */
static unsigned probe(u64 feats)
{
	unsigned nq = 2 + !!(feats & F_STATS) + !!(feats & F_REPORTING);

	assert_int_equal(negotiate(V1 | feats), ACK | DRV | FOK);
	for (unsigned i = 0; i < nq; i++)
		queue_up(i);
	return nq;
}

static void driver_ok(void)
{
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	assert_true(virtio_live(vm.virtio[SLOT]));
}

/* Both, with every feature Linux takes. */
static void bring_up(void)
{
	probe(F_STATS | F_REPORTING);
	driver_ok();
}

/* A VM whose balloon (no deflate on OOM) Linux runs. */
static void start(void)
{
	setup(false);
	bring_up();
}

struct seg {
	u64 addr;
	u32 len;
	bool in; /* writable by the device */
};

/* Make a chain of segs available on the driver's queue i (descriptors from 8 * (avail->idx % 4)). */
static void chain(unsigned i, const struct seg *s, unsigned n)
{
	const struct virtq *q = &ring[i];
	u16 head = (u16)(8 * (get16(q->avail + 2) % (QN / 8)));

	assert_true(n >= 1 && n <= 8);
	for (unsigned k = 0; k < n; k++)
		put_desc(q, (u16)(head + k), s[k].addr, s[k].len,
			 (s[k].in ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0), (u16)(head + k + 1));
	offer(q, head);
	last_head = head;
}

/* The driver's notify of its queue i: virtio_mmio_access's answer (-EAGAIN, -EBUSY: the store runs again). */
static int kick(unsigned i)
{
	u64 v = i;

	return acc(SLOT, R_QUEUE_NOTIFY, 4, true, &v);
}

/* n page numbers in one readable buffer on queue i, notified. */
static int send_pfns(unsigned i, const u32 *pfn, unsigned n)
{
	struct seg s = { PFN_BUF, 4 * n, false };

	put(PFN_BUF, pfn, 4 * (u64)n);
	chain(i, &s, 1);
	return kick(i);
}

/* used->idx of the driver's queue i. */
static u16 used(unsigned i)
{
	return get16(ring[i].used + 2);
}

/* The used ring's last entry of queue i is the chain last made available, nothing written. */
static void last_used_is_last_head(unsigned i)
{
	u32 id, len;

	used_elem(&ring[i], (u16)(used(i) - 1), &id, &len);
	assert_int_equal(id, last_head);
	assert_int_equal(len, 0);
}

static void ack_all(void)
{
	wr(R_INT_ACK, rd(R_INT_STATUS));
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

/* ---- guest pages ------------------------------------------------------------------------ */

static void pattern(u8 *b, u8 seed)
{
	for (unsigned k = 0; k < PAGE_SIZE; k++)
		b[k] = (u8)(seed + k * 31 + (k >> 8));
	b[0] |= 1; /* never all zero */
}

/* The guest writes page n. */
static void fill(u32 n)
{
	static u8 b[PAGE_SIZE];

	pattern(b, (u8)n);
	put(PG(n), b, PAGE_SIZE);
}

static void fill_range(u32 first, u32 count)
{
	for (u32 n = first; n < first + count; n++)
		fill(n);
}

static bool mapped(u32 n)
{
	return s2_lookup(&vm, IPA(PG(n))) != 0;
}

/* Page n reads as fill(n) wrote it (or as zeros: the page came back, fresh). */
static void expect_page(u32 n, bool zero)
{
	static u8 want[PAGE_SIZE], got[PAGE_SIZE];

	if (zero)
		memset(want, 0, PAGE_SIZE);
	else
		pattern(want, (u8)n);
	memset(got, 0xee, PAGE_SIZE);
	get(PG(n), got, PAGE_SIZE);
	assert_memory_equal(got, want, PAGE_SIZE);
}

/* What the VM holds, to see pages leave (or not). */
struct books {
	u32 free, charged, active;
};

static struct books books(void)
{
	return (struct books){ pool_free_pages(&pool), atomic_load(&vm.pool.charged), atomic_load(&vm.pool.active) };
}

/* Exactly n pages left the VM since b: back in the pool, no longer charged to it or mapped. */
static void expect_left(struct books b, u32 n)
{
	struct books now = books();

	assert_int_equal(now.free, b.free + n);
	assert_int_equal(now.charged, b.charged - n);
	assert_int_equal(now.active, b.active - n);
}

/* The balloon's counts: page numbers inflated and deflated, pages reported, pages that left the VM. */
static void expect_counts(u64 inflated, u64 deflated, u64 reported, u64 discarded)
{
	struct balloon_info b = info();

	assert_int_equal(b.inflated, inflated);
	assert_int_equal(b.deflated, deflated);
	assert_int_equal(b.reported, reported);
	assert_int_equal(b.discarded, discarded);
}

/* ---- 1. features --------------------------------------------------------------------- */

static void features_offered(void **state)
{
	static const u64 refused[] = { F_MUST_TELL_HOST, F_FREE_PAGE_HINT, F_PAGE_POISON, F_INDIRECT, F_EVENT_IDX,
				       F_DEFLATE_ON_OOM, 1UL << 6, 1UL << 33, 1UL << 34, 1UL << 35 };
	struct balloon_info b;
	u64 v;

	(void)state;
	setup(false);
	assert_int_equal(rd(R_MAGIC), MAGIC);
	assert_int_equal(rd(R_VERSION), 2);
	assert_int_equal(rd(R_DEVICE_ID), 5);
	/* STATS_VQ, PAGE_REPORTING, VERSION_1: nothing else. */
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), F_STATS | F_REPORTING);
	wr(R_DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(R_DEV_FEATURES), V1 >> 32);
	/* Four queues; eight bytes of configuration (num_pages, actual). */
	for (u32 q = 0; q < 5; q++) {
		wr(R_QUEUE_SEL, q);
		assert_int_equal(rd(R_QUEUE_NUM_MAX), q < 4 ? VIRTQ_NUM_MAX : 0);
	}
	assert_int_equal(acc(SLOT, R_CONFIG + 4, 4, false, &v), 0);
	assert_int_equal(acc(SLOT, R_CONFIG + 8, 4, false, &v), -EINVAL);
	/* Every feature offered may be taken, alone or together; one more is refused. */
	assert_int_equal(negotiate(V1 | F_STATS | F_REPORTING), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1 | F_REPORTING), ACK | DRV | FOK);
	for (unsigned k = 0; k < ARRAY_SIZE(refused); k++)
		if (negotiate(V1 | F_STATS | refused[k]) != (ACK | DRV))
			fail_msg("feature %#lx accepted", refused[k]);
	assert_int_equal(negotiate(F_STATS), ACK | DRV); /* no VERSION_1: no legacy */
	b = info();
	assert_true(b.present);
	assert_false(b.driver);
	assert_int_equal(b.target, 0);
	assert_int_equal(b.actual, 0);
	assert_int_equal(b.inflated + b.deflated + b.reported + b.discarded, 0);
	assert_false(b.stats_valid);

	/* Attached again (the VM made again), offering deflate on OOM: one more feature, and only it. */
	balloon_attach(&vm, SLOT, true);
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), F_STATS | F_DEFLATE_ON_OOM | F_REPORTING);
	wr(R_DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(R_DEV_FEATURES), V1 >> 32);
	assert_int_equal(negotiate(V1 | F_STATS | F_DEFLATE_ON_OOM | F_REPORTING), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1 | F_DEFLATE_ON_OOM | F_MUST_TELL_HOST), ACK | DRV);
	/* And without it again: gone. */
	balloon_attach(&vm, SLOT, false);
	assert_int_equal(rd(R_DEV_FEATURES), F_STATS | F_REPORTING);
	assert_int_equal(negotiate(V1 | F_DEFLATE_ON_OOM), ACK | DRV);
	assert_int_equal(loglen, 0);
}

/* ---- 2. inflate, deflate ----------------------------------------------------------------- */

static void inflate_pages_leave_the_vm(void **state)
{
	/* 104 was never touched; 101 twice. */
	const u32 pfn[] = { PFN(100), PFN(101), PFN(102), PFN(103), PFN(104), PFN(101) };
	struct books b0;

	(void)state;
	start();
	fill_range(100, 4);
	fill(105);
	b0 = books();

	assert_int_equal(send_pfns(INFLATEQ, pfn, ARRAY_SIZE(pfn)), 0);
	for (u32 n = 100; n <= 104; n++)
		assert_int_equal(fake_s2_raw(&vm, IPA(PG(n))), 0);
	expect_left(b0, 4);
	expect_counts(6, 0, 0, 4);
	/* Given back, and the driver told. */
	assert_int_equal(used(INFLATEQ), 1);
	last_used_is_last_head(INFLATEQ);
	assert_int_equal(devq(INFLATEQ)->last_avail, 1);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	ack_all();
	/* The neighbour stays; the next touch of each page that went is a fresh zeroed page. */
	expect_page(105, false);
	for (u32 n = 100; n <= 104; n++) {
		expect_page(n, true);
		assert_true(mapped(n));
	}
	/* A notify with nothing new does nothing. */
	assert_int_equal(kick(INFLATEQ), 0);
	assert_int_equal(used(INFLATEQ), 1);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(loglen, 0);
}

/* 150 page numbers in two readable segments, the first crossing a page, a number split between them. */
static void inflate_many_in_pieces(void **state)
{
	static u32 pfn[150];
	const u64 at = PG(42) - 100, second = PG(45);
	struct seg s[2] = { { at, 4 * 70 + 2, false }, { second, 4 * 80 - 2, false } };
	struct books b0;

	(void)state;
	start();
	for (u32 k = 0; k < 150; k++) {
		pfn[k] = PFN(200 + k);
		if (k % 2)
			fill(200 + k);
	}
	put(at, pfn, s[0].len);
	put(second, (u8 *)pfn + s[0].len, s[1].len);
	b0 = books();
	chain(INFLATEQ, s, 2);
	assert_int_equal(kick(INFLATEQ), 0);
	expect_left(b0, 75);
	for (u32 k = 0; k < 150; k++)
		assert_false(mapped(200 + k));
	expect_counts(150, 0, 0, 75);
	assert_int_equal(used(INFLATEQ), 1);
	last_used_is_last_head(INFLATEQ);
}

static void deflate_only_counts(void **state)
{
	const u32 pfn[] = { PFN(100), PFN(101), PFN(102), PFN(103), PFN(300) };
	struct books b0;

	(void)state;
	start();
	fill_range(100, 4);
	b0 = books();
	assert_int_equal(send_pfns(DEFLATEQ, pfn, ARRAY_SIZE(pfn)), 0);
	expect_left(b0, 0);
	for (u32 n = 100; n < 104; n++)
		expect_page(n, false);
	assert_false(mapped(300));
	expect_counts(0, 5, 0, 0);
	assert_int_equal(used(DEFLATEQ), 1);
	last_used_is_last_head(DEFLATEQ);
	assert_int_equal(used(INFLATEQ), 0);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	ack_all();

	/* The round trip: inflated, then deflated (MUST_TELL_HOST not offered: the guest may touch it at once). */
	assert_int_equal(send_pfns(INFLATEQ, pfn, 2), 0);
	assert_int_equal(send_pfns(DEFLATEQ, pfn, 2), 0);
	expect_page(100, true);
	expect_page(101, true);
	expect_page(102, false);
	expect_counts(2, 7, 0, 2);
}

/* ---- 3. free page reporting --------------------------------------------------------------- */

static void reported_blocks_leave_the_vm(void **state)
{
	/* 2 pages, 1 page, 4 pages of which 2 were ever touched. */
	const struct seg s[] = { { PG(200), 2 * PAGE_SIZE, true }, { PG(300), PAGE_SIZE, true },
				 { PG(400), 4 * PAGE_SIZE, true } };
	struct books b0;

	(void)state;
	start();
	fill_range(200, 2);
	fill(300);
	fill(400);
	fill(402);
	fill(404);
	b0 = books();
	chain(REPORTQ_WITH_STATS, s, ARRAY_SIZE(s));
	assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
	expect_left(b0, 5);
	for (u32 n = 400; n < 404; n++)
		assert_false(mapped(n));
	assert_false(mapped(200) || mapped(201) || mapped(300));
	expect_page(404, false);
	expect_counts(0, 0, 7, 5);
	assert_int_equal(used(REPORTQ_WITH_STATS), 1);
	last_used_is_last_head(REPORTQ_WITH_STATS);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	ack_all();

	/* A 2 MiB block, as Linux reports them, three of its pages ever touched. */
	const struct seg big = { PG(512), 512 * PAGE_SIZE, true };
	fill(512);
	fill(700);
	fill(1023);
	b0 = books();
	chain(REPORTQ_WITH_STATS, &big, 1);
	assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
	expect_left(b0, 3);
	expect_counts(0, 0, 7 + 512, 5 + 3);
	assert_int_equal(used(REPORTQ_WITH_STATS), 2);
	expect_page(700, true);
	assert_int_equal(loglen, 0);
}

/* A reported block that is not whole pages: the device needs a reset, nothing leaves. */
static void report_not_whole_pages(void **state)
{
	static const struct {
		u64 addr;
		u32 len;
	} bad[] = {
		{ PG(500) + 0x800, PAGE_SIZE },	 /* misaligned */
		{ PG(500), PAGE_SIZE + 0x800 },	 /* a page and a half */
		{ PG(500) + 8, 8 },
		{ PG(500), 1 },
	};
	struct books b0;

	(void)state;
	setup(false);
	fill_range(500, 3);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		const struct seg s[] = { { bad[k].addr, bad[k].len, true }, { PG(502), PAGE_SIZE, true } };

		bring_up();
		b0 = books();
		chain(REPORTQ_WITH_STATS, s, 2);
		assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
		assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
		assert_false(info().driver);
		assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_CONFIG);
		assert_int_equal(irq_level[INTID(SLOT)], 1);
		expect_left(b0, 0);
		assert_int_equal(used(REPORTQ_WITH_STATS), 0);
		assert_int_equal(info().reported, 0);
		/* Nothing more is taken until the driver resets it. */
		chain(REPORTQ_WITH_STATS, s + 1, 1);
		assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
		assert_int_equal(used(REPORTQ_WITH_STATS), 0);
		wr(R_STATUS, 0);
		assert_int_equal(irq_level[INTID(SLOT)], 0);
	}
	for (u32 n = 500; n < 503; n++)
		expect_page(n, false);
	assert_int_equal(info().discarded, 0);
	/* Logged once, however often the driver does it. */
	assert_int_equal(log_count("a reported block that is not whole pages"), 1);
	assert_int_equal(log_count("virtio-balloon in slot 0"), 1);
}

/* ---- 4. drivers that lie ------------------------------------------------------------------ */

/* The device broke (a config interrupt, NEEDS_RESET); the driver resets it and it works again. */
static void expect_broken_then_reset(void)
{
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
	assert_int_equal(rd(R_INT_STATUS) & VIRTIO_INT_CONFIG, VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_false(info().driver);
	wr(R_STATUS, 0);
	assert_int_equal(rd(R_STATUS), 0);
	bring_up();
}

static void lying_page_numbers(void **state)
{
	static const u32 outside[] = {
		0, PFN(0) - 1, (u32)(RAM_END >> PAGE_SHIFT), (u32)(RAM_END >> PAGE_SHIFT) + 1, 0x80000, 0xffffffffu,
	};
	static u8 witness[20][PAGE_SIZE];
	struct books b0;
	u32 pfn[3];

	(void)state;
	start();
	/* The rest of the VM: pages the lies must leave as they are. */
	fill_range(600, 20);
	for (u32 k = 0; k < 20; k++)
		get(PG(600 + k), witness[k], PAGE_SIZE);
	b0 = books();

	/* A page number outside RAM, inflated or deflated: nothing after it leaves. */
	for (unsigned k = 0; k < ARRAY_SIZE(outside); k++) {
		for (unsigned q = INFLATEQ; q <= DEFLATEQ; q++) {
			pfn[0] = outside[k];
			pfn[1] = PFN(600 + k);
			assert_int_equal(send_pfns(q, pfn, 2), 0);
			assert_int_equal(used(q), 0);
			expect_broken_then_reset();
		}
	}
	pfn[0] = PFN(620); /* never touched: nothing to leave before the lie either */
	pfn[1] = 0;
	pfn[2] = PFN(601);
	assert_int_equal(send_pfns(INFLATEQ, pfn, 3), 0);
	assert_true(mapped(601));
	expect_broken_then_reset();
	/* A buffer that is not whole page numbers: nothing of it is taken. */
	pfn[0] = PFN(602);
	pfn[1] = PFN(603);
	for (u32 len = 1; len < 8; len++) {
		if (len == 4)
			continue;
		struct seg s = { PFN_BUF, len, false };

		put(PFN_BUF, pfn, 8);
		chain(INFLATEQ, &s, 1);
		assert_int_equal(kick(INFLATEQ), 0);
		assert_int_equal(used(INFLATEQ), 0);
		expect_broken_then_reset();
	}
	/* Its pages are all there, with their bytes, and the books say so. */
	expect_counts(0, 0, 0, 0);
	expect_left(b0, 0);
	for (u32 k = 0; k < 20; k++) {
		static u8 got[PAGE_SIZE];

		get(PG(600 + k), got, PAGE_SIZE);
		assert_memory_equal(got, witness[k], PAGE_SIZE);
	}
	/* Logged once in the device's life, whatever the lie and however often. */
	assert_int_equal(log_count("needs a reset"), 1);
	assert_int_equal(log_count("a page number outside the VM's RAM"), 1);
	/* The last page of RAM is RAM; the device works after all that. */
	fill(4095);
	pfn[0] = PFN(4095);
	b0 = books();
	assert_int_equal(send_pfns(INFLATEQ, pfn, 1), 0);
	expect_left(b0, 1);
	assert_int_equal(used(INFLATEQ), 1);
	assert_int_equal(info().inflated, 1);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
}

static void partial_page_number_logged(void **state)
{
	u32 pfn[2] = { PFN(602), PFN(603) };
	struct seg s = { PFN_BUF, 6, false };

	(void)state;
	start();
	fill(602);
	put(PFN_BUF, pfn, 8);
	chain(INFLATEQ, &s, 1);
	assert_int_equal(kick(INFLATEQ), 0);
	assert_true(mapped(602));
	assert_int_equal(log_count("an inflate or deflate buffer that is not whole page numbers"), 1);
	expect_broken_then_reset();
}

/* ---- 5. Linux's numbering of the queues ------------------------------------------------------ */

static void reporting_queue_without_stats(void **state)
{
	const struct seg s = { PG(200), 2 * PAGE_SIZE, true };
	struct books b0;

	(void)state;
	setup(false);
	/* PAGE_REPORTING without STATS_VQ: three queues, the third one reports. */
	assert_int_equal(probe(F_REPORTING), 3);
	driver_ok();
	fill_range(200, 2);
	b0 = books();
	chain(2, &s, 1);
	assert_int_equal(kick(2), 0);
	expect_left(b0, 2);
	assert_int_equal(info().reported, 2);
	assert_false(info().stats_valid);
	assert_int_equal(used(2), 1);
	last_used_is_last_head(2);
	ack_all();
	/* A fourth queue is none of Linux's: set up anyway, it is not taken. */
	queue_up(3);
	fill(300);
	const struct seg t = { PG(300), PAGE_SIZE, true };
	chain(3, &t, 1);
	assert_int_equal(kick(3), 0);
	assert_true(mapped(300));
	assert_int_equal(used(3), 0);
	assert_int_equal(devq(3)->last_avail, 0);
	assert_int_equal(info().reported, 2);
	assert_int_equal(rd(R_INT_STATUS), 0);

	/* Neither: queues 2 and 3 are nobody's, whatever the driver puts there. */
	assert_int_equal(probe(0), 2);
	driver_ok();
	for (unsigned q = 2; q < 4; q++) {
		queue_up(q);
		chain(q, &t, 1);
		assert_int_equal(kick(q), 0);
		assert_int_equal(used(q), 0);
		assert_int_equal(devq(q)->last_avail, 0);
	}
	assert_true(mapped(300));
	assert_false(info().stats_valid);

	/* STATS_VQ without PAGE_REPORTING: the third is the stats queue, a fourth is nobody's. */
	assert_int_equal(probe(F_STATS), 3);
	driver_ok();
	queue_up(3);
	chain(3, &t, 1);
	assert_int_equal(kick(3), 0);
	assert_int_equal(used(3), 0);
	assert_true(mapped(300));
	assert_int_equal(info().reported, 2);
	assert_int_equal(loglen, 0);
}

/* ---- 6. the stats queue ------------------------------------------------------------------------ */

/* The driver's stats buffer: (tag, value) pairs, packed, little-endian (5.5.6.3). */
static u32 stats_put(u64 at, const u16 *tag, const u64 *val, unsigned n)
{
	u8 b[10 * 16];

	assert_true(n <= 16);
	for (unsigned k = 0; k < n; k++) {
		b[10 * k] = (u8)tag[k];
		b[10 * k + 1] = (u8)(tag[k] >> 8);
		for (unsigned j = 0; j < 8; j++)
			b[10 * k + 2 + j] = (u8)(val[k] >> (8 * j));
	}
	put(at, b, 10 * n);
	return 10 * n;
}

static void stats_shown_and_given_back(void **state)
{
	/* Linux's tags, one Quire does not know (10: OOM kills, newer kernels) and one nobody does. */
	static const u16 tag[] = { BALLOON_S_MEMFREE, BALLOON_S_MEMTOT, BALLOON_S_AVAIL, BALLOON_S_MAJFLT,
				   10, 0x99, BALLOON_S_HTLB_PGFAIL, BALLOON_S_CACHES };
	static const u64 val[] = { 100UL << 20, 512UL << 20, 300UL << 20, 7, 1, 0xdead, 3, 0x1122334455667788UL };
	struct balloon_info b;
	u32 len, id, ulen;

	(void)state;
	setup(false);
	/* Another VM with a balloon of its own: nothing of vm's reaches it. */
	setup_vm(&vm2, 2, QUOTA, SHARE_OFF);
	balloon_attach(&vm2, SLOT, false);
	b = info();
	assert_false(b.stats_valid);
	/* As Linux probes: the stats buffer given and notified before DRIVER_OK; two pieces, a pair split between them. */
	probe(F_STATS | F_REPORTING);
	len = stats_put(STATS_BUF, tag, val, ARRAY_SIZE(tag));
	put(STATS_BUF + len, "\x01\x02\x03", 3); /* a partial pair: not read */
	{
		struct seg s[2] = { { STATS_BUF, 25, false }, { STATS_BUF + 25, len + 3 - 25, false } };

		chain(STATSQ, s, 2);
	}
	assert_int_equal(kick(STATSQ), 0);
	b = info();
	assert_false(b.driver);
	assert_true(b.stats_valid);
	assert_int_equal(b.stats[BALLOON_S_MEMFREE], 100UL << 20);
	assert_int_equal(b.stats[BALLOON_S_MEMTOT], 512UL << 20);
	assert_int_equal(b.stats[BALLOON_S_AVAIL], 300UL << 20);
	assert_int_equal(b.stats[BALLOON_S_MAJFLT], 7);
	assert_int_equal(b.stats[BALLOON_S_HTLB_PGFAIL], 3);
	assert_int_equal(b.stats[BALLOON_S_CACHES], 0x1122334455667788UL);
	assert_int_equal(b.stats[BALLOON_S_SWAP_IN], 0);
	assert_int_equal(b.stats[BALLOON_S_MINFLT], 0);
	/* Kept while the driver is not running it. */
	assert_int_equal(used(STATSQ), 0);
	assert_int_equal(rd(R_INT_STATUS), 0);
	/* vm2's balloon knows nothing of it, and still answers (tags past the table went nowhere). */
	b = info_of(&vm2);
	assert_true(b.present);
	assert_false(b.stats_valid);
	for (unsigned k = 0; k < BALLOON_S_NR; k++)
		assert_int_equal(b.stats[k], 0);
	{
		u64 id2 = 0;

		assert_int_equal(virtio_mmio_access(&vm2, SLOT * VIRTIO_MMIO_SLOT + R_DEVICE_ID, 4, false, &id2, 0), 0);
		assert_int_equal(id2, 5);
	}

	/* Running: balloon_info gives the buffer back (asking for fresh figures), once. */
	driver_ok();
	b = info();
	assert_int_equal(b.stats[BALLOON_S_MEMFREE], 100UL << 20);
	assert_int_equal(used(STATSQ), 1);
	used_elem(&ring[STATSQ], 0, &id, &ulen);
	assert_int_equal(id, last_head);
	assert_int_equal(ulen, 0);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	ack_all();
	b = info();
	assert_int_equal(used(STATSQ), 1);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_true(b.stats_valid);

	/* The driver refills it: the new figures, and it goes back again. */
	{
		static const u16 t2[] = { BALLOON_S_MEMFREE, BALLOON_S_SWAP_IN };
		static const u64 v2[] = { 50UL << 20, 12 };
		struct seg s = { STATS_BUF, 0, false };

		s.len = stats_put(STATS_BUF, t2, v2, 2);
		chain(STATSQ, &s, 1);
	}
	assert_int_equal(kick(STATSQ), 0);
	assert_int_equal(used(STATSQ), 1);
	b = info();
	assert_int_equal(b.stats[BALLOON_S_MEMFREE], 50UL << 20);
	assert_int_equal(b.stats[BALLOON_S_SWAP_IN], 12);
	assert_int_equal(b.stats[BALLOON_S_MEMTOT], 512UL << 20); /* not in this report: as last reported */
	assert_int_equal(used(STATSQ), 2);
	last_used_is_last_head(STATSQ);
	ack_all();

	/* A held buffer does not outlive a reset: the new rings get nothing they did not give. */
	chain(STATSQ, &(struct seg){ STATS_BUF, 20, false }, 1);
	assert_int_equal(kick(STATSQ), 0);
	bring_up();
	(void)info();
	assert_int_equal(used(STATSQ), 0);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(loglen, 0);
}

/* ---- 7. the configuration space ------------------------------------------------------------------ */

static u64 cfg_rd(u32 off, unsigned size)
{
	u64 v = 0xdeadbeefdeadbeefULL;

	assert_int_equal(acc(SLOT, R_CONFIG + off, size, false, &v), 0);
	return v;
}

static void cfg_wr(u32 off, unsigned size, u32 val)
{
	u64 v = val;

	assert_int_equal(acc(SLOT, R_CONFIG + off, size, true, &v), 0);
}

/* Tear vm down as its teardown does: its slot may be made again. */
static void vm_gone(void)
{
	share_vm_stop(&vm);
	s2_destroy(&vm, swap_page_release, swap_release, NULL, 0);
	registry[vm.id - 1] = NULL;
}

static void config_target_and_actual(void **state)
{
	const u32 pfn[] = { PFN(100) };
	struct balloon_info b;
	u32 gen;

	(void)state;
	setup(true);
	assert_int_equal(cfg_rd(0, 4), 0);
	assert_int_equal(cfg_rd(4, 4), 0);
	gen = rd(R_CONFIG_GEN);

	/* Before the driver runs it: num_pages, little-endian, a new generation, no interrupt. */
	assert_int_equal(balloon_set_target(&vm, 0x12345), 0);
	assert_int_equal(cfg_rd(0, 4), 0x12345);
	assert_int_equal(cfg_rd(0, 1), 0x45);
	assert_int_equal(cfg_rd(1, 1), 0x23);
	assert_int_equal(cfg_rd(2, 2), 0x0001);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 1);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(info().target, 0x12345);

	/* The driver's probe resets the device: Quire's wish stays. */
	bring_up();
	assert_int_equal(cfg_rd(0, 4), 0x12345);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 1);
	/* The same wish again: nothing changes. */
	assert_int_equal(balloon_set_target(&vm, 0x12345), 0);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 1);
	assert_int_equal(rd(R_INT_STATUS), 0);
	/* A new one, the driver running: a configuration change interrupt. */
	assert_int_equal(balloon_set_target(&vm, 256), 0);
	assert_int_equal(cfg_rd(0, 4), 256);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 2);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	ack_all();

	/* The driver says what it holds (actual); num_pages is not its to write. */
	cfg_wr(4, 4, 200);
	assert_int_equal(cfg_rd(4, 4), 200);
	assert_int_equal(info().actual, 200);
	cfg_wr(0, 4, 7);
	cfg_wr(0, 1, 7);
	cfg_wr(2, 2, 7);
	assert_int_equal(cfg_rd(0, 4), 256);
	b = info();
	assert_int_equal(b.target, 256);
	assert_int_equal(b.actual, 200);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 2);

	/* A reset empties the driver's balloon, not Quire's wish. */
	fill(100);
	assert_int_equal(send_pfns(INFLATEQ, pfn, 1), 0);
	wr(R_STATUS, 0);
	b = info();
	assert_int_equal(b.actual, 0);
	assert_int_equal(b.target, 256);
	assert_false(b.driver);
	assert_int_equal(b.inflated, 1); /* Quire's counts are the device's life, not the driver's */
	assert_int_equal(cfg_rd(4, 4), 0);
	assert_int_equal(cfg_rd(0, 4), 256);
	/* Target 0: take it all back. */
	assert_int_equal(balloon_set_target(&vm, 0), 0);
	assert_int_equal(cfg_rd(0, 4), 0);
	assert_int_equal(info().target, 0);

	/* Another VM, without a balloon: none, and vm's is untouched. */
	setup_vm(&vm2, 2, QUOTA, SHARE_OFF);
	assert_int_equal(balloon_set_target(&vm2, 5), -ENODEV);
	b = info_of(&vm2);
	assert_false(b.present);
	assert_false(b.driver);
	assert_int_equal(b.target + b.actual + b.inflated, 0);
	assert_true(info().present);
	assert_int_equal(info().target, 0);

	/* vm made again in the same place, without a balloon this time: it has none. */
	assert_int_equal(balloon_set_target(&vm, 99), 0);
	vm_gone();
	setup_vm(&vm, 1, QUOTA, SHARE_OFF);
	b = info();
	assert_false(b.present);
	assert_int_equal(b.target, 0);
	assert_int_equal(b.inflated, 0);
	assert_int_equal(balloon_set_target(&vm, 5), -ENODEV);
	assert_int_equal(rd(R_DEVICE_ID), 0);
	/* And with one again: as new. */
	vm_gone();
	setup_vm(&vm, 1, QUOTA, SHARE_OFF);
	balloon_attach(&vm, SLOT, false);
	b = info();
	assert_true(b.present);
	assert_int_equal(b.target, 0);
	assert_int_equal(b.actual, 0);
	assert_int_equal(b.inflated + b.deflated + b.reported + b.discarded, 0);
	assert_false(b.stats_valid);
	assert_int_equal(cfg_rd(0, 4), 0);
	assert_int_equal(rd(R_DEVICE_ID), 5);
	assert_int_equal(loglen, 0);
}

/* ---- 8. busy pages: the request is taken again, nothing counted twice ------------------------------- */

/* A page another changer holds (claimed): -EBUSY, the chain left on the ring, and retried. */
static void claimed_page_taken_again(void **state)
{
	const u32 pfn[] = { PFN(100), PFN(101), PFN(102) };
	struct s2_slot slot;
	struct s2_leaf old;
	struct books b0;

	(void)state;
	start();
	fill_range(100, 3);
	b0 = books();
	assert_int_equal(s2_claim(&vm, IPA(PG(101)), &slot, &old), 0);

	assert_int_equal(send_pfns(INFLATEQ, pfn, 3), -EBUSY);
	assert_false(mapped(100)); /* gone already */
	assert_int_equal(atomic_load(slot.e), S2E_BUSY);
	assert_true(mapped(102));
	assert_int_equal(devq(INFLATEQ)->last_avail, 0); /* taken again next time */
	assert_int_equal(used(INFLATEQ), 0);
	expect_counts(0, 0, 0, 1);
	/* Still busy: the same answer, nothing more done. */
	assert_int_equal(kick(INFLATEQ), -EBUSY);
	assert_int_equal(info().discarded, 1);
	assert_true(mapped(102));

	/* The claim ends; the store runs again. */
	s2_install(&vm, &slot, old.pa, old.prot);
	assert_int_equal(kick(INFLATEQ), 0);
	expect_left(b0, 3);
	expect_counts(3, 0, 0, 3);
	assert_int_equal(used(INFLATEQ), 1);
	last_used_is_last_head(INFLATEQ);
	assert_int_equal(devq(INFLATEQ)->last_avail, 1);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	ack_all();

	/* Two requests, the second busy: the first is done and used, the second waits; then both are told. */
	fill_range(110, 2);
	assert_int_equal(s2_claim(&vm, IPA(PG(111)), &slot, &old), 0);
	{
		const u32 a = PFN(110), c = PFN(111);
		struct seg s1 = { PFN_BUF, 4, false }, s2 = { PFN_BUF + 64, 4, false };

		put(PFN_BUF, &a, 4);
		put(PFN_BUF + 64, &c, 4);
		chain(INFLATEQ, &s1, 1);
		chain(INFLATEQ, &s2, 1);
	}
	assert_int_equal(kick(INFLATEQ), -EBUSY);
	assert_false(mapped(110));
	assert_int_equal(used(INFLATEQ), 2);
	assert_int_equal(devq(INFLATEQ)->last_avail, 2);
	s2_install(&vm, &slot, old.pa, old.prot);
	assert_int_equal(kick(INFLATEQ), 0);
	assert_false(mapped(111));
	assert_int_equal(used(INFLATEQ), 3);
	last_used_is_last_head(INFLATEQ);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	expect_counts(5, 0, 0, 5);

	/* A report: its pages before the busy one go at once, the report is counted once, when it is whole. */
	const struct seg s[] = { { PG(200), 2 * PAGE_SIZE, true }, { PG(300), PAGE_SIZE, true } };
	fill_range(200, 2);
	fill(300);
	b0 = books();
	assert_int_equal(s2_claim(&vm, IPA(PG(300)), &slot, &old), 0);
	chain(REPORTQ_WITH_STATS, s, 2);
	assert_int_equal(kick(REPORTQ_WITH_STATS), -EBUSY);
	assert_false(mapped(200) || mapped(201));
	assert_int_equal(info().reported, 0);
	assert_int_equal(used(REPORTQ_WITH_STATS), 0);
	s2_install(&vm, &slot, old.pa, old.prot);
	assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
	expect_left(b0, 3);
	expect_counts(5, 0, 3, 5 + 3);
	assert_int_equal(used(REPORTQ_WITH_STATS), 1);
	assert_int_equal(loglen, 0);
}

/* ---- 9. swap: pages out on the disk, and on their way --------------------------------------------- */

#define DISK_PAGES 256
#define LIMIT 512 /* resident limit in pages: nothing here comes near it, so nothing is evicted but on purpose */

static void setup_swap(void)
{
	setup_machine(MACH_PAGES);
	setup_swap_disk(DISK_PAGES);
	setup_vm(&vm, 1, LIMIT + 64, SHARE_OFF);
	setup_vm_swap(&vm, LIMIT, DISK_PAGES);
	assert_true(vm.swap.on);
	touch_buffers();
	dev_slot = SLOT;
	log_capture();
	balloon_attach(&vm, SLOT, false);
	bring_up();
}

static u64 leaf(u32 n)
{
	return fake_s2_raw(&vm, IPA(PG(n)));
}

static bool slot_used(u64 s)
{
	return sw.map[s / SWAP_MAP_BITS][s % SWAP_MAP_BITS / 64] >> (s % 64) & 1;
}

/* Page n goes to the disk as the clock would send it (claimed, then written out); done: the write completes. */
static u64 evict(u32 n, bool done)
{
	struct victim v = { .ipa = PG(n) };
	struct s2_leaf l, old;

	assert_true(s2_get(&vm, IPA(PG(n)), &l));
	v.page = swap_evictable(&vm, &l);
	assert_int_not_equal(v.page, PIDX_NONE);
	assert_int_equal(s2_claim(&vm, IPA(PG(n)), &v.leaf, &old), 0);
	v.prot = old.prot;
	swap_write_out(&vm, &v, 1, 0);
	assert_true(s2e_transit(leaf(n)));
	if (done) {
		assert_int_equal(fake_blk_complete(~0u, 0), 1);
		assert_true(s2e_swapped(leaf(n)));
	}
	return s2e_slot(leaf(n));
}

static void swapped_page_leaves(void **state)
{
	u32 pfn[] = { PFN(100), PFN(101) };
	u64 slot, reads0;

	(void)state;
	setup_swap();
	fill_range(100, 2);
	slot = evict(100, true);
	assert_true(slot_used(slot));
	assert_int_equal(atomic_load(&vm.swap.slots), 1);
	assert_int_equal(atomic_load(&vm.pool.swapped), 1);

	/* On the disk: its slot goes; in RAM: its page. */
	assert_int_equal(send_pfns(INFLATEQ, pfn, 2), 0);
	assert_int_equal(leaf(100), 0);
	assert_int_equal(leaf(101), 0);
	assert_false(slot_used(slot));
	assert_int_equal(atomic_load(&vm.swap.slots), 0);
	assert_int_equal(atomic_load(&vm.pool.swapped), 0);
	expect_counts(2, 0, 0, 2);
	/* Its next touch is a first one: zeros, nothing read from the disk. */
	reads0 = fake_blk_reads;
	expect_page(100, true);
	assert_int_equal(fake_blk_reads, reads0);

	/* Reported while on the disk: the same. */
	fill(102);
	slot = evict(102, true);
	const struct seg s = { PG(102), PAGE_SIZE, true };
	chain(REPORTQ_WITH_STATS, &s, 1);
	assert_int_equal(kick(REPORTQ_WITH_STATS), 0);
	assert_int_equal(leaf(102), 0);
	assert_false(slot_used(slot));
	assert_int_equal(info().reported, 1);
	assert_int_equal(info().discarded, 3);
	assert_int_equal(fake_blk_pending(), 0);
}

/* A page on its way to the disk: -EAGAIN (the vCPU waits for the disk), the request taken again after it. */
static void page_going_out_waits_for_the_disk(void **state)
{
	const u32 pfn[] = { PFN(102), PFN(101), PFN(103) };
	u64 e, slot;

	(void)state;
	setup_swap();
	fill_range(101, 3);
	slot = evict(101, false);
	e = leaf(101);

	assert_int_equal(send_pfns(INFLATEQ, pfn, 3), -EAGAIN);
	assert_int_equal(leaf(102), 0);
	assert_int_equal(leaf(101), e);
	assert_true(mapped(103));
	assert_int_equal(devq(INFLATEQ)->last_avail, 0);
	assert_int_equal(used(INFLATEQ), 0);
	expect_counts(0, 0, 0, 1);

	/* The write completes; the store runs again. */
	assert_int_equal(fake_blk_complete(~0u, 0), 1);
	assert_true(s2e_swapped(leaf(101)));
	assert_int_equal(kick(INFLATEQ), 0);
	assert_int_equal(leaf(101), 0);
	assert_false(slot_used(slot));
	assert_int_equal(leaf(103), 0);
	expect_counts(3, 0, 0, 3);
	assert_int_equal(used(INFLATEQ), 1);
	assert_int_equal(atomic_load(&vm.swap.slots), 0);
}

/* A page on its way back from the disk: the same, and its clean copy's slot goes with it. */
static void page_coming_in_waits_for_the_disk(void **state)
{
	const u32 pfn[] = { PFN(104) };
	u64 slot;
	u8 byte;

	(void)state;
	setup_swap();
	fill(104);
	slot = evict(104, true);
	/* The guest touches it: read back, the vCPU waiting. */
	assert_int_equal(gmem_copy(&vm, PG(104), &byte, 1, false, 0), -EAGAIN);
	assert_true(s2e_transit(leaf(104)));
	assert_int_equal(fake_blk_pending(), 1);

	assert_int_equal(send_pfns(INFLATEQ, pfn, 1), -EAGAIN);
	assert_true(s2e_transit(leaf(104)));
	assert_int_equal(devq(INFLATEQ)->last_avail, 0);
	assert_int_equal(info().discarded, 0);

	assert_int_equal(fake_blk_complete(~0u, 0), 1);
	assert_true(mapped(104)); /* in, clean: its slot still holds a copy */
	assert_true(slot_used(slot));
	assert_int_equal(kick(INFLATEQ), 0);
	assert_int_equal(leaf(104), 0);
	assert_false(slot_used(slot));
	assert_int_equal(info().inflated, 1);
	assert_int_equal(info().discarded, 1);
	assert_int_equal(atomic_load(&vm.swap.slots), 0);
}

/*
 * The page number list itself partly on the disk: the first batch (64
 * numbers) leaves, then reading the rest waits for the disk. Taken again,
 * the first batch finds its pages gone: each page is counted once.
 */
static void page_list_on_the_disk(void **state)
{
	static u32 pfn[100];
	const u64 at = PG(45) - 4 * 64; /* numbers 0..63 in PG(44), 64..99 in PG(45) */
	struct seg s = { at, sizeof(pfn), false };

	(void)state;
	setup_swap();
	for (u32 k = 0; k < 100; k++) {
		pfn[k] = PFN(200 + k);
		fill(200 + k);
	}
	put(at, pfn, sizeof(pfn));
	evict(45, true);
	chain(INFLATEQ, &s, 1);

	assert_int_equal(kick(INFLATEQ), -EAGAIN);
	for (u32 k = 0; k < 100; k++)
		assert_int_equal(mapped(200 + k), k >= 64);
	expect_counts(0, 0, 0, 64);
	assert_int_equal(devq(INFLATEQ)->last_avail, 0);

	assert_int_equal(fake_blk_complete(~0u, 0), 1);
	assert_int_equal(kick(INFLATEQ), 0);
	for (u32 k = 0; k < 100; k++)
		assert_false(mapped(200 + k));
	expect_counts(100, 0, 0, 100);
	assert_int_equal(used(INFLATEQ), 1);
	last_used_is_last_head(INFLATEQ);
	assert_int_equal(loglen, 0);
}

/* ---- a VM that stopped ---------------------------------------------------------------------------- */

/*
 * A VM stops (killed, or its guest powers off) while its balloon's driver
 * runs it and holds its stats buffer, as Linux always does. The monitor's
 * `stats` lists stopped VMs too and calls balloon_info for each: it must
 * not give the buffer back into the dead VM's memory (a stage-2 walk from
 * a root that is gone). vm_reap resets the VM's devices before its memory
 * goes (virtio_reset_all), as this teardown does.
 */
static void stopped_vm_memory_untouched(void **state)
{
	struct seg s = { STATS_BUF, 0, false };
	static const u16 tag[] = { BALLOON_S_MEMFREE };
	static const u64 val[] = { 1UL << 20 };
	struct balloon_info b;
	pidx_t i;

	(void)state;
	setup(false);
	probe(F_STATS | F_REPORTING);
	s.len = stats_put(STATS_BUF, tag, val, 1);
	chain(STATSQ, &s, 1);
	assert_int_equal(kick(STATSQ), 0);
	driver_ok();
	/* The VM stops; its devices and its memory go as vm_reap has them go. */
	virtio_reset_all(&vm);
	share_vm_stop(&vm);
	s2_destroy(&vm, swap_page_release, swap_release, NULL, 0);
	while ((i = lfstack_pop(&vm.pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&vm.pool, 0, i, true);
	vmpool_fini(&vm.pool);
	assert_int_equal(vm.s2.root, 0);
	/* The monitor's `stats`. */
	b = info();
	assert_true(b.present);
	assert_false(b.driver);
	assert_int_equal(atomic_load(&vm.pool.charged), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(features_offered, teardown),
		cmocka_unit_test_teardown(inflate_pages_leave_the_vm, teardown),
		cmocka_unit_test_teardown(inflate_many_in_pieces, teardown),
		cmocka_unit_test_teardown(deflate_only_counts, teardown),
		cmocka_unit_test_teardown(reported_blocks_leave_the_vm, teardown),
		cmocka_unit_test_teardown(report_not_whole_pages, teardown),
		cmocka_unit_test_teardown(lying_page_numbers, teardown),
		cmocka_unit_test_teardown(partial_page_number_logged, teardown),
		cmocka_unit_test_teardown(reporting_queue_without_stats, teardown),
		cmocka_unit_test_teardown(stats_shown_and_given_back, teardown),
		cmocka_unit_test_teardown(config_target_and_actual, teardown),
		cmocka_unit_test_teardown(claimed_page_taken_again, teardown),
		cmocka_unit_test_teardown(swapped_page_leaves, teardown),
		cmocka_unit_test_teardown(page_going_out_waits_for_the_disk, teardown),
		cmocka_unit_test_teardown(page_coming_in_waits_for_the_disk, teardown),
		cmocka_unit_test_teardown(page_list_on_the_disk, teardown),
		cmocka_unit_test_teardown(stopped_vm_memory_untouched, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
