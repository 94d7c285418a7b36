/* ARM PrimeCell UART (PL011), polled output for the hypervisor console. */
#include <quire/console.h>
#include <quire/pl011.h>

#define UARTDR 0x00
#define UARTFR 0x18
#define UARTIBRD 0x24
#define UARTFBRD 0x28
#define UARTLCR_H 0x2c
#define UARTCR 0x30
#define UARTIMSC 0x38
#define UARTICR 0x44
#define FR_RXFE (1 << 4)
#define IMSC_RX (1 << 4)
#define IMSC_RT (1 << 6)

#define FR_TXFF (1 << 5)
#define FR_BUSY (1 << 3)
#define LCR_H_FEN (1 << 4)
#define LCR_H_WLEN8 (3 << 5)
#define CR_UARTEN (1 << 0)
#define CR_TXE (1 << 8)
#define CR_RXE (1 << 9)

static volatile u32 *uart;

static inline u32 rd(unsigned off)
{
	return uart[off / 4];
}

static inline void wr(unsigned off, u32 v)
{
	uart[off / 4] = v;
}

static void pl011_putc(char c)
{
	while (rd(UARTFR) & FR_TXFF)
		;
	wr(UARTDR, (u8)c);
}

void pl011_console_init(paddr_t base, u32 clock_hz)
{
	if (uart) {
		/* Switching UARTs: let the old one drain first. */
		while (rd(UARTFR) & FR_BUSY)
			;
	}
	uart = (volatile u32 *)(uintptr_t)base;
	if (!(rd(UARTCR) & CR_UARTEN) && clock_hz) {
		/* Divisor = clock / (16 * 115200), fraction in 64ths, rounded. */
		u32 div64 = (clock_hz * 4 + 115200 / 2) / 115200;

		wr(UARTCR, 0);
		wr(UARTIBRD, div64 >> 6);
		wr(UARTFBRD, div64 & 0x3f);
		wr(UARTLCR_H, LCR_H_FEN | LCR_H_WLEN8);
		wr(UARTIMSC, 0);
		wr(UARTCR, CR_UARTEN | CR_TXE | CR_RXE);
	}
	console_set_output(pl011_putc);
}

/* Next received byte, or -1 when the receive FIFO is empty. */
int pl011_getc(void)
{
	if (!uart || (rd(UARTFR) & FR_RXFE))
		return -1;
	return rd(UARTDR) & 0xff;
}

/* Interrupt on received bytes (and receive timeout), for guest console input; or not. */
void pl011_rx_irq(bool on)
{
	/* No ICR write: bytes still waiting must keep their interrupt asserted. */
	wr(UARTIMSC, on ? IMSC_RX | IMSC_RT : 0);
}
