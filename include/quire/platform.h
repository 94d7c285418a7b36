/* What the device tree cannot tell: one small file per board under platform/. */
#ifndef QUIRE_PLATFORM_H
#define QUIRE_PLATFORM_H
#include <quire/types.h>

struct platform {
	const char *name;
	/* PL011 used before (or without) a valid device tree. */
	paddr_t early_uart;
	/* UART reference clock, for programming the baud rate if firmware left it off. */
	u32 uart_clock_hz;
	/* Routes the early UART to the board's console pins, or NULL; runs before the MMU is on. */
	void (*uart_pins)(void);
};

extern const struct platform platform;
#endif
