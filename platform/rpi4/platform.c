/*
 * Raspberry Pi 4 (BCM2711) in low-peripheral mode: UART0 (PL011) at
 * 0xfe201000, clocked at 48 MHz by the firmware's default.
 */
#include <quire/platform.h>

const struct platform platform = {
	.name = "rpi4",
	.early_uart = 0xfe201000,
	.uart_clock_hz = 48000000,
};
