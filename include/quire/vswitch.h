/*
 * Quire's Ethernet switch between VMs (core/vswitch.c, docs/network.md).
 * Each port has a configured address and an inbound ring of frames in
 * pages of its own: a frame is copied into every port it goes to, so a
 * port whose guest stops taking frames fills only its own ring and drops
 * only its own frames. Unicast goes by learned address, broadcast,
 * multicast and unknown unicast are flooded to every other port that is
 * up, within a per-port budget (storm control).
 *
 * A port is anything with vsw_port_ops: the VMs' virtio-net devices
 * (core/vnet.c) today; a physical uplink (say QEMU's virtio-net-device on
 * virt) would be one more port, its driver calling vsw_port_add with ops
 * whose wake() transmits the port's ring, and vsw_send for what it receives.
 */
#ifndef QUIRE_VSWITCH_H
#define QUIRE_VSWITCH_H
#include <quire/spinlock.h>
#include <quire/types.h>

struct pool;

#define VSW_PORTS 9		/* every VM, and room for an uplink */
#define VSW_FRAME_MIN 14	/* an Ethernet header */
#define VSW_FRAME_MAX 1518	/* a frame without its FCS, with one VLAN tag */
#define VSW_QUEUE 64		/* frames waiting for one port */
#define VSW_QUEUE_PER_SOURCE (VSW_QUEUE / 2) /* ... of them from one other port at most */
#define VSW_FLOOD_FPS 500	/* flooded frames a port may send per second (ARP and IPv6 neighbour discovery need few) ... */
#define VSW_FLOOD_BURST 100	/* ... and at once */
#define VSW_MACS 64		/* learned addresses */

struct vsw_port;

struct vsw_port_ops {
	/* Frames wait in p's ring (any CPU, any context; must not block): take them now or soon. */
	void (*wake)(struct vsw_port *p, unsigned cpu);
};

struct vsw_stats {
	u64 tx_frames, tx_bytes;	/* frames the port sent into the switch */
	u64 rx_frames, rx_bytes;	/* frames it took from its ring */
	u64 rx_drops;			/* frames for it dropped: its ring full (or its share for one sender), or it down */
	u64 tx_drops;			/* frames it sent that went nowhere: malformed, spoofed, over the flood budget */
	u64 flood_drops;		/* ... of them over the flood budget */
};

/* At boot: the pool the ports' rings come from. */
void vsw_init(struct pool *p);
/*
 * Port index i (0 .. VSW_PORTS - 1; a VM's is its id - 1) with address
 * mac: its ring is made the first time. NULL if there is no memory for it.
 * A port added again (its VM restarted) starts empty, with fresh counters.
 */
struct vsw_port *vsw_port_add(unsigned i, const u8 mac[6], const struct vsw_port_ops *ops, void *ctx,
			      unsigned cpu);
void *vsw_port_ctx(struct vsw_port *p);
/* Does the port take frames (its driver runs)? Frames for a port that is down are dropped. */
void vsw_port_up(struct vsw_port *p, bool up);
/* A frame of len bytes from port src into the switch (copied: frame is the caller's again on return). */
void vsw_send(struct vsw_port *src, const u8 *frame, unsigned len, u64 now_us, unsigned cpu);
/* The oldest frame in p's ring (its owner only), NULL if none: it stays there until vsw_pop. */
const u8 *vsw_peek(struct vsw_port *p, unsigned *len);
void vsw_pop(struct vsw_port *p);
/* Drop the oldest frame in p's ring (its owner only: no buffer could take it), counted in rx_drops. */
void vsw_drop(struct vsw_port *p);
/* Drop every frame waiting for p. */
void vsw_flush(struct vsw_port *p);
void vsw_port_stats(struct vsw_port *p, struct vsw_stats *out, u8 mac[6], bool *up);
#endif
