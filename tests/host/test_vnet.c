/*
 * The guests' virtio-net devices (core/vnet.c) on the switch between VMs
 * (core/vswitch.c), driven through the virtio-mmio registers alone, as
 * Linux's virtio_net drives them: two or three VMs on the real pools and
 * stage-2 walker (fake arch), each with a receive and a transmit queue in
 * its own guest RAM, frames of a 12-byte header (VIRTIO_F_VERSION_1) and
 * the Ethernet frame. Every frame that arrives is compared byte for byte,
 * with the header the device wrote and the buffer's bytes past it.
 *
 * The machine lives through all the tests: the switch's rings are made
 * once (from its pool) and kept, as in Quire; every test's VMs go, and
 * each test ends with every page of the pool back but the rings'.
 *
 * Covered: configuration space and features; a frame from one VM's
 * transmit queue to another's receive buffer (header, used lengths, both
 * interrupts), chains of several descriptors; frames that wait for
 * receive buffers, and a receiver whose lock the sender could not take;
 * a full ring (drops for that VM only); buffers too small; frames too
 * small or too large (logged once); a driver reset and a VM restart;
 * VNET_TX_BUDGET and vnet_kick; guest buffers and rings on the swap disk.
 *
 * The tests of the bugs they found (fixed since) run after the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <quire/console.h>
#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/pool.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include <quire/vmconfig.h>
#include <quire/vnet.h>
#include <quire/vswitch.h>
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "fake_blk.h"
#include "hostmem.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

/* virtio-net (virtio 1.x, 5.1). */
#define F_CSUM (1UL << 0)
#define F_MAC (1UL << 5)
#define F_MRG_RXBUF (1UL << 15)
#define F_STATUS (1UL << 16)
#define NET_FEATS (V1 | F_MAC | F_STATUS)
#define HDR 12
#define Q_RX 0
#define Q_TX 1

#define SLOT VMCFG_NET_SLOT
#define MACH_PAGES 2048
#define SWAP_PAGES 256
#define QUOTA 400
#define SWAP_LIMIT 512 /* a swapping VM's resident pages */
#define SWAP_QUOTA (SWAP_LIMIT + 64)
#define SWAP_SLOTS 64

/* Each VM's driver: rings in PG(RXR ..) and PG(TXR ..), buffers of BUFSZ bytes from PG(16) and PG(160). */
#define QN 256
#define RXR 0
#define TXR 4
#define BUFSZ 2048
#define RXBUF(i) (PG(16) + (u64)((i) % QN) * BUFSZ)
#define TXBUF(i) (PG(160) + (u64)((i) % QN) * BUFSZ)
#define CANARY 0xcc

struct nic {
	struct vm *v;
	u8 mac[6];
	u16 rx_avail, tx_avail; /* the driver's avail->idx */
	u16 rx_seen, tx_seen;	/* used entries looked at */
};

static struct vm vm2, vm3;
static struct nic n1, n2, n3;
static struct vm *vms[3] = { &vm, &vm2, &vm3 };
static struct nic *nics[3] = { &n1, &n2, &n3 };
static unsigned nvms;
static u32 pool_base; /* the pool's free pages with the switch's rings made and no VM */
static char fake_vcpu; /* vm->vcpu[0]: vcpu_kick only counts (vm_registry.c) */

static void idle_wake(struct vsw_port *p, unsigned cpu)
{
	(void)p;
	(void)cpu;
}

static const struct vsw_port_ops idle_ops = { .wake = idle_wake };

/* ---- the machine, the VMs ------------------------------------------------------------ */

static int group_setup(void **state)
{
	static const u8 m[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	u32 before;

	(void)state;
	setup_machine(MACH_PAGES);
	setup_swap_disk(SWAP_PAGES);
	vsw_init(&pool);
	/* The three VMs' rings (a VM's port is its id - 1), made once: vnet_attach takes the ports over. */
	before = pool_free_pages(&pool);
	for (unsigned i = 0; i < 3; i++)
		assert_non_null(vsw_port_add(i, m, &idle_ops, NULL, 0));
	pool_base = pool_free_pages(&pool);
	assert_int_equal(pool_base, before - 3 * (VSW_QUEUE * 2048 / PAGE_SIZE));
	return 0;
}

static int group_teardown(void **state)
{
	return teardown(state);
}

static void vm_mac(unsigned id, u8 m[6])
{
	static const u8 base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x00 };

	memcpy(m, base, 6);
	m[5] = (u8)(0x50 + id);
}

/* n VMs (ids 1 .. n), each with a network device; swapping ones if swap. */
static void setup_vms(unsigned n, bool swap)
{
	nvms = n;
	for (unsigned i = 0; i < n; i++) {
		struct vm *v = vms[i];
		struct nic *k = nics[i];

		setup_vm(v, (u8)(i + 1), swap ? SWAP_QUOTA : QUOTA, SHARE_OFF);
		if (swap) {
			setup_vm_swap(v, SWAP_LIMIT, SWAP_SLOTS);
			assert_true(v->swap.on);
		}
		v->vcpu[0] = (struct vcpu *)&fake_vcpu;
		memset(k, 0, sizeof(*k));
		k->v = v;
		vm_mac(i + 1, k->mac);
		assert_true(vnet_attach(v, SLOT, k->mac, 0));
		assert_ptr_equal(v->virtio[SLOT]->vm, v);
	}
	for (unsigned k = 0; k < NINTIDS; k++) {
		irq_level[k] = -1;
		irq_rises[k] = 0;
	}
	dev_slot = SLOT;
	log_capture();
}

/* Tear a VM down as vm_reap does: every page it held back in the pool. */
static void destroy_vm(struct vm *v)
{
	pidx_t i;

	share_vm_stop(v);
	s2_destroy(v, swap_page_release, swap_release, NULL, 0);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, 0, i, true);
	assert_int_equal(atomic_load(&v->pool.charged), 0);
	vmpool_fini(&v->pool);
	registry[v->id - 1] = NULL;
	memset(v, 0, sizeof(*v));
}

/* The VMs stop (their devices reset) and go; nothing of theirs left on the swap disk or in the pool. */
static int net_teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < nvms; i++)
		virtio_reset_all(vms[i]);
	vnet_kick(0);
	while (fake_blk_pending())
		fake_blk_complete(~0u, 0);
	for (unsigned i = 0; i < nvms; i++)
		destroy_vm(vms[i]);
	nvms = 0;
	console_set_output(NULL);
	assert_int_equal(pool_free_pages(&pool), pool_base);
	return 0;
}

/* ---- the driver: registers, guest memory -------------------------------------------------- */

static int vacc(struct vm *v, u64 reg, unsigned size, bool write, u64 *val)
{
	return virtio_mmio_access(v, SLOT * VIRTIO_MMIO_SLOT + reg, size, write, val, 0);
}

static u32 vrd(struct vm *v, u64 reg)
{
	u64 val = ~0ULL;

	assert_int_equal(vacc(v, reg, 4, false, &val), 0);
	return (u32)val;
}

static void vwr(struct vm *v, u64 reg, u32 val)
{
	u64 x = val;

	assert_int_equal(vacc(v, reg, 4, true, &x), 0);
}

static void vwr64(struct vm *v, u64 lo, u64 val)
{
	vwr(v, lo, (u32)val);
	vwr(v, lo + 4, (u32)(val >> 32));
}

/* The driver's QueueNotify: virtio_mmio_access's answer (-EAGAIN: the vCPU stores again later). */
static int vnotify(struct nic *n, unsigned q)
{
	u64 val = q;

	return vacc(n->v, R_QUEUE_NOTIFY, 4, true, &val);
}

static void gget(struct vm *v, u64 ipa, void *p, u64 len)
{
	assert_int_equal(gmem_copy(v, ipa, p, len, false, 0), 0);
}

static u16 gget16(struct vm *v, u64 ipa)
{
	u16 x;

	gget(v, ipa, &x, 2);
	return x;
}

static void gput16(struct vm *v, u64 ipa, u16 x)
{
	put_in(v, ipa, &x, 2);
}

/* Reset, features, status read back. */
static u32 vnegotiate(struct vm *v, u64 feats)
{
	vwr(v, R_STATUS, 0);
	vwr(v, R_STATUS, ACK);
	vwr(v, R_STATUS, ACK | DRV);
	vwr(v, R_DRV_FEATURES_SEL, 0);
	vwr(v, R_DRV_FEATURES, (u32)feats);
	vwr(v, R_DRV_FEATURES_SEL, 1);
	vwr(v, R_DRV_FEATURES, (u32)(feats >> 32));
	vwr(v, R_STATUS, ACK | DRV | FOK);
	return vrd(v, R_STATUS);
}

static u64 ring(unsigned q)
{
	return PG(q == Q_RX ? RXR : TXR);
}

/* As Linux's probe: reset, features, both queues (areas zeroed), DRIVER_OK. No buffer given yet. */
static void nic_up(struct nic *n)
{
	static const u8 zero[PAGE_SIZE];
	struct vm *v = n->v;

	assert_int_equal(vnegotiate(v, NET_FEATS), ACK | DRV | FOK);
	for (unsigned q = Q_RX; q <= Q_TX; q++) {
		for (unsigned p = 0; p < 3; p++)
			put_in(v, ring(q) + p * PAGE_SIZE, zero, PAGE_SIZE);
		vwr(v, R_QUEUE_SEL, q);
		assert_int_equal(vrd(v, R_QUEUE_NUM_MAX), VIRTQ_NUM_MAX);
		vwr(v, R_QUEUE_NUM, QN);
		vwr64(v, R_QUEUE_DESC_LO, ring(q));
		vwr64(v, R_QUEUE_DRIVER_LO, ring(q) + PAGE_SIZE);
		vwr64(v, R_QUEUE_DEVICE_LO, ring(q) + 2 * PAGE_SIZE);
		vwr(v, R_QUEUE_READY, 1);
		assert_int_equal(vrd(v, R_QUEUE_READY), 1);
	}
	vwr(v, R_STATUS, ACK | DRV | FOK | DOK);
	assert_int_equal(vrd(v, R_STATUS), ACK | DRV | FOK | DOK);
	n->rx_avail = n->tx_avail = n->rx_seen = n->tx_seen = 0;
}

static void put_desc_in(struct vm *v, unsigned q, u16 i, u64 addr, u32 len, u16 flags, u16 next)
{
	struct {
		u64 addr;
		u32 len;
		u16 flags, next;
	} d = { addr, len, flags, next };

	put_in(v, ring(q) + 16 * (u64)i, &d, sizeof(d));
}

/* Make chain head available on queue q (not notified). */
static void make_avail(struct nic *n, unsigned q, u16 head)
{
	u16 *idx = q == Q_RX ? &n->rx_avail : &n->tx_avail;
	u64 avail = ring(q) + PAGE_SIZE;

	gput16(n->v, avail + 4 + 2 * (*idx % QN), head);
	(*idx)++;
	gput16(n->v, avail + 2, *idx);
}

/* A receive buffer of len bytes (CANARY bytes), one writable descriptor: the next avail entry's. Not notified. */
static void post_rx(struct nic *n, u32 len)
{
	static u8 fill[BUFSZ];
	u16 i = n->rx_avail % QN;

	assert_true(len <= BUFSZ);
	memset(fill, CANARY, sizeof(fill));
	put_in(n->v, RXBUF(i), fill, BUFSZ);
	put_desc_in(n->v, Q_RX, i, RXBUF(i), len, VIRTQ_DESC_F_WRITE, 0);
	make_avail(n, Q_RX, i);
}

static void post_rx_n(struct nic *n, unsigned count)
{
	for (unsigned k = 0; k < count; k++)
		post_rx(n, BUFSZ);
}

/* ---- frames -------------------------------------------------------------------------------- */

static const u8 BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* A frame of len bytes (>= 14): dst, src, ethertype 0x88b5, a pattern of seed. */
static void mk(u8 *f, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (unsigned k = 14; k < len; k++)
		f[k] = (u8)(seed * 13 + k * 7 + (k >> 8) + 3);
}

/* A frame of len bytes (any length) from n to dst made available on its transmit queue: header and frame in one descriptor. */
static void post_tx(struct nic *n, const u8 dst[6], unsigned len, unsigned seed)
{
	static u8 b[BUFSZ];
	u16 i = n->tx_avail % QN;

	assert_true(HDR + len <= BUFSZ);
	memset(b, 0, HDR);
	b[0] = 0xee; /* flags the driver may set: the device has nothing to do with them (no offloads) */
	mk(b + HDR, dst, n->mac, MAX(len, 14u), seed);
	put_in(n->v, TXBUF(i), b, HDR + MAX(len, 14u));
	put_desc_in(n->v, Q_TX, i, TXBUF(i), HDR + len, 0, 0);
	make_avail(n, Q_TX, i);
}

/* The same, notified: the notify must work. */
static void send_frame(struct nic *n, const u8 dst[6], unsigned len, unsigned seed)
{
	post_tx(n, dst, len, seed);
	assert_int_equal(vnotify(n, Q_TX), 0);
}

static u16 used_idx(struct nic *n, unsigned q)
{
	return gget16(n->v, ring(q) + 2 * PAGE_SIZE + 2);
}

static void used_entry(struct nic *n, unsigned q, u16 k, u32 *id, u32 *len)
{
	u32 e[2];

	gget(n->v, ring(q) + 2 * PAGE_SIZE + 4 + 8 * (u64)(k % QN), e, 8);
	*id = e[0];
	*len = e[1];
}

/* Every transmit buffer made available so far came back, each with used len 0, in order. */
static void expect_tx_done(struct nic *n)
{
	assert_int_equal(used_idx(n, Q_TX), n->tx_avail);
	for (; n->tx_seen != n->tx_avail; n->tx_seen++) {
		u32 id, len;

		used_entry(n, Q_TX, n->tx_seen, &id, &len);
		assert_int_equal(id, n->tx_seen % QN);
		assert_int_equal(len, 0);
	}
}

/* The next receive buffer holds the frame dst <- src, len bytes, pattern seed: header, frame, untouched after. */
static void expect_rx_raw(struct nic *n, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed)
{
	static u8 got[BUFSZ], want[BUFSZ];
	u16 k = n->rx_seen++;
	u32 id, l;

	assert_true(used_idx(n, Q_RX) != k); /* it is there */
	used_entry(n, Q_RX, k, &id, &l);
	assert_int_equal(id, k % QN);
	assert_int_equal(l, HDR + len);
	memset(want, 0, HDR);
	want[10] = 1; /* num_buffers, le16 */
	mk(want + HDR, dst, src, len, seed);
	memset(want + HDR + len, CANARY, BUFSZ - HDR - len);
	gget(n->v, RXBUF(k), got, BUFSZ);
	assert_memory_equal(got, want, HDR + len);
	assert_memory_equal(got + HDR + len, want + HDR + len, BUFSZ - HDR - len);
}

static void expect_rx(struct nic *to, const struct nic *from, unsigned len, unsigned seed)
{
	expect_rx_raw(to, to->mac, from->mac, len, seed);
}

/* The next receive buffer came back empty (used len 0), not written. */
static void expect_rx_empty(struct nic *n)
{
	static u8 got[BUFSZ], want[BUFSZ];
	u16 k = n->rx_seen++;
	u32 id, l;

	assert_true(used_idx(n, Q_RX) != k);
	used_entry(n, Q_RX, k, &id, &l);
	assert_int_equal(id, k % QN);
	assert_int_equal(l, 0);
	memset(want, CANARY, BUFSZ);
	gget(n->v, RXBUF(k), got, BUFSZ);
	assert_memory_equal(got, want, BUFSZ);
}

/* Nothing more received. */
static void expect_no_rx(struct nic *n)
{
	assert_int_equal(used_idx(n, Q_RX), n->rx_seen);
}

static struct vsw_stats nstats(struct nic *n, bool *up)
{
	struct vsw_stats st;
	u8 m[6];
	bool u;

	memset(&st, 0xee, sizeof(st));
	assert_true(vnet_info(n->v, &st, m, &u));
	assert_memory_equal(m, n->mac, 6);
	if (up)
		*up = u;
	return st;
}

static bool nup(struct nic *n)
{
	bool up;

	nstats(n, &up);
	return up;
}

static void expect_stats(struct nic *n, u64 txf, u64 txb, u64 rxf, u64 rxb, u64 rxd, u64 txd)
{
	struct vsw_stats st = nstats(n, NULL);

	assert_int_equal(st.tx_frames, txf);
	assert_int_equal(st.tx_bytes, txb);
	assert_int_equal(st.rx_frames, rxf);
	assert_int_equal(st.rx_bytes, rxb);
	assert_int_equal(st.rx_drops, rxd);
	assert_int_equal(st.tx_drops, txd);
	assert_int_equal(st.flood_drops, 0);
}

static u32 isr(struct nic *n)
{
	u32 s = vrd(n->v, R_INT_STATUS);

	vwr(n->v, R_INT_ACK, s);
	return s;
}

/* Receive buffers given (and notified) to each VM in turn, then a broadcast from each: all learned. */
static void learn(unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		post_rx_n(nics[i], count - 1);
		assert_int_equal(vnotify(nics[i], Q_RX), 0);
	}
	for (unsigned i = 0; i < count; i++) {
		send_frame(nics[i], BCAST, 60, 100 + i);
		expect_tx_done(nics[i]);
	}
	for (unsigned i = 0; i < count; i++)
		for (unsigned s = 0; s < count; s++)
			if (s != i)
				expect_rx_raw(nics[i], BCAST, nics[s]->mac, 60, 100 + s);
}

/* ---- 1. configuration and features ---------------------------------------------------------- */

static u64 cfg(struct vm *v, u32 off, unsigned size)
{
	u64 val = ~0ULL;

	assert_int_equal(vacc(v, R_CONFIG + off, size, false, &val), 0);
	return val;
}

static void config_and_features(void **state)
{
	struct vm other = { .id = 3 };
	u64 val = 0x12;
	bool up;

	(void)state;
	setup_vms(2, false);
	assert_int_equal(vrd(&vm, R_MAGIC), MAGIC);
	assert_int_equal(vrd(&vm, R_VERSION), 2);
	assert_int_equal(vrd(&vm, R_DEVICE_ID), 1);
	assert_int_equal(vrd(&vm, R_VENDOR_ID), VENDOR);
	vwr(&vm, R_DEV_FEATURES_SEL, 0);
	assert_int_equal(vrd(&vm, R_DEV_FEATURES), (u32)(F_MAC | F_STATUS));
	vwr(&vm, R_DEV_FEATURES_SEL, 1);
	assert_int_equal(vrd(&vm, R_DEV_FEATURES), (u32)(V1 >> 32));
	/* Each VM's address; the link up; nothing past the status field. */
	for (unsigned k = 0; k < 6; k++) {
		assert_int_equal(cfg(&vm, k, 1), n1.mac[k]);
		assert_int_equal(cfg(&vm2, k, 1), n2.mac[k]);
	}
	assert_int_equal(cfg(&vm, 6, 1), 1);
	assert_int_equal(cfg(&vm, 7, 1), 0);
	assert_int_equal(cfg(&vm, 6, 2), 1); /* VIRTIO_NET_S_LINK_UP */
	assert_int_equal(cfg(&vm, 4, 4), n1.mac[4] | n1.mac[5] << 8 | 1u << 16);
	assert_int_equal(cfg(&vm, 0, 4), n1.mac[0] | n1.mac[1] << 8 | n1.mac[2] << 16 | (u32)n1.mac[3] << 24);
	assert_int_equal(vacc(&vm, R_CONFIG + 8, 1, false, &val), -EINVAL);
	assert_int_equal(vacc(&vm, R_CONFIG + 8, 2, false, &val), -EINVAL);
	/* The driver cannot change the address. */
	assert_int_equal(vacc(&vm, R_CONFIG + 0, 1, true, &val), 0);
	assert_int_equal(cfg(&vm, 0, 1), n1.mac[0]);
	/* Two queues. */
	for (unsigned q = 0; q < 3; q++) {
		vwr(&vm, R_QUEUE_SEL, q);
		assert_int_equal(vrd(&vm, R_QUEUE_NUM_MAX), q < 2 ? VIRTQ_NUM_MAX : 0);
	}
	/* Features: those offered, and no others. */
	assert_int_equal(vnegotiate(&vm, NET_FEATS), ACK | DRV | FOK);
	assert_int_equal(vnegotiate(&vm, V1), ACK | DRV | FOK);
	assert_int_equal(vnegotiate(&vm, NET_FEATS | F_MRG_RXBUF), ACK | DRV);
	assert_int_equal(vnegotiate(&vm, NET_FEATS | F_CSUM), ACK | DRV);
	assert_int_equal(vnegotiate(&vm, F_MAC | F_STATUS), ACK | DRV);
	/* The port: its address, down until the driver gives receive buffers, nothing counted. */
	expect_stats(&n1, 0, 0, 0, 0, 0, 0);
	assert_false(nup(&n1));
	nic_up(&n1);
	assert_false(nup(&n1));
	assert_int_equal(vnotify(&n1, Q_RX), 0);
	assert_true(nup(&n1));
	nstats(&n1, &up);
	assert_true(up);
	/* A VM without a network device. */
	assert_false(vnet_info(&other, &(struct vsw_stats){ 0 }, (u8[6]){ 0 }, &up));
	assert_int_equal(loglen, 0);
}

/* ---- 2. a frame from one VM to another ------------------------------------------------------------ */

static void frame_between_vms(void **state)
{
	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	post_rx_n(&n2, 8);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	post_rx_n(&n1, 2);
	assert_int_equal(vnotify(&n1, Q_RX), 0);
	assert_int_equal(isr(&n2), 0);
	/* vm -> vm2: its transmit buffer back (len 0) and an interrupt; the frame in vm2's buffer, and an interrupt. */
	send_frame(&n1, n2.mac, 60, 1);
	expect_tx_done(&n1);
	assert_int_equal(irq_rises[INTID(SLOT)], 1);
	assert_int_equal(isr(&n1), VIRTIO_INT_VRING);
	expect_rx(&n2, &n1, 60, 1);
	expect_no_rx(&n2);
	assert_int_equal(isr(&n2), VIRTIO_INT_VRING);
	expect_no_rx(&n1); /* never back to its sender */
	/* The smallest and the largest frames. */
	send_frame(&n1, n2.mac, VSW_FRAME_MIN, 2);
	send_frame(&n1, n2.mac, VSW_FRAME_MAX, 3);
	expect_tx_done(&n1);
	expect_rx(&n2, &n1, VSW_FRAME_MIN, 2);
	expect_rx(&n2, &n1, VSW_FRAME_MAX, 3);
	/* A chain of three: the header alone, then the frame in two pieces (descriptors 200 ..). */
	{
		static u8 b[HDR + 300];
		u16 i = n1.tx_avail % QN;

		memset(b, 0, HDR);
		mk(b + HDR, n2.mac, n1.mac, 300, 4);
		put_in(&vm, TXBUF(i), b, HDR);
		put_in(&vm, TXBUF(i + 1), b + HDR, 20);
		put_in(&vm, TXBUF(i + 2), b + HDR + 20, 280);
		put_desc_in(&vm, Q_TX, 200, TXBUF(i), HDR, VIRTQ_DESC_F_NEXT, 201);
		put_desc_in(&vm, Q_TX, 201, TXBUF(i + 1), 20, VIRTQ_DESC_F_NEXT, 202);
		put_desc_in(&vm, Q_TX, 202, TXBUF(i + 2), 280, 0, 0);
		make_avail(&n1, Q_TX, 200);
		assert_int_equal(vnotify(&n1, Q_TX), 0);
		u32 id, len;
		assert_int_equal(used_idx(&n1, Q_TX), n1.tx_avail);
		used_entry(&n1, Q_TX, n1.tx_seen++, &id, &len);
		assert_int_equal(id, 200);
		assert_int_equal(len, 0);
	}
	expect_rx(&n2, &n1, 300, 4);
	expect_no_rx(&n2);
	/* The answer: vm was learned, it goes to vm alone. */
	send_frame(&n2, n1.mac, 100, 5);
	expect_tx_done(&n2);
	expect_rx(&n1, &n2, 100, 5);
	expect_no_rx(&n1);
	expect_stats(&n1, 4, 60 + VSW_FRAME_MIN + VSW_FRAME_MAX + 300, 1, 100, 0, 0);
	expect_stats(&n2, 1, 100, 4, 60 + VSW_FRAME_MIN + VSW_FRAME_MAX + 300, 0, 0);
	assert_int_equal(vrd(&vm2, R_STATUS), ACK | DRV | FOK | DOK);
	assert_int_equal(loglen, 0);
}

/* ---- 3. frames that wait for receive buffers ------------------------------------------------------ */

static void frames_wait_for_buffers(void **state)
{
	unsigned long kicks;

	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	assert_int_equal(vnotify(&n2, Q_RX), 0); /* no buffer yet: its port is up all the same */
	assert_true(nup(&n2));
	for (unsigned k = 0; k < 5; k++)
		post_tx(&n1, n2.mac, 60 + k, k);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	expect_no_rx(&n2);
	vnet_kick(0);
	expect_no_rx(&n2);
	/* Buffers, and the driver's notify: they come, oldest first. */
	post_rx_n(&n2, 3);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	for (unsigned k = 0; k < 3; k++)
		expect_rx(&n2, &n1, 60 + k, k);
	expect_no_rx(&n2);
	post_rx_n(&n2, 3);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	expect_rx(&n2, &n1, 63, 3);
	expect_rx(&n2, &n1, 64, 4);
	expect_no_rx(&n2);
	/* A buffer waits: the next frame goes in at once. */
	send_frame(&n1, n2.mac, 65, 5);
	expect_rx(&n2, &n1, 65, 5);
	/* vm2's device busy on another CPU when the frame comes: its vCPU is kicked, vnet_kick brings it. */
	post_rx_n(&n2, 1);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	kicks = atomic_load(&registry_kicks);
	spin_lock(&vm2.virtio[SLOT]->lock);
	send_frame(&n1, n2.mac, 66, 6);
	spin_unlock(&vm2.virtio[SLOT]->lock);
	assert_int_equal(atomic_load(&registry_kicks), kicks + 1);
	expect_no_rx(&n2);
	vnet_kick(0);
	expect_rx(&n2, &n1, 66, 6);
	expect_no_rx(&n2);
	vnet_kick(0);
	expect_no_rx(&n2);
	expect_tx_done(&n1);
	expect_stats(&n2, 0, 0, 7, 60 + 61 + 62 + 63 + 64 + 65 + 66, 0, 0);
	expect_stats(&n1, 7, 60 + 61 + 62 + 63 + 64 + 65 + 66, 0, 0, 0, 0);
}

/* ---- 4. a full ring ------------------------------------------------------------------------------ */

static void full_ring_drops_for_it_only(void **state)
{
	struct vsw_stats b1, b2, b3, st;

	(void)state;
	setup_vms(3, false);
	nic_up(&n1);
	nic_up(&n2);
	nic_up(&n3);
	learn(3);
	b1 = nstats(&n1, NULL);
	b2 = nstats(&n2, NULL);
	b3 = nstats(&n3, NULL);
	/* vm2 gives no buffers: vm and vm3 send it 40 each; a share each waits, the rest is dropped. */
	for (unsigned k = 0; k < 40; k++) {
		post_tx(&n1, n2.mac, 100 + k, k);
		post_tx(&n3, n2.mac, 200 + k, k);
	}
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	assert_int_equal(vnotify(&n3, Q_TX), 0);
	send_frame(&n1, n2.mac, 99, 99);
	expect_tx_done(&n1);
	expect_tx_done(&n3);
	expect_no_rx(&n2);
	st = nstats(&n2, NULL);
	assert_int_equal(st.rx_drops - b2.rx_drops, 81 - VSW_QUEUE);
	/* The others are not held up: vm -> vm3 goes. */
	post_rx_n(&n3, 1);
	assert_int_equal(vnotify(&n3, Q_RX), 0);
	send_frame(&n1, n3.mac, 77, 7);
	expect_rx(&n3, &n1, 77, 7);
	/* Buffers at last: the VSW_QUEUE that waited, in the order they came. */
	post_rx_n(&n2, VSW_QUEUE + 2);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++)
		expect_rx(&n2, &n1, 100 + k, k);
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++)
		expect_rx(&n2, &n3, 200 + k, k);
	expect_no_rx(&n2);
	/* Drops for vm2 only, none on the senders. */
	st = nstats(&n1, NULL);
	assert_int_equal(st.tx_frames - b1.tx_frames, 42);
	assert_int_equal(st.rx_drops, b1.rx_drops);
	assert_int_equal(st.tx_drops, 0);
	st = nstats(&n3, NULL);
	assert_int_equal(st.tx_frames - b3.tx_frames, 40);
	assert_int_equal(st.rx_drops, b3.rx_drops);
	assert_int_equal(st.tx_drops, 0);
	st = nstats(&n2, NULL);
	assert_int_equal(st.rx_frames - b2.rx_frames, VSW_QUEUE);
	assert_int_equal(st.rx_drops - b2.rx_drops, 81 - VSW_QUEUE);
	assert_int_equal(b1.rx_drops + b2.rx_drops + b3.rx_drops, 0);
}

/* ---- 5. buffers too small, frames of bad sizes ------------------------------------------------------ */

static void rx_buffer_too_small(void **state)
{
	struct vsw_stats st;

	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	post_rx(&n2, HDR + 59);
	post_rx(&n2, HDR + 60);
	post_rx(&n2, HDR);
	post_rx(&n2, HDR + 60);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	for (unsigned k = 0; k < 4; k++)
		post_tx(&n1, n2.mac, 60, k);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	expect_rx_empty(&n2);
	expect_rx(&n2, &n1, 60, 1);
	expect_rx_empty(&n2);
	expect_rx(&n2, &n1, 60, 3);
	expect_no_rx(&n2);
	/* Every frame accounted for: taken (given or dropped for its buffer) or dropped. */
	st = nstats(&n2, NULL);
	assert_int_equal(st.rx_frames + st.rx_drops, 4);
	assert_true(st.rx_frames >= 2);
	expect_stats(&n1, 4, 240, 0, 0, 0, 0);
	assert_int_equal(vrd(&vm2, R_STATUS), ACK | DRV | FOK | DOK);
	assert_int_equal(loglen, 0);
}

static void tx_bad_sizes(void **state)
{
	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	post_rx_n(&n2, 4);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	post_tx(&n1, n2.mac, VSW_FRAME_MIN - 1, 1);
	post_tx(&n1, n2.mac, VSW_FRAME_MAX + 1, 2);
	post_tx(&n1, n2.mac, 0, 3); /* a header alone */
	{
		u16 i = n1.tx_avail % QN; /* a chain shorter than a header */

		put_desc_in(&vm, Q_TX, i, TXBUF(i), 5, 0, 0);
		make_avail(&n1, Q_TX, i);
	}
	post_tx(&n1, n2.mac, VSW_FRAME_MIN, 4);
	post_tx(&n1, n2.mac, VSW_FRAME_MAX, 5);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	expect_rx(&n2, &n1, VSW_FRAME_MIN, 4);
	expect_rx(&n2, &n1, VSW_FRAME_MAX, 5);
	expect_no_rx(&n2);
	expect_stats(&n1, 2, VSW_FRAME_MIN + VSW_FRAME_MAX, 0, 0, 0, 4);
	expect_stats(&n2, 0, 0, 2, VSW_FRAME_MIN + VSW_FRAME_MAX, 0, 0);
	/* Logged once, the device still running. */
	assert_int_equal(log_count("virtio-net: a frame of"), 1);
	assert_int_equal(log_count("a frame of 13 bytes (not 14 to 1518), dropped (logged once)"), 1);
	send_frame(&n1, n2.mac, VSW_FRAME_MAX + 100, 6);
	expect_tx_done(&n1);
	assert_int_equal(log_count("virtio-net"), 1);
	assert_int_equal(vrd(&vm, R_STATUS), ACK | DRV | FOK | DOK);
	send_frame(&n1, n2.mac, 80, 7);
	expect_rx(&n2, &n1, 80, 7);
	expect_stats(&n1, 3, VSW_FRAME_MIN + VSW_FRAME_MAX + 80, 0, 0, 0, 5);
}

/* ---- 6. a driver reset, a VM restart ---------------------------------------------------------------- */

static void reset_drops_what_waited(void **state)
{
	u32 free_before;

	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	for (unsigned k = 0; k < 5; k++)
		send_frame(&n1, n2.mac, 60, k);
	expect_no_rx(&n2);
	/* vm2's driver resets the device: what waited is dropped, and so is what comes while it is down. */
	vwr(&vm2, R_STATUS, 0);
	assert_false(nup(&n2));
	expect_stats(&n2, 0, 0, 0, 0, 5, 0);
	send_frame(&n1, n2.mac, 61, 5);
	send_frame(&n1, n2.mac, 62, 6);
	expect_tx_done(&n1);
	expect_stats(&n2, 0, 0, 0, 0, 7, 0);
	/* Up again: nothing old comes, new frames do. */
	nic_up(&n2);
	post_rx_n(&n2, 4);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	expect_no_rx(&n2);
	vnet_kick(0);
	expect_no_rx(&n2);
	send_frame(&n1, n2.mac, 63, 7);
	expect_rx(&n2, &n1, 63, 7);
	expect_no_rx(&n2);
	expect_stats(&n2, 0, 0, 1, 63, 7, 0);
	/* Frames wait again; vm2 restarts (its devices reset, its network attached anew): fresh counters, no new page. */
	send_frame(&n1, n2.mac, 64, 8);
	expect_rx(&n2, &n1, 64, 8);
	spin_lock(&vm2.virtio[SLOT]->lock);
	send_frame(&n1, n2.mac, 65, 9); /* waits in its ring: the device was busy */
	spin_unlock(&vm2.virtio[SLOT]->lock);
	free_before = pool_free_pages(&pool);
	virtio_reset_all(&vm2);
	assert_true(vnet_attach(&vm2, SLOT, n2.mac, 0));
	assert_int_equal(pool_free_pages(&pool), free_before);
	expect_stats(&n2, 0, 0, 0, 0, 0, 0);
	assert_false(nup(&n2));
	vnet_kick(0);
	send_frame(&n1, n2.mac, 66, 10); /* its new driver is not there yet */
	expect_stats(&n2, 0, 0, 0, 0, 1, 0);
	nic_up(&n2);
	post_rx_n(&n2, 2);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	expect_no_rx(&n2);
	send_frame(&n1, n2.mac, 67, 11);
	expect_rx(&n2, &n1, 67, 11);
	expect_no_rx(&n2);
	expect_stats(&n1, 12, 60 * 5 + 61 + 62 + 63 + 64 + 65 + 66 + 67, 0, 0, 0, 0);
}

/* ---- 7. VNET_TX_BUDGET ---------------------------------------------------------------------------- */

static void tx_budget_then_kick(void **state)
{
	(void)state;
	setup_vms(2, false);
	nic_up(&n1);
	nic_up(&n2);
	learn(2);
	_Static_assert(VNET_TX_BUDGET >= QN, "a full ring fits the budget");
	/*
	 * A transmit ring holds VIRTQ_NUM_MAX = VNET_TX_BUDGET chains at most, so
	 * one notify never finds more than the budget: a full ring spends it, and
	 * what the driver adds after (without a notify) is sent by vnet_kick.
	 */
	post_rx_n(&n2, QN);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	for (unsigned k = 0; k < QN; k++)
		post_tx(&n1, n2.mac, 60 + k, k);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	for (unsigned k = 0; k < QN; k++)
		expect_rx(&n2, &n1, 60 + k, k);
	for (unsigned k = QN; k < QN + 44; k++)
		post_tx(&n1, n2.mac, 60 + k, k);
	post_rx_n(&n2, 44);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	assert_int_equal(used_idx(&n1, Q_TX), 1 + QN); /* and learn()'s */
	vnet_kick(0);
	expect_tx_done(&n1);
	for (unsigned k = QN; k < QN + 44; k++)
		expect_rx(&n2, &n1, 60 + k, k);
	expect_no_rx(&n2);
	/* Under the budget: nothing more marked, a kick changes nothing. */
	post_tx(&n1, n2.mac, 60, 1);
	vnet_kick(0);
	assert_int_equal(used_idx(&n1, Q_TX), 1 + QN + 44);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	post_rx_n(&n2, 1);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	expect_rx(&n2, &n1, 60, 1);
	assert_int_equal(nstats(&n1, NULL).tx_frames, 1 + QN + 44 + 1);
	assert_int_equal(nstats(&n2, NULL).rx_drops, 0);
}

/* ---- 8. guest memory on the swap disk -------------------------------------------------------------- */

/* Page ipa of v goes to the swap disk as the clock would send it; its write completed. */
static void evict(struct vm *v, u64 ipa)
{
	struct victim vi = { .ipa = ipa };
	struct s2_leaf l, old;

	assert_true(s2_get(v, IPA(ipa), &l));
	vi.page = swap_evictable(v, &l);
	assert_int_not_equal(vi.page, PIDX_NONE);
	assert_int_equal(s2_claim(v, IPA(ipa), &vi.leaf, &old), 0);
	vi.prot = old.prot;
	swap_write_out(v, &vi, 1, 0);
	assert_true(s2e_transit(fake_s2_raw(v, IPA(ipa))));
	assert_int_equal(fake_blk_complete(~0u, 0), 1);
	assert_true(s2e_swapped(fake_s2_raw(v, IPA(ipa))));
}

static void buffers_in_swap(void **state)
{
	unsigned long kicks;

	(void)state;
	setup_vms(2, true);
	nic_up(&n1);
	nic_up(&n2);
	/* A receive buffer on the swap disk: the frame waits for it, vm2's vCPU kicked. */
	post_rx_n(&n2, 2);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	evict(&vm2, ALIGN_DOWN(RXBUF(0), PAGE_SIZE));
	kicks = atomic_load(&registry_kicks);
	send_frame(&n1, n2.mac, 500, 1);
	expect_tx_done(&n1);
	assert_int_equal(fake_blk_pending(), 1); /* its swap-in */
	assert_int_equal(atomic_load(&registry_kicks), kicks + 1);
	assert_int_equal(used_idx(&n2, Q_RX), 0);
	vnet_kick(0); /* still on its way */
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(used_idx(&n2, Q_RX), 0);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vnet_kick(0);
	expect_rx(&n2, &n1, 500, 1);
	expect_no_rx(&n2);
	/* A transmit buffer on the swap disk: the notify waits (-EAGAIN) for it, then runs again. */
	post_tx(&n1, n2.mac, 600, 2);
	evict(&vm, ALIGN_DOWN(TXBUF(n1.tx_avail - 1), PAGE_SIZE));
	assert_int_equal(vnotify(&n1, Q_TX), -EAGAIN);
	assert_int_equal(used_idx(&n1, Q_TX), 1);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	assert_int_equal(vnotify(&n1, Q_TX), 0);
	expect_tx_done(&n1);
	expect_rx(&n2, &n1, 600, 2);
	/* vm2's used ring on the swap disk: the frame is written, given back after the swap-in. */
	post_rx_n(&n2, 1);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	evict(&vm2, ring(Q_RX) + 2 * PAGE_SIZE);
	send_frame(&n1, n2.mac, 700, 3);
	expect_tx_done(&n1);
	assert_int_equal(fake_blk_pending(), 1);
	assert_int_equal(fake_blk_complete(1, 0), 1);
	vnet_kick(0);
	expect_rx(&n2, &n1, 700, 3);
	expect_no_rx(&n2);
	expect_stats(&n1, 3, 1800, 0, 0, 0, 0);
	expect_stats(&n2, 0, 0, 3, 1800, 0, 0);
	assert_int_equal(loglen, 0);
}

/* ---- bugs these tests found, fixed since ---------------------------------------------------- */

/*
 * KNOWN BUG (core/vnet.c, tx): when the transmit queue's used ring is on
 * the swap disk, virtq_push fails (-EAGAIN) after the chain was taken and
 * tx() breaks out with 0: the chain is never given back and its frame
 * never sent (the driver's transmit queue loses a buffer for good).
 */
static void tx_used_ring_in_swap(void **state)
{
	int rc;

	(void)state;
	setup_vms(2, true);
	nic_up(&n1);
	nic_up(&n2);
	post_rx_n(&n2, 2);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	send_frame(&n1, n2.mac, 50, 0); /* a used entry: the page is not all zeros */
	expect_tx_done(&n1);
	expect_rx(&n2, &n1, 50, 0);
	post_tx(&n1, n2.mac, 60, 1);
	evict(&vm, ring(Q_TX) + 2 * PAGE_SIZE);
	rc = vnotify(&n1, Q_TX);
	assert_true(rc == 0 || rc == -EAGAIN);
	while (fake_blk_pending())
		fake_blk_complete(~0u, 0);
	if (rc)
		assert_int_equal(vnotify(&n1, Q_TX), 0); /* the vCPU's store again */
	vnet_kick(0);
	expect_tx_done(&n1);
	expect_rx(&n2, &n1, 60, 1);
	expect_stats(&n1, 2, 110, 0, 0, 0, 0);
}

/*
 * KNOWN BUG (core/vnet.c, rx): the same for a receive buffer too small for
 * its frame: the frame is popped, virtq_push fails, and the buffer is
 * never given back.
 */
static void small_rx_buffer_used_ring_in_swap(void **state)
{
	(void)state;
	setup_vms(2, true);
	nic_up(&n1);
	nic_up(&n2);
	post_rx_n(&n2, 1);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	send_frame(&n1, n2.mac, 50, 0); /* a used entry: the page is not all zeros */
	expect_rx(&n2, &n1, 50, 0);
	post_rx(&n2, HDR + 10);
	assert_int_equal(vnotify(&n2, Q_RX), 0);
	evict(&vm2, ring(Q_RX) + 2 * PAGE_SIZE);
	send_frame(&n1, n2.mac, 60, 1);
	while (fake_blk_pending())
		fake_blk_complete(~0u, 0);
	vnet_kick(0);
	expect_rx_empty(&n2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(config_and_features, net_teardown),
		cmocka_unit_test_teardown(frame_between_vms, net_teardown),
		cmocka_unit_test_teardown(frames_wait_for_buffers, net_teardown),
		cmocka_unit_test_teardown(full_ring_drops_for_it_only, net_teardown),
		cmocka_unit_test_teardown(rx_buffer_too_small, net_teardown),
		cmocka_unit_test_teardown(tx_bad_sizes, net_teardown),
		cmocka_unit_test_teardown(reset_drops_what_waited, net_teardown),
		cmocka_unit_test_teardown(tx_budget_then_kick, net_teardown),
		cmocka_unit_test_teardown(buffers_in_swap, net_teardown),
		/* Bugs they found, fixed since. */
		cmocka_unit_test_teardown(tx_used_ring_in_swap, net_teardown),
		cmocka_unit_test_teardown(small_rx_buffer_used_ring_in_swap, net_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
