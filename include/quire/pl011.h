#ifndef QUIRE_PL011_H
#define QUIRE_PL011_H
#include <quire/types.h>

/* Take over the PL011 at base as the console; programs 115200 8N1 only if it is off. */
void pl011_console_init(paddr_t base, u32 clock_hz);
/* Next received byte, or -1 when none is waiting. */
int pl011_getc(void);
/* Interrupt on received bytes, or not (while the guest's FIFO is full). */
void pl011_rx_irq(bool on);
#endif
