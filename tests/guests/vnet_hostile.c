/*
 * ---- memtest modes 30 and 31: a bare-metal driver of the network device
 * in virtio-mmio slot 2 (the VM's config says net = "on"; core/vnet.c),
 * two VMs on Quire's switch (core/vswitch.c):
 *
 *   30 virtio-net-hostile (vm1, address MAC1): an honest driver first, then
 *      the lies, one case each, each line
 *      `memtest: virtio-net-hostile case NAME: ok|FAIL got=WHAT`:
 *      - frames of bad sizes (over 1518 bytes, under 14, under the 12-byte
 *        header, a descriptor of 0 bytes): dropped, the buffer given back,
 *        no reset, the peer never sees them;
 *      - wild descriptors on either queue (outside RAM, wrapping, next past
 *        the table, a loop, indirect), avail->idx too far ahead:
 *        DEVICE_NEEDS_RESET with the configuration change bit (vdrv_refused);
 *      - a receive buffer too small for the frame: the frame dropped, the
 *        buffer back with used length 0, no reset;
 *      - no receive buffers while the peer sends 200 frames: Quire keeps a
 *        share of them and drops the rest (rx_drops, checked from the
 *        monitor by test_vnet_hostile.py), and frames flow once buffers come;
 *      - a source address that is the peer's, or multicast: not delivered;
 *      - a storm of 10000 broadcasts: storm control drops most (flood_drops),
 *        the peer still answers;
 *      - a reset while frames wait for it in the switch: they go with it,
 *        nothing lands in guest memory after the reset, and the device
 *        works once set up again;
 *      - the switch's address table filled with made-up sources: the peer's
 *        frames to it must still go as unicast (checked from the monitor).
 *      After each case a ping of the peer (after a reset where the device
 *      wanted one) must come back, and the peer must have seen no frame it
 *      should not have. Then `memtest: virtio-net-hostile ok cases=N`.
 *
 *   31 net-echo (vm2, address MAC2): the honest peer. It answers PING with
 *      PONG (carrying its counters), sends DATA frames on SEND (after a
 *      wait, some at once, some spaced), counts
 *      STORM broadcasts, counts as bad every frame that is malformed, not
 *      from MAC1 or marked BAD, and stops at END.
 *
 * Frames between them: Ethertype 0x88b5, then magic, op, seq and six
 * 32-bit fields, little-endian, at least 60 bytes. The guests run with the
 * MMU off (Device memory): frames are read and written a byte at a time.
 * ----
 */
#include <stddef.h>
#include "vdrv.h"

typedef unsigned char u8;
typedef unsigned short u16;

#define MODE "virtio-net-hostile"
#define ECHO "net-echo"
#define NET_DEVICE_ID 1
#define F_MAC (1u << 5)
#define F_STATUS (1u << 16)
#define HDR 12		/* struct virtio_net_hdr with num_buffers */
#define FRAME_MIN 14
#define FRAME_MAX 1518
#define QN 256		/* both queues' size */
#define NRX 128		/* receive buffers posted, descriptors 0..NRX-1 */
#define RXBUF 4096	/* bytes each: a frame past FRAME_MAX that got through would show */
#define SMALL_ID 200	/* the descriptor of the too-small receive buffer */
#define CTL_ID 255	/* the transmit descriptor of control frames (PING, SEND, END) */
#define ETHERTYPE 0x88b5
#define MAGIC 0x514e4554u /* "QNET" */
#define SHARE 32	/* VSW_QUEUE_PER_SOURCE: frames of one sender waiting for a port */

enum { OP_PING = 1, OP_PONG, OP_SEND, OP_DATA, OP_BAD, OP_STORM, OP_END };
/* A frame's fields: byte offsets in the frame (after the virtio-net header). */
enum { O_TYPE = 12, O_MAGIC = 14, O_OP = 18, O_SEQ = 22, O_F = 26 };
#define CTL_LEN 60

static const u8 mac1[6] = { 2, 0, 0, 0, 0, 1 }, mac2[6] = { 2, 0, 0, 0, 0, 2 };
static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const u8 mcast[6] = { 3, 0, 0, 0, 0, 1 };

static struct vdrv net = { .mode = MODE, .regs = VIRTIO_SLOT(2) };

/* A queue as the driver set it up: desc at base, avail at +0x1000, used at +0x2000. */
struct ring {
	u64 base;
	unsigned q;
	u16 avail_idx, last_used;
};
static struct ring rxq = { .q = 0 }, txq = { .q = 1 };

static u64 rxbufs, txbuf, ctlbuf, stormbuf, smallbuf, tick_ms;
static const char *me = MODE;

enum how { R_DONE, R_RESET, R_TIMEOUT };
static const char *const how_name[] = { "DONE", "NEEDS_RESET", "timeout" };

/* ---- bytes, rings, the device ---- */

static u8 gb(u64 a)
{
	return *(volatile u8 *)a;
}

static void sb(u64 a, u8 v)
{
	*(volatile u8 *)a = v;
}

static u32 g32(u64 a)
{
	return gb(a) | (u32)gb(a + 1) << 8 | (u32)gb(a + 2) << 16 | (u32)gb(a + 3) << 24;
}

static void s32(u64 a, u32 v)
{
	for (unsigned i = 0; i < 4; i++)
		sb(a + i, (u8)(v >> (8 * i)));
}

static bool mac_is(u64 a, const u8 *m)
{
	for (unsigned i = 0; i < 6; i++)
		if (gb(a + i) != m[i])
			return false;
	return true;
}

static void bzero_dev(u64 a, u64 len)
{
	for (u64 i = 0; i < len; i += 8)
		WR(a + i, 0);
}

static void delay_ms(u64 ms)
{
	for (u64 end = counter() + ms * tick_ms; counter() < end;)
		;
}

static u32 status_reg(void)
{
	return R32(net.regs + VR_STATUS);
}

static volatile u16 *avail_of(struct ring *r)
{
	return (volatile u16 *)(r->base + 0x1000);
}

static u16 used_idx(struct ring *r)
{
	return ((volatile u16 *)(r->base + 0x2000))[1];
}

static void used_elem(struct ring *r, u16 i, u32 *id, u32 *len)
{
	u64 e = r->base + 0x2004 + 8 * (u64)(i % QN);

	*id = R32(e);
	*len = R32(e + 4);
}

static void desc(struct ring *r, unsigned i, u64 addr, u32 len, u16 flags, u16 next)
{
	volatile struct vq_desc *d = (volatile struct vq_desc *)r->base + i;

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Make chain head available (avail->idx moved on by bump); notify the queue if asked. */
static void offer(struct ring *r, u16 head, u16 bump, bool notify)
{
	volatile u16 *avail = avail_of(r);

	avail[2 + r->avail_idx % QN] = head;
	asm volatile("dmb ishst" ::: "memory");
	r->avail_idx = (u16)(r->avail_idx + bump);
	avail[1] = r->avail_idx;
	asm volatile("dsb ish" ::: "memory");
	if (notify)
		R32(net.regs + VR_QUEUE_NOTIFY) = r->q;
}

static u64 rxbuf(unsigned id)
{
	return rxbufs + (u64)id * RXBUF;
}

static void wr64(u64 reg, u64 val)
{
	R32(net.regs + reg) = (u32)val;
	R32(net.regs + reg + 4) = (u32)(val >> 32);
}

/*
 * Reset, negotiate (VERSION_1, MAC, STATUS), both queues of QN entries,
 * DRIVER_OK, then the first npost receive buffers made available and the
 * receive queue notified (with none, the port still goes up: frames for
 * it wait in the switch). false (and a FAIL line) if the device said no.
 */
static bool setup(unsigned npost)
{
	u64 b = net.regs;
	u32 st;

	R32(b + VR_STATUS) = 0;
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER;
	R32(b + VR_DRV_FEATURES_SEL) = 1;
	R32(b + VR_DRV_FEATURES) = 1; /* VIRTIO_F_VERSION_1 */
	R32(b + VR_DRV_FEATURES_SEL) = 0;
	R32(b + VR_DRV_FEATURES) = F_MAC | F_STATUS;
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER | VS_FEATURES_OK;
	for (unsigned k = 0; k < 2; k++) {
		struct ring *r = k ? &txq : &rxq;

		bzero_dev(r->base, 3 * PAGE_SIZE);
		r->avail_idx = r->last_used = 0;
		R32(b + VR_QUEUE_SEL) = r->q;
		R32(b + VR_QUEUE_NUM) = QN;
		wr64(VR_QUEUE_DESC, r->base);
		wr64(VR_QUEUE_DRIVER, r->base + 0x1000);
		wr64(VR_QUEUE_DEVICE, r->base + 0x2000);
		R32(b + VR_QUEUE_READY) = 1;
	}
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK;
	st = status_reg();
	if (st != (VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK)) {
		pr("memtest: %s FAIL an honest setup left status 0x%x\n", me, st);
		return false;
	}
	for (unsigned i = 0; i < NRX; i++)
		desc(&rxq, i, rxbuf(i), RXBUF, VQD_WRITE, 0);
	for (unsigned i = 0; i < npost; i++)
		offer(&rxq, (u16)i, 1, false);
	R32(b + VR_QUEUE_NOTIFY) = 0;
	return true;
}

/* Header and frame into buf: to dst from src, our Ethertype, op and seq, fields f[0..5], zeros to len. */
static void build(u64 buf, const u8 *dst, const u8 *src, u32 op, u32 seq, const u32 *f, unsigned len)
{
	u64 fr = buf + HDR;

	for (unsigned i = 0; i < HDR; i++)
		sb(buf + i, 0);
	for (unsigned i = 0; i < len && i < O_F + 24; i++)
		sb(fr + i, 0);
	for (unsigned i = 0; i < 6 && i < len; i++) {
		sb(fr + i, dst[i]);
		if (6 + i < len)
			sb(fr + 6 + i, src[i]);
	}
	if (len >= O_F + 24) {
		sb(fr + O_TYPE, ETHERTYPE >> 8);
		sb(fr + O_TYPE + 1, ETHERTYPE & 0xff);
		s32(fr + O_MAGIC, MAGIC);
		s32(fr + O_OP, op);
		s32(fr + O_SEQ, seq);
		for (unsigned i = 0; i < 6; i++)
			s32(fr + O_F + 4 * i, f ? f[i] : 0);
	}
}

/* ---- transmitting ---- */

static u32 tx_id, tx_len; /* the last used entry of the transmit queue */

/* Wait for the transmit queue's used->idx to reach want, or the device to want a reset. */
static enum how tx_wait(u16 want, u64 ms)
{
	u64 end = counter() + ms * tick_ms;

	for (u64 k = 0;; k++) {
		if (used_idx(&txq) == want) {
			dmb();
			used_elem(&txq, (u16)(want - 1), &tx_id, &tx_len);
			txq.last_used = want;
			return R_DONE;
		}
		if (!(k & 63) && (status_reg() & VS_NEEDS_RESET))
			return R_RESET;
		if (counter() > end)
			return R_TIMEOUT;
	}
}

/* Offer one transmit chain from head and wait for it. */
static enum how tx_one(u16 head)
{
	offer(&txq, head, 1, true);
	return tx_wait(txq.avail_idx, 2000);
}

/* A control frame (60 bytes) to dst. */
static enum how send_ctl(const u8 *dst, const u8 *src, u32 op, u32 seq, const u32 *f)
{
	build(ctlbuf, dst, src, op, seq, f, CTL_LEN);
	desc(&txq, CTL_ID, ctlbuf, HDR + CTL_LEN, 0, 0);
	return tx_one(CTL_ID);
}

/* ---- receiving ---- */

static void (*on_frame)(u64 fr, u32 len); /* the mode's: each frame received, len bytes at fr */
static u64 rx_got, rx_empty, rx_odd;	  /* frames received; used entries of 0 bytes; entries that made no sense */
static u32 small_len = ~0u;		  /* the used length of the too-small buffer, once back */

/* Take every used receive buffer: hand its frame on, give the buffer back. */
static void rx_poll(void)
{
	bool posted = false;

	while (used_idx(&rxq) != rxq.last_used) {
		u32 id, len;

		dmb();
		used_elem(&rxq, rxq.last_used, &id, &len);
		rxq.last_used++;
		if (id == SMALL_ID) {
			small_len = len;
			continue;
		}
		if (id >= NRX || len > RXBUF) {
			if (!rx_odd++)
				pr("memtest: %s FAIL a used receive entry id %u len %u\n", me, id, len);
			continue;
		}
		if (len == 0) {
			rx_empty++;
		} else if (len < HDR || gb(rxbuf(id) + 10) != 1 || gb(rxbuf(id)) != 0) {
			if (!rx_odd++)
				pr("memtest: %s FAIL a received buffer of %u bytes, header flags 0x%x num_buffers %u\n",
				   me, len, gb(rxbuf(id)), gb(rxbuf(id) + 10));
		} else {
			rx_got++;
			on_frame(rxbuf(id) + HDR, len - HDR);
		}
		offer(&rxq, (u16)id, 1, false);
		posted = true;
	}
	if (posted)
		R32(net.regs + VR_QUEUE_NOTIFY) = 0;
}

/* One of ours: our Ethertype and magic, at least 60 bytes. */
static bool ours(u64 fr, u32 len)
{
	return len >= CTL_LEN && gb(fr + O_TYPE) == ETHERTYPE >> 8 && gb(fr + O_TYPE + 1) == (ETHERTYPE & 0xff) &&
	       g32(fr + O_MAGIC) == MAGIC;
}

/* ===================== mode 31: net-echo, the honest peer ===================== */

static u32 e_frames, e_bad, e_storm, e_sent, e_pings;
static bool e_end, e_failed;

static void echo_send(const u8 *to, u32 op, u32 seq)
{
	u32 f[6] = { e_bad, e_frames, e_storm, e_sent, e_pings, 0 };
	enum how h = send_ctl(to, mac2, op, seq, f);

	if (h != R_DONE && !e_failed) {
		e_failed = true;
		pr("memtest: " ECHO " FAIL a frame to the peer: %s (status 0x%x)\n", how_name[h], status_reg());
	}
}

/* SEND: after wait_ms, now DATA frames to the sender at once, then more spaced by gap_ms. */
static void echo_stream(const u8 *to, u32 now, u32 more, u32 gap_ms, u32 wait_ms)
{
	u32 seq = 0;

	delay_ms(wait_ms);
	for (; seq < now; seq++, e_sent++)
		echo_send(to, OP_DATA, seq);
	for (; seq < now + more; seq++, e_sent++) {
		delay_ms(gap_ms);
		echo_send(to, OP_DATA, seq);
	}
}

static void echo_frame(u64 fr, u32 len)
{
	u32 op;

	e_frames++;
	if (len < FRAME_MIN || len > FRAME_MAX || !mac_is(fr + 6, mac1) || !ours(fr, len)) {
		if (!e_bad++)
			pr("memtest: " ECHO " a frame it must not see: %u bytes from %x:%x:%x:%x:%x:%x\n", len,
			   gb(fr + 6), gb(fr + 7), gb(fr + 8), gb(fr + 9), gb(fr + 10), gb(fr + 11));
		return;
	}
	op = g32(fr + O_OP);
	if (op == OP_STORM && mac_is(fr, bcast)) {
		e_storm++;
		return;
	}
	if (!mac_is(fr, mac2)) {
		e_bad++; /* nothing else of ours goes anywhere but to us */
		return;
	}
	switch (op) {
	case OP_PING:
		e_pings++;
		echo_send(mac1, OP_PONG, g32(fr + O_SEQ));
		break;
	case OP_SEND:
		echo_stream(mac1, g32(fr + O_F), g32(fr + O_F + 4), g32(fr + O_F + 8), g32(fr + O_F + 12));
		break;
	case OP_END:
		echo_send(mac1, OP_PONG, g32(fr + O_SEQ));
		e_end = true;
		break;
	default:
		e_bad++; /* OP_BAD: a frame Quire should have dropped */
		break;
	}
}

void mode_net_echo(u64 free, u64 ram_end)
{
	u64 end;

	me = ECHO;
	rxq.base = free + 16 * PAGE_SIZE;
	txq.base = free + 20 * PAGE_SIZE;
	ctlbuf = free + 24 * PAGE_SIZE;
	rxbufs = free + 32 * PAGE_SIZE;
	tick_ms = counter_freq() / 1000;
	on_frame = echo_frame;
	if (rxbufs + NRX * RXBUF > ram_end) {
		pr("memtest: " ECHO " FAIL needs RAM up to 0x%lx, has 0x%lx\n", rxbufs + NRX * RXBUF, ram_end);
		return;
	}
	if (R32(net.regs + VR_DEVICE_ID) != NET_DEVICE_ID) {
		pr("memtest: " ECHO " FAIL slot 2 is device %u, not a network (net = \"on\"?)\n",
		   R32(net.regs + VR_DEVICE_ID));
		return;
	}
	if (!setup(NRX))
		return;
	if (!mac_is(net.regs + VR_CONFIG, mac2)) {
		pr("memtest: " ECHO " FAIL its address is not 02:00:00:00:00:02\n");
		return;
	}
	pr("memtest: " ECHO " ready\n");
	end = counter() + 600 * 1000 * tick_ms;
	while (!e_end && !e_failed) {
		rx_poll();
		if (status_reg() & VS_NEEDS_RESET) {
			pr("memtest: " ECHO " FAIL its device wants a reset (status 0x%x)\n", status_reg());
			return;
		}
		if (counter() > end) {
			pr("memtest: " ECHO " FAIL no END from the peer in 600 s\n");
			return;
		}
	}
	if (e_failed || rx_odd)
		return;
	pr("memtest: " ECHO " ok frames=%u bad=%u storm=%u sent=%u pings=%u rx_frames=%lu\n", e_frames, e_bad,
	   e_storm, e_sent, e_pings, rx_got);
}

/* ===================== mode 30: virtio-net-hostile ===================== */

static u64 cases, failed, tx_dropped; /* frames Quire must count as tx_drops (not storm control's) */
static u32 ping_seq;
static bool pong_seen;
static u32 pong_want, pong_f[6];
static u32 data_got, data_min_seq = ~0u; /* DATA frames from the peer since the last data_reset */

static void data_reset(void)
{
	data_got = 0;
	data_min_seq = ~0u;
}

static void hostile_frame(u64 fr, u32 len)
{
	u32 op;

	if (!ours(fr, len) || !mac_is(fr, mac1) || !mac_is(fr + 6, mac2)) {
		if (!rx_odd++)
			pr("memtest: " MODE " FAIL a frame of %u bytes not from the peer to us\n", len);
		return;
	}
	op = g32(fr + O_OP);
	if (op == OP_PONG && g32(fr + O_SEQ) == pong_want) {
		pong_seen = true;
		for (unsigned i = 0; i < 6; i++)
			pong_f[i] = g32(fr + O_F + 4 * i);
	} else if (op == OP_DATA) {
		u32 seq = g32(fr + O_SEQ);

		data_got++;
		if (seq < data_min_seq)
			data_min_seq = seq;
	}
}

/*
 * Ping the peer until a PONG comes back (tries of 1 s each), taking
 * whatever else arrives. true with its counters in pong_f; false with a
 * FAIL line (the device wants a reset, or no answer).
 */
static bool ping_op(const char *name, u32 op, unsigned tries)
{
	for (unsigned t = 0; t < tries; t++) {
		enum how h;

		pong_want = ++ping_seq;
		pong_seen = false;
		if ((h = send_ctl(mac2, mac1, op, ping_seq, NULL)) != R_DONE) {
			pr("memtest: " MODE " FAIL %s: a ping was not sent: %s (status 0x%x)\n", name, how_name[h],
			   status_reg());
			return false;
		}
		for (u64 end = counter() + 1000 * tick_ms; counter() < end;) {
			rx_poll();
			if (pong_seen)
				return true;
			if (status_reg() & VS_NEEDS_RESET) {
				pr("memtest: " MODE " FAIL %s: the device wants a reset (status 0x%x) while pinging\n",
				   name, status_reg());
				return false;
			}
		}
	}
	pr("memtest: " MODE " FAIL %s: no answer from the peer to %u pings\n", name, tries);
	return false;
}

/* After a case: an honest frame to the peer and its answer back; the peer saw nothing it must not. */
static bool path_ok(const char *name)
{
	if (!ping_op(name, OP_PING, 10))
		return false;
	if (pong_f[0]) {
		pr("memtest: " MODE " FAIL %s: the peer saw %u frames it must not have\n", name, pong_f[0]);
		return false;
	}
	return true;
}

static void verdict(const char *name, bool ok, const char *got)
{
	cases++;
	failed += !ok;
	pr("memtest: " MODE " case %s: %s got=%s\n", name, ok ? "ok" : "FAIL", got);
}

/* A case whose frame must be taken (its buffer back, used length 0) and dropped, with no reset. */
static void dropped(const char *name, enum how h, u16 head)
{
	bool ok = h == R_DONE && tx_id == head && tx_len == 0 && !(status_reg() & VS_NEEDS_RESET);

	if (!ok)
		pr("memtest: " MODE " FAIL %s: %s, used id %u len %u, status 0x%x; want it back and no reset\n", name,
		   how_name[h], tx_id, tx_len, status_reg());
	ok = path_ok(name) && ok;
	verdict(name, ok, h == R_DONE ? "DROPPED" : how_name[h]);
}

/* A case the device must refuse: NEEDS_RESET, the config change bit, a reset; then it works again. */
static void refused(const char *name, enum how h)
{
	bool ok = h == R_RESET || (status_reg() & VS_NEEDS_RESET);

	if (!ok)
		pr("memtest: " MODE " FAIL %s: %s (status 0x%x), want NEEDS_RESET\n", name, how_name[h], status_reg());
	ok = vdrv_refused(&net, name) && ok;
	ok = setup(NRX) && path_ok(name) && ok;
	verdict(name, ok, ok ? "NEEDS_RESET" : how_name[h]);
}

/* A transmit frame of total bytes (header included) from descriptor 0, in nseg pieces; offered and waited for. */
static enum how tx_sized(u64 total, unsigned nseg)
{
	u64 piece = total / nseg;

	build(txbuf, mac2, mac1, OP_BAD, 0, NULL, total > HDR ? (unsigned)(total - HDR) : 0);
	for (unsigned k = 0; k < nseg; k++) {
		u64 len = k == nseg - 1 ? total - piece * k : piece;

		desc(&txq, k, txbuf + piece * k, (u32)len, k == nseg - 1 ? 0 : VQD_NEXT, (u16)(k + 1));
	}
	tx_dropped++;
	return tx_one(0);
}

/* ---- the cases ---- */

static bool honest(void)
{
	u32 f0, f1, link;

	if (R32(net.regs + VR_DEVICE_ID) != NET_DEVICE_ID) {
		pr("memtest: " MODE " FAIL slot 2 is device %u, not a network (net = \"on\"?)\n",
		   R32(net.regs + VR_DEVICE_ID));
		return false;
	}
	R32(net.regs + VR_STATUS) = 0;
	R32(net.regs + VR_DEV_FEATURES_SEL) = 0;
	f0 = R32(net.regs + VR_DEV_FEATURES);
	R32(net.regs + VR_DEV_FEATURES_SEL) = 1;
	f1 = R32(net.regs + VR_DEV_FEATURES);
	R32(net.regs + VR_QUEUE_SEL) = 1;
	if (!(f1 & 1) || (f0 & (F_MAC | F_STATUS)) != (F_MAC | F_STATUS) || R32(net.regs + VR_QUEUE_NUM_MAX) < QN) {
		pr("memtest: " MODE " FAIL features 0x%x 0x%x QueueNumMax %u: want VERSION_1, MAC, STATUS, %u\n", f1, f0,
		   R32(net.regs + VR_QUEUE_NUM_MAX), QN);
		return false;
	}
	if (!setup(NRX))
		return false;
	link = *(volatile u16 *)(net.regs + VR_CONFIG + 6);
	if (!mac_is(net.regs + VR_CONFIG, mac1) || link != 1) {
		pr("memtest: " MODE " FAIL config: address %x:%x:%x:%x:%x:%x status %u, want 02:00:00:00:00:01 and "
		   "link up\n", gb(net.regs + VR_CONFIG), gb(net.regs + VR_CONFIG + 1), gb(net.regs + VR_CONFIG + 2),
		   gb(net.regs + VR_CONFIG + 3), gb(net.regs + VR_CONFIG + 4), gb(net.regs + VR_CONFIG + 5), link);
		return false;
	}
	/* The peer may still be booting: a minute of pings. */
	if (!ping_op("honest", OP_PING, 60))
		return false;
	pr("memtest: " MODE " honest ok mac=02:00:00:00:00:01 link=%u peer_pings=%u\n", link, pong_f[4]);
	verdict("honest", path_ok("honest"), "PONG");
	return true;
}

static void sizes(void)
{
	dropped("tx-1519", tx_sized(HDR + 1519, 1), 0);
	dropped("tx-9000", tx_sized(HDR + 9000, 3), 0);
	dropped("tx-65535", tx_sized(HDR + 65535, 1), 0);
	dropped("tx-header-only", tx_sized(HDR, 1), 0);
	dropped("tx-short-header", tx_sized(8, 1), 0);
	dropped("tx-13", tx_sized(13, 1), 0);
	dropped("tx-frame-13", tx_sized(HDR + 13, 2), 0);
	tx_dropped++;
	desc(&txq, 0, txbuf, 0, 0, 0);
	dropped("tx-zero-len-desc", tx_one(0), 0);
}

#define D(a, l, f, n) ((struct vq_desc){ (a), (l), (f), (n) })

/* The wild chains: on transmit (readable) or receive (writable). */
static unsigned wild(unsigned kind, bool rx, struct vq_desc *d, const char **name)
{
	u16 w = rx ? VQD_WRITE : 0;
	u64 buf = rx ? rxbuf(0) : txbuf;

	if (!rx)
		build(txbuf, mac2, mac1, OP_BAD, 0, NULL, CTL_LEN);
	switch (kind) {
	case 0:
		*name = rx ? "rx-desc-outside-ram" : "tx-desc-outside-ram";
		d[0] = D(0x1000, HDR + CTL_LEN, w, 0);
		return 1;
	case 1:
		*name = rx ? "rx-desc-wraps" : "tx-desc-wraps";
		d[0] = D(~0UL - 0xfff, 0x2000, w, 0);
		return 1;
	case 2:
		*name = rx ? "rx-desc-next-past-table" : "tx-desc-next-past-table";
		d[0] = D(buf, HDR, VQD_NEXT | w, QN + 44);
		return 1;
	case 3:
		*name = rx ? "rx-desc-loop" : "tx-desc-loop";
		d[0] = D(buf, HDR, VQD_NEXT | w, 1);
		d[1] = D(buf + HDR, CTL_LEN, VQD_NEXT | w, 0);
		return 2;
	default:
		*name = rx ? "rx-desc-indirect" : "tx-desc-indirect";
		d[0] = D(buf, 32, VQD_INDIRECT | w, 0);
		return 1;
	}
}

/* Wait up to ms for the device to want a reset. */
static enum how wait_reset(u64 ms)
{
	for (u64 end = counter() + ms * tick_ms; counter() < end;)
		if (status_reg() & VS_NEEDS_RESET)
			return R_RESET;
	return R_TIMEOUT;
}

/*
 * A lie on the receive queue is seen when a frame comes for it: the only
 * buffer available is the lie, and a ping brings the peer's answer. No
 * used entry may come back for it.
 */
static enum how rx_lie(void)
{
	enum how h = R_TIMEOUT;

	for (unsigned t = 0; t < 3 && h != R_RESET; t++) {
		if (send_ctl(mac2, mac1, OP_PING, ++ping_seq, NULL) != R_DONE)
			break;
		h = wait_reset(2000);
	}
	if (used_idx(&rxq) != 0) {
		pr("memtest: " MODE " FAIL a lie on the receive queue came back used\n");
		return R_DONE;
	}
	return h;
}

static void broken(void)
{
	struct vq_desc d[2];
	const char *name;

	for (unsigned kind = 0; kind < 5; kind++) {
		unsigned n = wild(kind, false, d, &name);

		for (unsigned i = 0; i < n; i++)
			desc(&txq, i, d[i].addr, d[i].len, d[i].flags, d[i].next);
		offer(&txq, 0, 1, true);
		refused(name, tx_wait(txq.avail_idx, 2000));
	}
	/* More than a queue's worth ahead on the transmit queue. */
	build(txbuf, mac2, mac1, OP_BAD, 0, NULL, CTL_LEN);
	desc(&txq, 0, txbuf, HDR + CTL_LEN, 0, 0);
	offer(&txq, 0, QN + 1, true);
	refused("tx-avail-idx-jump", tx_wait(txq.avail_idx, 2000));

	for (unsigned kind = 0; kind < 5; kind++) {
		unsigned n = wild(kind, true, d, &name);

		if (!setup(0))
			break;
		for (unsigned i = 0; i < n; i++)
			desc(&rxq, i, d[i].addr, d[i].len, d[i].flags, d[i].next);
		offer(&rxq, 0, 1, true);
		refused(name, rx_lie());
	}
	if (setup(0)) {
		desc(&rxq, 0, rxbuf(0), RXBUF, VQD_WRITE, 0);
		offer(&rxq, 0, QN + 1, true);
		refused("rx-avail-idx-jump", rx_lie());
	}
}

/* A receive buffer of 20 bytes for the peer's answer: the frame dropped, the buffer back with 0 bytes. */
static void rx_small(void)
{
	const char *name = "rx-small-buffer";
	u64 got0 = rx_got;
	bool ok = setup(0);
	enum how h = R_TIMEOUT;

	small_len = ~0u;
	desc(&rxq, SMALL_ID, smallbuf, 20, VQD_WRITE, 0);
	for (unsigned i = 0; i < 64; i++)
		sb(smallbuf + i, 0xa5);
	offer(&rxq, SMALL_ID, 1, true);
	for (unsigned t = 0; ok && t < 3 && small_len == ~0u; t++) {
		ok = send_ctl(mac2, mac1, OP_PING, ++ping_seq, NULL) == R_DONE;
		for (u64 end = counter() + 2000 * tick_ms; counter() < end && small_len == ~0u;)
			rx_poll();
	}
	if (small_len == 0)
		h = R_DONE;
	ok = ok && small_len == 0 && rx_got == got0 && !(status_reg() & VS_NEEDS_RESET);
	for (unsigned i = 0; i < 64; i++)
		ok = ok && gb(smallbuf + i) == 0xa5;
	if (!ok)
		pr("memtest: " MODE " FAIL %s: used len 0x%x, frames %lu, status 0x%x, buffer byte 0 0x%x\n", name,
		   small_len, rx_got - got0, status_reg(), gb(smallbuf));
	/* The buffers now: the path works without a reset. */
	for (unsigned i = 0; i < NRX; i++)
		offer(&rxq, (u16)i, 1, false);
	R32(net.regs + VR_QUEUE_NOTIFY) = 0;
	ok = path_ok(name) && ok;
	verdict(name, ok, h == R_DONE ? "EMPTY" : "timeout");
}

/* No receive buffers while the peer sends 200 frames: Quire keeps its share, drops the rest; then they flow. */
static void rx_none(void)
{
	const char *name = "rx-no-buffers";
	u32 f[6] = { 200, 0, 0, 0, 0, 0 };
	bool ok = setup(0);

	data_reset();
	ok = ok && send_ctl(mac2, mac1, OP_SEND, 0, f) == R_DONE;
	delay_ms(2000);
	ok = ok && !(status_reg() & VS_NEEDS_RESET) && used_idx(&rxq) == 0;
	for (unsigned i = 0; i < NRX; i++)
		offer(&rxq, (u16)i, 1, false);
	R32(net.regs + VR_QUEUE_NOTIFY) = 0;
	ok = path_ok(name) && ok;
	pr("memtest: " MODE " %s: %u of the peer's %u frames kept for it\n", name, data_got, pong_f[3]);
	if (data_got == 0 || data_got > SHARE || data_min_seq != 0) {
		pr("memtest: " MODE " FAIL %s: %u frames came (first seq %u), want 1 to %u from the first\n", name,
		   data_got, data_min_seq, SHARE);
		ok = false;
	}
	verdict(name, ok, "KEPT");
}

static void spoof(void)
{
	bool ok;

	/* The peer's address as the source, to the peer and to all. */
	ok = send_ctl(mac2, mac2, OP_BAD, 0, NULL) == R_DONE;
	ok = send_ctl(bcast, mac2, OP_BAD, 0, NULL) == R_DONE && ok;
	tx_dropped += 2;
	ok = ok && !(status_reg() & VS_NEEDS_RESET);
	ok = path_ok("spoof-peer-src") && ok;
	verdict("spoof-peer-src", ok, "DROPPED");
	/* A multicast source, and the broadcast address as the source. */
	ok = send_ctl(mac2, mcast, OP_BAD, 0, NULL) == R_DONE;
	ok = send_ctl(mac2, bcast, OP_BAD, 0, NULL) == R_DONE && ok;
	tx_dropped += 2;
	ok = ok && !(status_reg() & VS_NEEDS_RESET);
	ok = path_ok("spoof-multicast-src") && ok;
	verdict("spoof-multicast-src", ok, "DROPPED");
}

#define STORM 10000
#define STORM_BATCH 128

static void storm(void)
{
	const char *name = "broadcast-storm";
	volatile u16 *avail = avail_of(&txq);
	u64 t0 = counter(), ms;
	bool ok = true;
	u32 seen;

	build(stormbuf, bcast, mac1, OP_STORM, 0, NULL, CTL_LEN);
	for (unsigned i = 0; i < STORM_BATCH; i++)
		desc(&txq, i, stormbuf, HDR + CTL_LEN, 0, 0);
	for (unsigned sent = 0; ok && sent < STORM;) {
		unsigned n = STORM - sent < STORM_BATCH ? STORM - sent : STORM_BATCH;
		enum how h;

		for (unsigned i = 0; i < n; i++)
			avail[2 + (u16)(txq.avail_idx + i) % QN] = (u16)i;
		asm volatile("dmb ishst" ::: "memory");
		txq.avail_idx = (u16)(txq.avail_idx + n);
		avail[1] = txq.avail_idx;
		asm volatile("dsb ish" ::: "memory");
		R32(net.regs + VR_QUEUE_NOTIFY) = 1;
		if ((h = tx_wait(txq.avail_idx, 5000)) != R_DONE) {
			pr("memtest: " MODE " FAIL %s: after %u frames: %s (status 0x%x)\n", name, sent, how_name[h],
			   status_reg());
			ok = false;
		}
		sent += n;
		rx_poll();
	}
	ms = (counter() - t0) / tick_ms;
	ok = path_ok(name) && ok;
	seen = pong_f[2];
	pr("memtest: " MODE " %s: %u broadcasts in %lu ms, the peer saw %u\n", name, STORM, ms, seen);
	if (seen >= STORM / 2) {
		pr("memtest: " MODE " FAIL %s: the peer saw %u of %u: no storm control\n", name, seen, STORM);
		ok = false;
	}
	verdict(name, ok, "LIMITED");
}

/*
 * Frames wait in the switch for it (no receive buffers), then a reset: they
 * go with it, nothing is written into its memory after the reset while the
 * peer keeps sending, and once set up again only frames sent since come.
 */
static void reset_queued(void)
{
	const char *name = "reset-with-queued";
	u32 f[6] = { 20, 60, 25, 0, 0, 0 }; /* 20 now, then 60 every 25 ms */
	bool ok = setup(0), clean = true;

	data_reset();
	ok = ok && send_ctl(mac2, mac1, OP_SEND, 0, f) == R_DONE;
	delay_ms(1000);
	R32(net.regs + VR_STATUS) = 0;
	/* The device's memory as the reset left it: poisoned, and it must stay so. */
	for (u64 a = rxq.base + 0x2000; a < rxq.base + 0x3000; a += 8)
		WR(a, 0x5a5a5a5a5a5a5a5aUL);
	for (unsigned i = 0; i < NRX; i++)
		WR(rxbuf(i), 0x5a5a5a5a5a5a5a5aUL);
	delay_ms(300);
	for (u64 a = rxq.base + 0x2000; a < rxq.base + 0x3000; a += 8)
		clean = clean && RD(a) == 0x5a5a5a5a5a5a5a5aUL;
	for (unsigned i = 0; i < NRX; i++)
		clean = clean && RD(rxbuf(i)) == 0x5a5a5a5a5a5a5a5aUL;
	if (!clean)
		pr("memtest: " MODE " FAIL %s: the device wrote into its memory after the reset\n", name);
	ok = ok && clean && status_reg() == 0 && setup(NRX);
	ok = path_ok(name) && ok; /* the peer answers once its stream is done */
	pr("memtest: " MODE " %s: %u frames after the reset, the first seq %u\n", name, data_got, data_min_seq);
	if (data_got && data_min_seq < f[0]) {
		pr("memtest: " MODE " FAIL %s: frame %u, queued before the reset, came after it\n", name, data_min_seq);
		ok = false;
	}
	verdict(name, ok, "FLUSHED");
}

/*
 * The switch's address table (VSW_MACS entries, the oldest replaced): 64
 * frames from made-up unicast addresses, each to the address before it
 * (learned on this port: delivered nowhere, so the peer sees none of them).
 * Then the peer sends 1000 frames to this VM at once. Its address and the
 * peer's must still be known: the frames go as unicast, not flooded at the
 * peer's cost (storm control's flood_drops of the peer: 0, checked by
 * test_vnet_hostile.py from the monitor).
 */
static void mac_table(void)
{
	const char *name = "mac-table-flood";
	u32 f[6] = { 1000, 0, 0, 300, 0, 0 }; /* 1000 at once, 300 ms from now */
	u8 src[6] = { 2, 0, 0, 0, 0x77, 0 }, dst[6];
	bool ok;

	for (unsigned i = 0; i < 6; i++)
		dst[i] = mac1[i];
	data_reset();
	ok = send_ctl(mac2, mac1, OP_SEND, 0, f) == R_DONE;
	for (unsigned k = 0; ok && k < 64; k++) {
		src[5] = (u8)k;
		ok = send_ctl(dst, src, OP_BAD, 0, NULL) == R_DONE;
		dst[4] = src[4];
		dst[5] = src[5];
	}
	/* Nothing from this VM's own address until the peer is done. */
	for (u64 end = counter() + 3000 * tick_ms; counter() < end;)
		rx_poll();
	ok = ok && !(status_reg() & VS_NEEDS_RESET);
	ok = path_ok(name) && ok;
	pr("memtest: " MODE " %s: %u of the peer's 1000 frames came\n", name, data_got);
	verdict(name, ok, "SENT");
}

void mode_vnet_hostile(u64 free, u64 ram_end)
{
	rxq.base = free + 16 * PAGE_SIZE;
	txq.base = free + 20 * PAGE_SIZE;
	ctlbuf = free + 24 * PAGE_SIZE;
	stormbuf = free + 25 * PAGE_SIZE;
	smallbuf = free + 26 * PAGE_SIZE;
	txbuf = free + 32 * PAGE_SIZE; /* 17 pages: 65535 + 12 bytes */
	rxbufs = free + 64 * PAGE_SIZE;
	tick_ms = counter_freq() / 1000;
	on_frame = hostile_frame;
	if (rxbufs + NRX * RXBUF > ram_end) {
		pr("memtest: " MODE " FAIL needs RAM up to 0x%lx, has 0x%lx\n", rxbufs + NRX * RXBUF, ram_end);
		return;
	}
	if (!honest())
		return;
	sizes();
	broken();
	rx_small();
	rx_none();
	spoof();
	storm();
	reset_queued();
	mac_table();
	/* The peer stops; what it still sends comes in first. */
	if (!ping_op("end", OP_END, 10))
		failed++;
	for (u64 end = counter() + 300 * tick_ms; counter() < end;)
		rx_poll();
	pr("memtest: " MODE " rx_frames=%lu rx_empty=%lu tx_dropped=%lu peer_bad=%u\n", rx_got, rx_empty, tx_dropped,
	   pong_f[0]);
	if (failed || rx_odd)
		pr("memtest: " MODE " FAIL cases=%lu failed=%lu odd=%lu\n", cases, failed, rx_odd);
	else
		pr("memtest: " MODE " ok cases=%lu\n", cases);
}
