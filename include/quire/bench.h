/*
 * Boot-time benchmarks for make bench, asked for with quire.bench=pool,
 * quire.bench=hash or quire.bench=blk (bench/). Only the bench variant
 * (make BENCH=1, build/<platform>-bench/) carries them; in every other
 * image the hook below is empty and those boot arguments mean nothing.
 */
#ifndef QUIRE_BENCH_H
#define QUIRE_BENCH_H

struct pool;

/* Where boot_primary calls the hook: each bench needs what is set up by then. */
enum bench_point {
	BENCH_POOL_READY, /* the VMM pool and the page hash: pool, hash */
	BENCH_DISK_READY, /* the swap disk as well: blk */
};

#ifdef QUIRE_BENCH
void bench_boot(enum bench_point at, struct pool *vmm, const char *bootargs);
void bench_blk(struct pool *vmm, const char *bootargs); /* bench/blk.c, for bench_boot */
#else
static inline void bench_boot(enum bench_point at, struct pool *vmm, const char *bootargs)
{
	(void)at;
	(void)vmm;
	(void)bootargs;
}
#endif
#endif
