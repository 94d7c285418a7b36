/*
 * The virtio-mmio transports of the guest platform: VIRTIO_MMIO_SLOTS slots
 * of VIRTIO_MMIO_SLOT bytes from VIRTIO_MMIO_BASE, on SPIs 16-47, as QEMU
 * virt has them. A slot with no device answers as a version 2 transport
 * with device ID 0 (virtio 1.x, 4.2.2: "no device"), so a guest's driver
 * probes it, finds nothing and moves on; it never takes an external abort.
 */
#include <quire/vdev.h>

#define VIRTIO_MMIO_MAGIC 0x74726976u  /* "virt", little-endian */
#define VIRTIO_MMIO_VERSION 2u	       /* the modern (1.x) transport */
#define VIRTIO_MMIO_VENDOR 0x554d4551u /* "QEMU": what QEMU's own empty slots say */

enum { REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c };

bool virtio_mmio_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val)
{
	(void)vm;
	/* The transport's registers are 32 bits wide and aligned; an empty slot has no config space. */
	if (size != 4 || (off & 3))
		return false;
	if (write)
		return true; /* nothing to drive: ignored, as on QEMU */
	switch (off % VIRTIO_MMIO_SLOT) {
	case REG_MAGIC:
		*val = VIRTIO_MMIO_MAGIC;
		break;
	case REG_VERSION:
		*val = VIRTIO_MMIO_VERSION;
		break;
	case REG_VENDOR_ID:
		*val = VIRTIO_MMIO_VENDOR;
		break;
	default:
		*val = 0; /* REG_DEVICE_ID 0: no device; every other register of an absent device */
		break;
	}
	return true;
}
