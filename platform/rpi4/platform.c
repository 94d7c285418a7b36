/*
 * Raspberry Pi 4 (BCM2711) in low-peripheral mode: UART0 (PL011) at
 * 0xfe201000, clocked at 48 MHz by the firmware's default.
 */
#include <quire/platform.h>

#define GPIO_BASE 0xfe200000UL
#define GPFSEL(n) (GPIO_BASE + 4 * (n))
#define GPIO_PUP_PDN_CNTRL_REG0 (GPIO_BASE + 0xe4)
#define FSEL_INPUT 0u
#define FSEL_ALT0 4u
#define PULL_UP 1u

static void gpio_function(unsigned pin, unsigned fsel)
{
	volatile u32 *r = (volatile u32 *)GPFSEL(pin / 10);
	unsigned shift = 3 * (pin % 10);

	*r = (*r & ~(7u << shift)) | fsel << shift;
}

/*
 * With enable_uart=1 alone the firmware gives GPIO 14/15, the header's
 * console pins, to the mini UART and UART0 to Bluetooth on GPIO 30-33.
 * Quire's console is UART0: take the pins for it (TXD0/RXD0 are ALT0),
 * whether or not config.txt had an overlay do it, and let the Bluetooth
 * pins go (Quire does not use Bluetooth).
 */
static void uart0_to_header_pins(void)
{
	volatile u32 *pull = (volatile u32 *)GPIO_PUP_PDN_CNTRL_REG0;

	for (unsigned pin = 30; pin <= 33; pin++)
		gpio_function(pin, FSEL_INPUT);
	gpio_function(14, FSEL_ALT0);
	gpio_function(15, FSEL_ALT0);
	/* RXD0 pulled up, as a line at rest: no noise read as input while unplugged. */
	*pull = (*pull & ~(3u << 30)) | PULL_UP << 30;
}

const struct platform platform = {
	.name = "rpi4",
	.early_uart = 0xfe201000,
	.uart_clock_hz = 48000000,
	.uart_pins = uart0_to_header_pins,
};
