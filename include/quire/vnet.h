/*
 * virtio-net for guests (virtio 1.x, 5.1; core/vnet.c): one receive and
 * one transmit queue, the address from the VM's config (VIRTIO_NET_F_MAC),
 * the link always up (VIRTIO_NET_F_STATUS), no offloads: frames of at most
 * 1518 bytes, whole, with their checksums. Each device is a port of
 * Quire's switch (include/quire/vswitch.h).
 */
#ifndef QUIRE_VNET_H
#define QUIRE_VNET_H
#include <quire/vswitch.h>

struct vm;

#define VNET_TX_BUDGET 256 /* frames one notify or kick sends before it lets others run */

/* Give vm a network device in virtio-mmio slot, with address mac (at its creation). false: no memory. */
bool vnet_attach(struct vm *vm, unsigned slot, const u8 mac[6], unsigned cpu);
/* Move on every device that waits: frames for its guest, or its own left to send. Cheap when none waits. */
void vnet_kick(unsigned cpu);
/* vm's port: its counters, address and whether its driver takes frames; false if it has no network. */
bool vnet_info(struct vm *vm, struct vsw_stats *st, u8 mac[6], bool *up);
#endif
