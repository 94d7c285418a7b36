/*
 * The boot-time benchmarks' hook (include/quire/bench.h). bench/ is a
 * directory of its own, not part of core/ or arch/, so that the Makefile
 * can leave all of it out of the image users boot and build it only into
 * the bench variant (BENCH=1). Like core/, it uses the hardware only
 * through arch/arm64/include/arch/.
 */
#include <quire/bench.h>
#include <quire/console.h>
#include <quire/pool.h>
#include <quire/share.h>
#include <quire/vmconfig.h>
#include <arch/cpu.h>

extern char _start[]; /* quire.ld: the image's first byte */

/* Pool alloc+free on the fault path's per-CPU fast path. */
static void bench_pool(struct pool *p)
{
	const unsigned n = 100000;
	u64 t0 = counter_read();

	for (unsigned k = 0; k < n; k++)
		pool_free(p, 0, pool_alloc(p, 0), false);
	printk("bench: pool_alloc_free ops=%u ticks=%lu freq=%lu\n", n, counter_read() - t0,
	       counter_freq());
}

/* The two page hashes over the same page (Quire's own code: not zero, not uniform). */
static void bench_hash(void)
{
	static u64 (*const fn[])(const void *) = { page_hash_crc, page_hash_mul };
	static const char *const name[] = { "crc32c", "mul" };
	const unsigned n = 2000;
	u64 sink = 0;

	for (unsigned f = 0; f < 2; f++) {
		u64 t0 = counter_read();

		for (unsigned k = 0; k < n; k++)
			sink += fn[f]((const u8 *)_start + (k % 16) * PAGE_SIZE);
		printk("bench: page_hash %s pages=%u ticks=%lu freq=%lu (%lx)\n", name[f], n, counter_read() - t0,
		       counter_freq(), (unsigned long)(sink & 0xf));
	}
}

void bench_boot(enum bench_point at, struct pool *vmm, const char *bootargs)
{
	switch (at) {
	case BENCH_POOL_READY:
		if (bootargs_has(bootargs, "quire.bench=pool"))
			bench_pool(vmm);
		if (bootargs_has(bootargs, "quire.bench=hash"))
			bench_hash();
		break;
	case BENCH_DISK_READY:
		if (bootargs_has(bootargs, "quire.bench=blk"))
			bench_blk(vmm, bootargs);
		break;
	}
}
