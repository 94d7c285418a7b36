/* Physical interrupts: the arch's part (arch/arm64/irq.c); core's is core/irq.c. */
#ifndef ARCH_IRQ_H
#define ARCH_IRQ_H
#include <quire/vcpu.h>
#include <arch/gic.h>

#define IRQ_NONE (~0u)
#define IRQ_SLICE PPI_HTIMER /* Quire's own timer: time slices, wake-ups */

/*
 * Acknowledge pending interrupts and handle the vGIC's own (v: the vCPU
 * loaded here, if any) until one is core's: its id (IRQ_SLICE, a device's
 * SPI), or IRQ_NONE when none is left, or after a kick (whatever else is
 * pending brings the CPU back at once).
 */
u32 irq_take(struct vcpu *v);
#endif
