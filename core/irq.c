/* Physical interrupts that are core's: the scheduler's timer, the swap disk, console input. */
#include <quire/blk.h>
#include <quire/conmux.h>
#include <quire/pl011.h>
#include <quire/run.h>
#include <quire/vdisk.h>
#include <quire/vnet.h>
#include <arch/cpu.h>
#include <arch/irq.h>
#include <arch/ptimer.h>
#include <arch/vcpu.h>

void irq_handle(struct vcpu *v)
{
	u32 id;

	while ((id = irq_take(v)) != IRQ_NONE) {
		if (id == IRQ_SLICE) {
			sched_timer_fired();
			if (v)
				ptimer_update(v); /* perhaps its deadline */
		} else if (id >= 32 && id == blk_irq()) {
			/* The swap disk: InterruptACK, then the used ring, inside blk_complete. */
			blk_complete(cpu_id());
		} else if (id == console_input_irq()) {
			int c;

			/* Also raised by software when a VM made room for bytes held for it. */
			conmux_input_drain();
			while ((c = pl011_getc()) >= 0)
				conmux_input((char)c, cpu_id());
		}
	}
	/* A host disk completion, or a swap-in a guest disk's request waited for, lets it move on. */
	vdisk_kick(cpu_id());
	vnet_kick(cpu_id());
}
