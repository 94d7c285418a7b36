/*
 * What the test guest's static programs (allocfree.c, bptest.c, netflood.c,
 * netstream.c) use instead of a libc: Linux arm64 system calls and a few
 * string helpers. Each program is built alone by scripts/mkinitramfs with
 * -nostdlib -ffreestanding. A system call returns -errno on failure.
 */
#ifndef NOLIBC_H
#define NOLIBC_H

/* arm64 uses the generic numbers (include/uapi/asm-generic/unistd.h). */
#define SYS_ioctl	29
#define SYS_openat	56
#define SYS_close	57
#define SYS_read	63
#define SYS_write	64
#define SYS_exit	93
#define SYS_clock_gettime 113
#define SYS_socket	198
#define SYS_bind	200
#define SYS_listen	201
#define SYS_accept	202
#define SYS_connect	203
#define SYS_sendto	206
#define SYS_recvfrom	207
#define SYS_setsockopt	208
#define SYS_shutdown	210
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

/* v as 16 lowercase hex digits. */
static inline char *put_hex64(char *p, unsigned long v)
{
	for (int sh = 60; sh >= 0; sh -= 4)
		*p++ = "0123456789abcdef"[v >> sh & 15];
	return p;
}

static inline unsigned long parse_dec(const char *s)
{
	unsigned long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long)(*s++ - '0');
	return v;
}

/* A whole decimal number (digits only) into *v: 0 if s is not one. */
static inline int parse_num(const char *s, unsigned long *v)
{
	if (!s || *s < '0' || *s > '9')
		return 0;
	*v = parse_dec(s);
	while (*s >= '0' && *s <= '9')
		s++;
	return !*s;
}
#endif
