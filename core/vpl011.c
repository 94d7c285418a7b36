/*
 * An emulated PL011 per VM: what Linux's amba-pl011 driver uses. Output goes
 * to the console multiplexer at once (core/conmux.c), so the transmitter is
 * always empty and its interrupt is raised on every write (as QEMU's model
 * does); input comes from the physical console into a 64-byte receive FIFO.
 */
#include <string.h>
#include <quire/conmux.h>
#include <quire/spinlock.h>
#include <quire/vdev.h>

#define UARTDR 0x00
#define UARTRSR 0x04
#define UARTFR 0x18
#define UARTILPR 0x20
#define UARTIBRD 0x24
#define UARTFBRD 0x28
#define UARTLCR_H 0x2c
#define UARTCR 0x30
#define UARTIFLS 0x34
#define UARTIMSC 0x38
#define UARTRIS 0x3c
#define UARTMIS 0x40
#define UARTICR 0x44
#define UARTDMACR 0x48

#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)
#define FR_RXFF (1u << 6)
#define FR_TXFE (1u << 7)
#define INT_RX (1u << 4)
#define INT_TX (1u << 5)
#define INT_RT (1u << 6)
#define FIFO 64

struct vpl011 {
	spinlock_t lock;
	u8 rx[FIFO];
	unsigned head, count;
	u32 ris, imsc, cr, lcr_h, ibrd, fbrd, ifls, dmacr, ilpr;
};

static struct vpl011 uarts[MAX_VMS];

/* AMBA peripheral and PrimeCell IDs at 0xfe0-0xffc: a PL011 r1p5. */
static const u8 ids[8] = { 0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

void vpl011_reset(struct vm *vm)
{
	struct vpl011 *u = &uarts[vm->id - 1];

	memset(u, 0, sizeof(*u));
	u->cr = 0x300; /* TXE, RXE */
	u->ifls = 0x12;
}

/* Lock held. */
static void update_irq(struct vm *vm, struct vpl011 *u)
{
	vm_set_irq_level(vm, VPL011_INTID, (u->ris & u->imsc) != 0);
}

bool vpl011_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val)
{
	struct vpl011 *u = &uarts[vm->id - 1];
	u32 v = write ? (u32)*val : 0;
	bool ok = true;

	if (size > 4)
		return false;
	spin_lock(&u->lock);
	if (off >= 0xfe0 && off < 0x1000) {
		if (!write)
			v = ids[(off - 0xfe0) / 4];
	} else {
		switch (off) {
		case UARTDR:
			if (write) {
				conmux_vm_output(vm, (char)v);
				u->ris |= INT_TX;
			} else if (u->count) {
				v = u->rx[u->head];
				u->head = (u->head + 1) % FIFO;
				if (u->count-- == FIFO)
					console_input_resume();
				if (!u->count)
					u->ris &= ~(INT_RX | INT_RT);
			}
			break;
		case UARTRSR:
			break; /* no errors; writes clear them */
		case UARTFR:
			v = FR_TXFE | (u->count ? 0 : FR_RXFE) | (u->count == FIFO ? FR_RXFF : 0);
			break;
		case UARTILPR: if (write) u->ilpr = v; else v = u->ilpr; break;
		case UARTIBRD: if (write) u->ibrd = v; else v = u->ibrd; break;
		case UARTFBRD: if (write) u->fbrd = v; else v = u->fbrd; break;
		case UARTLCR_H: if (write) u->lcr_h = v; else v = u->lcr_h; break;
		case UARTCR: if (write) u->cr = v; else v = u->cr; break;
		case UARTIFLS: if (write) u->ifls = v; else v = u->ifls; break;
		case UARTIMSC: if (write) u->imsc = v & 0x7ff; else v = u->imsc; break;
		case UARTRIS: if (!write) v = u->ris; break;
		case UARTMIS: if (!write) v = u->ris & u->imsc; break;
		case UARTICR: if (write) u->ris &= ~v; break;
		case UARTDMACR: if (write) u->dmacr = v; else v = u->dmacr; break;
		default:
			ok = false;
		}
	}
	if (!write)
		*val = v;
	update_irq(vm, u);
	spin_unlock(&u->lock);
	return ok;
}

bool vpl011_room(struct vm *vm)
{
	return uarts[vm->id - 1].count < FIFO;
}

void vpl011_input(struct vm *vm, char c)
{
	struct vpl011 *u = &uarts[vm->id - 1];

	spin_lock(&u->lock);
	if (u->count < FIFO) {
		u->rx[(u->head + u->count) % FIFO] = (u8)c;
		u->count++;
		u->ris |= INT_RX | INT_RT;
	}
	update_irq(vm, u);
	spin_unlock(&u->lock);
}
