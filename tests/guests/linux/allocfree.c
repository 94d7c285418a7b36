/*
 * allocfree: a guest program that takes memory, uses it and gives it back
 * (tests/qemu/test_balloon.py, scripts/bench-balloon).
 *
 *   allocfree MIB [ROUNDS]
 *
 * Each round maps MIB MiB of anonymous memory, writes a word to every 4 KiB
 * page (a value of its own, so no two pages are alike and none is zero:
 * Quire's sharing cannot take them back), reads every page back, and unmaps
 * it all. Then it prints
 *
 *   allocfree: ok mib=MIB rounds=ROUNDS ticks=T freed=C cntfrq=F
 *
 * T: CNTVCT_EL0 ticks spent in all rounds; C: CNTVCT_EL0 just after the last
 * unmap, when the memory is free in the guest; F: CNTFRQ_EL0. Exit 0. A map
 * that fails prints "allocfree: mmap of MIB MiB failed" and exits 1; a page
 * that reads back wrong prints "allocfree: page N wrong" and exits 2. A
 * guest out of memory kills it (the shell says "Killed").
 *
 * Static, without libc, so it needs nothing from the guest:
 *   aarch64-linux-gnu-gcc -nostdlib -static -ffreestanding -O2 -o allocfree allocfree.c
 */
#define SYS_write	64
#define SYS_exit	93
#define SYS_munmap	215
#define SYS_mmap	222

#define PROT_READ	1
#define PROT_WRITE	2
#define MAP_PRIVATE	2
#define MAP_ANONYMOUS	0x20

#define PAGE		4096UL

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}

static unsigned long cntvct(void)
{
	unsigned long v;

	/* The ISB keeps the read from being taken early (Arm ARM D12.1: reads of the counter are not ordered). */
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
}

static unsigned long cntfrq(void)
{
	unsigned long v;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v));
	return v;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_dec(char *p, unsigned long v)
{
	char tmp[20];
	int i = 0;

	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		*p++ = tmp[--i];
	return p;
}

static unsigned long parse_dec(const char *s)
{
	unsigned long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long)(*s++ - '0');
	return v;
}

static void say_exit(char *buf, char *end, int code)
{
	*end++ = '\n';
	sys6(SYS_write, 1, (long)buf, end - buf, 0, 0, 0);
	sys6(SYS_exit, code, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}

/* Every page's word: the page number and the round, never zero. */
static unsigned long word(unsigned long page, unsigned long round)
{
	return (page << 16 | round) * 0x9e3779b97f4a7c15UL | 1;
}

void run(long argc, char **argv);
void run(long argc, char **argv)
{
	char buf[160], *p = buf;
	unsigned long mib = argc > 1 ? parse_dec(argv[1]) : 0, rounds = argc > 2 ? parse_dec(argv[2]) : 1;
	unsigned long pages = mib << 8, ticks = 0, freed = 0;

	if (!mib || !rounds) {
		p = put_str(p, "usage: allocfree MIB [ROUNDS]");
		say_exit(buf, p, 1);
	}
	for (unsigned long r = 0; r < rounds; r++) {
		unsigned long t0 = cntvct();
		long a = sys6(SYS_mmap, 0, (long)(pages * PAGE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		volatile unsigned long *m = (volatile unsigned long *)a;

		if (a < 0 && a > -4096) {
			p = put_dec(put_str(p, "allocfree: mmap of "), mib);
			p = put_str(p, " MiB failed");
			say_exit(buf, p, 1);
		}
		for (unsigned long k = 0; k < pages; k++)
			m[k * PAGE / sizeof(*m)] = word(k, r);
		for (unsigned long k = 0; k < pages; k++)
			if (m[k * PAGE / sizeof(*m)] != word(k, r)) {
				p = put_dec(put_str(p, "allocfree: page "), k);
				p = put_str(p, " wrong");
				say_exit(buf, p, 2);
			}
		sys6(SYS_munmap, a, (long)(pages * PAGE), 0, 0, 0, 0);
		freed = cntvct();
		ticks += freed - t0;
	}
	p = put_dec(put_str(p, "allocfree: ok mib="), mib);
	p = put_dec(put_str(p, " rounds="), rounds);
	p = put_dec(put_str(p, " ticks="), ticks);
	p = put_dec(put_str(p, " freed="), freed);
	p = put_dec(put_str(p, " cntfrq="), cntfrq());
	say_exit(buf, p, 0);
}

/* The kernel starts a static program with sp at argc, then the argv pointers. */
__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"	.type	_start, %function\n"
	"_start:\n"
	"	ldr	x0, [sp]\n"
	"	add	x1, sp, #8\n"
	"	bl	run\n"
	"	.size	_start, . - _start\n");
