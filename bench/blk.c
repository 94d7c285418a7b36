/*
 * The swap disk's raw throughput, for make bench (boot argument
 * quire.bench=blk, bench variant only; quire.bench_blk_mib=N for another
 * size than 64 MiB).
 * Only blk_submit and blk_complete, the latter from the disk's interrupt:
 * the boot CPU keeps blk_depth() requests in flight and waits in WFI
 * between completions, then takes the interrupt through irq_handle like
 * every idle CPU does (EL2 runs with IRQs masked; WFI wakes on a pending
 * one). A pattern is written over N MiB and read back into cleared pages,
 * then every word is checked; once with one-page requests, once with
 * BLK_MAX_PAGES pages each. The pattern is filled and checked outside the
 * timed part, so the ticks are the disk's and the driver's alone.
 */
#include <string.h>
#include <quire/bench.h>
#include <quire/blk.h>
#include <quire/console.h>
#include <quire/pool.h>
#include <quire/run.h>
#include <arch/cpu.h>
#include <arch/sysreg.h>
#include <arch/vcpu.h>

#define BENCH_MIB 64
#define BENCH_MIB_MAX 256
#define IDX_PER_PAGE (PAGE_SIZE / sizeof(pidx_t))
#define SLOTS 64 /* request slots, at least blk_depth() */

static struct {
	struct pool *pool;
	pidx_t *idx[BENCH_MIB_MAX * 256 / IDX_PER_PAGE]; /* the data pages, IDX_PER_PAGE a page */
	pidx_t idx_page[BENCH_MIB_MAX * 256 / IDX_PER_PAGE];
	u32 npages;
	struct blk_req req[SLOTS];
	u8 free_slot[SLOTS];
	unsigned nfree, inflight;
	u32 errors, requests;
	u64 err_sector;
} b;

static paddr_t data_pa(u32 page)
{
	return pool_pa(b.pool, b.idx[page / IDX_PER_PAGE][page % IDX_PER_PAGE]);
}

/* Word w of disk page p in pass 'seed': different in every word, page and pass. */
static inline u64 pattern(u32 p, unsigned w, u64 seed)
{
	return (((u64)p << 32 | w) + seed) * 0x9e3779b97f4a7c15UL;
}

/* N from quire.bench_blk_mib=N, else the default. */
static u64 arg_mib(const char *s)
{
	static const char key[] = "quire.bench_blk_mib=";
	u64 n = 0;

	for (const char *start = s; *s; s++) {
		if ((s > start && s[-1] != ' ') || strncmp(s, key, sizeof(key) - 1))
			continue;
		for (s += sizeof(key) - 1; *s >= '0' && *s <= '9'; s++)
			n = n * 10 + (u64)(*s - '0');
		return n ? n : BENCH_MIB;
	}
	return BENCH_MIB;
}

static void bench_done(struct blk_req *r, unsigned cpu)
{
	(void)cpu;
	if (r->status && !b.errors++)
		b.err_sector = r->sector;
	b.free_slot[b.nfree++] = (u8)(r - b.req);
	b.inflight--;
}

/* The completion's interrupt, taken as the idle loop does; WFI returns at once if it is already pending. */
static void wait_irq(void)
{
	dsb(sy);
	wfi();
	irq_handle(NULL);
}

/* Before the pages go back: nothing of the bench's is left on the disk. */
static void wait_all(void)
{
	while (b.inflight)
		wait_irq();
}

/* One pass over the pages with requests of k pages; the counter ticks it took, 0 if blk_submit refused. */
static u64 run(bool write, unsigned k)
{
	unsigned depth = MIN(blk_depth(), (unsigned)SLOTS);
	u64 t0 = counter_read();
	u32 next = 0;

	if (!depth) {
		printk("bench: blk FAIL: the swap disk is out of use\n");
		return 0;
	}
	b.errors = b.requests = 0;
	b.nfree = SLOTS;
	for (unsigned i = 0; i < SLOTS; i++)
		b.free_slot[i] = (u8)i;
	while (next < b.npages || b.inflight) {
		while (next < b.npages && b.inflight < depth) {
			struct blk_req *r = &b.req[b.free_slot[b.nfree - 1]];
			int rc;

			r->sector = (u64)next << (PAGE_SHIFT - BLK_SECTOR_SHIFT);
			r->npages = MIN(k, b.npages - next);
			r->write = write;
			for (unsigned i = 0; i < r->npages; i++)
				r->pa[i] = data_pa(next + i);
			r->done = bench_done;
			r->ctx = &b;
			rc = blk_submit(r);
			if (rc == -EBUSY)
				break; /* the queue is full of larger requests: wait for one */
			if (rc) {
				printk("bench: blk FAIL: blk_submit of %u pages at sector %lu returned %d\n", r->npages,
				       (unsigned long)r->sector, rc);
				wait_all();
				return 0;
			}
			b.nfree--;
			b.inflight++;
			b.requests++;
			next += r->npages;
		}
		if (!b.inflight) {
			printk("bench: blk FAIL: the queue is full with none of the bench's requests in it\n");
			return 0;
		}
		wait_irq();
	}
	return counter_read() - t0;
}

static void fill(u64 seed)
{
	for (u32 p = 0; p < b.npages; p++) {
		u64 *w = page_va(data_pa(p));

		for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
			w[i] = pattern(p, i, seed);
	}
}

static u64 check(u64 seed)
{
	u64 bad = 0;

	for (u32 p = 0; p < b.npages; p++) {
		const u64 *w = page_va(data_pa(p));

		for (unsigned i = 0; i < PAGE_SIZE / 8; i++) {
			if (w[i] == pattern(p, i, seed))
				continue;
			if (!bad++)
				printk("bench: blk FAIL: disk page %u word %u read back 0x%lx, wrote 0x%lx\n", p, i,
				       (unsigned long)w[i], (unsigned long)pattern(p, i, seed));
		}
	}
	return bad;
}

/* Write, read back and check with requests of k pages. */
static void pass(unsigned k, u64 seed)
{
	u64 freq = counter_freq(), t, bad;
	bool ok;

	fill(seed);
	t = run(true, k);
	if (!t)
		return;
	if (b.errors)
		printk("bench: blk FAIL: %u of %u write requests failed with an I/O error (first at sector %lu)\n",
		       b.errors, b.requests, (unsigned long)b.err_sector);
	printk("bench: blk write pages=%u pages_per_req=%u ticks=%lu freq=%lu\n", b.npages, k,
	       (unsigned long)t, (unsigned long)freq);
	for (u32 p = 0; p < b.npages; p++)
		memset(page_va(data_pa(p)), 0, PAGE_SIZE);
	t = run(false, k);
	if (!t)
		return;
	ok = !b.errors;
	if (b.errors)
		printk("bench: blk FAIL: %u of %u read requests failed with an I/O error (first at sector %lu)\n",
		       b.errors, b.requests, (unsigned long)b.err_sector);
	bad = check(seed);
	if (bad)
		printk("bench: blk FAIL: %lu of %lu words read back wrong\n", (unsigned long)bad,
		       (unsigned long)b.npages * (PAGE_SIZE / 8));
	printk("bench: blk read pages=%u pages_per_req=%u ticks=%lu freq=%lu verified=%u\n", b.npages, k,
	       (unsigned long)t, (unsigned long)freq, ok && !bad);
}

void bench_blk(struct pool *p, const char *bootargs)
{
	u64 mib = arg_mib(bootargs);
	u32 got = 0, want;
	unsigned nidx;

	if (!blk_present()) {
		printk("bench: blk FAIL: no swap disk to measure\n");
		return;
	}
	b.pool = p;
	mib = MIN(MIN(mib, (u64)BENCH_MIB_MAX), blk_bytes() >> 20);
	mib = MIN(mib, (u64)pool_free_pages(p) / 2 / 256);
	if (!mib) {
		printk("bench: blk FAIL: no room for the bench (disk %lu KiB, %u free pages)\n",
		       (unsigned long)(blk_bytes() >> 10), pool_free_pages(p));
		return;
	}
	want = (u32)mib * 256;
	nidx = (want + IDX_PER_PAGE - 1) / IDX_PER_PAGE;
	for (unsigned i = 0; i < nidx; i++) {
		b.idx_page[i] = pool_alloc(p, 0);
		if (b.idx_page[i] == PIDX_NONE) {
			printk("bench: blk FAIL: out of pages\n");
			while (i--)
				pool_free(p, 0, b.idx_page[i], false);
			return;
		}
		b.idx[i] = page_va(pool_pa(p, b.idx_page[i]));
	}
	for (; got < want; got++) {
		pidx_t i = pool_alloc(p, 0);

		if (i == PIDX_NONE)
			break;
		b.idx[got / IDX_PER_PAGE][got % IDX_PER_PAGE] = i;
	}
	b.npages = got & ~(BLK_MAX_PAGES - 1);
	printk("bench: blk %lu MiB, %u requests in flight, interrupt %u\n", (unsigned long)(b.npages >> 8),
	       MIN(blk_depth(), (unsigned)SLOTS), blk_irq());
	pass(1, 1);
	pass(BLK_MAX_PAGES, 2);
	while (got--)
		pool_free(p, 0, b.idx[got / IDX_PER_PAGE][got % IDX_PER_PAGE], false);
	for (unsigned i = 0; i < nidx; i++)
		pool_free(p, 0, b.idx_page[i], false);
}
