/*
 * Freestanding string functions: what libfdt needs (memchr memcmp memcpy
 * memmove memset strchr strlen strnlen strrchr strtoul) plus a few of ours.
 * Byte-wise, except memcpy, memmove, memset and memcmp on aligned memory,
 * which copy guest images (megabytes), build guests' DTs, clear boot-time
 * metadata and compare pages before they are merged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (!(((uintptr_t)d | (uintptr_t)s) & 7)) {
		for (; n >= 64; n -= 64, d += 64, s += 64) {
			const unsigned long *ws = (const unsigned long *)s;
			unsigned long *wd = (unsigned long *)d;
			unsigned long a = ws[0], b = ws[1], c = ws[2], e = ws[3];
			unsigned long f = ws[4], g = ws[5], h = ws[6], k = ws[7];

			wd[0] = a, wd[1] = b, wd[2] = c, wd[3] = e;
			wd[4] = f, wd[5] = g, wd[6] = h, wd[7] = k;
		}
		/* The tail of a trap frame (288 bytes, copied on every vCPU switch) a word at a time. */
		for (; n >= 8; n -= 8, d += 8, s += 8)
			*(unsigned long *)d = *(const unsigned long *)s;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s)
		return memcpy(dst, src, n);
	/*
	 * Backwards, from the end. libfdt moves the rest of a blob up this way
	 * for every node and property it adds: a word at a time where the two
	 * agree in alignment (8 or 4 bytes apart modulo 8), after the bytes that
	 * bring the end to it.
	 */
	if (!(((uintptr_t)d ^ (uintptr_t)s) & 7)) {
		for (; n && ((uintptr_t)(d + n) & 7); n--)
			d[n - 1] = s[n - 1];
		for (; n >= 8; n -= 8)
			*(unsigned long *)(d + n - 8) = *(const unsigned long *)(s + n - 8);
	} else if (!(((uintptr_t)d ^ (uintptr_t)s) & 3)) {
		for (; n && ((uintptr_t)(d + n) & 3); n--)
			d[n - 1] = s[n - 1];
		for (; n >= 4; n -= 4)
			*(unsigned int *)(d + n - 4) = *(const unsigned int *)(s + n - 4);
	}
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	/* Up to 8-byte alignment, then 64 bytes a step (share_init clears megabytes at boot), then the tail. */
	for (; n && ((uintptr_t)p & 7); n--)
		*p++ = (unsigned char)c;
	if (n >= 64) {
		unsigned long w = (unsigned char)c * 0x0101010101010101UL;

		for (; n >= 64; n -= 64, p += 64) {
			unsigned long *q = (unsigned long *)p;

			q[0] = w, q[1] = w, q[2] = w, q[3] = w;
			q[4] = w, q[5] = w, q[6] = w, q[7] = w;
		}
	}
	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	/* Whole pages are compared before every merge: 32 bytes a step while they agree. */
	if (!(((uintptr_t)x | (uintptr_t)y) & 7)) {
		for (; n >= 32; n -= 32, x += 32, y += 32) {
			const uint64_t *p = (const uint64_t *)x, *q = (const uint64_t *)y;

			if ((p[0] ^ q[0]) | (p[1] ^ q[1]) | (p[2] ^ q[2]) | (p[3] ^ q[3]))
				break; /* the bytes below find where */
		}
	}
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;

	for (; n; n--, p++)
		if (*p == (unsigned char)c)
			return (void *)p;
	return NULL;
}

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return p - s;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *strrchr(const char *s, int c)
{
	const char *last = NULL;

	for (;; s++) {
		if (*s == (char)c)
			last = s;
		if (!*s)
			return (char *)last;
	}
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

unsigned long strtoul(const char *s, char **end, int base)
{
	unsigned long v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '+')
		s++;
	if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		base = 16;
	} else if (base == 0) {
		base = (s[0] == '0') ? 8 : 10;
	}
	for (; digit_value(*s) < base; s++)
		v = v * base + digit_value(*s);
	if (end)
		*end = (char *)s;
	return v;
}
