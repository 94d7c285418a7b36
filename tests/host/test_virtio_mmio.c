/*
 * The virtio-mmio transport (core/virtio_mmio.c) as a driver sees it:
 * every step through virtio_mmio_access alone, against a small fake
 * device (device ID 5, three queues, 8 bytes of configuration) whose
 * notify takes its chains with the real virtqueues (core/virtq.c) over
 * guest memory (core/gmem.c), on the real pools and stage-2 walker on the
 * fake arch. The interrupt lines are a fake vm_set_irq_level that keeps
 * each INTID's level; Quire's log is captured from the console (both in
 * virtio_helpers.c, with the machine, the VM, the registers and the rings
 * as a driver reaches them).
 *
 * Covered: empty slots, identification, feature negotiation, queue set-up
 * and its checks, a whole request and its interrupt, notifies that must
 * not reach the device, DEVICE_NEEDS_RESET and the reset that clears it,
 * the configuration space, and virtio_reset_all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <quire/errno.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include "virtio_helpers.h"

#define SLOT 2 /* the fake device's slot in most tests */
#define NQUEUES 3
#define FAKE_FEATURES (1UL << 0 | 1UL << 5 | 1UL << 33)

/* The driver's view of the rings of the full-flow tests (the usual ones, 8 entries); buffers from page 8. */
static struct virtq ring;

/* ---- the fake device ---------------------------------------------------------- */

struct fake {
	struct virtio_dev dev; /* first: the ops get &dev */
	unsigned notifies[VIRTIO_QUEUES_MAX];
	unsigned chains, resets, config_writes;
	u32 cfg_off, cfg_size, cfg_val;
	int notify_rc; /* non-zero: notify returns it at once (the disk is busy) */
};

static struct fake fa, fb;

static bool locked(const struct virtio_dev *d)
{
	return atomic_load(&d->lock.next) != atomic_load(&d->lock.owner);
}

static void fake_config_write(struct virtio_dev *d, u32 off, unsigned size, u32 val)
{
	struct fake *f = (struct fake *)d;

	assert_true(locked(d));
	f->config_writes++;
	f->cfg_off = off;
	f->cfg_size = size;
	f->cfg_val = val;
}

/* Take every available chain: write a tag into its writable part, give it back; a lie breaks the device. */
static int fake_notify(struct virtio_dev *d, unsigned q, unsigned cpu)
{
	struct fake *f = (struct fake *)d;
	struct virtq_chain c;
	const char *why = NULL;
	unsigned n = 0;
	int rc;

	assert_true(locked(d)); /* held across notify */
	assert_true(q < NQUEUES);
	assert_true(d->q[q].ready);
	f->notifies[q]++;
	if (f->notify_rc)
		return f->notify_rc;
	while ((rc = virtq_pop(d->vm, &d->q[q], &c, &why, cpu)) == 1) {
		u32 tag = 0x600d0000u | q, len = 0;

		if (c.in_len >= 4) {
			assert_int_equal(virtq_write(d->vm, &c, 0, &tag, 4, cpu), 0);
			len = 4;
		}
		if ((rc = virtq_push(d->vm, &d->q[q], c.head, len, cpu)))
			return rc;
		n++;
		f->chains++;
	}
	if (rc == -EPROTO) {
		virtio_broken(d, why);
		return 0;
	}
	if (n)
		virtio_used(d, q, cpu);
	return rc;
}

static void fake_reset(struct virtio_dev *d)
{
	assert_true(locked(d));
	((struct fake *)d)->resets++;
}

static const struct virtio_ops fake_ops = {
	.name = "fake",
	.device_id = 5,
	.features = FAKE_FEATURES,
	.nqueues = NQUEUES,
	.config_size = 8,
	.config_write = fake_config_write,
	.notify = fake_notify,
	.reset = fake_reset,
};

/* ---- the machine, the VM ------------------------------------------------------ */

static void setup(void)
{
	setup_machine(512);
	setup_vm(&vm, 1, 200, SHARE_OFF);
	dev_slot = SLOT;
	memset(&fa, 0, sizeof(fa));
	memset(&fb, 0, sizeof(fb));
	fa.dev.ops = fb.dev.ops = &fake_ops;
	log_capture();
}

/* Attach fa in SLOT: its registers answer from then on, as new. */
static void attach(void)
{
	virtio_attach(&vm, SLOT, &fa.dev);
	assert_int_equal(fa.resets, 1);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
}

/* ---- register access, guest memory: virtio_helpers.c -------------------------------- */

/* A live device: negotiated, queue q of num entries on the rings above, DRIVER_OK. */
static void bring_up(unsigned q, u16 num)
{
	queue_init(&ring, num);
	assert_int_equal(negotiate(V1 | 1UL << 5), ACK | DRV | FOK);
	set_queue(q, num, Q_DESC, Q_AVAIL, Q_USED);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	assert_true(virtio_live(&fa.dev));
}

/* ---- 1. a slot without a device ---------------------------------------------------- */

static void empty_slot_answers_no_device(void **state)
{
	static const unsigned slots[] = { 0, 1, 31 };
	u64 v;

	(void)state;
	setup();
	attach(); /* in SLOT: its neighbours stay empty */
	for (unsigned k = 0; k < ARRAY_SIZE(slots); k++) {
		unsigned s = slots[k];

		assert_int_equal(rd_at(s, R_MAGIC), MAGIC);
		assert_int_equal(rd_at(s, R_VERSION), 2);
		assert_int_equal(rd_at(s, R_DEVICE_ID), 0);
		assert_int_equal(rd_at(s, R_VENDOR_ID), VENDOR);
		assert_int_equal(rd_at(s, R_STATUS), 0);
		assert_int_equal(rd_at(s, R_QUEUE_NUM_MAX), 0);
		assert_int_equal(rd_at(s, R_DEV_FEATURES), 0);
		assert_int_equal(rd_at(s, R_CONFIG), 0);
		/* Only aligned 32-bit accesses, even in the configuration space. */
		assert_int_equal(acc(s, R_MAGIC, 1, false, &v), -EINVAL);
		assert_int_equal(acc(s, R_MAGIC, 2, false, &v), -EINVAL);
		assert_int_equal(acc(s, R_MAGIC, 8, false, &v), -EINVAL);
		assert_int_equal(acc(s, R_MAGIC + 2, 4, false, &v), -EINVAL);
		assert_int_equal(acc(s, R_CONFIG + 1, 1, false, &v), -EINVAL);
		v = 0;
		assert_int_equal(acc(s, R_STATUS, 2, true, &v), -EINVAL);
		/* Writes go nowhere. */
		wr_at(s, R_STATUS, ACK | DRV);
		wr_at(s, R_QUEUE_NOTIFY, 0);
		wr_at(s, R_MAGIC, 0);
		assert_int_equal(rd_at(s, R_STATUS), 0);
		assert_int_equal(rd_at(s, R_MAGIC), MAGIC);
		assert_int_equal(irq_level[INTID(s)], -1);
	}
	/* Past the last slot: nothing there either. */
	assert_int_equal(virtio_mmio_access(&vm, VIRTIO_MMIO_SIZE + R_DEVICE_ID, 4, false, &v, 0), 0);
	assert_int_equal(v, 0);
	assert_int_equal(virtio_mmio_access(&vm, ((u64)1 << 41) + SLOT * VIRTIO_MMIO_SLOT + R_DEVICE_ID, 4, false, &v,
					    0), 0);
	assert_int_equal(v, 0);
	/* The device next door saw none of it. */
	assert_int_equal(fa.dev.status, 0);
	assert_int_equal(fa.notifies[0], 0);
	assert_int_equal(fa.resets, 1);
}

/* ---- 2. identification and offered features ------------------------------------------- */

static void attached_device_identifies(void **state)
{
	u64 v;

	(void)state;
	setup();
	attach();
	assert_ptr_equal(vm.virtio[SLOT], &fa.dev);
	assert_int_equal(fa.dev.slot, SLOT);
	assert_int_equal(rd(R_MAGIC), MAGIC);
	assert_int_equal(rd(R_VERSION), 2);
	assert_int_equal(rd(R_DEVICE_ID), 5);
	assert_int_equal(rd(R_VENDOR_ID), VENDOR);
	/* Offered features and VERSION_1, 32 bits at a time. */
	assert_int_equal(rd(R_DEV_FEATURES), (u32)FAKE_FEATURES);
	wr(R_DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(R_DEV_FEATURES), (u32)((FAKE_FEATURES | V1) >> 32));
	assert_int_equal(rd(R_DEV_FEATURES), 0x3); /* bits 32 and 33 */
	wr(R_DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(R_DEV_FEATURES), 0x21);
	wr(R_DEV_FEATURES_SEL, 2);
	assert_int_equal(rd(R_DEV_FEATURES), 0);
	wr(R_DEV_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd(R_DEV_FEATURES), 0);
	/* No shared memory regions; a fresh device has no status and no interrupt. */
	assert_int_equal(rd(R_SHM_LEN_LO), 0xffffffff);
	assert_int_equal(rd(R_STATUS), 0);
	assert_int_equal(rd(R_INT_STATUS), 0);
	/* The transport's registers are 32 bits, aligned. */
	assert_int_equal(acc(SLOT, R_MAGIC, 1, false, &v), -EINVAL);
	assert_int_equal(acc(SLOT, R_MAGIC, 2, false, &v), -EINVAL);
	assert_int_equal(acc(SLOT, R_MAGIC, 8, false, &v), -EINVAL);
	assert_int_equal(acc(SLOT, R_STATUS + 1, 4, false, &v), -EINVAL);
	v = ACK;
	assert_int_equal(acc(SLOT, R_STATUS, 1, true, &v), -EINVAL);
	assert_int_equal(acc(SLOT, R_STATUS + 2, 4, true, &v), -EINVAL);
	assert_int_equal(rd(R_STATUS), 0);
}

/* ---- 3. feature negotiation ------------------------------------------------------------- */

static void features_negotiated(void **state)
{
	(void)state;
	setup();
	attach();
	/* Offered ones with VERSION_1: accepted, every one of them or a few. */
	assert_int_equal(negotiate(FAKE_FEATURES | V1), ACK | DRV | FOK);
	assert_int_equal(fa.dev.driver_features, FAKE_FEATURES | V1);
	assert_int_equal(negotiate(V1 | 1UL << 33), ACK | DRV | FOK);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	/* One not offered, low or high; VERSION_1 missing: FEATURES_OK reads back clear. */
	assert_int_equal(negotiate(V1 | 1UL << 1), ACK | DRV);
	assert_int_equal(negotiate(V1 | 1UL << 63), ACK | DRV);
	assert_int_equal(negotiate(FAKE_FEATURES), ACK | DRV);
	assert_int_equal(negotiate(0), ACK | DRV);
	assert_false(virtio_live(&fa.dev));
	/* Refused, the driver may try again with fewer. */
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1); /* VERSION_1 */
	wr(R_STATUS, ACK | DRV | FOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);
	/* Bits past 63 do not exist: a selector of 2 writes nothing. */
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	wr(R_STATUS, 0);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1);
	wr(R_DRV_FEATURES_SEL, 2);
	wr(R_DRV_FEATURES, 0xffffffff);
	assert_int_equal(fa.dev.driver_features, V1);
	wr(R_STATUS, ACK | DRV | FOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);

	/* After FEATURES_OK the features are fixed. */
	assert_int_equal(negotiate(V1 | 1UL << 5), ACK | DRV | FOK);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, 0xffffffff);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 0);
	assert_int_equal(fa.dev.driver_features, V1 | 1UL << 5);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	assert_true(virtio_live(&fa.dev));
	wr(R_DRV_FEATURES, 0xffffffff);
	assert_int_equal(fa.dev.driver_features, V1 | 1UL << 5);
	assert_int_equal(rd(R_INT_STATUS), 0);

	/* DRIVER_OK without FEATURES_OK: the device needs a reset, not live, no interrupt (no DRIVER_OK yet). */
	assert_int_equal(negotiate(V1 | 1UL << 1), ACK | DRV);
	wr(R_STATUS, ACK | DRV | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | NEEDS_RESET);
	assert_false(virtio_live(&fa.dev));
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(log_count("DRIVER_OK without FEATURES_OK"), 1);
	/* And all at once, features refused on the way. */
	assert_int_equal(negotiate(V1 | 1UL << 1), ACK | DRV);
	wr(R_STATUS, 0);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | NEEDS_RESET);
	assert_false(virtio_live(&fa.dev));
}

/* ---- 4. queue set-up ------------------------------------------------------------------- */

static void queues_set_up(void **state)
{
	struct virtq before;

	(void)state;
	setup();
	attach();
	queue_init(&ring, 8);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	for (u32 q = 0; q < NQUEUES; q++) {
		wr(R_QUEUE_SEL, q);
		assert_int_equal(rd(R_QUEUE_NUM_MAX), VIRTQ_NUM_MAX);
		assert_int_equal(rd(R_QUEUE_READY), 0);
	}
	static const u32 none[] = { NQUEUES, VIRTIO_QUEUES_MAX - 1, VIRTIO_QUEUES_MAX, 1000, 0xffffffff };
	for (unsigned k = 0; k < ARRAY_SIZE(none); k++) {
		wr(R_QUEUE_SEL, none[k]);
		assert_int_equal(rd(R_QUEUE_NUM_MAX), 0);
		/* Nothing to set up there, and nothing changes anywhere. */
		set_queue(none[k], 8, Q_DESC, Q_AVAIL, Q_USED);
		wr(R_QUEUE_READY, 1);
		assert_int_equal(rd(R_QUEUE_READY), 0);
	}
	for (unsigned q = 0; q < VIRTIO_QUEUES_MAX; q++) {
		assert_int_equal(fa.dev.q[q].num, 0);
		assert_int_equal(fa.dev.q[q].desc, 0);
		assert_false(fa.dev.q[q].ready);
	}
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);

	/* Queue 1, each address in two halves. */
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_NUM, 16);
	wr(R_QUEUE_DESC_LO, 0x40001000);
	wr(R_QUEUE_DESC_HI, 0x12);
	assert_int_equal(fa.dev.q[1].desc, 0x1240001000ULL);
	wr(R_QUEUE_DESC_LO, (u32)Q_DESC);
	assert_int_equal(fa.dev.q[1].desc, 0x1200000000ULL | Q_DESC);
	wr(R_QUEUE_DESC_HI, 0);
	wr64(R_QUEUE_DRIVER_LO, 0xabcd00000000ULL | Q_AVAIL);
	assert_int_equal(fa.dev.q[1].avail, 0xabcd00000000ULL | Q_AVAIL);
	wr(R_QUEUE_DRIVER_HI, 0);
	wr64(R_QUEUE_DEVICE_LO, Q_USED);
	assert_int_equal(fa.dev.q[1].num, 16);
	assert_int_equal(fa.dev.q[1].desc, Q_DESC);
	assert_int_equal(fa.dev.q[1].avail, Q_AVAIL);
	assert_int_equal(fa.dev.q[1].used, Q_USED);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	assert_int_equal(rd(R_STATUS) & NEEDS_RESET, 0);
	/* Only queue 1. */
	wr(R_QUEUE_SEL, 0);
	assert_int_equal(rd(R_QUEUE_READY), 0);
	wr(R_QUEUE_SEL, 1);

	/* Ready: its size and areas stay as they were. */
	before = fa.dev.q[1];
	wr(R_QUEUE_NUM, 4);
	wr64(R_QUEUE_DESC_LO, PG(100));
	wr64(R_QUEUE_DRIVER_LO, 0x9000);
	wr64(R_QUEUE_DEVICE_LO, 0xffffffff00000000ULL);
	wr(R_QUEUE_READY, 1);
	assert_memory_equal(&fa.dev.q[1], &before, sizeof(before));
	assert_int_equal(rd(R_QUEUE_READY), 1);
	/* Not ready again: they may change. */
	wr(R_QUEUE_READY, 0);
	assert_int_equal(rd(R_QUEUE_READY), 0);
	wr(R_QUEUE_NUM, 4);
	assert_int_equal(fa.dev.q[1].num, 4);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	/* Every good size, the descriptor table ending at RAM's last byte, the other areas in the pages below. */
	for (u32 n = 1; n <= VIRTQ_NUM_MAX; n *= 2) {
		set_queue(2, n, RAM_END - 16 * n, RAM_END - PAGE_SIZE - (6 + 2 * n),
			  ALIGN_DOWN(RAM_END - 2 * PAGE_SIZE - (6 + 8 * n), 4));
		wr(R_QUEUE_READY, 1);
		assert_int_equal(rd(R_QUEUE_READY), 1);
		wr(R_QUEUE_READY, 0);
	}
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);
	assert_false(fa.dev.broken_logged);
	assert_int_equal(loglen, 0);
}

/*
 * QueueReady with a bad size or areas: DEVICE_NEEDS_RESET, the queue stays
 * not ready; once the driver has DRIVER_OK, a configuration interrupt.
 * Logged once per device life, however often the driver does it.
 */
static void bad_queue_needs_reset(void **state)
{
	static const struct {
		u32 num;
		u64 d, a, u;
	} bad[] = {
		{ 0, Q_DESC, Q_AVAIL, Q_USED },
		{ 3, Q_DESC, Q_AVAIL, Q_USED },
		{ 12, Q_DESC, Q_AVAIL, Q_USED },
		{ 512, Q_DESC, Q_AVAIL, Q_USED },
		{ 0x10008, Q_DESC, Q_AVAIL, Q_USED }, /* no such size: not 8 */
		{ 8, Q_DESC + 8, Q_AVAIL, Q_USED },
		{ 8, Q_DESC, Q_AVAIL + 1, Q_USED },
		{ 8, Q_DESC, Q_AVAIL, Q_USED + 2 },
		{ 8, 0x1000, Q_AVAIL, Q_USED },
		{ 8, RAM_END - 16 * 8 + 16, Q_AVAIL, Q_USED },
		{ 8, Q_DESC, RAM_END - (6 + 2 * 8) + 2, Q_USED },
		{ 8, Q_DESC, Q_AVAIL, RAM_END - 68 },
		{ 8, 0x09000000, Q_AVAIL, Q_USED },
		{ 8, Q_DESC, Q_AVAIL, 0xfffffffffffffffcULL },
		{ 8, RAM + ((u64)1 << 32), Q_AVAIL, Q_USED }, /* through the high half */
	};
	unsigned n = 0;

	(void)state;
	setup();
	attach();
	queue_init(&ring, 8);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		for (int dok = 0; dok < 2; dok++, n++) {
			u32 status = ACK | DRV | FOK | (dok ? DOK : 0);

			wr(R_STATUS, 0);
			assert_int_equal(irq_level[INTID(SLOT)], 0);
			assert_int_equal(negotiate(V1), ACK | DRV | FOK);
			wr(R_STATUS, status);
			set_queue(0, bad[k].num, bad[k].d, bad[k].a, bad[k].u);
			wr(R_QUEUE_READY, 1);
			if (rd(R_QUEUE_READY) || !(rd(R_STATUS) & NEEDS_RESET))
				fail_msg("bad queue %u accepted", k);
			assert_int_equal(rd(R_STATUS), status | NEEDS_RESET);
			assert_false(virtio_live(&fa.dev));
			assert_int_equal(rd(R_INT_STATUS), dok ? VIRTIO_INT_CONFIG : 0);
			assert_int_equal(irq_level[INTID(SLOT)], dok);
			/* Again: still not ready, nothing more raised; and a notify does not reach the device. */
			wr(R_QUEUE_READY, 1);
			assert_int_equal(rd(R_QUEUE_READY), 0);
			wr(R_QUEUE_NOTIFY, 0);
			assert_int_equal(fa.notifies[0], 0);
			assert_int_equal(irq_rises[INTID(SLOT)], (n + 1) / 2);
		}
	}
	assert_int_equal(log_count("needs a reset"), 1);
	assert_int_equal(log_count("virtio-fake in slot 2"), 1);
	assert_true(fa.dev.broken_logged);
	/* The same queue, put right: ready, and the device is fine after a reset. */
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	set_queue(0, 8, Q_DESC, Q_AVAIL, Q_USED);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);
	/* A new life of the device (attached again) logs again, once. */
	virtio_attach(&vm, SLOT, &fa.dev);
	assert_false(fa.dev.broken_logged);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	set_queue(0, 7, Q_DESC, Q_AVAIL, Q_USED);
	wr(R_QUEUE_READY, 1);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(log_count("needs a reset"), 2);
}

/* ---- 5. a request, through the registers only ---------------------------------------- */

static void full_flow_with_interrupts(void **state)
{
	static u8 out[16];
	u64 v = 0;

	(void)state;
	setup();
	attach();
	bring_up(0, 8);
	for (unsigned k = 0; k < sizeof(out); k++)
		out[k] = (u8)(k + 1);
	put(BUF(0), out, sizeof(out));
	put_desc(&ring, 0, BUF(0), sizeof(out), VIRTQ_DESC_F_NEXT, 1);
	put_desc(&ring, 1, BUF(1), 64, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 0);
	assert_int_equal(get16(Q_USED + 2), 0);
	assert_int_equal(rd(R_INT_STATUS), 0);

	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	assert_int_equal(fa.chains, 1);
	assert_int_equal(get16(Q_USED + 2), 1);
	assert_int_equal(get32(Q_USED + 4), 0); /* id: the head */
	assert_int_equal(get32(Q_USED + 8), 4); /* len: the tag */
	assert_int_equal(get32(BUF(1)), 0x600d0000);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	/* Acknowledging a bit not set changes nothing; the right one lowers the line. */
	wr(R_INT_ACK, VIRTIO_INT_CONFIG);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	wr(R_INT_ACK, VIRTIO_INT_VRING);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);

	/* A notify with nothing new: nothing used, no interrupt. */
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 2);
	assert_int_equal(get16(Q_USED + 2), 1);
	assert_int_equal(rd(R_INT_STATUS), 0);

	/* The driver asks for no interrupts: used, but the line stays low. */
	put16(Q_AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	offer(&ring, 0);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(get16(Q_USED + 2), 2);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	/* And wants them again: two chains, one interrupt. */
	put16(Q_AVAIL, 0);
	offer(&ring, 0);
	put_desc(&ring, 3, BUF(2), 8, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 3);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(get16(Q_USED + 2), 4);
	assert_int_equal(get32(Q_USED + 4 + 8 * 3), 3);
	assert_int_equal(fa.chains, 4);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_rises[INTID(SLOT)], 2);
	wr(R_INT_ACK, 0xffffffff);
	assert_int_equal(irq_level[INTID(SLOT)], 0);

	/* The device must wait (guest memory on its way from swap): the store is retried, nothing lost. */
	offer(&ring, 0);
	fa.notify_rc = -EAGAIN;
	v = 0;
	assert_int_equal(acc(SLOT, R_QUEUE_NOTIFY, 4, true, &v), -EAGAIN);
	fa.notify_rc = -EBUSY;
	assert_int_equal(acc(SLOT, R_QUEUE_NOTIFY, 4, true, &v), -EBUSY);
	assert_int_equal(get16(Q_USED + 2), 4);
	fa.notify_rc = 0;
	assert_int_equal(acc(SLOT, R_QUEUE_NOTIFY, 4, true, &v), 0);
	assert_int_equal(get16(Q_USED + 2), 5);
	assert_int_equal(fa.notifies[0], 7);
	assert_int_equal(fa.notifies[1] + fa.notifies[2], 0);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
}

/* ---- 6. notifies that must not reach the device ---------------------------------------- */

static void notify_only_a_ready_queue_of_a_running_device(void **state)
{
	static const u32 none[] = { NQUEUES, VIRTIO_QUEUES_MAX - 1, VIRTIO_QUEUES_MAX, 0x10000, 0xffffffff };

	(void)state;
	setup();
	attach();
	queue_init(&ring, 8);
	put_desc(&ring, 0, BUF(0), 64, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 0);
	/* Features not agreed yet: a ready queue is not taken. */
	wr(R_STATUS, ACK | DRV);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1);
	set_queue(0, 8, Q_DESC, Q_AVAIL, Q_USED);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 0);
	assert_int_equal(get16(Q_USED + 2), 0);
	/* Features refused: still not. */
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, 1u << 2);
	wr(R_STATUS, ACK | DRV | FOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 0);
	/* Queues past the device's, and a queue not ready, never. */
	wr(R_DRV_FEATURES, 0);
	wr(R_STATUS, ACK | DRV | FOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK);
	for (unsigned k = 0; k < ARRAY_SIZE(none); k++)
		wr(R_QUEUE_NOTIFY, none[k]);
	wr(R_QUEUE_NOTIFY, 1);
	wr(R_QUEUE_NOTIFY, 2);
	for (unsigned q = 0; q < VIRTIO_QUEUES_MAX; q++)
		assert_int_equal(fa.notifies[q], 0);
	/*
	 * FEATURES_OK but not DRIVER_OK yet: taken, on purpose (Linux's balloon
	 * kicks its stats queue before DRIVER_OK, and QEMU takes it).
	 */
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	assert_int_equal(get16(Q_USED + 2), 1);
	/* Not ready again: no. */
	wr(R_QUEUE_READY, 0);
	offer(&ring, 0);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	/* A device that needs a reset: no. */
	wr(R_QUEUE_READY, 1);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_NUM, 5);
	wr(R_QUEUE_READY, 1);
	assert_true(rd(R_STATUS) & NEEDS_RESET);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	assert_int_equal(get16(Q_USED + 2), 1);
	assert_int_equal(fa.notifies[1] + fa.notifies[2], 0);
}

/* ---- 7. a hostile ring; the reset that mends it --------------------------------------- */

static void hostile_ring_then_reset(void **state)
{
	(void)state;
	setup();
	attach();
	bring_up(0, 8);
	/* 2 -> 5 -> 2 */
	put_desc(&ring, 2, BUF(0), 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(&ring, 5, BUF(1), 16, VIRTQ_DESC_F_NEXT, 2);
	offer(&ring, 2);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	assert_int_equal(fa.chains, 0);
	assert_int_equal(get16(Q_USED + 2), 0);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
	assert_false(virtio_live(&fa.dev));
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(log_count("loops"), 1);
	/* Later notifies are ignored, however many. */
	for (int k = 0; k < 10; k++)
		wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 1);
	assert_int_equal(log_count("needs a reset"), 1);

	/* Reset: as new, the line low, the device told. */
	wr(R_QUEUE_SEL, 2);
	wr(R_STATUS, 0);
	assert_int_equal(fa.resets, 3); /* attach, bring_up's negotiate, this */
	assert_int_equal(rd(R_STATUS), 0);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(fa.dev.queue_sel, 0);
	assert_int_equal(fa.dev.driver_features, 0);
	for (unsigned q = 0; q < VIRTIO_QUEUES_MAX; q++) {
		assert_false(fa.dev.q[q].ready);
		assert_int_equal(fa.dev.q[q].num, 0);
		assert_int_equal(fa.dev.q[q].last_avail, 0);
		assert_int_equal(fa.dev.q[q].used_idx, 0);
	}
	for (u32 q = 0; q < NQUEUES; q++) {
		wr(R_QUEUE_SEL, q);
		assert_int_equal(rd(R_QUEUE_READY), 0);
	}
	/* A fresh negotiation, an honest ring: it works again. */
	bring_up(0, 8);
	put_desc(&ring, 0, BUF(0), 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(&ring, 1, BUF(1), 16, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 0);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.notifies[0], 2);
	assert_int_equal(fa.chains, 1);
	assert_int_equal(get16(Q_USED + 2), 1);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_VRING);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	/* A reset with the line high lowers it. */
	wr(R_STATUS, 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(fa.resets, 5);
}

/* ---- 8. the configuration space --------------------------------------------------------- */

static u64 cfg_rd(u32 off, unsigned size)
{
	u64 v = 0xdeadbeefdeadbeefULL;

	assert_int_equal(acc(SLOT, R_CONFIG + off, size, false, &v), 0);
	return v;
}

static void config_space(void **state)
{
	static const u8 cfg[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
	static const struct {
		u32 off;
		unsigned size;
	} bad[] = {
		{ 8, 1 }, { 63, 1 }, { 0xff, 1 }, { 1, 2 }, { 3, 2 }, { 8, 2 }, { 2, 4 }, { 6, 4 }, { 8, 4 },
		{ 0xfc, 4 }, { 0, 8 }, { 0, 3 }, { 0, 0 }, { 0, 16 },
	};
	struct virtio_ops plain = fake_ops;
	u32 gen;
	u64 v;

	(void)state;
	setup();
	attach();
	memcpy(fa.dev.config, cfg, sizeof(cfg));
	fa.dev.config[8] = 0x99; /* past config_size: never shown */
	for (u32 k = 0; k < 8; k++)
		assert_int_equal(cfg_rd(k, 1), cfg[k]);
	for (u32 k = 0; k < 8; k += 2)
		assert_int_equal(cfg_rd(k, 2), cfg[k] | cfg[k + 1] << 8);
	assert_int_equal(cfg_rd(0, 4), 0x44332211);
	assert_int_equal(cfg_rd(4, 4), 0x88776655);
	for (unsigned k = 0; k < ARRAY_SIZE(bad); k++) {
		v = 0x12345678;
		if (acc(SLOT, R_CONFIG + bad[k].off, bad[k].size, false, &v) != -EINVAL)
			fail_msg("config read of %u bytes at %u allowed", bad[k].size, bad[k].off);
		if (acc(SLOT, R_CONFIG + bad[k].off, bad[k].size, true, &v) != -EINVAL)
			fail_msg("config write of %u bytes at %u allowed", bad[k].size, bad[k].off);
	}
	assert_int_equal(fa.config_writes, 0);

	/* Writes reach the device, which decides: the space itself is the device's. */
	v = 0xab;
	assert_int_equal(acc(SLOT, R_CONFIG + 3, 1, true, &v), 0);
	assert_int_equal(fa.config_writes, 1);
	assert_int_equal(fa.cfg_off, 3);
	assert_int_equal(fa.cfg_size, 1);
	assert_int_equal(fa.cfg_val, 0xab);
	v = 0xffffffff00001234ULL;
	assert_int_equal(acc(SLOT, R_CONFIG + 6, 2, true, &v), 0);
	assert_int_equal(fa.cfg_off, 6);
	assert_int_equal(fa.cfg_size, 2);
	v = 0x87654321;
	assert_int_equal(acc(SLOT, R_CONFIG + 4, 4, true, &v), 0);
	assert_int_equal(fa.config_writes, 3);
	assert_int_equal(fa.cfg_off, 4);
	assert_int_equal(fa.cfg_size, 4);
	assert_int_equal(fa.cfg_val, 0x87654321);
	assert_memory_equal(fa.dev.config, cfg, sizeof(cfg));

	/* A device that takes no writes: they are accepted and dropped. */
	plain.config_write = NULL;
	plain.reset = NULL;
	fb.dev.ops = &plain;
	virtio_attach(&vm, 4, &fb.dev);
	v = 0xab;
	assert_int_equal(acc(4, R_CONFIG, 1, true, &v), 0);
	assert_int_equal(fa.config_writes, 3);
	wr_at(4, R_STATUS, ACK);
	wr_at(4, R_STATUS, 0);
	assert_int_equal(rd_at(4, R_STATUS), 0);

	/* A change: a new generation; an interrupt only once the driver has DRIVER_OK. */
	gen = rd(R_CONFIG_GEN);
	spin_lock(&fa.dev.lock);
	virtio_config_changed(&fa.dev);
	spin_unlock(&fa.dev.lock);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 1);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	spin_lock(&fa.dev.lock);
	virtio_config_changed(&fa.dev);
	spin_unlock(&fa.dev.lock);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 2);
	assert_int_equal(rd(R_INT_STATUS), 0);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	spin_lock(&fa.dev.lock);
	virtio_config_changed(&fa.dev);
	spin_unlock(&fa.dev.lock);
	assert_int_equal(rd(R_CONFIG_GEN), gen + 3);
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	wr(R_INT_ACK, VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 0);
	/* The other slot's line never moved. */
	assert_int_equal(irq_level[INTID(4)], 0);
	assert_int_equal(irq_rises[INTID(4)], 0);
}

/* ---- 8b. A driver never clears a status bit but by a reset (2.1.1) -------------------------- */

static void clearing_status_bits_needs_reset(void **state)
{
	(void)state;
	setup();
	attach();
	/* FEATURES_OK dropped after negotiation: it would reopen the features. */
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	wr(R_STATUS, ACK | DRV);
	assert_true(rd(R_STATUS) & NEEDS_RESET);
	assert_int_equal(rd(R_STATUS) & (ACK | DRV | FOK), ACK | DRV | FOK); /* the write was not taken */
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 0);
	/* A reset, then DRIVER_OK dropped from a running device. */
	bring_up(0, 8);
	assert_true(virtio_live(&fa.dev));
	wr(R_STATUS, ACK | DRV | FOK);
	assert_false(virtio_live(&fa.dev));
	assert_true(rd(R_STATUS) & NEEDS_RESET);
	assert_int_equal(rd(R_INT_STATUS) & VIRTIO_INT_CONFIG, VIRTIO_INT_CONFIG);
	/* Adding bits is the driver's way; a reset brings it back. */
	wr(R_STATUS, 0);
	assert_int_equal(rd(R_STATUS), 0);
	bring_up(0, 8);
	assert_true(virtio_live(&fa.dev));
}

/* ---- 9. NEEDS_RESET is the device's ------------------------------------------------------ */

static void status_cannot_touch_needs_reset(void **state)
{
	(void)state;
	setup();
	attach();
	/* A healthy device: the driver cannot set it. */
	wr(R_STATUS, ACK | NEEDS_RESET);
	assert_int_equal(rd(R_STATUS), ACK);
	wr(R_STATUS, ACK | DRV | NEEDS_RESET);
	assert_int_equal(rd(R_STATUS), ACK | DRV);
	bring_up(0, 8);
	wr(R_STATUS, ACK | DRV | FOK | DOK | NEEDS_RESET);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK);
	assert_true(virtio_live(&fa.dev));
	assert_int_equal(rd(R_INT_STATUS), 0);

	/* Broken before DRIVER_OK (a bad queue): no interrupt yet; the driver cannot clear it. */
	assert_int_equal(negotiate(V1), ACK | DRV | FOK);
	set_queue(1, 3, Q_DESC, Q_AVAIL, Q_USED);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | NEEDS_RESET);
	assert_int_equal(rd(R_INT_STATUS), 0);
	wr(R_STATUS, ACK | DRV | FOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | NEEDS_RESET);
	/* DRIVER_OK on a device that needs a reset: it says so then, with a configuration interrupt (2.1.2). */
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
	assert_false(virtio_live(&fa.dev));
	assert_int_equal(rd(R_INT_STATUS), VIRTIO_INT_CONFIG);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	/* Once: DRIVER_OK written again raises nothing new. */
	wr(R_INT_ACK, VIRTIO_INT_CONFIG);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_INT_STATUS), 0);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	wr(R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(rd(R_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
	/* Only a reset clears it. */
	wr(R_STATUS, 0);
	assert_int_equal(rd(R_STATUS), 0);
	wr(R_STATUS, ACK);
	assert_int_equal(rd(R_STATUS), ACK);
}

/* ---- 10. the VM restarts ----------------------------------------------------------------- */

static void reset_all_resets_every_device(void **state)
{
	(void)state;
	setup();
	attach();
	virtio_attach(&vm, 7, &fb.dev);
	assert_int_equal(fb.resets, 1);
	/* fa live with its line high; fb half set up and broken. */
	bring_up(0, 8);
	put_desc(&ring, 0, BUF(0), 16, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 0);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(irq_level[INTID(SLOT)], 1);
	wr_at(7, R_STATUS, ACK | DRV);
	wr_at(7, R_QUEUE_SEL, 2);
	wr_at(7, R_QUEUE_NUM, 8);
	wr_at(7, R_QUEUE_DESC_LO, (u32)PG(20));
	wr_at(7, R_QUEUE_DRIVER_LO, (u32)PG(21));
	wr_at(7, R_QUEUE_DEVICE_LO, (u32)PG(22));
	wr_at(7, R_QUEUE_READY, 1);
	assert_int_equal(rd_at(7, R_QUEUE_READY), 1);
	wr_at(7, R_STATUS, ACK | DRV | DOK);
	assert_true(rd_at(7, R_STATUS) & NEEDS_RESET);
	assert_true(fb.dev.broken_logged);

	virtio_reset_all(&vm);
	assert_int_equal(fa.resets, 3);
	assert_int_equal(fb.resets, 2);
	for (unsigned k = 0; k < 2; k++) {
		unsigned s = k ? 7 : SLOT;
		struct fake *f = k ? &fb : &fa;

		assert_int_equal(rd_at(s, R_STATUS), 0);
		assert_int_equal(rd_at(s, R_INT_STATUS), 0);
		assert_int_equal(irq_level[INTID(s)], 0);
		for (unsigned q = 0; q < VIRTIO_QUEUES_MAX; q++)
			assert_false(f->dev.q[q].ready);
		assert_int_equal(f->dev.driver_features, 0);
	}
	/* Per device life, not per reset: fb's rule was logged and stays so. */
	assert_true(fb.dev.broken_logged);
	/* Slots without a device: nothing happened to their lines. */
	for (unsigned s = 0; s < VIRTIO_MMIO_SLOTS; s++)
		if (s != SLOT && s != 7)
			assert_int_equal(irq_level[INTID(s)], -1);
	/* Both work again. */
	bring_up(0, 8);
	put_desc(&ring, 0, BUF(0), 16, VIRTQ_DESC_F_WRITE, 0);
	offer(&ring, 0);
	wr(R_QUEUE_NOTIFY, 0);
	assert_int_equal(fa.chains, 2);
	assert_int_equal(get16(Q_USED + 2), 1);
	wr_at(7, R_STATUS, ACK | DRV);
	assert_int_equal(rd_at(7, R_STATUS), ACK | DRV);
	/* A VM without devices: nothing to do. */
	vm.virtio[SLOT] = vm.virtio[7] = NULL;
	virtio_reset_all(&vm);
	assert_int_equal(fa.resets, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(empty_slot_answers_no_device, teardown),
		cmocka_unit_test_teardown(attached_device_identifies, teardown),
		cmocka_unit_test_teardown(features_negotiated, teardown),
		cmocka_unit_test_teardown(queues_set_up, teardown),
		cmocka_unit_test_teardown(bad_queue_needs_reset, teardown),
		cmocka_unit_test_teardown(full_flow_with_interrupts, teardown),
		cmocka_unit_test_teardown(notify_only_a_ready_queue_of_a_running_device, teardown),
		cmocka_unit_test_teardown(hostile_ring_then_reset, teardown),
		cmocka_unit_test_teardown(config_space, teardown),
		cmocka_unit_test_teardown(clearing_status_bits_needs_reset, teardown),
		cmocka_unit_test_teardown(status_cannot_touch_needs_reset, teardown),
		cmocka_unit_test_teardown(reset_all_resets_every_device, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
