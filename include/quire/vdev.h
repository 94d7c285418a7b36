/* Emulated devices of the guest platform (docs/guest-platform.md). */
#ifndef QUIRE_VDEV_H
#define QUIRE_VDEV_H
#include <quire/vcpu.h>

#define VPL011_BASE 0x09000000UL
#define VPL011_SIZE 0x1000UL
#define VPL011_INTID 33 /* SPI 1, as on QEMU virt */

/* virtio-mmio transports (core/virtio_mmio.c), as on QEMU virt: slot n at BASE + n * SLOT, INTID FIRST_INTID + n. */
#define VIRTIO_MMIO_BASE 0x0a000000UL
#define VIRTIO_MMIO_SLOT 0x200UL
#define VIRTIO_MMIO_SLOTS 32
#define VIRTIO_MMIO_SIZE (VIRTIO_MMIO_SLOT * VIRTIO_MMIO_SLOTS)
#define VIRTIO_MMIO_FIRST_INTID 48 /* SPI 16 */

/* One MMIO access to an emulated device; false if the device has no such register. */
bool vpl011_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val);
void vpl011_reset(struct vm *vm);
/* An access to the virtio-mmio window (off from VIRTIO_MMIO_BASE): every slot is empty for now. */
bool virtio_mmio_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val);
/* Room in the VM's receive FIFO for a byte typed on the console? */
bool vpl011_room(struct vm *vm);
/* A byte typed on the console for this VM (dropped if there is no room). */
void vpl011_input(struct vm *vm, char c);
/* Arch: the guest made room in its full FIFO: run the console input interrupt soon (conmux_input_drain). */
void console_input_resume(void);

/* Arch: set an emulated device's (level-sensitive) interrupt line. */
void vm_set_irq_level(struct vm *vm, u32 intid, bool level);
#endif
