/*
 * Seeds for guests (core/entropy.c): Quire's loader gives it randomness in
 * the host DT (/chosen rng-seed and kaslr-seed: QEMU, U-Boot with an RNG);
 * it keys a PRF (SipHash-2-4) with it, and every draw is a fresh block of
 * the PRF's output. A guest gets 64 bytes as its DT's /chosen/rng-seed, so
 * Linux's random pool is ready before it needs it (without one, Linux 6.1
 * spends about 26 M instructions of its boot making entropy).
 */
#ifndef QUIRE_ENTROPY_H
#define QUIRE_ENTROPY_H
#include <quire/types.h>

#define ENTROPY_SEED_MAX 64 /* bytes of the host's seeds kept */

/*
 * Key the PRF with the host's seed bytes (n of them, 0 if the loader gave
 * none) and the counter now. False if there were too few (fewer than 16):
 * the draws are then only as unpredictable as the counter (the caller says so).
 */
bool entropy_init(const u8 *seed, unsigned n, u64 counter);
/* n bytes no draw before gave. */
void entropy_draw(u8 *out, unsigned n);
/* SipHash-2-4 of 16 bytes (a, b) under key k: the PRF itself, for tests against its published vectors. */
u64 siphash24_2x64(const u64 k[2], u64 a, u64 b);
#endif
