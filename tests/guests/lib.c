/* Console, hypercalls and the exception report shared by the test guests. */
#include "guest.h"

struct abort_rec aborts[MAX_VCPUS];
_Static_assert(sizeof(struct abort_rec) == 1 << ABORT_REC_SHIFT, "start.S indexes aborts[] by shifting");

#ifdef DEBUG
/* Bare QEMU virt without Quire: the PL011 at 0x09000000; PSCI is QEMU's (HVC conduit). */
#define UART_DR 0x09000000UL
#define UART_FR 0x09000018UL
void con_putc(char c)
{
	if (c == '\n')
		con_putc('\r');
	while (*(volatile u32 *)UART_FR & (1u << 5))
		;
	*(volatile u32 *)UART_DR = (u32)(unsigned char)c;
}
#else
void con_putc(char c)
{
	hvc(QUIRE_HC_PUTC, (unsigned char)c, 0, 0);
}
#endif

void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

static void put_u64(u64 v, unsigned base, bool neg)
{
	char buf[24];
	int i = 0;

	if (neg)
		con_putc('-');
	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i)
		con_putc(buf[--i]);
}

void pr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		bool l = false;

		if (*fmt != '%') {
			con_putc(*fmt);
			continue;
		}
		if (*++fmt == 'l') {
			l = true;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			con_puts(va_arg(ap, const char *));
			break;
		case 'c':
			con_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			s64 v = l ? va_arg(ap, s64) : va_arg(ap, int);
			put_u64(v < 0 ? -(u64)v : (u64)v, 10, v < 0);
			break;
		}
		case 'u':
			put_u64(l ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, false);
			break;
		case 'x':
			put_u64(l ? va_arg(ap, u64) : va_arg(ap, unsigned), 16, false);
			break;
		case '%':
			con_putc('%');
			break;
		default:
			con_putc('?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	va_end(ap);
}

struct mem_stats mem_stats(void)
{
#ifdef DEBUG
	return (struct mem_stats){ .ok = false };
#else
	struct smccc_res r = hvc(QUIRE_HC_MEM_STATS, 0, 0, 0);

	return (struct mem_stats){ .ok = r.x0 == 0, .fills = r.x1, .resident = r.x2, .pgtables = r.x3 };
#endif
}

struct mem_quota mem_quota(void)
{
#ifdef DEBUG
	return (struct mem_quota){ .ok = false };
#else
	struct smccc_res r = hvc(QUIRE_HC_MEM_QUOTA, 0, 0, 0);

	return (struct mem_quota){ .ok = r.x0 == 0, .quota = r.x1, .charged = r.x2, .refused = r.x3 };
#endif
}

s64 psci_cpu_on(u64 mpidr, u64 entry, u64 context)
{
	return (s64)hvc(PSCI_CPU_ON_64, mpidr, entry, context).x0;
}

void park(void)
{
	hvc(PSCI_CPU_OFF, 0, 0, 0);
	for (;;)
		asm volatile("wfi");
}

void system_off(void)
{
	hvc(PSCI_SYSTEM_OFF, 0, 0, 0);
	park();
}

/* Any exception but a data abort or an expected UNDEF at EL1 (start.S): report and end the VM. */
__attribute__((noreturn)) void guest_unexpected(u64 vector, u64 esr, u64 far, u64 elr)
{
	static volatile u64 nested[MAX_VCPUS];

	if (nested[vcpu_self()]++) /* faulted while reporting: just stop */
		system_off();
	pr("guest: FAIL unexpected exception: vCPU %lu vector %lu (offset 0x%lx) "
	   "esr=0x%lx far=0x%lx elr=0x%lx\n",
	   vcpu_self(), vector, vector * 0x80, esr, far, elr);
	system_off();
}
