/*
 * The virtio-mmio transport, version 2 (virtio 1.x, section 4.2.2), and the
 * split virtqueue (section 2.7). Register names are the spec's, spelled as
 * C constants; all values are little-endian, as is Quire.
 */
#ifndef DRIVERS_VIRTIO_MMIO_H
#define DRIVERS_VIRTIO_MMIO_H
#include <quire/types.h>

/* Registers, offsets from the slot's base. */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000		/* "virt" */
#define VIRTIO_MMIO_VERSION 0x004		/* 2; 1 is the legacy interface */
#define VIRTIO_MMIO_DEVICE_ID 0x008		/* 0: an empty slot */
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010	/* 32 bits of them, chosen by ... */
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014	/* ... this: 0 bits 0-31, 1 bits 32-63 */
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034		/* QueueNumMax: 0 if the queue is not there */
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050		/* write the queue's index */
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070		/* device status; writing 0 resets */
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080	/* descriptor table */
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090	/* available ring */
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0	/* used ring */
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100		/* device-specific configuration */

#define VIRTIO_MMIO_MAGIC 0x74726976		/* "virt", little-endian */

/* InterruptStatus and InterruptACK bits. */
#define VIRTIO_MMIO_INT_VRING (1u << 0)		/* used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG (1u << 1)	/* configuration change */

/* Device status (section 2.1). */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 1
#define VIRTIO_CONFIG_S_DRIVER 2
#define VIRTIO_CONFIG_S_DRIVER_OK 4
#define VIRTIO_CONFIG_S_FEATURES_OK 8
#define VIRTIO_CONFIG_S_NEEDS_RESET 0x40
#define VIRTIO_CONFIG_S_FAILED 0x80

/* Device-independent feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

/* Device types (section 5). */
#define VIRTIO_ID_BLOCK 2

/* The split virtqueue. Alignment: descriptors 16 bytes, available ring 2, used ring 4. */
#define VIRTQ_DESC_F_NEXT 1	/* the chain goes on at 'next' */
#define VIRTQ_DESC_F_WRITE 2	/* device-writable (otherwise device-readable) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct virtq_avail {
	u16 flags;
	u16 idx;
	u16 ring[]; /* queue size entries, then used_event (only with VIRTIO_F_EVENT_IDX) */
};

struct virtq_used_elem {
	u32 id;	 /* head of the chain the device is done with */
	u32 len; /* bytes it wrote into the chain */
};

struct virtq_used {
	u16 flags;
	u16 idx;
	struct virtq_used_elem ring[]; /* queue size entries, then avail_event */
};

/* Bytes of each part for a queue of n descriptors. */
#define VIRTQ_DESC_BYTES(n) (16UL * (n))
#define VIRTQ_AVAIL_BYTES(n) (6UL + 2UL * (n))
#define VIRTQ_USED_BYTES(n) (6UL + 8UL * (n))
#endif
