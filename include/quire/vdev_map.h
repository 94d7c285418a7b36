/* Where the emulated devices of the guest platform sit (docs/guest-platform.md): addresses and interrupts only. */
#ifndef QUIRE_VDEV_MAP_H
#define QUIRE_VDEV_MAP_H

#define VPL011_BASE 0x09000000UL
#define VPL011_SIZE 0x1000UL
#define VPL011_INTID 33 /* SPI 1, as on QEMU virt */

/* virtio-mmio transports (core/virtio_mmio.c), as on QEMU virt: slot n at BASE + n * SLOT, INTID FIRST_INTID + n. */
#define VIRTIO_MMIO_BASE 0x0a000000UL
#define VIRTIO_MMIO_SLOT 0x200UL
#define VIRTIO_MMIO_SLOTS 32
#define VIRTIO_MMIO_SIZE (VIRTIO_MMIO_SLOT * VIRTIO_MMIO_SLOTS)
#define VIRTIO_MMIO_FIRST_INTID 48 /* SPI 16 */
#endif
