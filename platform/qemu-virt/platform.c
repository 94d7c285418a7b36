/* QEMU virt: its PL011 sits at 0x09000000 with a 24 MHz clock. */
#include <quire/platform.h>

const struct platform platform = {
	.name = "qemu-virt",
	.early_uart = 0x09000000,
	.uart_clock_hz = 24000000,
};
