/*
 * qemuboot: a guest that knows nothing of Quire and reports what QEMU's
 * -kernel boot protocol gave it (docs/guest-platform.md, "Booting other
 * images"), on the PL011 at 0x09000000: its registers at entry, its own
 * load address, the device tree (found through x0, else at the RAM base as
 * QEMU leaves it for an ELF), whether that lies above the image and the
 * initramfs, /chosen's bootargs and initrd. Then PSCI SYSTEM_OFF.
 *
 * Built twice (Makefile): qemuboot.bin, a raw binary linked for RAM +
 * 0x80000, and qemuboot.elf, an ELF linked at RAM + 2 MiB with a data and
 * a bss segment. Both also run on bare QEMU (tests/qemu/test_bootproto.py
 * compares the two), e.g.
 *     qemu-system-aarch64 -M virt -cpu cortex-a72 -m 256M -nographic \
 *         -kernel build/guests/qemuboot.bin -append hello
 * MMU off: every access is Device-nGnRnE, so bytes are read one at a time.
 */
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#define UART_DR 0x09000000UL
#define UART_FR 0x09000018UL
#define RAM_BASE 0x40000000UL
#define FDT_MAGIC 0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9
#define PSCI_SYSTEM_OFF 0x84000008UL

extern char _start[], _end[];
u64 entry_regs[4]; /* x0-x3 as the entry found them (bss; global for _start) */
static volatile u32 data_word = 0x5a17c0de; /* in the data segment: was it loaded? */

/* Entry: keep x0-x3, a stack in the bss, then main. */
asm(".section .text.start, \"ax\"\n"
    ".global _start\n"
    "_start:\n"
    "	adrp	x9, entry_regs\n"
    "	add	x9, x9, :lo12:entry_regs\n"
    "	stp	x0, x1, [x9]\n"
    "	stp	x2, x3, [x9, #16]\n"
    "	adrp	x9, qemuboot_stack + 8192\n"
    "	add	x9, x9, :lo12:qemuboot_stack + 8192\n"
    "	mov	sp, x9\n"
    "	bl	qemuboot_main\n"
    "1:	wfi\n"
    "	b	1b\n"
    ".text\n");

u8 qemuboot_stack[8192] __attribute__((aligned(16)));

static void putc_(char c)
{
	if (c == '\n')
		putc_('\r');
	while (*(volatile u32 *)UART_FR & (1u << 5)) /* TXFF */
		;
	*(volatile u32 *)UART_DR = (u8)c;
}

static void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}

static void hex(u64 v)
{
	puts_("0x");
	for (int i = 60; i >= 0; i -= 4)
		if (v >> i || !i)
			putc_("0123456789abcdef"[(v >> i) & 15]);
}

static void dec(u64 v)
{
	char b[24];
	int i = 0;

	do
		b[i++] = '0' + v % 10;
	while (v /= 10);
	while (i)
		putc_(b[--i]);
}

static u32 be32(u64 a)
{
	const volatile u8 *p = (const volatile u8 *)a;

	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static u64 be_cells(u64 a, u32 len)
{
	return len == 8 ? (u64)be32(a) << 32 | be32(a + 4) : len == 4 ? be32(a) : 0;
}

static int str_eq(u64 a, const char *s)
{
	const volatile u8 *p = (const volatile u8 *)a;

	for (; *s; s++, p++)
		if (*p != (u8)*s)
			return 0;
	return *p == 0;
}

static int is_fdt(u64 a)
{
	/* Only RAM can hold it: anything else might be a device, or nothing. */
	return a >= RAM_BASE && !(a & 7) && be32(a) == FDT_MAGIC;
}

struct chosen {
	u64 bootargs; /* address of the string, 0: none */
	u64 initrd_start, initrd_end;
	int initrd;
};

/* Walk the structure block for /chosen (a node named "chosen" at depth 1). */
static int find_chosen(u64 dt, struct chosen *ch)
{
	u64 size = be32(dt + 4), p = dt + be32(dt + 8), strings = dt + be32(dt + 12);
	int depth = 0, in_chosen = 0;

	while (p + 4 <= dt + size) {
		u32 tok = be32(p);

		p += 4;
		if (tok == FDT_BEGIN_NODE) {
			in_chosen = depth == 1 && str_eq(p, "chosen");
			depth++;
			while (*(const volatile u8 *)p++)
				;
			p = (p + 3) & ~3UL;
		} else if (tok == FDT_END_NODE) {
			depth--;
			in_chosen = 0;
		} else if (tok == FDT_PROP) {
			u32 len = be32(p), name = be32(p + 4);
			u64 val = p + 8;

			if (in_chosen && depth == 2) {
				if (str_eq(strings + name, "bootargs"))
					ch->bootargs = val;
				else if (str_eq(strings + name, "linux,initrd-start"))
					ch->initrd_start = be_cells(val, len), ch->initrd |= 1;
				else if (str_eq(strings + name, "linux,initrd-end"))
					ch->initrd_end = be_cells(val, len), ch->initrd |= 2;
			}
			p = (val + len + 3) & ~3UL;
		} else if (tok == FDT_END) {
			return 0;
		} else if (tok != FDT_NOP) {
			return -1;
		}
	}
	return -1;
}

static void yes(const char *what, int v)
{
	puts_("qemuboot: ");
	puts_(what);
	puts_(v ? ": yes\n" : ": no\n");
}

void qemuboot_main(void);
void qemuboot_main(void)
{
	u64 start = (u64)_start, end = (u64)_end, dt = 0;
	struct chosen ch = { 0 };

	puts_("qemuboot: start=");
	hex(start);
	puts_(" end=");
	hex(end);
	puts_("\nqemuboot: x0=");
	hex(entry_regs[0]);
	puts_(" x1=");
	hex(entry_regs[1]);
	puts_(" x2=");
	hex(entry_regs[2]);
	puts_(" x3=");
	hex(entry_regs[3]);
	puts_("\n");
	yes("data loaded", data_word == 0x5a17c0de);
	if (is_fdt(entry_regs[0])) {
		dt = entry_regs[0];
		puts_("qemuboot: dt via x0");
	} else if (is_fdt(RAM_BASE)) {
		dt = RAM_BASE;
		puts_("qemuboot: dt at the RAM base");
	} else {
		puts_("qemuboot: no dt\n");
	}
	if (dt) {
		puts_(" at ");
		hex(dt);
		puts_(" totalsize=");
		dec(be32(dt + 4));
		puts_("\n");
		yes("dt above image", dt >= end);
		yes("dt below image", dt + be32(dt + 4) <= start);
		if (find_chosen(dt, &ch))
			puts_("qemuboot: dt structure unreadable\n");
		puts_("qemuboot: bootargs=");
		if (ch.bootargs) {
			puts_("\"");
			puts_((const char *)ch.bootargs);
			puts_("\"\n");
		} else {
			puts_("none\n");
		}
		if (ch.initrd == 3) {
			puts_("qemuboot: initrd=");
			hex(ch.initrd_start);
			puts_("-");
			hex(ch.initrd_end);
			puts_("\n");
			yes("dt above initrd", dt >= ch.initrd_end);
			yes("initrd above image", ch.initrd_start >= end);
		} else {
			puts_("qemuboot: initrd=none\n");
		}
	}
	puts_("qemuboot: done\n");
	register u64 x0 asm("x0") = PSCI_SYSTEM_OFF; /* set here: a call in between would clobber it */
	asm volatile("hvc #0" : "+r"(x0) : : "memory");
	for (;;)
		asm volatile("wfi");
}
