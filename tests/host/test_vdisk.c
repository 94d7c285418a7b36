/*
 * The guests' virtio-blk disks (core/vdisk.c) driven as Linux's virtio_blk
 * drives them, through the virtio-mmio registers alone: features, the
 * configuration space, a queue in the guest RAM of a VM on the real pools
 * and stage-2 walker (fake arch), requests of a header (type, sector), data
 * and a status byte. The host disk is fake_blk.c (requests held until the
 * test completes them; last_len, flushes with a write cache, the guests'
 * share of its queue, errors); the partition is sectors 2048.. of it, so
 * every byte is looked for at its offset, and nowhere else (a shadow of the
 * whole disk). Bounce pages come from a pool of their own (fake_disk.c), so
 * every test ends with all of them back, but for pages a lost request keeps.
 *
 * Covered: the configuration and features; writes and reads of every shape
 * (512 bytes, partial last page, 16 segments, segments across guest pages
 * or of odd sizes, header split or sharing a descriptor); requests out of
 * range or of bad sizes, writes to a read-only disk, flushes with and
 * without a write cache, GET_ID, unknown types; chains that break the rules;
 * host disk errors and lost requests; more requests than slots, a full host
 * queue, no bounce pages; a driver reset and a VM stop with requests on the
 * host disk; guest buffers on the swap disk. And more requests than slots
 * all answered without the host disk (IDs, errors, flushes without a
 * cache) in one notify: each is answered, none waits for a notify the
 * driver never sends (a bug fixed in core/vdisk.c with this test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/gpt.h>
#include <quire/pool.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vdisk.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include <quire/vmconfig.h>
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "fake_blk.h"
#include "fake_disk.h"
#include "hostmem.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

/* virtio-blk (virtio 1.x, 5.2). */
#define F_SIZE_MAX (1UL << 1)
#define F_SEG_MAX (1UL << 2)
#define F_GEOMETRY (1UL << 4)
#define F_RO (1UL << 5)
#define F_BLK_SIZE (1UL << 6)
#define F_FLUSH (1UL << 9)
#define F_TOPOLOGY (1UL << 10)
#define F_MQ (1UL << 12)
#define F_DISCARD (1UL << 13)
#define F_INDIRECT (1UL << 28)
#define F_EVENT_IDX (1UL << 29)
#define LINUX_FEATS (V1 | F_SIZE_MAX | F_SEG_MAX | F_FLUSH)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define CANARY 0xee /* a status byte until the device writes it */

#define SLOT VMCFG_DISK_SLOT
#define MACH_PAGES 1024
#define QUOTA 600
#define TOUCHED 200 /* guest pages the driver has used before: PG(0) .. PG(TOUCHED - 1) */

/* The host disk: 8 MiB; swap (when a test has it) in its first 512 KiB; the guest's partition from sector 2048. */
#define DISK_SECTORS 16384
#define DISK_BYTES ((u64)DISK_SECTORS * 512)
#define SWAP_SECTORS 1024
#define PART_FIRST 2048
#define PART_SECTORS 8192
#define CMP_FROM ((u64)SWAP_SECTORS * 512) /* what swap never writes */

/* The bounce pages' pool. */
#define DPOOL_BASE 0xc0000000UL
#define DPOOL_PAGES 64

/*
 * The driver's queue: rings in PG(base) .. PG(base + 2), request headers
 * (16 bytes each) and status bytes (from +256) in PG(base + 3). Chain c
 * (made available at avail index i: c = i % CHAINS) has descriptors
 * DESCS * c .., header and status byte c.
 */
#define QN 256
#define CHAINS 12
#define DESCS 21
#define RINGS_A 0
#define RINGS_B 16
#define DATA(n) PG(32 + (n)) /* data buffers, up to PG(TOUCHED - 1) */

static struct pool dpool;
static void *ddesc;
static u32 dpool_start;
static u8 *shadow; /* the host disk as it should be */
static struct virtq ring;
static const struct gpt_part part = { .name = "data", .first = PART_FIRST, .last = PART_FIRST + PART_SECTORS - 1 };

/* ---- the machine, the VM, the disk ------------------------------------------------- */

static void touch_guest(void)
{
	static const u8 zero[PAGE_SIZE];

	for (u32 n = 0; n < TOUCHED; n++)
		put(PG(n), zero, PAGE_SIZE);
}

/* The machine, the host disk (swap on it if swap_pages), the bounce pool; VM 1, swapping if swap_pages. */
static void setup_with(bool ro, u32 swap_pages)
{
	setup_machine(MACH_PAGES);
	fake_blk_setup(DISK_BYTES, 64);
	if (swap_pages) {
		fake_blk_swap_area(0, SWAP_SECTORS);
		swap_init(&pool, 0);
		assert_true(swap_enabled());
	}
	hostmem_pool(&dpool, DPOOL_BASE, DPOOL_PAGES, &ddesc);
	dpool_start = pool_free_pages(&dpool);
	assert_int_equal(dpool_start, DPOOL_PAGES);
	fake_disk_set(&dpool, NULL);
	setup_vm(&vm, 1, swap_pages ? 512 + 64 : QUOTA, SHARE_OFF);
	if (swap_pages) {
		setup_vm_swap(&vm, 512, swap_pages);
		assert_true(vm.swap.on);
	}
	touch_guest();
	shadow = malloc(DISK_BYTES);
	assert_non_null(shadow);
	memcpy(shadow, fake_blk_data(), DISK_BYTES);
	dev_slot = SLOT;
	log_capture();
	vdisk_attach(&vm, SLOT, &part, ro);
	assert_ptr_equal(vm.virtio[SLOT]->vm, &vm);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

static void setup(bool ro)
{
	setup_with(ro, 0);
}

/* The device's own view of its queue. */
static struct virtq *devq(void)
{
	return &vm.virtio[SLOT]->q[0];
}

static struct vdisk_info info(void)
{
	struct vdisk_info d;

	memset(&d, 0xee, sizeof(d));
	vdisk_info(&vm, &d);
	return d;
}

/* Complete whatever the host disk holds, with a kick after each batch, until nothing moves. */
static void settle(void)
{
	do {
		fake_blk_complete(~0u, 0);
		vdisk_kick(0);
	} while (fake_blk_pending());
}

/* Every test's end: nothing left on the host disk, every bounce page back but the lost ones. */
static void expect_no_leak(u32 lost)
{
	settle();
	assert_int_equal(fake_blk_pending(), 0);
	assert_int_equal(info().inflight, 0);
	assert_int_equal(pool_free_pages(&dpool), dpool_start - lost);
}

static int vd_teardown(void **state)
{
	/* The VM stops: what is still in flight goes, so the next test's disk starts clean. */
	virtio_reset_all(&vm);
	fake_blk_guest_max = ~0u;
	settle();
	free(shadow);
	shadow = NULL;
	teardown(state);
	fake_disk_set(NULL, NULL);
	free(ddesc);
	ddesc = NULL;
	return 0;
}

/* ---- the driver ---------------------------------------------------------------------- */

/* As Linux's probe: reset, features, queue 0 in PG(base ..), DRIVER_OK. */
static void bring_up_at(unsigned base, u64 feats)
{
	assert_int_equal(negotiate(feats), ACK | DRV | FOK);
	queue_init_at(&ring, QN, PG(base), PG(base + 1), PG(base + 2));
	set_queue(0, QN, ring.desc, ring.avail, ring.used);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	assert_true(virtio_live(vm.virtio[SLOT]));
}

static void start(bool ro)
{
	setup(ro);
	bring_up_at(RINGS_A, LINUX_FEATS | (ro ? F_RO : 0));
}

struct seg {
	u64 addr;
	u32 len;
	bool in; /* writable by the device */
};

/* A chain made available: its head, and where its status byte is (0: a raw chain's). */
struct rq {
	u16 head;
	u64 status;
};

static u64 hdr_at(u16 c)
{
	return ring.desc + 3 * PAGE_SIZE + 16 * (u64)c;
}

static u64 status_at(u16 c)
{
	return ring.desc + 3 * PAGE_SIZE + 256 + c;
}

static u16 next_chain(void)
{
	return (u16)(get16(ring.avail + 2) % CHAINS);
}

/* Make a chain of segs available, as they are. */
static struct rq chain(const struct seg *s, unsigned n)
{
	u16 head = (u16)(DESCS * next_chain());

	assert_true(n >= 1 && n <= DESCS);
	for (unsigned k = 0; k < n; k++)
		put_desc(&ring, (u16)(head + k), s[k].addr, s[k].len,
			 (s[k].in ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0), (u16)(head + k + 1));
	offer(&ring, head);
	return (struct rq){ head, 0 };
}

static void put_hdr(u64 at, u32 type, u64 sector)
{
	u8 h[16];

	for (unsigned i = 0; i < 4; i++) {
		h[i] = (u8)(type >> (8 * i));
		h[4 + i] = 0;
	}
	for (unsigned i = 0; i < 8; i++)
		h[8 + i] = (u8)(sector >> (8 * i));
	put(at, h, 16);
}

/*
 * A request as Linux makes one: the header in its own readable descriptor,
 * the data segments (readable for a write, writable else), the status byte
 * (CANARY until the device writes it). Not notified.
 */
static struct rq request(u32 type, u64 sector, const struct seg *data, unsigned n)
{
	struct seg s[DESCS];
	u16 c = next_chain();
	u8 canary = CANARY;
	struct rq r;

	assert_true(n + 2 <= DESCS);
	put_hdr(hdr_at(c), type, sector);
	put(status_at(c), &canary, 1);
	s[0] = (struct seg){ hdr_at(c), 16, false };
	for (unsigned k = 0; k < n; k++)
		s[1 + k] = (struct seg){ data[k].addr, data[k].len, type != T_OUT };
	s[n + 1] = (struct seg){ status_at(c), 1, true };
	r = chain(s, n + 2);
	r.status = status_at(c);
	return r;
}

/* [addr, addr + len) in segments of piece bytes (the last shorter); how many. */
static unsigned split(u64 addr, u32 len, u32 piece, struct seg *s)
{
	unsigned n = 0;

	for (u32 done = 0; done < len; done += piece, n++)
		s[n] = (struct seg){ addr + done, MIN(piece, len - done), false };
	return n;
}

/* A request for [addr, addr + len) in pieces of piece bytes. */
static struct rq request_at(u32 type, u64 sector, u64 addr, u32 len, u32 piece)
{
	struct seg s[DESCS];

	return request(type, sector, s, split(addr, len, piece, s));
}

/* The driver's QueueNotify: virtio_mmio_access's answer (-EAGAIN, -EBUSY: the store runs again). */
static int notify(void)
{
	u64 v = 0;

	return acc(SLOT, R_QUEUE_NOTIFY, 4, true, &v);
}

static u16 used(void)
{
	return get16(ring.used + 2);
}

static u8 status_of(const struct rq *r)
{
	u8 b;

	get(r->status, &b, 1);
	return b;
}

/* Used entry k is r's, len bytes written. */
static void expect_used(u16 k, const struct rq *r, u32 len)
{
	u32 id, l;

	used_elem(&ring, k, &id, &l);
	assert_int_equal(id, r->head);
	assert_int_equal(l, len);
}

static void ack_all(void)
{
	wr(R_INT_ACK, rd(R_INT_STATUS));
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

/* The request was answered: the last used entry, its status, len bytes written, the interrupt. */
static void expect_answer(const struct rq *r, u8 status, u32 len)
{
	assert_int_equal(status_of(r), status);
	expect_used((u16)(used() - 1), r, len + 1);
	assert_int_equal(rd(R_INT_STATUS) & VIRTIO_INT_VRING, VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	ack_all();
}

/* Make available, notify, host disk done, kick: the answer is the next used entry. */
static struct rq run(struct rq r)
{
	u16 u0 = used();

	assert_int_equal(notify(), 0);
	settle();
	assert_int_equal(used(), (u16)(u0 + 1));
	return r;
}

/* ---- data ------------------------------------------------------------------------------- */

static void pattern(u8 *b, u32 len, u32 seed)
{
	for (u32 k = 0; k < len; k++)
		b[k] = (u8)(seed * 7 + k * 31 + (k >> 9) + 1);
}

/* The guest's buffer at addr holds len bytes of pattern seed. */
static void fill_guest(u64 addr, u32 len, u32 seed)
{
	u8 *b = malloc(len);

	pattern(b, len, seed);
	put(addr, b, len);
	free(b);
}

static void expect_guest(u64 addr, u32 len, u32 seed)
{
	u8 *want = malloc(len), *got = malloc(len);

	pattern(want, len, seed);
	get(addr, got, len);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

static void fill_guest_byte(u64 addr, u32 len, u8 v)
{
	u8 *b = malloc(len);

	memset(b, v, len);
	put(addr, b, len);
	free(b);
}

static void expect_guest_byte(u64 addr, u32 len, u8 v)
{
	u8 *want = malloc(len), *got = malloc(len);

	memset(want, v, len);
	get(addr, got, len);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

/* The partition's sector s on the host disk. */
static u8 *hd(u64 s)
{
	return fake_blk_data() + (PART_FIRST + s) * 512;
}

/* A write of len bytes of pattern seed to the partition's sector s: what the disk must hold now. */
static void shadow_write(u64 s, u32 len, u32 seed)
{
	pattern(shadow + (PART_FIRST + s) * 512, len, seed);
}

/* The host disk is as the shadow says, byte for byte (past swap's sectors). */
static void expect_disk(void)
{
	assert_memory_equal(fake_blk_data() + CMP_FROM, shadow + CMP_FROM, DISK_BYTES - CMP_FROM);
}

/* The partition's sectors from s hold len bytes of pattern seed (written there by the test, as another's). */
static void disk_put(u64 s, u32 len, u32 seed)
{
	pattern(hd(s), len, seed);
	pattern(shadow + (PART_FIRST + s) * 512, len, seed);
}

/* ---- 1. configuration and features ---------------------------------------------------- */

static u32 cfg32(u32 off)
{
	u64 v = 0;

	assert_int_equal(acc(SLOT, R_CONFIG + off, 4, false, &v), 0);
	return (u32)v;
}

static void config_and_features(void **state)
{
	static const u64 refused[] = { F_GEOMETRY, F_RO, F_BLK_SIZE, F_TOPOLOGY, F_MQ, F_DISCARD, F_INDIRECT,
				       F_EVENT_IDX, 1UL << 33 };
	struct vdisk_info d;
	u64 v;

	(void)state;
	setup(false);
	assert_int_equal(rd(R_MAGIC), MAGIC);
	assert_int_equal(rd(R_VERSION), 2);
	assert_int_equal(rd(R_DEVICE_ID), 2);
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), F_SIZE_MAX | F_SEG_MAX | F_FLUSH);
	wr(R_DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(R_DEV_FEATURES), V1 >> 32);
	/* One queue. */
	wr(R_QUEUE_SEL, 0);
	assert_int_equal(rd(R_QUEUE_NUM_MAX), VIRTQ_NUM_MAX);
	wr(R_QUEUE_SEL, 1);
	assert_int_equal(rd(R_QUEUE_NUM_MAX), 0);
	/* capacity (le64, the partition's sectors), size_max, seg_max; geometry and blk_size 0; nothing past. */
	assert_int_equal(cfg32(0), PART_SECTORS);
	assert_int_equal(cfg32(4), 0);
	assert_int_equal(cfg32(8), PAGE_SIZE);
	assert_int_equal(cfg32(12), 16);
	assert_int_equal(cfg32(16), 0);
	assert_int_equal(cfg32(20), 0);
	assert_int_equal(acc(SLOT, R_CONFIG + 0, 1, false, &v), 0);
	assert_int_equal(v, PART_SECTORS & 0xff);
	assert_int_equal(acc(SLOT, R_CONFIG + 24, 4, false, &v), -EINVAL);
	/* Linux's features, any of them, and nothing else; no legacy. */
	assert_int_equal(negotiate(LINUX_FEATS), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1 | F_FLUSH), ACK | DRV | FOK);
	for (unsigned k = 0; k < ARRAY_SIZE(refused); k++)
		if (negotiate(LINUX_FEATS | refused[k]) != (ACK | DRV))
			fail_msg("feature %#lx accepted", refused[k]);
	assert_int_equal(negotiate(F_SIZE_MAX), ACK | DRV);
	d = info();
	assert_true(d.present);
	assert_false(d.ro);
	assert_false(d.driver);
	assert_string_equal(d.part, "data");
	assert_int_equal(d.sectors, PART_SECTORS);
	assert_int_equal(d.reads + d.writes + d.flushes + d.ids + d.errors + d.inflight, 0);

	/* Read-only: RO offered, and taken. */
	vdisk_attach(&vm, SLOT, &part, true);
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), F_SIZE_MAX | F_SEG_MAX | F_RO | F_FLUSH);
	assert_int_equal(negotiate(LINUX_FEATS | F_RO), ACK | DRV | FOK);
	assert_true(info().ro);
	/* Another partition: its own size. */
	const struct gpt_part small = { .name = "s", .first = 34, .last = 34 + 99 };
	vdisk_attach(&vm, SLOT, &small, false);
	assert_int_equal(cfg32(0), 100);
	assert_int_equal(info().sectors, 100);
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), F_SIZE_MAX | F_SEG_MAX | F_FLUSH);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* ---- 2. reads and writes ---------------------------------------------------------------------------- */

/* Put buf's bytes into the segments, in order (into a host image of the pages from area if img). */
static void scatter(const struct seg *s, unsigned n, const u8 *buf, u64 area, u8 *img)
{
	for (unsigned k = 0; k < n; buf += s[k].len, k++) {
		if (img)
			memcpy(img + (s[k].addr - area), buf, s[k].len);
		else
			put(s[k].addr, buf, s[k].len);
	}
}

/*
 * Write pattern seed from segments w to sector s, read it back into
 * segments r (inside the rpages pages from rarea, all 0xcc before): the
 * host disk holds it there and nowhere else, the guest gets it there and
 * nowhere else.
 */
static void round_trip_segs(u64 s, const struct seg *w, unsigned nw, const struct seg *r, unsigned nr, u64 rarea,
			    unsigned rpages, u32 seed)
{
	u32 len = 0, rlen = 0, size = rpages * PAGE_SIZE;
	u8 *b, *img = malloc(size), *got = malloc(size);
	struct rq q;

	for (unsigned k = 0; k < nw; k++)
		len += w[k].len;
	for (unsigned k = 0; k < nr; k++)
		rlen += r[k].len;
	assert_int_equal(rlen, len);
	b = malloc(len);
	pattern(b, len, seed);
	scatter(w, nw, b, 0, NULL);
	q = run(request(T_OUT, s, w, nw));
	expect_answer(&q, S_OK, 0);
	shadow_write(s, len, seed);
	expect_disk();

	memset(img, 0xcc, size);
	put(rarea, img, size);
	scatter(r, nr, b, rarea, img);
	q = run(request(T_IN, s, r, nr));
	expect_answer(&q, S_OK, len);
	get(rarea, got, size);
	assert_memory_equal(got, img, size);
	expect_disk();
	free(b);
	free(img);
	free(got);
}

/* The same, written from addr in pieces of piece bytes, read to raddr in pieces of rpiece. */
static void round_trip(u64 s, u32 len, u64 addr, u32 piece, u64 raddr, u32 rpiece, u32 seed)
{
	struct seg w[DESCS], r[DESCS];
	u64 area = ALIGN_DOWN(raddr, PAGE_SIZE);

	round_trip_segs(s, w, split(addr, len, piece, w), r, split(raddr, len, rpiece, r), area,
			(unsigned)((ALIGN_UP(raddr + len + 64, PAGE_SIZE) - area) / PAGE_SIZE), seed);
}

static void write_then_read(void **state)
{
	struct vdisk_info d;

	(void)state;
	start(false);
	/* One sector, the partition's first and its last. */
	round_trip(0, 512, DATA(0), 512, DATA(1), 512, 1);
	round_trip(PART_SECTORS - 1, 512, DATA(0), 512, DATA(1), 512, 2);
	/* 3.5 KiB: a partial last page for the host disk. */
	round_trip(5, 3584, DATA(0), 3584, DATA(1), 3584, 3);
	/* 4.5 KiB: two pages, 512 bytes of the second. */
	round_trip(40, 4608, DATA(0), 4608, DATA(4), 4608, 4);
	/* 64 KiB in 16 segments of a page, read back in 16 others, up to the partition's end. */
	round_trip(PART_SECTORS - 128, 65536, DATA(10), 4096, DATA(40), 4096, 5);
	/* A segment across a guest page boundary. */
	round_trip(200, 4096, DATA(0) + 1000, 4096, DATA(4) + 3000, 4096, 6);
	/* Odd segment sizes: a sector's bytes split between segments, and between pages. */
	round_trip(300, 9216, DATA(0) + 7, 1000, DATA(4) + 4001, 700, 7);
	const struct seg w[] = { { DATA(0) + 4095, 1, false }, { DATA(1) + 100, 511, false }, { DATA(2), 1000, false }, { DATA(3) + 3000, 1048, false } };
	const struct seg r[] = { { DATA(5) + 17, 2559, false }, { DATA(6) + 4095, 1, false } };
	round_trip_segs(400, w, ARRAY_SIZE(w), r, ARRAY_SIZE(r), DATA(5), 2, 8);
	d = info();
	assert_int_equal(d.writes, 8);
	assert_int_equal(d.reads, 8);
	assert_int_equal(d.written_bytes, 512 + 512 + 3584 + 4608 + 65536 + 4096 + 9216 + 2560);
	assert_int_equal(d.read_bytes, d.written_bytes);
	assert_int_equal(d.errors, 0);
	assert_true(d.driver);
	assert_int_equal(fake_blk_guest_reqs, 16);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* Layouts Linux does not make but the spec allows: the header split, the data sharing its descriptors. */
static void other_layouts(void **state)
{
	u16 c;
	struct rq r;
	u8 buf[16 + 1024 + 1];

	(void)state;
	start(false);
	/* Header in two descriptors of 8 bytes. */
	c = next_chain();
	put_hdr(hdr_at(c), T_OUT, 10);
	fill_guest(DATA(0), 512, 11);
	put(status_at(c), (u8[]){ CANARY }, 1);
	const struct seg s1[] = { { hdr_at(c), 8, false }, { hdr_at(c) + 8, 8, false }, { DATA(0), 512, false },
				  { status_at(c), 1, true } };
	r = run(chain(s1, 4));
	r.status = status_at(c);
	expect_answer(&r, S_OK, 0);
	shadow_write(10, 512, 11);
	expect_disk();
	/* Header and data in one readable descriptor; the data to read and the status in one writable one. */
	pattern(buf + 16, 1024, 12);
	c = next_chain();
	put_hdr(DATA(2), T_OUT, 20);
	put(DATA(2) + 16, buf + 16, 1024);
	const struct seg s2[] = { { DATA(2), 16 + 1024, false }, { status_at(c), 1, true } };
	put(status_at(c), (u8[]){ CANARY }, 1);
	r = run(chain(s2, 2));
	r.status = status_at(c);
	expect_answer(&r, S_OK, 0);
	shadow_write(20, 1024, 12);
	expect_disk();
	c = next_chain();
	put_hdr(hdr_at(c), T_IN, 20);
	fill_guest_byte(DATA(3), 1025, 0xcc);
	const struct seg s3[] = { { hdr_at(c), 16, false }, { DATA(3), 1025, true } };
	r = run(chain(s3, 2));
	r.status = DATA(3) + 1024;
	expect_answer(&r, S_OK, 1024);
	expect_guest(DATA(3), 1024, 12);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* ---- 3. requests refused ---------------------------------------------------------------------------- */

static void out_of_range(void **state)
{
	/* At the end, across it, past it; past the host disk; and 2^64 - PART_FIRST, which wraps to host sector 0. */
	const u64 bad[] = { PART_SECTORS, PART_SECTORS - 1, PART_SECTORS + 1, ~0UL, ~0UL - 1, 1UL << 63,
			    (u64)DISK_SECTORS - PART_FIRST, 0UL - PART_FIRST, 0UL - PART_FIRST - 1 };
	struct rq r;

	(void)state;
	start(false);
	fill_guest(DATA(0), 8192, 1);
	fill_guest_byte(DATA(4), 8192, 0xcc);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		/* 1024 bytes: the second sector is past the end at PART_SECTORS - 1. */
		r = run(request_at(T_OUT, bad[k], DATA(0), 1024, 4096));
		expect_answer(&r, S_IOERR, 0);
		r = run(request_at(T_IN, bad[k], DATA(4), 8192, 4096));
		expect_answer(&r, S_IOERR, 0);
		expect_guest_byte(DATA(4), 8192, 0xcc);
	}
	/* Past the end by one page of a 64 KiB request. */
	r = run(request_at(T_OUT, PART_SECTORS - 120, DATA(10), 65536, 4096));
	expect_answer(&r, S_IOERR, 0);
	assert_int_equal(fake_blk_submits, 0);
	expect_disk();
	assert_int_equal(info().errors, 2 * ARRAY_SIZE(bad) + 1);
	assert_int_equal(log_count("past its end"), 1);
	assert_int_equal(log_count("vm1: disk 'data': a request for 2 sectors at sector 8192"), 1);
	/* The last sectors are in range. */
	r = run(request_at(T_OUT, PART_SECTORS - 2, DATA(0), 1024, 4096));
	expect_answer(&r, S_OK, 0);
	shadow_write(PART_SECTORS - 2, 1024, 1);
	expect_disk();
	expect_no_leak(0);
}

static void bad_sizes(void **state)
{
	struct seg s[DESCS];
	struct rq r;
	unsigned n;

	(void)state;
	start(false);
	fill_guest(DATA(0), 20 * PAGE_SIZE, 1);
	/* No data at all. */
	r = run(request(T_IN, 0, NULL, 0));
	expect_answer(&r, S_IOERR, 0);
	r = run(request(T_OUT, 0, NULL, 0));
	expect_answer(&r, S_IOERR, 0);
	/* Not whole sectors. */
	r = run(request_at(T_OUT, 0, DATA(0), 100, 4096));
	expect_answer(&r, S_IOERR, 0);
	r = run(request_at(T_IN, 0, DATA(0), 100, 4096));
	expect_answer(&r, S_IOERR, 0);
	r = run(request_at(T_OUT, 0, DATA(0), 1000, 500));
	expect_answer(&r, S_IOERR, 0);
	/* More than 64 KiB: a sector more, in 17 segments; and a page more in 16 larger ones. */
	n = split(DATA(0), 65536 + 512, 4096, s);
	assert_int_equal(n, 17);
	r = run(request(T_OUT, 0, s, n));
	expect_answer(&r, S_IOERR, 0);
	n = split(DATA(0), 69632, 4352, s);
	assert_int_equal(n, 16);
	r = run(request(T_OUT, 0, s, n));
	expect_answer(&r, S_IOERR, 0);
	r = run(request(T_IN, 0, s, n));
	expect_answer(&r, S_IOERR, 0);
	assert_int_equal(fake_blk_submits, 0);
	expect_disk();
	assert_int_equal(log_count("in whole sectors"), 1);
	assert_int_equal(log_count("a request of 0 bytes"), 1);
	assert_int_equal(info().errors, 8);
	expect_no_leak(0);
}

static void read_only(void **state)
{
	struct rq r;

	(void)state;
	start(true);
	fill_guest(DATA(0), 4096, 1);
	r = run(request_at(T_OUT, 0, DATA(0), 4096, 4096));
	expect_answer(&r, S_IOERR, 0);
	assert_int_equal(fake_blk_submits, 0);
	expect_disk();
	/* Reads work. */
	disk_put(8, 1024, 2);
	r = run(request_at(T_IN, 8, DATA(4), 1024, 1024));
	expect_answer(&r, S_OK, 1024);
	expect_guest(DATA(4), 1024, 2);
	/* A flush is fine: without a write cache answered at once, with one sent. */
	r = request(T_FLUSH, 0, NULL, 0);
	assert_int_equal(notify(), 0);
	expect_answer(&r, S_OK, 0);
	fake_blk_write_cache = true;
	r = run(request(T_FLUSH, 0, NULL, 0));
	expect_answer(&r, S_OK, 0);
	assert_int_equal(fake_blk_flushes, 1);
	expect_disk();
	assert_int_equal(info().errors, 1);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* ---- 4. flush, GET_ID, unknown types ------------------------------------------------------------------ */

static void flush(void **state)
{
	struct rq r;
	u16 u0;

	(void)state;
	start(false);
	/* No write cache: OK at once, in the notify, nothing sent. */
	r = request(T_FLUSH, 0, NULL, 0);
	assert_int_equal(notify(), 0);
	assert_int_equal(used(), 1);
	expect_answer(&r, S_OK, 0);
	assert_int_equal(fake_blk_submits, 0);
	/* A write cache: a host flush, and the guest's answer only once it is done. */
	fake_blk_write_cache = true;
	r = request(T_FLUSH, 12345, NULL, 0); /* the sector means nothing for a flush */
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(fake_blk_flushes, 1);
	assert_int_equal(fake_blk_guest_reqs, 1);
	assert_int_equal(info().inflight, 1);
	vdisk_kick(0);
	assert_int_equal(used(), 1);
	assert_int_equal(status_of(&r), CANARY);
	settle();
	assert_int_equal(used(), 2);
	expect_answer(&r, S_OK, 0);
	/* The host's flush fails: an I/O error, logged once. */
	r = request(T_FLUSH, 0, NULL, 0);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_complete_status(1, -EIO, 0), 1);
	vdisk_kick(0);
	expect_answer(&r, S_IOERR, 0);
	assert_int_equal(log_count("the host disk failed a flush"), 1);
	/* A flush with a data buffer (Linux gives none): still a flush. */
	u0 = used();
	fill_guest(DATA(0), 512, 1);
	r = run(request_at(T_FLUSH, 0, DATA(0), 512, 512));
	assert_int_equal(used(), u0 + 1);
	expect_answer(&r, S_OK, 0);
	assert_int_equal(info().flushes, 3);
	assert_int_equal(info().errors, 1);
	expect_disk();
	expect_no_leak(0);
}

/* GET_ID into a buffer of len bytes (in pieces of piece): the answer, and the 64 bytes there (0xcc before). */
static void id_into(u32 len, u32 piece, u8 *got)
{
	struct rq r;

	fill_guest_byte(DATA(0), 64, 0xcc);
	r = run(request_at(T_GET_ID, 0, DATA(0), len, piece));
	expect_answer(&r, S_OK, MIN(len, 20u));
	get(DATA(0), got, 64);
}

static void get_id(void **state)
{
	static const char lname[] = "a-partition-name-longer-than-20";
	const struct gpt_part unnamed = { .first = PART_FIRST, .last = PART_FIRST + 7 };
	struct gpt_part named = part;
	u8 got[64], want[64];

	(void)state;
	start(false);
	/* 20 bytes: the name and NULs. */
	memset(want, 0xcc, 64);
	memset(want, 0, 20);
	memcpy(want, "data", 4);
	id_into(20, 20, got);
	assert_memory_equal(got, want, 64);
	/* A longer buffer (in pieces): 20 bytes, no more. */
	id_into(40, 7, got);
	assert_memory_equal(got, want, 64);
	/* A shorter one: a shorter ID. */
	memset(want + 3, 0xcc, 61);
	id_into(3, 3, got);
	assert_memory_equal(got, want, 64);
	assert_int_equal(info().ids, 3);

	/* A name longer than an ID: cut at 20. */
	memcpy(named.name, lname, sizeof(lname));
	vdisk_attach(&vm, SLOT, &named, false);
	bring_up_at(RINGS_A, LINUX_FEATS);
	memset(want, 0xcc, 64);
	memcpy(want, lname, 20);
	id_into(20, 20, got);
	assert_memory_equal(got, want, 64);
	id_into(21, 21, got);
	assert_memory_equal(got, want, 64);
	/* Unnamed: all NULs. */
	vdisk_attach(&vm, SLOT, &unnamed, false);
	bring_up_at(RINGS_A, LINUX_FEATS);
	memset(want, 0, 20);
	id_into(20, 10, got);
	assert_memory_equal(got, want, 64);
	assert_int_equal(fake_blk_submits, 0);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

static void unknown_type(void **state)
{
	const u32 types[] = { 99, 2, 11, 13, 0x80000000u | T_OUT };
	struct rq r;

	(void)state;
	start(false);
	fill_guest(DATA(0), 512, 1);
	for (unsigned k = 0; k < ARRAY_SIZE(types); k++) {
		r = run(request_at(types[k], 0, DATA(0), 512, 512));
		expect_answer(&r, S_UNSUPP, 0);
	}
	r = run(request(99, 0, NULL, 0));
	expect_answer(&r, S_UNSUPP, 0);
	assert_int_equal(fake_blk_submits, 0);
	assert_int_equal(info().errors, ARRAY_SIZE(types) + 1);
	expect_disk();
	expect_no_leak(0);
}

/* ---- 5. chains that break the rules ---------------------------------------------------------------------- */

/* The device needs a reset: the status bit, a configuration interrupt, logged once; later chains not taken. */
static void expect_needs_reset(void)
{
	struct rq r;
	u16 u0 = used(), a0 = devq()->last_avail;

	assert_int_equal(rd(R_STATUS) & NEEDS_RESET, NEEDS_RESET);
	assert_int_equal(rd(R_INT_STATUS) & VIRTIO_INT_CONFIG, VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(log_count("needs a reset"), 1);
	assert_int_equal(log_count("virtio-blk in slot 1"), 1);
	ack_all();
	fill_guest(DATA(0), 512, 1);
	r = request_at(T_OUT, 0, DATA(0), 512, 512);
	assert_int_equal(notify(), 0);
	vdisk_kick(0);
	settle();
	assert_int_equal(used(), u0);
	assert_int_equal(devq()->last_avail, a0);
	assert_int_equal(status_of(&r), CANARY);
	assert_int_equal(fake_blk_submits, 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

static void chain_without_status(void **state)
{
	struct rq r;

	(void)state;
	start(false);
	put_hdr(hdr_at(next_chain()), T_OUT, 0);
	fill_guest(DATA(0), 512, 1);
	const struct seg s[] = { { hdr_at(next_chain()), 16, false }, { DATA(0), 512, false } };
	chain(s, 2);
	assert_int_equal(notify(), 0);
	assert_int_equal(log_count("without its 16-byte header or its status byte"), 1);
	expect_needs_reset();
	expect_disk();
	/* A driver reset, a new session: it works again. */
	bring_up_at(RINGS_A, LINUX_FEATS);
	r = run(request_at(T_OUT, 0, DATA(0), 512, 512));
	expect_answer(&r, S_OK, 0);
	shadow_write(0, 512, 1);
	expect_disk();
	expect_no_leak(0);
}

static void chain_with_short_header(void **state)
{
	(void)state;
	start(false);
	/* 15 bytes of header, then data and a status byte. */
	put_hdr(hdr_at(next_chain()), T_IN, 0);
	const struct seg s[] = { { hdr_at(next_chain()), 15, false }, { DATA(0), 512, true },
				 { status_at(next_chain()), 1, true } };
	fill_guest_byte(DATA(0), 512, 0xcc);
	chain(s, 3);
	assert_int_equal(notify(), 0);
	expect_guest_byte(DATA(0), 512, 0xcc);
	expect_needs_reset();
	expect_no_leak(0);
}

/* A header all writable: no readable part at all. */
static void chain_all_writable(void **state)
{
	(void)state;
	start(false);
	const struct seg s[] = { { hdr_at(next_chain()), 16, true }, { DATA(0), 512, true },
				 { status_at(next_chain()), 1, true } };
	chain(s, 3);
	assert_int_equal(notify(), 0);
	expect_needs_reset();
	expect_no_leak(0);
}

/* ---- 6. the host disk fails ---------------------------------------------------------------------------- */

static void host_disk_error(void **state)
{
	struct rq r;

	(void)state;
	start(false);
	fill_guest(DATA(0), 8192, 1);
	r = request_at(T_OUT, 16, DATA(0), 8192, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_complete_status(1, -EIO, 0), 1);
	vdisk_kick(0);
	expect_answer(&r, S_IOERR, 0);
	expect_disk();
	/* A read fails too: the buffer untouched; one log line for both. */
	fill_guest_byte(DATA(4), 4096, 0xcc);
	r = request_at(T_IN, 16, DATA(4), 4096, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_complete_status(1, -EIO, 0), 1);
	vdisk_kick(0);
	expect_answer(&r, S_IOERR, 0);
	expect_guest_byte(DATA(4), 4096, 0xcc);
	assert_int_equal(log_count("the host disk failed a write at sector 2064"), 1);
	assert_int_equal(log_count("the host disk failed"), 1);
	assert_int_equal(info().errors, 2);
	/* The VM and its disk go on. */
	assert_true(virtio_live(vm.virtio[SLOT]));
	r = run(request_at(T_OUT, 16, DATA(0), 8192, 4096));
	expect_answer(&r, S_OK, 0);
	shadow_write(16, 8192, 1);
	expect_disk();
	expect_no_leak(0);
}

/* A request the host disk would not stop for: an I/O error, and its bounce pages never used again. */
static void host_disk_lost(void **state)
{
	paddr_t pa[BLK_MAX_PAGES];
	struct rq r;

	(void)state;
	start(false);
	fill_guest(DATA(0), 65536, 1);
	r = request_at(T_OUT, 16, DATA(0), 12288, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending_pages(pa, BLK_MAX_PAGES), 3);
	assert_int_equal(pool_free_pages(&dpool), dpool_start - 3);
	assert_int_equal(fake_blk_complete_status(1, BLK_LOST, 0), 1);
	vdisk_kick(0);
	expect_answer(&r, S_IOERR, 0);
	assert_int_equal(pool_free_pages(&dpool), dpool_start - 3);
	/* Other requests take other pages, never those. */
	for (unsigned k = 0; k < 8; k++) {
		paddr_t now[BLK_MAX_PAGES];
		unsigned n;

		r = request_at(T_OUT, 16 * k, DATA(0), 65536, 4096);
		assert_int_equal(notify(), 0);
		n = fake_blk_pending_pages(now, BLK_MAX_PAGES);
		assert_int_equal(n, 16);
		for (unsigned i = 0; i < n; i++)
			for (unsigned j = 0; j < 3; j++)
				assert_int_not_equal(now[i], pa[j]);
		settle();
		expect_answer(&r, S_OK, 0);
		shadow_write(16 * k, 65536, 1);
	}
	expect_disk();
	assert_int_equal(log_count("the host disk failed a write"), 1);
	expect_no_leak(3);
}

/* The host disk breaks with requests on it (fake_blk_break): I/O errors; then no disk at all: errors at once. */
static void host_disk_gone(void **state)
{
	struct rq r[2];

	(void)state;
	start(false);
	fill_guest(DATA(0), 4096, 1);
	r[0] = request_at(T_OUT, 0, DATA(0), 4096, 4096);
	r[1] = request_at(T_IN, 0, DATA(1), 4096, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 2);
	fake_blk_break(true);
	vdisk_kick(0);
	assert_int_equal(used(), 2);
	assert_int_equal(status_of(&r[0]), S_IOERR);
	assert_int_equal(status_of(&r[1]), S_IOERR);
	r[0] = run(request_at(T_OUT, 0, DATA(0), 4096, 4096));
	expect_answer(&r[0], S_IOERR, 0);
	expect_disk();
	expect_no_leak(0);
}

/* ---- 7. waiting: slots, the host queue, bounce pages ------------------------------------------------- */

static void more_than_depth(void **state)
{
	enum { N = 11 };
	struct rq r[N];

	(void)state;
	start(false);
	for (unsigned k = 0; k < N; k++) {
		fill_guest(DATA(k), 512, 10 + k);
		r[k] = request_at(T_OUT, 3 * k, DATA(k), 512, 512);
	}
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), VDISK_DEPTH);
	assert_int_equal(info().inflight, VDISK_DEPTH);
	assert_int_equal(devq()->last_avail, VDISK_DEPTH);
	assert_int_equal(used(), 0);
	/* Another notify takes nothing more. */
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), VDISK_DEPTH);
	/* One completion at a time: answered in that order, a waiting chain taken into each slot freed. */
	for (unsigned k = 0; k < N; k++) {
		assert_int_equal(fake_blk_complete(1, 0), 1);
		vdisk_kick(0);
		assert_int_equal(used(), k + 1);
		expect_answer(&r[k], S_OK, 0);
		assert_int_equal(fake_blk_pending(), MIN(VDISK_DEPTH, N - k - 1));
		assert_int_equal(devq()->last_avail, MIN(N, VDISK_DEPTH + k + 1));
	}
	for (unsigned k = 0; k < N; k++)
		shadow_write(3 * k, 512, 10 + k);
	expect_disk();
	assert_int_equal(info().writes, N);
	expect_no_leak(0);
}

/* The same, every request answered as it is taken: each of them is, whatever their number. */
static void more_than_depth_answered_at_once(void **state)
{
	enum { N = 11 };
	struct rq r[N];

	(void)state;
	start(false);
	for (unsigned k = 0; k < N; k++) {
		switch (k % 4) {
		case 0:
			r[k] = request_at(T_GET_ID, 0, DATA(k), 20, 20);
			break;
		case 1:
			r[k] = request(T_FLUSH, 0, NULL, 0);
			break;
		case 2:
			r[k] = request(99, 0, NULL, 0);
			break;
		default:
			r[k] = request_at(T_OUT, PART_SECTORS, DATA(k), 512, 512);
			break;
		}
	}
	assert_int_equal(notify(), 0);
	assert_int_equal(used(), N);
	assert_int_equal(devq()->last_avail, N);
	for (unsigned k = 0; k < N; k++) {
		expect_used((u16)k, &r[k], k % 4 == 0 ? 21 : 1);
		assert_int_equal(status_of(&r[k]), k % 4 == 2 ? S_UNSUPP : k % 4 == 3 ? S_IOERR : S_OK);
	}
	/* Rounds of as many as the driver has chains. */
	for (unsigned round = 0; round < 3; round++) {
		u16 u0 = used();

		for (unsigned k = 0; k < CHAINS; k++)
			request(T_FLUSH, 0, NULL, 0);
		assert_int_equal(notify(), 0);
		assert_int_equal(used(), (u16)(u0 + CHAINS));
	}
	assert_int_equal(fake_blk_submits, 0);
	expect_no_leak(0);
}

/* The guests' share of the host queue is full: the request waits in its slot and goes at a later kick. */
static void host_queue_full(void **state)
{
	struct rq r[3];
	u64 submits;

	(void)state;
	start(false);
	fake_blk_guest_max = 1;
	for (unsigned k = 0; k < 3; k++) {
		fill_guest(DATA(k), 4096, 20 + k);
		r[k] = request_at(T_OUT, 8 * k, DATA(k), 4096, 4096);
	}
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(fake_blk_guest_reqs, 1);
	assert_int_equal(devq()->last_avail, 3);
	assert_int_equal(info().inflight, 1);
	/* A kick without a completion: still no room. */
	submits = fake_blk_submits;
	vdisk_kick(0);
	assert_int_equal(fake_blk_pending(), 1);
	assert_true(fake_blk_submits > submits);
	assert_int_equal(used(), 0);
	/* Each completion makes room for the next. */
	for (unsigned k = 0; k < 3; k++) {
		assert_int_equal(fake_blk_complete(1, 0), 1);
		vdisk_kick(0);
		assert_int_equal(used(), k + 1);
		expect_answer(&r[k], S_OK, 0);
		assert_int_equal(fake_blk_pending(), k < 2);
		shadow_write(8 * k, 4096, 20 + k);
		expect_disk();
	}
	assert_int_equal(fake_blk_guest_reqs, 3);
	expect_no_leak(0);
}

/* No bounce pages: nothing lost, the request goes once pages are back and a kick runs. */
static void bounce_pool_exhausted(void **state)
{
	pidx_t taken[DPOOL_PAGES + 1];
	unsigned n = 0;
	struct rq r, r2;

	(void)state;
	start(false);
	while ((taken[n] = pool_alloc(&dpool, 0)) != PIDX_NONE)
		n++;
	assert_int_equal(n, DPOOL_PAGES);
	fill_guest(DATA(0), 8192, 1);
	r = request_at(T_OUT, 0, DATA(0), 8192, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 0);
	assert_int_equal(devq()->last_avail, 0);
	assert_int_equal(used(), 0);
	vdisk_kick(0);
	assert_int_equal(fake_blk_pending(), 0);
	/* One page: not enough, and not kept. */
	pool_free(&dpool, 0, taken[--n], false);
	vdisk_kick(0);
	assert_int_equal(fake_blk_pending(), 0);
	assert_int_equal(pool_free_pages(&dpool), 1);
	/* Answered-at-once requests behind it wait their turn. */
	r2 = request(T_FLUSH, 0, NULL, 0);
	assert_int_equal(notify(), 0);
	assert_int_equal(used(), 0);
	/* Two: it goes, and the flush after it. */
	pool_free(&dpool, 0, taken[--n], false);
	vdisk_kick(0);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(used(), 1);
	expect_answer(&r2, S_OK, 0);
	settle();
	assert_int_equal(used(), 2);
	expect_used(1, &r, 1);
	assert_int_equal(status_of(&r), S_OK);
	shadow_write(0, 8192, 1);
	expect_disk();
	while (n)
		pool_free(&dpool, 0, taken[--n], false);
	expect_no_leak(0);
}

/* ---- 8. resets: the driver's, the VM's stop ------------------------------------------------------------- */

/*
 * Requests on the host disk (a read, a write), one waiting for room (a
 * read), one waiting for its answer (a read whose completion came): then
 * the device is reset. Nothing of them reaches the guest again.
 */
static struct rq in_flight[4];

static void requests_in_flight(void)
{
	fake_blk_guest_max = 3;
	fill_guest_byte(DATA(0), 4 * PAGE_SIZE, 0xcc);
	fill_guest(DATA(1), 4096, 5);
	disk_put(0, 4096, 6);
	disk_put(16, 4096, 7);
	disk_put(24, 4096, 8);
	in_flight[0] = request_at(T_IN, 24, DATA(3), 4096, 4096);
	in_flight[1] = request_at(T_IN, 0, DATA(0), 4096, 4096);
	in_flight[2] = request_at(T_OUT, 8, DATA(1), 4096, 4096);
	in_flight[3] = request_at(T_IN, 16, DATA(2), 4096, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 3);
	/* The first completes, its answer not given yet (no kick). */
	assert_int_equal(fake_blk_complete(1, 0), 1);
	assert_int_equal(fake_blk_pending(), 2);
	assert_int_equal(pool_free_pages(&dpool), dpool_start - 4);
}

/* Their bytes, status bytes and the used ring as they were. */
static void expect_in_flight_untouched(u64 used_ring)
{
	expect_guest_byte(DATA(0), PAGE_SIZE, 0xcc);
	expect_guest_byte(DATA(2), 2 * PAGE_SIZE, 0xcc);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(status_of(&in_flight[k]), CANARY);
	expect_guest_byte(used_ring, PAGE_SIZE, 0xdd);
}

static void driver_reset_in_flight(void **state)
{
	struct rq r;

	(void)state;
	start(false);
	requests_in_flight();
	/* Reset; the old used ring gets a canary. */
	wr(R_STATUS, 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	fill_guest_byte(PG(RINGS_A + 2), PAGE_SIZE, 0xdd);
	vdisk_kick(0);
	/* The one that waited for room never goes; the answered-not-given one's pages are back. */
	assert_int_equal(pool_free_pages(&dpool), dpool_start - 2);
	assert_int_equal(info().inflight, 2);
	/* A new session on other rings while the old requests are still on the host disk. */
	bring_up_at(RINGS_B, LINUX_FEATS);
	fill_guest(DATA(8), 4096, 9);
	r = request_at(T_OUT, 32, DATA(8), 4096, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 3);
	settle();
	expect_in_flight_untouched(PG(RINGS_A + 2));
	/* The write that was on the host disk did reach it; the new session's did; nothing else. */
	shadow_write(8, 4096, 5);
	shadow_write(32, 4096, 9);
	expect_disk();
	assert_int_equal(used(), 1);
	expect_answer(&r, S_OK, 0);
	assert_int_equal(info().writes, 1);
	assert_int_equal(info().reads, 0);
	expect_no_leak(0);
}

/* The same when the VM stops (vm_reap resets its devices, then its memory goes). */
static void vm_stop_in_flight(void **state)
{
	pidx_t i;

	(void)state;
	start(false);
	requests_in_flight();
	fill_guest_byte(PG(RINGS_A + 2), PAGE_SIZE, 0xdd);
	virtio_reset_all(&vm);
	assert_false(info().driver);
	vdisk_kick(0);
	/* One completes while the VM's memory is still there: none of it is written. */
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vdisk_kick(0);
	expect_in_flight_untouched(PG(RINGS_A + 2));
	/* Then the memory goes; the last completes after. */
	share_vm_stop(&vm);
	s2_destroy(&vm, swap_page_release, swap_release, NULL, 0);
	while ((i = lfstack_pop(&vm.pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&vm.pool, 0, i, true);
	vmpool_fini(&vm.pool);
	assert_int_equal(vm.s2.root, 0);
	settle();
	assert_int_equal(atomic_load(&vm.pool.charged), 0);
	shadow_write(8, 4096, 5);
	expect_disk();
	expect_no_leak(0);
}

/* ---- 9. guest buffers on the swap disk ------------------------------------------------------------------ */

static u64 leaf(u64 ipa)
{
	return fake_s2_raw(&vm, IPA(ipa));
}

/* Guest page at ipa goes to the swap disk as the clock would send it; its write completed. */
static void evict(u64 ipa)
{
	struct victim v = { .ipa = ipa };
	struct s2_leaf l, old;

	assert_true(s2_get(&vm, IPA(ipa), &l));
	v.page = swap_evictable(&vm, &l);
	assert_int_not_equal(v.page, PIDX_NONE);
	assert_int_equal(s2_claim(&vm, IPA(ipa), &v.leaf, &old), 0);
	v.prot = old.prot;
	swap_write_out(&vm, &v, 1, 0);
	assert_true(s2e_transit(leaf(ipa)));
	assert_int_equal(fake_blk_complete(~0u, 0), 1);
	assert_true(s2e_swapped(leaf(ipa)));
}

/* A write's data on the swap disk: the notify waits (-EAGAIN) for the swap-in, then runs again. */
static void write_from_swapped_buffer(void **state)
{
	struct rq r;

	(void)state;
	setup_with(false, 128);
	bring_up_at(RINGS_A, LINUX_FEATS);
	fill_guest(DATA(0), 8192, 3);
	evict(DATA(1));
	r = request_at(T_OUT, 64, DATA(0), 8192, 8192);
	assert_int_equal(notify(), -EAGAIN);
	assert_int_equal(devq()->last_avail, 0);
	assert_int_equal(fake_blk_guest_reqs, 0);
	assert_int_equal(fake_blk_pending(), 1); /* the swap-in */
	assert_int_equal(pool_free_pages(&dpool), dpool_start);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	assert_false(s2e_swapped(leaf(DATA(1))));
	/* The vCPU's store runs again. */
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_guest_reqs, 1);
	settle();
	expect_answer(&r, S_OK, 0);
	shadow_write(64, 8192, 3);
	expect_disk();

	/* The same, taken by a kick after the swap-in instead. */
	evict(DATA(0));
	r = request_at(T_OUT, 128, DATA(0), 8192, 4096);
	assert_int_equal(notify(), -EAGAIN);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vdisk_kick(0);
	assert_int_equal(fake_blk_guest_reqs, 2);
	assert_int_equal(notify(), 0);
	settle();
	assert_int_equal(used(), 2);
	expect_answer(&r, S_OK, 0);
	shadow_write(128, 8192, 3);
	expect_disk();
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* A read into a buffer on the swap disk: the answer waits for the swap-in, at the kicks. */
static void read_into_swapped_buffer(void **state)
{
	struct rq r;

	(void)state;
	setup_with(false, 128);
	bring_up_at(RINGS_A, LINUX_FEATS);
	disk_put(80, 8192, 4);
	fill_guest_byte(DATA(0), 8192, 0xcc);
	evict(DATA(1));
	r = request_at(T_IN, 80, DATA(0), 8192, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vdisk_kick(0);
	/* Its answer waits: the swap-in is on the disk now. */
	assert_int_equal(used(), 0);
	assert_int_equal(status_of(&r), CANARY);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(info().inflight, 0);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vdisk_kick(0);
	assert_int_equal(used(), 1);
	expect_answer(&r, S_OK, 8192);
	expect_guest(DATA(0), 8192, 4);
	expect_disk();
	/* The header on the swap disk: the notify waits, nothing taken. */
	u16 c = next_chain();
	r = request_at(T_IN, 80, DATA(4), 512, 512);
	evict(ALIGN_DOWN(hdr_at(c), PAGE_SIZE));
	assert_int_equal(notify(), -EAGAIN);
	assert_int_equal(devq()->last_avail, 1);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	assert_int_equal(notify(), 0);
	settle();
	expect_answer(&r, S_OK, 512);
	expect_guest(DATA(4), 512, 4);
	assert_int_equal(loglen, 0);
	expect_no_leak(0);
}

/* The driver resets while an answer waits for its buffer's swap-in: the buffer is never written. */
static void reset_while_answer_waits_for_swap(void **state)
{
	struct rq r;

	(void)state;
	setup_with(false, 128);
	bring_up_at(RINGS_A, LINUX_FEATS);
	disk_put(80, 8192, 4);
	fill_guest_byte(DATA(0), 8192, 0xcc);
	evict(DATA(1));
	r = request_at(T_IN, 80, DATA(0), 8192, 4096);
	assert_int_equal(notify(), 0);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vdisk_kick(0);
	assert_int_equal(fake_blk_pending(), 1); /* the swap-in */
	assert_int_equal(pool_free_pages(&dpool), dpool_start - 2);
	wr(R_STATUS, 0);
	fill_guest_byte(DATA(0), 4096, 0xcc); /* the first page may have been written before the reset */
	fill_guest_byte(PG(RINGS_A + 2), PAGE_SIZE, 0xdd);
	vdisk_kick(0);
	assert_int_equal(pool_free_pages(&dpool), dpool_start);
	settle();
	expect_guest_byte(DATA(0), 8192, 0xcc);
	assert_int_equal(status_of(&r), CANARY);
	expect_guest_byte(PG(RINGS_A + 2), PAGE_SIZE, 0xdd);
	assert_int_equal(info().reads, 0);
	expect_no_leak(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(config_and_features, vd_teardown),
		cmocka_unit_test_teardown(write_then_read, vd_teardown),
		cmocka_unit_test_teardown(other_layouts, vd_teardown),
		cmocka_unit_test_teardown(out_of_range, vd_teardown),
		cmocka_unit_test_teardown(bad_sizes, vd_teardown),
		cmocka_unit_test_teardown(read_only, vd_teardown),
		cmocka_unit_test_teardown(flush, vd_teardown),
		cmocka_unit_test_teardown(get_id, vd_teardown),
		cmocka_unit_test_teardown(unknown_type, vd_teardown),
		cmocka_unit_test_teardown(chain_without_status, vd_teardown),
		cmocka_unit_test_teardown(chain_with_short_header, vd_teardown),
		cmocka_unit_test_teardown(chain_all_writable, vd_teardown),
		cmocka_unit_test_teardown(host_disk_error, vd_teardown),
		cmocka_unit_test_teardown(host_disk_lost, vd_teardown),
		cmocka_unit_test_teardown(host_disk_gone, vd_teardown),
		cmocka_unit_test_teardown(more_than_depth, vd_teardown),
		cmocka_unit_test_teardown(more_than_depth_answered_at_once, vd_teardown),
		cmocka_unit_test_teardown(host_queue_full, vd_teardown),
		cmocka_unit_test_teardown(bounce_pool_exhausted, vd_teardown),
		cmocka_unit_test_teardown(driver_reset_in_flight, vd_teardown),
		cmocka_unit_test_teardown(vm_stop_in_flight, vd_teardown),
		cmocka_unit_test_teardown(write_from_swapped_buffer, vd_teardown),
		cmocka_unit_test_teardown(read_into_swapped_buffer, vd_teardown),
		cmocka_unit_test_teardown(reset_while_answer_waits_for_swap, vd_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
