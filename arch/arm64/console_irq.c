/* The host UART's receive interrupt, which brings console input to the multiplexer. Calls nothing in core. */
#include <quire/machine.h>
#include <quire/pl011.h>
#include <quire/vdev.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/vcpu.h>

static u32 console_irq;

void console_input_init(const struct machine *m)
{
	console_irq = m->uart.irq;
	if (console_irq >= 32) {
		pl011_rx_irq(true);
		gic_enable_spi(console_irq, cpu_id());
	}
}

u32 console_input_irq(void)
{
	return console_irq >= 32 ? console_irq : ~0u;
}

void console_input_resume(void)
{
	if (console_irq >= 32)
		gic_set_pending(console_irq);
}
