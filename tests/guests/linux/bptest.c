/*
 * bptest: the target of gdb and perf in the tools initramfs
 * (scripts/mkinitramfs --tools, tests/qemu/test_linux_debug.py).
 *
 *   bptest [N]    sum 1..N (default 3) in bp_loop, storing each partial sum
 *                 in bp_watched, then print "bptest: n=N sum=S" and exit 0
 *
 * A static arm64 Linux program without libc, so that it needs nothing from
 * the guest, and every instruction perf counts in user space is one of ours:
 *   aarch64-linux-gnu-gcc -nostdlib -static -ffreestanding -O2 -g -o bptest bptest.c
 * bp_loop is written in assembly so that the test knows where each stepi
 * lands: +0 +4 +8, then +12 +16 +20 +24 once per iteration, then +28 +32.
 */
#include "nolibc.h"

volatile unsigned long bp_watched;	/* the watchpoint's target */

unsigned long bp_loop(unsigned long n);	/* n > 0 */
__asm__(
	"	.text\n"
	"	.globl	bp_loop\n"
	"	.type	bp_loop, %function\n"
	"	.balign	16\n"
	"bp_loop:\n"
	"	mov	x1, #0\n"
	"	adrp	x2, bp_watched\n"
	"	add	x2, x2, :lo12:bp_watched\n"
	"1:	add	x1, x1, x0\n"
	"	str	x1, [x2]\n"
	"	subs	x0, x0, #1\n"
	"	b.ne	1b\n"
	"	mov	x0, x1\n"
	"	ret\n"
	"	.size	bp_loop, . - bp_loop\n");

/* From _start: the initial stack holds argc, then argv[]. */
__attribute__((used)) static void bp_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	unsigned long n = argc > 1 ? parse_dec(argv[1]) : 3;
	char buf[80], *p = buf;

	if (n == 0)
		n = 1;
	unsigned long sum = bp_loop(n);
	p = put_str(p, "bptest: n=");
	p = put_dec(p, n);
	p = put_str(p, " sum=");
	p = put_dec(p, sum);
	*p++ = '\n';
	sys6(SYS_write, 1, (long)buf, p - buf, 0, 0, 0);
	sys6(SYS_exit, 0, 0, 0, 0, 0, 0);
	for (;;)
		;
}

__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"_start:\n"
	"	mov	x0, sp\n"
	"	bl	bp_main\n");
