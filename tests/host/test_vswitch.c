/*
 * Quire's switch between VMs (core/vswitch.c) alone: VSW_PORTS fake ports
 * whose wake() records its calls, rings in a page pool over host memory.
 * Every frame that comes out of a ring is compared byte for byte with the
 * one sent, and every port's counters are checked whole.
 *
 * Covered: learning (a source teaches its port; unicast to a learned
 * address goes there alone; unknown unicast, broadcast and multicast flood
 * to every other port that is up, never back to the sender; an address
 * that moves); a port that is down; a full ring (its drops, and only its);
 * one source's share of a ring; storm control (the burst, the refill by
 * now_us, learned unicast never limited); spoofed and multicast sources;
 * sizes at and past the limits; every length through a ring; vsw_flush; a
 * port added again (a VM restart); no pool page taken twice.
 *
 * The threaded test (4 threads, 4 ports, each thread its port's owner,
 * sending to the others while it drains its own ring) runs here under
 * ASan and alone in test_vswitch_tsan (built with -fsanitize=thread):
 * every frame carries its source, a sequence number and a checksum, and
 * the counts add up (sent = received + dropped).
 *
 * The tests of the bugs they found (fixed since) run first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <quire/pool.h>
#include <quire/vswitch.h>
#include "hostmem.h"
#define STRESS_NAME "test_vswitch"
#include "stress.h"

#define MACH_BASE 0x80000000UL
#define POOL_PAGES 512
#define RING_PAGES (VSW_QUEUE * 2048 / PAGE_SIZE) /* a ring's pages: 2 KiB slots */
#define P VSW_PORTS
#define ETH_TYPE 0x88b5
#define T0 5000000ULL /* microseconds: now_us of the tests, a while after boot */

static struct pool pool;
static void *pdesc;
static struct vsw_port *port[P];
static unsigned ctx_of[P];
static _Atomic unsigned wakes[P];
static _Atomic unsigned last_cpu[P];
static u32 free_after_rings; /* the pool's free pages once every ring is made */

static const struct vsw_port_ops ops;

static void fake_wake(struct vsw_port *p, unsigned cpu)
{
	unsigned i = *(unsigned *)vsw_port_ctx(p);

	atomic_fetch_add(&wakes[i], 1);
	atomic_store(&last_cpu[i], cpu);
}

static const struct vsw_port_ops ops = { .wake = fake_wake };

static void mac(unsigned i, u8 m[6])
{
	static const u8 base[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x00 };

	memcpy(m, base, 6);
	m[5] = (u8)(0x10 + i);
}

static const u8 BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const u8 MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
static const u8 OTHER[6] = { 0x02, 0x42, 0x00, 0x00, 0x00, 0x99 }; /* no port's, never a source */
static const u8 ALIAS[6] = { 0x02, 0x42, 0x00, 0x00, 0x00, 0x77 }; /* a second address a guest uses */

/* ---- the pool, the ports --------------------------------------------------------- */

static int group_setup(void **state)
{
	u8 m[6];

	(void)state;
	hostmem_pool(&pool, MACH_BASE, POOL_PAGES, &pdesc);
	mac(0, m);
	assert_null(vsw_port_add(0, m, &ops, &ctx_of[0], 0)); /* no pool yet */
	vsw_init(&pool);
	assert_null(vsw_port_add(P, m, &ops, &ctx_of[0], 0)); /* no such port */
	assert_int_equal(pool_free_pages(&pool), POOL_PAGES);
	free_after_rings = POOL_PAGES - P * RING_PAGES;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(pdesc);
	hostmem_reset();
	return 0;
}

/* Every port added again (empty, fresh counters, nothing learned), and up. */
static int setup(void **state)
{
	(void)state;
	for (unsigned i = 0; i < P; i++) {
		u8 m[6];

		ctx_of[i] = i;
		mac(i, m);
		port[i] = vsw_port_add(i, m, &ops, &ctx_of[i], 0);
		assert_non_null(port[i]);
		assert_ptr_equal(vsw_port_ctx(port[i]), &ctx_of[i]);
		vsw_port_up(port[i], true);
		atomic_store(&wakes[i], 0);
		atomic_store(&last_cpu[i], ~0u);
	}
	/* The rings were made once: adding a port again takes no page. */
	assert_int_equal(pool_free_pages(&pool), free_after_rings);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(pool_free_pages(&pool), free_after_rings);
	return 0;
}

/* ---- frames ------------------------------------------------------------------------ */

/* A frame of len bytes (>= 14): dst, src, the test's ethertype, a pattern of seed. */
static void mk(u8 *f, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETH_TYPE >> 8;
	f[13] = ETH_TYPE & 0xff;
	for (unsigned k = 14; k < len; k++)
		f[k] = (u8)(seed * 7 + k * 31 + (k >> 8) + 1);
}

/* Port s sends len bytes (pattern seed) from src to dst; the caller's copy is scribbled on after. */
static void send_raw(unsigned s, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed, u64 now)
{
	u8 f[VSW_FRAME_MAX + 8];

	mk(f, dst, src, MAX(len, 14u), seed);
	vsw_send(port[s], f, len, now, 0);
	memset(f, 0xa5, sizeof(f)); /* the switch keeps a copy of its own */
}

/* ... from its configured address. */
static void send_to(unsigned s, const u8 dst[6], unsigned len, unsigned seed, u64 now)
{
	u8 src[6];

	mac(s, src);
	send_raw(s, dst, src, len, seed, now);
}

static void send_port(unsigned s, unsigned d, unsigned len, unsigned seed, u64 now)
{
	u8 dst[6];

	mac(d, dst);
	send_to(s, dst, len, seed, now);
}

/* The next frame in d's ring is dst <- src, len bytes, pattern seed: byte for byte; popped. */
static void expect_raw(unsigned d, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed)
{
	u8 want[VSW_FRAME_MAX + 8];
	const u8 *got;
	unsigned l = ~0u;

	mk(want, dst, src, len, seed);
	got = vsw_peek(port[d], &l);
	assert_non_null(got);
	assert_int_equal(l, len);
	assert_memory_equal(got, want, len);
	/* It stays there until popped. */
	assert_ptr_equal(vsw_peek(port[d], &l), got);
	vsw_pop(port[d]);
}

static void expect_frame_to(unsigned d, const u8 dst[6], unsigned s, unsigned len, unsigned seed)
{
	u8 src[6];

	mac(s, src);
	expect_raw(d, dst, src, len, seed);
}

static void expect_frame(unsigned d, unsigned s, unsigned len, unsigned seed)
{
	u8 dst[6];

	mac(d, dst);
	expect_frame_to(d, dst, s, len, seed);
}

static void expect_empty(unsigned d)
{
	unsigned l = 0;

	assert_null(vsw_peek(port[d], &l));
}

static void expect_all_empty(void)
{
	for (unsigned d = 0; d < P; d++)
		expect_empty(d);
}

/* Every port but s and those in skip (a bit each, not looked at) holds that frame and nothing else. */
static void expect_flooded(unsigned s, const u8 dst[6], const u8 src[6], unsigned len, unsigned seed, unsigned skip)
{
	for (unsigned d = 0; d < P; d++) {
		if (skip >> d & 1)
			continue;
		if (d != s)
			expect_raw(d, dst, src, len, seed);
		expect_empty(d);
	}
}

static void expect_flooded_from(unsigned s, const u8 dst[6], unsigned len, unsigned seed, unsigned skip)
{
	u8 src[6];

	mac(s, src);
	expect_flooded(s, dst, src, len, seed, skip);
}

static struct vsw_stats stats(unsigned i)
{
	struct vsw_stats st;
	u8 m[6], want[6];
	bool up;

	memset(&st, 0xee, sizeof(st));
	vsw_port_stats(port[i], &st, m, &up);
	mac(i, want);
	assert_memory_equal(m, want, 6);
	return st;
}

static bool is_up(unsigned i)
{
	struct vsw_stats st;
	u8 m[6];
	bool up;

	vsw_port_stats(port[i], &st, m, &up);
	return up;
}

/* Port i's counters, every one of them. */
static void expect_stats(unsigned i, u64 txf, u64 txb, u64 rxf, u64 rxb, u64 rxd, u64 txd, u64 fld)
{
	struct vsw_stats st = stats(i);

	assert_int_equal(st.tx_frames, txf);
	assert_int_equal(st.tx_bytes, txb);
	assert_int_equal(st.rx_frames, rxf);
	assert_int_equal(st.rx_bytes, rxb);
	assert_int_equal(st.rx_drops, rxd);
	assert_int_equal(st.tx_drops, txd);
	assert_int_equal(st.flood_drops, fld);
}

/* Pop everything waiting at every port but those in skip (the frames themselves are not the point). */
static unsigned drain_but(unsigned skip)
{
	unsigned l, n = 0;

	for (unsigned d = 0; d < P; d++)
		while (!(skip >> d & 1) && vsw_peek(port[d], &l)) {
			vsw_pop(port[d]);
			n++;
		}
	return n;
}

/* Every port sends a 14-byte broadcast (each learned, one flood token each), all taken; wakes forgotten. */
static void learn_all(void)
{
	for (unsigned s = 0; s < P; s++) {
		send_to(s, BCAST, 14, 0, T0);
		assert_int_equal(drain_but(0), P - 1);
	}
	for (unsigned s = 0; s < P; s++)
		atomic_store(&wakes[s], 0);
}

/* ---- 1. learning, unicast, flooding ------------------------------------------------------ */

static void learning_and_flooding(void **state)
{
	u8 m0[6], m1[6];

	(void)state;
	mac(0, m0);
	mac(1, m1);
	/* Nobody has sent yet, but 1's configured address is known: 0 -> 1 goes to 1 alone. */
	send_port(0, 1, 60, 1, T0);
	expect_frame(1, 0, 60, 1);
	for (unsigned d = 0; d < P; d++)
		assert_int_equal(atomic_load(&wakes[d]), d == 1);
	/* 0 was learned: 1's answer goes to 0 alone. */
	send_port(1, 0, 64, 2, T0);
	expect_frame(0, 1, 64, 2);
	expect_all_empty();
	assert_int_equal(atomic_load(&wakes[0]), 1);
	/* 1 was learned too: 0 -> 1 goes to 1 alone now; its wake gets the sender's CPU. */
	{
		u8 f[100];

		mk(f, m1, m0, 100, 3);
		vsw_send(port[0], f, 100, T0, 3);
	}
	expect_frame(1, 0, 100, 3);
	expect_all_empty();
	assert_int_equal(atomic_load(&wakes[1]), 2);
	assert_int_equal(atomic_load(&last_cpu[1]), 3);
	for (unsigned d = 2; d < P; d++)
		assert_int_equal(atomic_load(&wakes[d]), 0);
	/* Unknown unicast, broadcast and multicast: flooded, never back to the sender. */
	send_to(2, OTHER, 70, 4, T0);
	expect_flooded_from(2, OTHER, 70, 4, 0);
	send_to(2, BCAST, 42, 5, T0);
	expect_flooded_from(2, BCAST, 42, 5, 0);
	send_to(2, MCAST, 90, 6, T0);
	expect_flooded_from(2, MCAST, 90, 6, 0);
	/* To an address learned on its own sender: nowhere (not flooded either). */
	send_port(0, 0, 60, 7, T0);
	expect_all_empty();
	/* A second address of port 3's guest is learned on port 3 ... */
	send_raw(3, OTHER, ALIAS, 60, 8, T0);
	expect_flooded(3, OTHER, ALIAS, 60, 8, 0);
	send_to(4, ALIAS, 61, 9, T0);
	expect_frame_to(3, ALIAS, 4, 61, 9);
	expect_all_empty();
	/* ... and moves to port 5 when it shows up there. */
	send_raw(5, m0, ALIAS, 62, 10, T0);
	expect_raw(0, m0, ALIAS, 62, 10);
	expect_all_empty();
	send_to(4, ALIAS, 63, 11, T0);
	expect_frame_to(5, ALIAS, 4, 63, 11);
	expect_all_empty();
	/* The counters: 0 sent 60 (flooded), 100 and 60 (to itself); 2's floods reached everyone else. */
	expect_stats(0, 3, 220, 6, 64 + 202 + 60 + 62, 0, 0, 0);
	expect_stats(1, 1, 64, 6, 60 + 100 + 202 + 60, 0, 0, 0);
	expect_stats(2, 3, 202, 1, 60, 0, 0, 0);
	expect_stats(3, 1, 60, 4, 202 + 61, 0, 0, 0);
	expect_stats(4, 2, 124, 4, 202 + 60, 0, 0, 0);
	expect_stats(5, 1, 62, 5, 202 + 60 + 63, 0, 0, 0);
	for (unsigned d = 6; d < P; d++)
		expect_stats(d, 0, 0, 4, 202 + 60, 0, 0, 0);
}

/* ---- 2. a port that is down ------------------------------------------------------------- */

static void down_port_gets_nothing(void **state)
{
	u8 m0[6];

	(void)state;
	mac(0, m0);
	send_port(3, 0, 60, 1, T0); /* to 0's configured address: 0 alone */
	expect_frame(0, 3, 60, 1);
	vsw_port_up(port[3], false);
	assert_false(is_up(3));
	send_to(0, BCAST, 60, 2, T0);
	expect_flooded_from(0, BCAST, 60, 2, 1u << 3);
	send_port(0, 3, 61, 3, T0); /* unicast to it */
	expect_all_empty();
	assert_int_equal(atomic_load(&wakes[3]), 0);
	expect_stats(3, 1, 60, 0, 0, 2, 0, 0);
	expect_stats(0, 2, 121, 1, 60, 0, 0, 0);
	/* A port that is down still sends. */
	send_port(3, 0, 59, 4, T0);
	expect_frame(0, 3, 59, 4);
	/* Up again: frames for it are kept. */
	vsw_port_up(port[3], true);
	assert_true(is_up(3));
	send_port(0, 3, 62, 5, T0);
	expect_frame(3, 0, 62, 5);
	/* Down while a frame waits: that one stays (down refuses new ones; vsw_flush drops the rest). */
	send_port(0, 3, 63, 6, T0);
	vsw_port_up(port[3], false);
	send_port(0, 3, 64, 7, T0);
	expect_frame(3, 0, 63, 6);
	expect_all_empty();
	expect_stats(3, 2, 119, 2, 125, 3, 0, 0);
	expect_stats(0, 5, 121 + 62 + 63 + 64, 2, 119, 0, 0, 0);
	for (unsigned d = 1; d < P; d++)
		if (d != 3)
			expect_stats(d, 0, 0, 1, 60, 0, 0, 0); /* the broadcast only */
}

/* ---- 3. a full ring, one source's share ------------------------------------------------ */

static void full_ring_drops_there_only(void **state)
{
	struct vsw_stats before[P];
	u64 bytes = 0;

	(void)state;
	learn_all();
	for (unsigned i = 0; i < P; i++)
		before[i] = stats(i);
	/* Port 1 takes nothing: 0 and 2 fill its ring, a share each. */
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++) {
		send_port(0, 1, 100 + k, k, T0);
		send_port(2, 1, 200 + k, k, T0);
		bytes += 300 + 2 * k;
	}
	assert_int_equal(atomic_load(&wakes[1]), VSW_QUEUE);
	/* Full: 3's frame for it is dropped, counted on 1; 3's frame for 4 goes. */
	send_port(3, 1, 60, 1, T0);
	send_port(3, 4, 61, 2, T0);
	expect_frame(4, 3, 61, 2);
	/* A broadcast: everyone else gets it, 1 drops it. */
	send_to(0, BCAST, 62, 3, T0);
	expect_flooded_from(0, BCAST, 62, 3, 1u << 1);
	assert_int_equal(atomic_load(&wakes[1]), VSW_QUEUE);
	assert_int_equal(stats(1).rx_drops, 2);
	for (unsigned i = 0; i < P; i++) {
		struct vsw_stats st = stats(i);

		if (i != 1)
			assert_int_equal(st.rx_drops, 0);
		assert_int_equal(st.tx_drops, 0);
		assert_int_equal(st.tx_frames, before[i].tx_frames + (i == 0 ? 33 : i == 2 ? 32 : i == 3 ? 2 : 0));
	}
	/* One taken: room for one more, from a source with its share left (3). */
	expect_frame(1, 0, 100, 0);
	send_port(3, 1, 63, 4, T0);
	send_port(3, 1, 64, 5, T0); /* full again */
	assert_int_equal(stats(1).rx_drops, 3);
	/* The rest in the order they came, bytes intact. */
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++) {
		if (k)
			expect_frame(1, 0, 100 + k, k);
		expect_frame(1, 2, 200 + k, k);
	}
	expect_frame(1, 3, 63, 4);
	expect_empty(1);
	expect_stats(1, 1, 14, before[1].rx_frames + VSW_QUEUE + 1, before[1].rx_bytes + bytes + 63, 3, 0, 0);
}

static void per_source_share(void **state)
{
	(void)state;
	learn_all();
	/* 0 sends 40 to 1, which takes none: its share kept, the rest dropped. */
	for (unsigned k = 0; k < 40; k++)
		send_port(0, 1, 60 + k, k, T0);
	assert_int_equal(stats(1).rx_drops, 40 - VSW_QUEUE_PER_SOURCE);
	/* Another source still gets in. */
	send_port(2, 1, 70, 1, T0);
	/* A flooded frame of 0's counts against its share too. */
	send_to(0, BCAST, 60, 2, T0);
	drain_but(1u << 1);
	assert_int_equal(stats(1).rx_drops, 40 - VSW_QUEUE_PER_SOURCE + 1);
	/* One of 0's taken: room for one again. */
	expect_frame(1, 0, 60, 0);
	send_port(0, 1, 99, 3, T0);
	send_port(0, 1, 99, 4, T0);
	assert_int_equal(stats(1).rx_drops, 40 - VSW_QUEUE_PER_SOURCE + 2);
	for (unsigned k = 1; k < VSW_QUEUE_PER_SOURCE; k++)
		expect_frame(1, 0, 60 + k, k);
	expect_frame(1, 2, 70, 1);
	expect_frame(1, 0, 99, 3);
	expect_empty(1);
	assert_int_equal(stats(0).tx_frames, 1 + 40 + 1 + 2);
	assert_int_equal(stats(0).tx_drops, 0);
	assert_int_equal(stats(0).rx_drops, 0);
}

/* ---- 4. storm control ----------------------------------------------------------------------- */

/* Port s floods a broadcast at now: did anyone get it? (taken from every ring) */
static bool flood_at(unsigned s, u64 now)
{
	send_to(s, BCAST, 60, 9, now);
	return drain_but(0) == P - 1;
}

static void storm_control(void **state)
{
	unsigned passed = 0;

	(void)state;
	send_to(1, BCAST, 14, 0, T0); /* 1 learned (its own token) */
	drain_but(0);
	/* 0's burst, at once. */
	for (unsigned k = 0; k < VSW_FLOOD_BURST; k++)
		assert_true(flood_at(0, T0));
	assert_false(flood_at(0, T0));
	expect_all_empty();
	/* Unknown unicast is flooded, so limited too ... */
	send_to(0, OTHER, 60, 1, T0);
	expect_all_empty();
	/* ... unicast to a learned port is not. */
	for (unsigned k = 0; k < 3; k++) {
		send_port(0, 1, 60, k, T0);
		expect_frame(1, 0, 60, k);
	}
	/* Another port's budget is its own. */
	assert_true(flood_at(2, T0));
	expect_stats(0, VSW_FLOOD_BURST + 3, (VSW_FLOOD_BURST + 3) * 60, 2, 14 + 60, 0, 2, 2);
	/* Refilled by now_us at VSW_FLOOD_FPS: one token per 1e6 / FPS us. */
	const u64 tick = 1000000 / VSW_FLOOD_FPS;
	assert_false(flood_at(0, T0 + tick - 1));
	assert_true(flood_at(0, T0 + tick));
	assert_false(flood_at(0, T0 + tick));
	assert_true(flood_at(0, T0 + 3 * tick));
	assert_true(flood_at(0, T0 + 3 * tick));
	assert_false(flood_at(0, T0 + 3 * tick));
	/* A long quiet time gives the burst back, no more. */
	for (unsigned k = 0; k < VSW_FLOOD_BURST + 10; k++)
		passed += flood_at(0, T0 + 3 * tick + 10000000);
	assert_int_equal(passed, VSW_FLOOD_BURST);
	expect_stats(0, 2 * VSW_FLOOD_BURST + 6, (2 * VSW_FLOOD_BURST + 6) * 60, 2, 14 + 60, 0, 15, 15);
	for (unsigned d = 1; d < P; d++)
		assert_int_equal(stats(d).rx_drops, 0);
}

/* ---- 5. spoofing, sizes --------------------------------------------------------------------- */

static void spoofed_sources_dropped(void **state)
{
	u8 m0[6], m1[6], m8[6];

	(void)state;
	mac(0, m0);
	mac(1, m1);
	mac(8, m8);
	learn_all();
	/* 0 claims 1's address: dropped, counted on 0, nothing learned. */
	send_raw(0, BCAST, m1, 60, 1, T0);
	send_raw(0, m8, m1, 60, 2, T0);
	expect_all_empty();
	send_port(2, 1, 60, 3, T0);
	expect_frame(1, 2, 60, 3);
	expect_all_empty();
	/* A port that is down keeps its address. */
	vsw_port_up(port[8], false);
	send_raw(0, BCAST, m8, 60, 4, T0);
	expect_all_empty();
	/* Broadcast and multicast sources. */
	send_raw(0, m1, BCAST, 60, 5, T0);
	send_raw(0, m1, MCAST, 60, 6, T0);
	expect_all_empty();
	expect_stats(0, 1, 14, P - 1, (P - 1) * 14, 0, 5, 0);
	expect_stats(1, 1, 14, P - 1 + 1, (P - 1) * 14 + 60, 0, 0, 0);
	/* Its own address, or one no port has: fine. */
	send_raw(0, m1, m0, 60, 7, T0);
	expect_raw(1, m1, m0, 60, 7);
	send_raw(0, m1, ALIAS, 60, 8, T0);
	expect_raw(1, m1, ALIAS, 60, 8);
	expect_all_empty();
	assert_int_equal(stats(0).tx_drops, 5);
	assert_int_equal(stats(0).flood_drops, 0);
}

static void sizes(void **state)
{
	(void)state;
	learn_all();
	send_port(0, 1, VSW_FRAME_MIN - 1, 1, T0);
	send_port(0, 1, VSW_FRAME_MAX + 1, 2, T0);
	send_port(0, 1, 0, 3, T0);
	send_to(0, BCAST, VSW_FRAME_MIN - 1, 4, T0);
	expect_all_empty();
	expect_stats(0, 1, 14, P - 1, (P - 1) * 14, 0, 4, 0);
	send_port(0, 1, VSW_FRAME_MIN, 5, T0);
	send_port(0, 1, VSW_FRAME_MAX, 6, T0);
	expect_frame(1, 0, VSW_FRAME_MIN, 5);
	expect_frame(1, 0, VSW_FRAME_MAX, 6);
	expect_all_empty();
	expect_stats(0, 3, 14 + VSW_FRAME_MIN + VSW_FRAME_MAX, P - 1, (P - 1) * 14, 0, 4, 0);
	expect_stats(1, 1, 14, P + 1, (P - 1) * 14 + VSW_FRAME_MIN + VSW_FRAME_MAX, 0, 0, 0);
}

/* Every length, a few at a time through the ring (it wraps many times), byte for byte. */
static void every_length(void **state)
{
	u64 bytes = 0, frames = 0;

	(void)state;
	learn_all();
	for (unsigned len = VSW_FRAME_MIN; len <= VSW_FRAME_MAX; len += 5) {
		unsigned n = MIN(5u, VSW_FRAME_MAX + 1 - len);

		for (unsigned k = 0; k < n; k++)
			send_port(0, 1, len + k, len + k, T0);
		for (unsigned k = 0; k < n; k++) {
			expect_frame(1, 0, len + k, len + k);
			bytes += len + k;
			frames++;
		}
		expect_all_empty();
	}
	assert_int_equal(frames, VSW_FRAME_MAX - VSW_FRAME_MIN + 1);
	expect_stats(0, 1 + frames, 14 + bytes, P - 1, (P - 1) * 14, 0, 0, 0);
	expect_stats(1, 1, 14, P - 1 + frames, (P - 1) * 14 + bytes, 0, 0, 0);
	assert_int_equal(atomic_load(&wakes[1]), frames);
}

/* ---- 6. flush, a port added again --------------------------------------------------------- */

static void flush(void **state)
{
	(void)state;
	learn_all();
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++)
		send_port(0, 1, 60, k, T0);
	for (unsigned k = 0; k < 5; k++)
		send_port(2, 1, 61, k, T0);
	vsw_flush(port[1]);
	expect_empty(1);
	expect_stats(1, 1, 14, P - 1, (P - 1) * 14, VSW_QUEUE_PER_SOURCE + 5, 0, 0);
	/* Its shares are back: 0 gets a whole share in again. */
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE + 1; k++)
		send_port(0, 1, 62, k, T0);
	assert_int_equal(stats(1).rx_drops, VSW_QUEUE_PER_SOURCE + 5 + 1);
	for (unsigned k = 0; k < VSW_QUEUE_PER_SOURCE; k++)
		expect_frame(1, 0, 62, k);
	expect_empty(1);
	/* Flushing an empty ring changes nothing. */
	vsw_flush(port[1]);
	expect_stats(1, 1, 14, P - 1 + VSW_QUEUE_PER_SOURCE, (P - 1) * 14 + VSW_QUEUE_PER_SOURCE * 62,
		     VSW_QUEUE_PER_SOURCE + 6, 0, 0);
	expect_all_empty();
}

static void port_added_again(void **state)
{
	u8 m1[6], m2[6], fresh[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x42 };
	struct vsw_port *p;

	(void)state;
	mac(1, m1);
	mac(2, m2);
	learn_all();
	send_raw(1, m2, ALIAS, 60, 1, T0); /* ALIAS learned on 1 */
	expect_raw(2, m2, ALIAS, 60, 1);
	for (unsigned k = 0; k < 3; k++)
		send_port(0, 1, 60, k, T0);
	/* The VM behind port 1 restarts. */
	p = vsw_port_add(1, m1, &ops, &ctx_of[1], 0);
	assert_ptr_equal(p, port[1]);
	expect_empty(1);
	assert_false(is_up(1));
	expect_stats(1, 0, 0, 0, 0, 0, 0, 0);
	/* What it had learned is forgotten: to ALIAS is unknown unicast now; to 1, dropped (1 is down yet). */
	send_to(0, ALIAS, 61, 2, T0);
	expect_flooded_from(0, ALIAS, 61, 2, 1u << 1);
	send_port(0, 1, 62, 3, T0);
	expect_all_empty();
	expect_stats(1, 0, 0, 0, 0, 2, 0, 0);
	/* Others' addresses are kept. */
	send_port(0, 2, 63, 4, T0);
	expect_frame(2, 0, 63, 4);
	expect_all_empty();
	/* Up, then learned again when it sends. */
	vsw_port_up(port[1], true);
	send_port(1, 0, 64, 5, T0);
	expect_frame(0, 1, 64, 5);
	send_port(0, 1, 65, 6, T0);
	expect_frame(1, 0, 65, 6);
	expect_all_empty();
	expect_stats(1, 1, 64, 1, 65, 2, 0, 0);
	/* Back with another address: the old one is nobody's (anyone may use it), the new one is protected. */
	p = vsw_port_add(1, fresh, &ops, &ctx_of[1], 0);
	vsw_port_up(p, true);
	send_raw(0, m2, fresh, 60, 7, T0);
	send_raw(0, m2, m1, 60, 8, T0);
	expect_raw(2, m2, m1, 60, 8);
	expect_all_empty();
	assert_int_equal(stats(0).tx_drops, 1);
}

/* ---- 7. threads: 4 ports, each drained by its owner while all send ------------------------------ */

#define NT 4
#define SFRAMES 20000 /* each thread's at most: it stops after QUIRE_STRESS_MS (default 1000) too */
#define BLEN 64	  /* broadcasts' length */
#define SHDR 19	  /* Ethernet header, source, sequence number */
#define SMIN (SHDR + 4)

static pthread_barrier_t barrier;
static u64 deadline_ns;

struct worker {
	unsigned t;
	u64 rng;
	u64 sent, uni_to[NT], uni_bytes, bcast;
	u64 got, got_bytes, got_from[NT];
	u32 last_seq[NT];
	bool seen[NT];
};

static struct worker workers[NT];

static u64 xorshift(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static u32 fnv(const u8 *b, unsigned n)
{
	u32 h = 2166136261u;

	for (unsigned k = 0; k < n; k++)
		h = (h ^ b[k]) * 16777619u;
	return h;
}

/* Check the frame at the head of w's ring, then pop it. */
static void take(struct worker *w, const u8 *f, unsigned len)
{
	u8 me[6], src[6];
	unsigned s;
	u32 seq, sum;

	mac(w->t, me);
	if (len < SMIN || len > VSW_FRAME_MAX) {
		FAIL("port %u: a frame of %u bytes\n", w->t, len);
		goto out;
	}
	s = f[14];
	memcpy(&seq, f + 15, 4);
	memcpy(&sum, f + len - 4, 4);
	if (s >= NT || s == w->t) {
		FAIL("port %u: a frame from port %u\n", w->t, s);
		goto out;
	}
	mac(s, src);
	CHECK(sum == fnv(f, len - 4), "port %u: frame %u from %u corrupted\n", w->t, seq, s);
	CHECK(!memcmp(f + 6, src, 6), "port %u: frame %u from %u: wrong source\n", w->t, seq, s);
	CHECK(!memcmp(f, me, 6) || !memcmp(f, BCAST, 6), "port %u: frame %u from %u: not for it\n", w->t, seq,
	      s);
	CHECK(!w->seen[s] || seq > w->last_seq[s], "port %u: frame %u from %u after %u\n", w->t, seq, s,
	      w->last_seq[s]);
	w->seen[s] = true;
	w->last_seq[s] = seq;
	w->got_from[s]++;
out:
	w->got++;
	w->got_bytes += len;
	vsw_pop(port[w->t]);
}

static void drain_own(struct worker *w, unsigned max)
{
	const u8 *f;
	unsigned len;

	for (unsigned n = 0; n < max && (f = vsw_peek(port[w->t], &len)); n++)
		take(w, f, len);
}

static void *stress_thread(void *arg)
{
	struct worker *w = arg;
	u8 f[VSW_FRAME_MAX];

	pthread_barrier_wait(&barrier);
	for (u32 i = 0; i < SFRAMES && (i < 64 || i % 64 || now_ns() < deadline_ns); i++) {
		u64 r = xorshift(&w->rng);
		bool bcast = r % 16 == 0;
		unsigned d = (w->t + 1 + (unsigned)(r >> 8) % (NT - 1)) % NT;
		unsigned len = bcast ? BLEN : SMIN + (unsigned)(r >> 16) % (VSW_FRAME_MAX - SMIN + 1);
		u8 dst[6], src[6];
		u32 sum;

		mac(d, dst);
		mac(w->t, src);
		memcpy(f, bcast ? BCAST : dst, 6);
		memcpy(f + 6, src, 6);
		f[12] = ETH_TYPE >> 8;
		f[13] = ETH_TYPE & 0xff;
		f[14] = (u8)w->t;
		memcpy(f + 15, &i, 4);
		for (unsigned k = SHDR; k < len - 4; k++)
			f[k] = (u8)(r >> (k % 56)) ^ (u8)k;
		sum = fnv(f, len - 4);
		memcpy(f + len - 4, &sum, 4);
		/* Time moves 20 us a frame: broadcasts (1 in 16, 3125 a second) go over the budget after a while. */
		vsw_send(port[w->t], f, len, T0 + (u64)i * 20, w->t);
		w->sent++;
		if (bcast) {
			w->bcast++;
		} else {
			w->uni_to[d]++;
			w->uni_bytes += len;
		}
		/* Now and then it takes nothing for a while: its ring fills, frames for it are dropped. */
		if ((r >> 40) % 64 < 56)
			drain_own(w, 1 + (unsigned)(r >> 48) % 4);
		/*
		 * Off the CPU between frames, holding no lock: more threads than CPUs
		 * and ticket spinlocks, a holder preempted stalls every waiter.
		 */
		sched_yield();
	}
	pthread_barrier_wait(&barrier); /* nobody sends any more */
	drain_own(w, ~0u);
	return NULL;
}

/* Ports 0 .. NT - 1 learned and empty, the others (if any) down; 4 threads; 0 if all added up. */
static unsigned stress(void)
{
	struct vsw_stats before[NT], st;
	pthread_t th[NT];

	for (unsigned s = 0; s < NT; s++) {
		send_to(s, BCAST, 14, 0, T0);
		for (unsigned d = 0; d < NT; d++) {
			unsigned l;

			while (vsw_peek(port[d], &l))
				vsw_pop(port[d]);
		}
	}
	for (unsigned t = 0; t < NT; t++) {
		u8 m[6];
		bool up;

		vsw_port_stats(port[t], &before[t], m, &up);
		workers[t] = (struct worker){ .t = t, .rng = 0x9e3779b97f4a7c15ULL * (t + 1) };
	}
	deadline_ns = now_ns() + (getenv("QUIRE_STRESS_MS") ? strtoull(getenv("QUIRE_STRESS_MS"), NULL, 0) : 1000) * 1000000;
	pthread_barrier_init(&barrier, NULL, NT);
	for (unsigned t = 0; t < NT; t++)
		pthread_create(&th[t], NULL, stress_thread, &workers[t]);
	for (unsigned t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&barrier);
	/* sent = received + dropped, at each port, and each port's counters as its thread counted. */
	for (unsigned d = 0; d < NT; d++) {
		struct worker *w = &workers[d];
		u64 want = 0, got_from = 0, fld;
		u8 m[6];
		bool up;
		unsigned l;

		vsw_port_stats(port[d], &st, m, &up);
		fld = st.flood_drops - before[d].flood_drops;
		CHECK(vsw_peek(port[d], &l) == NULL, "port %u: frames left\n", d);
		CHECK(st.rx_frames - before[d].rx_frames == w->got, "port %u: rx_frames %lu, took %lu\n", d,
		      (unsigned long)(st.rx_frames - before[d].rx_frames), (unsigned long)w->got);
		CHECK(st.rx_bytes - before[d].rx_bytes == w->got_bytes, "port %u: rx_bytes\n", d);
		CHECK(st.tx_drops - before[d].tx_drops == fld, "port %u: tx_drops other than floods\n", d);
		CHECK(w->sent >= 64, "port %u: %lu frames sent only\n", d, (unsigned long)w->sent);
		CHECK(st.tx_frames - before[d].tx_frames == w->sent - fld, "port %u: tx_frames %lu of %lu, %lu over budget\n",
		      d, (unsigned long)(st.tx_frames - before[d].tx_frames), (unsigned long)w->sent, (unsigned long)fld);
		CHECK(st.tx_bytes - before[d].tx_bytes == w->uni_bytes + (w->bcast - fld) * BLEN, "port %u: tx_bytes\n",
		      d);
		for (unsigned s = 0; s < NT; s++) {
			struct vsw_stats ss;

			if (s == d)
				continue;
			vsw_port_stats(port[s], &ss, m, &up);
			want += workers[s].uni_to[d] + workers[s].bcast - (ss.flood_drops - before[s].flood_drops);
			got_from += w->got_from[s];
		}
		CHECK(got_from == w->got, "port %u: frames from nowhere\n", d);
		CHECK(want == w->got + st.rx_drops - before[d].rx_drops,
		      "port %u: %lu sent to it, %lu taken, %lu dropped\n", d, (unsigned long)want, (unsigned long)w->got,
		      (unsigned long)(st.rx_drops - before[d].rx_drops));
		if (getenv("QUIRE_STRESS_VERBOSE"))
			fprintf(stderr, "port %u: sent %lu, took %lu, dropped %lu, over budget %lu\n", d,
				(unsigned long)w->sent, (unsigned long)w->got,
				(unsigned long)(st.rx_drops - before[d].rx_drops), (unsigned long)fld);
	}
	return atomic_load(&errors);
}

static void threads(void **state)
{
	(void)state;
	for (unsigned i = NT; i < P; i++)
		vsw_port_up(port[i], false);
	assert_int_equal(stress(), 0);
}

/* ---- bugs these tests found, fixed since ---------------------------------------------------- */

/*
 * KNOWN BUG (core/vswitch.c, vsw_port_add): a ring whose pages could not all
 * be had keeps those it got "for the next try", but the next try starts
 * again at slot 0 and takes a whole ring anew: the first pages are lost.
 */
static void ring_retry_keeps_its_pages(void **state)
{
	static pidx_t held[POOL_PAGES];
	unsigned n = 0;
	u8 m[6];

	(void)state;
	mac(P - 1, m);
	while (pool_free_pages(&pool) > RING_PAGES / 2) {
		held[n] = pool_alloc(&pool, 0);
		assert_int_not_equal(held[n], PIDX_NONE);
		n++;
	}
	assert_null(vsw_port_add(P - 1, m, &ops, &ctx_of[P - 1], 0));
	assert_int_equal(pool_free_pages(&pool), 0);
	while (n)
		assert_true(pool_free(&pool, 0, held[--n], false));
	assert_non_null(vsw_port_add(P - 1, m, &ops, &ctx_of[P - 1], 0));
	/* One ring's pages in all. */
	assert_int_equal(pool_free_pages(&pool), POOL_PAGES - RING_PAGES);
}

/*
 * KNOWN BUG (core/vswitch.c, flood_token): the refill drops the fraction
 * of a token at every top-up (flood_at = now_us), so a port flooding at
 * intervals that are not whole ticks gets less than VSW_FLOOD_FPS: two
 * broadcasts every 750 us (2667 a second offered) pass at 1333 a second.
 */
static void flood_rate_under_load(void **state)
{
	unsigned passed = 0;

	(void)state;
	setup(state);
	while (flood_at(0, T0))
		;
	for (u64 t = 750; t <= 1000000; t += 750)
		for (unsigned k = 0; k < 2; k++)
			passed += flood_at(0, T0 + t);
	/* A second's worth: VSW_FLOOD_FPS, give or take a token. */
	assert_in_range(passed, VSW_FLOOD_FPS - 2, VSW_FLOOD_FPS);
}

/*
 * KNOWN BUG (core/vswitch.c, learn_and_look): one port may fill the whole
 * address table with made-up sources (VSW_MACS of them) and so push out
 * every other port's learned address; unicast between two other VMs is
 * then flooded, to the port that did it too, which reads it.
 */
static void table_flood_leaks_unicast(void **state)
{
	(void)state;
	setup(state);
	learn_all();
	for (unsigned k = 0; k < VSW_MACS; k++) {
		u8 fake[6] = { 0x02, 0x66, 0x00, 0x00, (u8)(k >> 8), (u8)k };

		send_raw(4, BCAST, fake, 14, 0, T0 + 1000000 * (u64)k); /* slowly: within its budget */
		drain_but(0);
	}
	send_port(0, 1, 60, 1, T0 + 1000000 * (u64)VSW_MACS);
	expect_frame(1, 0, 60, 1);
	expect_empty(4); /* port 4 must not see 0's unicast to 1 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Bugs they found, fixed since; this one first: no ring made yet. */
		cmocka_unit_test(ring_retry_keeps_its_pages),
		cmocka_unit_test(flood_rate_under_load),
		cmocka_unit_test(table_flood_leaks_unicast),
		cmocka_unit_test_setup_teardown(learning_and_flooding, setup, teardown),
		cmocka_unit_test_setup_teardown(down_port_gets_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(full_ring_drops_there_only, setup, teardown),
		cmocka_unit_test_setup_teardown(per_source_share, setup, teardown),
		cmocka_unit_test_setup_teardown(storm_control, setup, teardown),
		cmocka_unit_test_setup_teardown(spoofed_sources_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(every_length, setup, teardown),
		cmocka_unit_test_setup_teardown(flush, setup, teardown),
		cmocka_unit_test_setup_teardown(port_added_again, setup, teardown),
		cmocka_unit_test_setup_teardown(threads, setup, teardown),
	};

#ifdef __SANITIZE_THREAD__
	/* test_vswitch_tsan: the threads alone, ports 0 .. NT - 1 only. */
	(void)tests;
	(void)group_setup;
	(void)group_teardown;
	hostmem_pool(&pool, MACH_BASE, POOL_PAGES, &pdesc);
	vsw_init(&pool);
	for (unsigned i = 0; i < NT; i++) {
		u8 m[6];

		ctx_of[i] = i;
		mac(i, m);
		port[i] = vsw_port_add(i, m, &ops, &ctx_of[i], 0);
		if (!port[i]) {
			fprintf(stderr, "test_vswitch_tsan: no port %u\n", i);
			return 1;
		}
		vsw_port_up(port[i], true);
	}
	if (stress()) {
		fprintf(stderr, "test_vswitch_tsan: %u errors\n", atomic_load(&errors));
		return 1;
	}
	printf("test_vswitch_tsan: %u threads, %lu frames sent: ok\n", NT,
	       (unsigned long)(workers[0].sent + workers[1].sent + workers[2].sent + workers[3].sent));
	return 0;
#else
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
#endif
}
