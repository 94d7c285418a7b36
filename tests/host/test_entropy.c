/* Guests' seeds (core/entropy.c): the PRF against SipHash-2-4's published vector; draws. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <quire/entropy.h>

/* The reference implementation's vector for the 16-byte message 00..0f under key 00..0f. */
static void siphash_vector(void **state)
{
	const u64 k[2] = { 0x0706050403020100UL, 0x0f0e0d0c0b0a0908UL };

	(void)state;
	assert_true(siphash24_2x64(k, 0x0706050403020100UL, 0x0f0e0d0c0b0a0908UL) == 0x3f2acc7f57c29bdbUL);
}

/* Every draw is new; the same seed gives the same stream only with the same counter; every seed byte counts. */
static void draws_differ_and_follow_the_seed(void **state)
{
	u8 seed[40], a[64], b[64], c[64];

	(void)state;
	for (unsigned i = 0; i < sizeof(seed); i++)
		seed[i] = (u8)(i * 7 + 1);
	assert_true(entropy_init(seed, sizeof(seed), 1000));
	entropy_draw(a, sizeof(a));
	entropy_draw(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	seed[39] ^= 1; /* the last byte of kaslr-seed */
	entropy_init(seed, sizeof(seed), 1000);
	entropy_draw(c, sizeof(c));
	assert_memory_not_equal(a, c, sizeof(a));
	assert_memory_not_equal(b, c, sizeof(b));
	/* No seed: still a stream, but the caller is told it is weak. */
	assert_false(entropy_init(NULL, 0, 1000));
	assert_false(entropy_init(seed, 8, 1000));
	entropy_draw(c, 13); /* a length that is not a multiple of 8 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(siphash_vector),
		cmocka_unit_test(draws_differ_and_follow_the_seed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
