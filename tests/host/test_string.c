/*
 * Quire's own memcpy, memmove, memset and memcmp (lib/string.c), which the
 * other host tests never run (the host libc stands in), against the host
 * libc's on random offsets, lengths and overlaps: their word-at-a-time
 * paths are taken only for some alignments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* lib/string.c under other names, beside the libc's. */
#define memcpy q_memcpy
#define memmove q_memmove
#define memset q_memset
#define memcmp q_memcmp
#define memchr q_memchr
#define strlen q_strlen
#define strnlen q_strnlen
#define strchr q_strchr
#define strrchr q_strrchr
#define strcmp q_strcmp
#define strncmp q_strncmp
#define strtoul q_strtoul
#include "../../lib/string.c"
#undef memcpy
#undef memmove
#undef memset
#undef memcmp

#define BUF 700

static void fill(unsigned char *a, unsigned char *b)
{
	for (int i = 0; i < BUF; i++)
		a[i] = b[i] = (unsigned char)rand();
}

static void against_libc(void **state)
{
	unsigned char a[BUF], b[BUF];

	(void)state;
	srand(19);
	for (int it = 0; it < 100000; it++) {
		int so = rand() % 340, d = rand() % 340, n = rand() % 340, c = rand() & 255;

		fill(a, b);
		q_memmove(a + d, a + so, n);
		memmove(b + d, b + so, n);
		assert_memory_equal(a, b, BUF);
		if (so + n <= d || d + n <= so) { /* memcpy only without overlap */
			q_memcpy(a + d, a + so, n);
			memcpy(b + d, b + so, n);
			assert_memory_equal(a, b, BUF);
		}
		q_memset(a + so, c, n);
		memset(b + so, c, n);
		assert_memory_equal(a, b, BUF);
		fill(a, b);
		b[so + n / 2] ^= (unsigned char)(1 + rand() % 255);
		assert_true((q_memcmp(a + so, b + so, n) != 0) == (n > 0));
		assert_int_equal(q_memcmp(a + d, a + d, n), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(against_libc) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
