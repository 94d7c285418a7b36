/* Emulated devices of the guest platform (docs/guest-platform.md). */
#ifndef QUIRE_VDEV_H
#define QUIRE_VDEV_H
#include <quire/vcpu.h>
#include <quire/vdev_map.h>

/* One MMIO access to an emulated device; false if the device has no such register. */
bool vpl011_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val);
void vpl011_reset(struct vm *vm);
/* Room in the VM's receive FIFO for a byte typed on the console? */
bool vpl011_room(struct vm *vm);
/* A byte typed on the console for this VM (dropped if there is no room). */
void vpl011_input(struct vm *vm, char c);
/* Arch: the guest made room in its full FIFO: run the console input interrupt soon (conmux_input_drain). */
void console_input_resume(void);

/* Arch: set an emulated device's interrupt line (a rising edge latches an edge-triggered one). */
void vm_set_irq_level(struct vm *vm, u32 intid, bool level);
#endif
