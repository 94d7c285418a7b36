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
#define SYS_write	64
#define SYS_exit	93

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

static long sys3(long nr, long a, long b, long c)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;

	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
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
	sys3(SYS_write, 1, (long)buf, p - buf);
	sys3(SYS_exit, 0, 0, 0);
	for (;;)
		;
}

__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"_start:\n"
	"	mov	x0, sp\n"
	"	bl	bp_main\n");
