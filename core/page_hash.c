/*
 * 64-bit hashes of a 4 KiB page, for finding identical pages. Equal pages
 * are always compared byte by byte before they merge, so a hash only has to
 * make unequal pages rarely collide and any change change it.
 *
 * page_hash_crc: CRC32C in two lanes (even and odd words), which the ARMv8
 * CRC32CX instruction does at one 8-byte word per instruction; 64 bits from
 * the two 32-bit lanes. Where the instruction is missing (the host build)
 * a table does the same arithmetic, so the results are the same.
 * page_hash_mul: multiply-xorshift in four lanes, for CPUs without CRC32.
 */
#include <quire/share.h>

#if defined(__aarch64__)
static inline u32 crc32c_u64(u32 crc, u64 v)
{
	asm(".arch_extension crc\n\tcrc32cx %w0, %w0, %x1" : "+r"(crc) : "r"(v));
	return crc;
}
#else
static u32 crc_table[8][256];

static void crc_table_init(void)
{
	for (u32 b = 0; b < 256; b++) {
		u32 c = b;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* CRC32C, reflected */
		crc_table[0][b] = c;
	}
	for (u32 b = 0; b < 256; b++)
		for (int t = 1; t < 8; t++)
			crc_table[t][b] = (crc_table[t - 1][b] >> 8) ^ crc_table[0][crc_table[t - 1][b] & 0xff];
}

static inline u32 crc32c_u64(u32 crc, u64 v)
{
	u64 x = crc ^ v;

	if (!crc_table[0][1])
		crc_table_init();
	return crc_table[7][x & 0xff] ^ crc_table[6][(x >> 8) & 0xff] ^ crc_table[5][(x >> 16) & 0xff] ^
	       crc_table[4][(x >> 24) & 0xff] ^ crc_table[3][(x >> 32) & 0xff] ^ crc_table[2][(x >> 40) & 0xff] ^
	       crc_table[1][(x >> 48) & 0xff] ^ crc_table[0][x >> 56];
}
#endif

#if defined(__aarch64__)
/*
 * The same two lanes, 64 bytes a step: four LDPs (a pair of words each,
 * the base post-incremented) feed eight CRC32CXs, even words to lane a, odd
 * ones to b, in the order of the portable loop below. Eight steps to a
 * loop iteration: 98 instructions per 512 bytes, about 790 a page, where
 * the compiler's loop (single loads, an add, a compare) took 1,420.
 */
u64 page_hash_crc(const void *page)
{
	const u64 *w = page, *end = w + PAGE_SIZE / 8;
	u32 a = 0xffffffffu, b = 0x5bd1e995u;
	u64 x0, x1, x2, x3, x4, x5, x6, x7;

	asm(".arch_extension crc\n"
	    "1:\n"
	    ".rept 8\n\t"
	    "ldp %[x0], %[x1], [%[w]], #16\n\t"
	    "ldp %[x2], %[x3], [%[w]], #16\n\t"
	    "ldp %[x4], %[x5], [%[w]], #16\n\t"
	    "ldp %[x6], %[x7], [%[w]], #16\n\t"
	    "crc32cx %w[a], %w[a], %[x0]\n\t"
	    "crc32cx %w[b], %w[b], %[x1]\n\t"
	    "crc32cx %w[a], %w[a], %[x2]\n\t"
	    "crc32cx %w[b], %w[b], %[x3]\n\t"
	    "crc32cx %w[a], %w[a], %[x4]\n\t"
	    "crc32cx %w[b], %w[b], %[x5]\n\t"
	    "crc32cx %w[a], %w[a], %[x6]\n\t"
	    "crc32cx %w[b], %w[b], %[x7]\n"
	    ".endr\n\t"
	    "cmp %[w], %[end]\n\t"
	    "b.ne 1b"
	    : [a] "+r"(a), [b] "+r"(b), [w] "+r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
	      [x3] "=&r"(x3), [x4] "=&r"(x4), [x5] "=&r"(x5), [x6] "=&r"(x6), [x7] "=&r"(x7)
	    : [end] "r"(end), "m"(*(const u8(*)[PAGE_SIZE])page)
	    : "cc");
	return (u64)a << 32 | b;
}
#else
u64 page_hash_crc(const void *page)
{
	const u64 *w = page;
	u32 a = 0xffffffffu, b = 0x5bd1e995u;

	for (unsigned k = 0; k < PAGE_SIZE / 8; k += 4) {
		a = crc32c_u64(a, w[k]);
		b = crc32c_u64(b, w[k + 1]);
		a = crc32c_u64(a, w[k + 2]);
		b = crc32c_u64(b, w[k + 3]);
	}
	return (u64)a << 32 | b;
}
#endif

u64 page_hash_mul(const void *page)
{
	const u64 *w = page;
	const u64 m = 0x9fb21c651e98df25UL;
	u64 h[4] = { 1, 2, 3, 4 };

	for (unsigned k = 0; k < PAGE_SIZE / 8; k += 4)
		for (unsigned l = 0; l < 4; l++) {
			h[l] = (h[l] ^ w[k + l]) * m;
			h[l] ^= h[l] >> 29;
		}
	return (h[0] * 3 + h[1]) * 5 + (h[2] ^ (h[3] >> 17) ^ (h[3] << 47));
}

/*
 * Samples: 16 bytes of every 128 (32 spots spread over the page, 1/8 of
 * it), for the scanner's cheap look between full hashes (share_merge.c).
 */
#if defined(__aarch64__)
u32 page_sample_crc(const void *page)
{
	const u8 *p = page;
	u32 a = 0xffffffffu;
	u64 x0, x1;

	/* One LDP (the base post-incremented past the rest of the 128 bytes) and two CRC32CXs a spot. */
	asm(".arch_extension crc\n"
	    ".rept 32\n\t"
	    "ldp %[x0], %[x1], [%[p]], #128\n\t"
	    "crc32cx %w[a], %w[a], %[x0]\n\t"
	    "crc32cx %w[a], %w[a], %[x1]\n"
	    ".endr"
	    : [a] "+r"(a), [p] "+r"(p), [x0] "=&r"(x0), [x1] "=&r"(x1)
	    : "m"(*(const u8(*)[PAGE_SIZE])page));
	return a;
}
#else
u32 page_sample_crc(const void *page)
{
	const u64 *w = page;
	u32 a = 0xffffffffu;

	for (unsigned k = 0; k < PAGE_SIZE / 8; k += 16) {
		a = crc32c_u64(a, w[k]);
		a = crc32c_u64(a, w[k + 1]);
	}
	return a;
}
#endif

u32 page_sample_mul(const void *page)
{
	const u64 *w = page;
	const u64 m = 0x9fb21c651e98df25UL;
	u64 h = 1;

	for (unsigned k = 0; k < PAGE_SIZE / 8; k += 16) {
		h = (h ^ w[k]) * m;
		h = (h ^ w[k + 1] ^ (h >> 29)) * m;
	}
	return (u32)(h >> 32) ^ (u32)h;
}

const char *share_hash_name(void)
{
	return share_hash == page_hash_crc ? "crc32c" : share_hash == page_hash_mul ? "mul" : "other";
}
