/*
 * Seeds for guests (include/quire/entropy.h): SipHash-2-4 (Aumasson and
 * Bernstein, 2012) keyed with the host's seeds, over a draw counter.
 */
#include <stdatomic.h>
#include <quire/entropy.h>

static u64 key[2];
static _Atomic u64 draws;

static u64 rotl(u64 x, unsigned b)
{
	return x << b | x >> (64 - b);
}

#define SIPROUND                                                                       \
	do {                                                                           \
		v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);              \
		v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                 \
		v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                 \
		v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);              \
	} while (0)

u64 siphash24_2x64(const u64 k[2], u64 a, u64 b)
{
	u64 v0 = k[0] ^ 0x736f6d6570736575UL, v1 = k[1] ^ 0x646f72616e646f6dUL;
	u64 v2 = k[0] ^ 0x6c7967656e657261UL, v3 = k[1] ^ 0x7465646279746573UL;
	u64 m[3] = { a, b, 16UL << 56 }; /* the last block: the length, no bytes left over */

	for (unsigned i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

bool entropy_init(const u8 *seed, unsigned n, u64 counter)
{
	u64 k[2] = { 0, counter };

	/* Every byte counts: folded in 16 at a time through the PRF itself. */
	for (unsigned i = 0; i < n; i += 16) {
		u64 w[2] = { 0, 0 };

		for (unsigned j = 0; j < 16 && i + j < n; j++)
			w[j / 8] |= (u64)seed[i + j] << (8 * (j % 8));
		k[0] = siphash24_2x64(k, w[0], w[1]);
		k[1] = siphash24_2x64(k, w[1], ~w[0]);
	}
	key[0] = k[0];
	key[1] = k[1] ^ counter;
	return n >= 16;
}

void entropy_draw(u8 *out, unsigned n)
{
	u64 d = atomic_fetch_add_explicit(&draws, 1, memory_order_relaxed);

	for (unsigned i = 0; i < n; i += 8) {
		u64 w = siphash24_2x64(key, d, i / 8);

		for (unsigned j = 0; j < 8 && i + j < n; j++)
			out[i + j] = (u8)(w >> (8 * j));
	}
}
