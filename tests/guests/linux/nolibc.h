/*
 * What the test guest's static programs (allocfree.c, bptest.c) use instead
 * of a libc: Linux arm64 system calls and a few string helpers. Each program
 * is built alone by scripts/mkinitramfs with -nostdlib -ffreestanding.
 */
#ifndef NOLIBC_H
#define NOLIBC_H

#define SYS_write	64
#define SYS_exit	93
#define SYS_munmap	215
#define SYS_mmap	222

static inline long sys6(long nr, long a, long b, long c, long d, long e, long f)
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

static inline char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static inline char *put_dec(char *p, unsigned long v)
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

static inline unsigned long parse_dec(const char *s)
{
	unsigned long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long)(*s++ - '0');
	return v;
}
#endif
