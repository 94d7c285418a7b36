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
 *   allocfree -h MIB
 *
 * Holds memory the guest has free but cannot report (the balloon's policy
 * test): maps and writes MIB MiB as above, then unmaps every other 64 KiB,
 * so half of it is free in the guest in pieces smaller than the 128 KiB
 * blocks free page reporting hands over, and still resident in Quire. It
 * prints "allocfree: holding mib=MIB", then waits until a file
 * /tmp/allocfree-check exists, checks every page it kept, and prints
 * "allocfree: held ok mib=MIB" (or "page N wrong", exit 2).
 *
 * Static, without libc, so it needs nothing from the guest:
 *   aarch64-linux-gnu-gcc -nostdlib -static -ffreestanding -O2 -o allocfree allocfree.c
 */
#include <stdbool.h>
#include "nolibc.h"

#define PROT_READ	1
#define PROT_WRITE	2
#define MAP_PRIVATE	2
#define MAP_ANONYMOUS	0x20

#define PAGE		4096UL

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

#define SYS_faccessat	48
#define SYS_nanosleep	101
#define AT_FDCWD	-100
#define RUN_PAGES	16 /* 64 KiB */

static void say(char *buf, char *end)
{
	*end++ = '\n';
	sys6(SYS_write, 1, (long)buf, end - buf, 0, 0, 0);
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

static void check(volatile unsigned long *m, unsigned long pages, unsigned long r, bool kept_only)
{
	char buf[80], *p = buf;

	for (unsigned long k = 0; k < pages; k++)
		if ((!kept_only || !(k / RUN_PAGES & 1)) && m[k * PAGE / sizeof(*m)] != word(k, r)) {
			p = put_dec(put_str(p, "allocfree: page "), k);
			p = put_str(p, " wrong");
			say_exit(buf, p, 2);
		}
}

static void hold(volatile unsigned long *m, unsigned long mib)
{
	static const long second[2] = { 1, 0 };
	char buf[80], *p = buf;
	unsigned long pages = mib << 8;

	for (unsigned long k = RUN_PAGES; k < pages; k += 2 * RUN_PAGES)
		sys6(SYS_munmap, (long)(m + k * PAGE / sizeof(*m)), RUN_PAGES * PAGE, 0, 0, 0, 0);
	say(buf, put_dec(put_str(p, "allocfree: holding mib="), mib));
	while (sys6(SYS_faccessat, AT_FDCWD, (long)"/tmp/allocfree-check", 0, 0, 0, 0))
		sys6(SYS_nanosleep, (long)second, 0, 0, 0, 0, 0);
	check(m, pages, 0, true);
	say_exit(buf, put_dec(put_str(p, "allocfree: held ok mib="), mib), 0);
}

void run(long argc, char **argv);
void run(long argc, char **argv)
{
	char buf[160], *p = buf;
	bool holding = argc > 1 && argv[1][0] == '-' && argv[1][1] == 'h';

	if (holding) {
		argc--;
		argv++;
		argv[1] = argv[1] ? argv[1] : "";
	}
	unsigned long mib = argc > 1 ? parse_dec(argv[1]) : 0, rounds = argc > 2 ? parse_dec(argv[2]) : 1;
	unsigned long pages = mib << 8, ticks = 0, freed = 0;

	if (!mib || !rounds) {
		p = put_str(p, "usage: allocfree MIB [ROUNDS] | allocfree -h MIB");
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
		check(m, pages, r, false);
		if (holding)
			hold(m, mib);
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
