/*
 * memtest: exercises Quire's on-demand guest memory from EL1 with the MMU off.
 * Every first touch of a guest page is a stage-2 violation Quire fills from
 * its page pool; MEM_STATS counts those fills, so each mode compares the
 * fills it caused with the distinct pages it touched.
 *
 * x0 selects the mode: 1 seq, 2 random, 3 sparse, 4 smp, 5 outside, 6 quota,
 * 7 bench, 8 bench-smp, 9 hostile (a badly behaved guest: see mode_hostile;
 * not about memory), 10 dirty, 11 zeroscan (isolation: a VM booted on pages
 * another released sees only zeros), 12 yield (scheduler bench), 13 share (merging
 * and copy-on-write, see mode_share), 14 noshare (sharing off), 15 swap (a verifying stress past
 * the resident limit, see mode_swap), 16 fill and 17 fill-reset (every page, then off or
 * reset: lifecycle tests), 18 setway (set/way maintenance around caches turned off and on),
 * 19 gicd (the GICv2 distributor's registers as IHI 0048B has them; not about memory),
 * 20 virtio (the empty virtio-mmio slots), 21 ipi (65,536 IPIs to a spinning vCPU), 22 vtimer
 * (the timer's interrupt follows the timer), 23 bench-exits, 24 ptimer (the emulated EL1 physical timer),
 * 25 debug (self-hosted debug), 26 pmu (the PMU), 27 dbg-hostile (debug and PMU abused),
 * 28 virtio-hostile (a lying driver of the balloon), 29 virtio-blk-hostile (a lying driver of
 * the disk: vblk_hostile.c), 30 virtio-net-hostile (a lying driver of the network device) and
 * 31 net-echo (its honest peer on the switch: vnet_hostile.c); all drive the transport by hand
 * with vdrv.c.
 * Each prints `memtest: <mode> ok ...` or
 * `memtest: <mode> FAIL ...` and ends the VM with PSCI SYSTEM_OFF.
 *
 * Nothing new is touched between the MEM_STATS calls that bracket a measured
 * loop except the pages being measured: start.S has touched the image and all
 * of BSS (stacks, flags) before C runs, and the hypercalls pass registers only.
 */
#include "guest.h"
#include "vdrv.h"

#define MiB (1UL << 20)

extern char __bss_end[];
extern void secondary_entry(void);

/* Written by vCPU 0 before it starts the others. */
static struct {
	u64 mode, ram_size, nvcpus;
	u64 free;    /* first page after the image and its BSS */
	u64 ram_end; /* RAM_BASE + ram_size */
	u64 timeout; /* counter ticks a vCPU waits for the others */
} cfg;

/* Per-vCPU flags and results: each slot has exactly one writer. */
static volatile u64 ready[MAX_VCPUS], phase1[MAX_VCPUS], finished[MAX_VCPUS];
static volatile u64 nbad[MAX_VCPUS], bad_at[MAX_VCPUS], bad_got[MAX_VCPUS], bad_want[MAX_VCPUS];
static volatile u64 go; /* written by vCPU 0 only */

#ifdef DEBUG
static const bool have_stats = false; /* bare QEMU: no MEM_STATS, checks on fills are skipped */
#else
static const bool have_stats = true;
#endif

static u64 mix(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53UL;
	x ^= x >> 33;
	return x;
}

/* The value for a word: distinct for every address (mix is a bijection). */
static u64 pat(u64 addr, u64 salt)
{
	return mix(addr ^ salt);
}

static u64 xorshift(u64 *s)
{
	u64 x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static u64 page_of(u64 addr)
{
	return addr / PAGE_SIZE;
}

static struct mem_stats stats_or_fail(const char *mode)
{
	struct mem_stats s = mem_stats();

	if (!s.ok && have_stats) {
		pr("memtest: %s FAIL MEM_STATS not answered\n", mode);
		system_off();
	}
	return s;
}

static bool fills_ok(u64 fills, u64 expected)
{
	return !have_stats || fills == expected;
}

static bool need_ram(const char *mode, u64 end)
{
	if (end <= cfg.ram_end)
		return true;
	pr("memtest: %s FAIL needs RAM up to 0x%lx, have 0x%lx-0x%lx\n", mode, end, RAM_BASE,
	   cfg.ram_end);
	return false;
}

/* Record the first mismatch of vCPU i. */
static void check(u64 i, u64 addr, u64 want)
{
	u64 got = RD(addr);

	if (got == want)
		return;
	if (!nbad[i]++) {
		bad_at[i] = addr;
		bad_got[i] = got;
		bad_want[i] = want;
	}
}

static void report_bad(const char *mode, u64 i)
{
	if (nbad[i])
		pr("memtest: %s vCPU %lu: %lu bad words, first at 0x%lx: got 0x%lx want 0x%lx\n", mode, i,
		   nbad[i], bad_at[i], bad_got[i], bad_want[i]);
}

/*
 * After an instruction at pc that may have trapped into the guest's vector:
 * true if it did (count moved on from before), with FAR/ESR/ELR in *rec.
 */
static bool took(u64 before, u64 pc, struct abort_rec *rec)
{
	struct abort_rec *r = &aborts[vcpu_self()];

	if (r->count == before)
		return false;
	rec->count = r->count - before;
	rec->far = r->far;
	rec->esr = r->esr;
	rec->elr = r->elr == pc ? r->elr : ~0UL; /* ~0: the exception was not on the probe */
	return true;
}

/*
 * A single load or store that may abort. Returns true if it aborted; the
 * vector (start.S) skipped the instruction and recorded FAR/ESR/ELR in *rec.
 */
static bool probe(u64 addr, bool write, u64 value, struct abort_rec *rec)
{
	u64 before = aborts[vcpu_self()].count, pc, v = value;

	if (write)
		asm volatile("adr %1, 1f\n1:\tstr %0, [%2]" : "+r"(v), "=&r"(pc) : "r"(addr) : "memory");
	else
		asm volatile("adr %1, 1f\n1:\tldr %0, [%2]" : "+r"(v), "=&r"(pc) : "r"(addr) : "memory");
	return took(before, pc, rec);
}

static bool is_sea(const struct abort_rec *a, u64 addr)
{
	return a->count == 1 && (a->esr >> 26 & 0x3f) == 0x25 && (a->esr & 0x3f) == 0x10 &&
	       a->far == addr && a->elr != ~0UL;
}

/* Wait until flag[0..n) are all set; returns n, or the first vCPU still missing at the timeout. */
static u64 wait_all(volatile u64 *flag, u64 n)
{
	u64 t0 = counter();

	for (;;) {
		u64 i;

		dmb();
		for (i = 0; i < n && flag[i]; i++)
			;
		if (i == n) {
			dmb();
			return n;
		}
		if (counter() - t0 > cfg.timeout)
			return i;
		asm volatile("yield");
	}
}

static void wait_go(void)
{
	while (!go)
		dmb();
	dmb();
}

/* vCPU 0: start vCPUs 1..n-1 at secondary_entry; false (reported) if one fails. */
static bool start_secondaries(const char *mode)
{
	ready[0] = 1; /* vCPU 0 is ready; its worker sets this again */
	dmb();	      /* cfg and the flags before the vCPUs that read them */
	for (u64 i = 1; i < cfg.nvcpus; i++) {
		s64 rc = psci_cpu_on(i, (u64)secondary_entry, i);

		if (rc) {
			pr("memtest: %s FAIL CPU_ON vCPU %lu returned %ld\n", mode, i, rc);
			return false;
		}
	}
	return true;
}

/* ---- 1: seq ---- */
static void mode_seq(void)
{
	u64 a0 = cfg.free, a1 = a0 + 4 * MiB, a2 = a1 + 12 * MiB, pages, fills;
	struct mem_stats s0, s1;

	if (!need_ram("seq", a2))
		return;
	pages = (a2 - a0) / PAGE_SIZE;
	s0 = stats_or_fail("seq");
	for (u64 a = a0; a < a1; a += 8)
		RD(a) = pat(a, 1);
	for (u64 a = a1; a < a2; a += PAGE_SIZE) {
		u64 w = a + (page_of(a) % 512) * 8; /* a different word in each page */
		RD(w) = pat(w, 1);
	}
	s1 = stats_or_fail("seq");
	for (u64 a = a0; a < a1; a += 8)
		check(0, a, pat(a, 1));
	for (u64 a = a1; a < a2; a += PAGE_SIZE) {
		u64 w = a + (page_of(a) % 512) * 8;
		check(0, w, pat(w, 1));
	}
	fills = s1.fills - s0.fills;
	if (!nbad[0] && fills_ok(fills, pages))
		pr("memtest: seq ok pages=%lu fills=%lu\n", pages, fills);
	else {
		report_bad("seq", 0);
		pr("memtest: seq FAIL pages=%lu fills=%lu bad=%lu\n", pages, fills, nbad[0]);
	}
}

/* ---- 2: random ---- */
#define RANDOM_TOUCHES 4096

static void mode_random(void)
{
	u64 bitmap = cfg.free, words = (cfg.ram_size / PAGE_SIZE + 63) / 64;
	u64 area = (bitmap + words * 8 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), npages, distinct = 0;
	u64 seed = 0x9e3779b97f4a7c15UL, fills;
	struct mem_stats s0, s1;

	if (!need_ram("random", area + 64 * PAGE_SIZE))
		return;
	npages = (cfg.ram_end - area) / PAGE_SIZE;
	for (u64 i = 0; i < words; i++) /* touch the bitmap before measuring */
		RD(bitmap + i * 8) = 0;
	s0 = stats_or_fail("random");
	for (u64 k = 0; k < RANDOM_TOUCHES; k++) {
		u64 p = area / PAGE_SIZE + xorshift(&seed) % npages, r = p - RAM_BASE / PAGE_SIZE;
		u64 w = p * PAGE_SIZE + (p % 512) * 8, bw = bitmap + r / 64 * 8, bit = 1UL << (r % 64);

		RD(w) = pat(w, 2);
		if (!(RD(bw) & bit)) {
			RD(bw) = RD(bw) | bit;
			distinct++;
		}
	}
	s1 = stats_or_fail("random");
	for (u64 p = area / PAGE_SIZE; p < cfg.ram_end / PAGE_SIZE; p++) {
		u64 r = p - RAM_BASE / PAGE_SIZE, w = p * PAGE_SIZE + (p % 512) * 8;

		if (RD(bitmap + r / 64 * 8) & 1UL << (r % 64))
			check(0, w, pat(w, 2));
	}
	fills = s1.fills - s0.fills;
	if (!nbad[0] && fills_ok(fills, distinct))
		pr("memtest: random ok distinct=%lu fills=%lu\n", distinct, fills);
	else {
		report_bad("random", 0);
		pr("memtest: random FAIL distinct=%lu fills=%lu bad=%lu\n", distinct, fills, nbad[0]);
	}
}

/* ---- 3: sparse ---- */
#define SPARSE_PAGES 2560 /* 10 MiB */

static void mode_sparse(void)
{
	u64 stride = ((cfg.ram_end - cfg.free) / SPARSE_PAGES) & ~(PAGE_SIZE - 1), fills;
	u64 blocks = 0, last = ~0UL;
	struct mem_stats s0, s1;

	if (!stride) {
		need_ram("sparse", cfg.free + SPARSE_PAGES * PAGE_SIZE);
		return;
	}
	s0 = stats_or_fail("sparse");
	for (u64 i = 0; i < SPARSE_PAGES; i++) {
		u64 w = cfg.free + i * stride + (i % 512) * 8;
		RD(w) = pat(w, 3);
	}
	s1 = stats_or_fail("sparse");
	/* 2 MiB blocks holding a page: the image's, then the touched ones (ascending). */
	for (u64 a = RAM_BASE; a < cfg.free; a += PAGE_SIZE)
		if (a >> 21 != last) {
			last = a >> 21;
			blocks++;
		}
	for (u64 i = 0; i < SPARSE_PAGES; i++) {
		u64 w = cfg.free + i * stride + (i % 512) * 8;
		check(0, w, pat(w, 3));
		if (w >> 21 != last) {
			last = w >> 21;
			blocks++;
		}
	}
	fills = s1.fills - s0.fills;
	if (!nbad[0] && fills_ok(fills, SPARSE_PAGES))
		pr("memtest: sparse ok pages=%u fills=%lu resident=%lu pgtables=%lu blocks2m=%lu\n",
		   SPARSE_PAGES, fills, s1.resident, s1.pgtables, blocks);
	else {
		report_bad("sparse", 0);
		pr("memtest: sparse FAIL pages=%u fills=%lu resident=%lu pgtables=%lu bad=%lu\n",
		   SPARSE_PAGES, fills, s1.resident, s1.pgtables, nbad[0]);
	}
}

/* ---- 4: smp ---- */
#define SMP_SHARED (1 * MiB)
#define SMP_OWN (8 * MiB)

static u64 smp_own(u64 i)
{
	return cfg.free + SMP_SHARED + i * SMP_OWN;
}

/* Run by every vCPU; vCPU 0 also does the bookkeeping. */
static void smp_worker(u64 i)
{
	u64 shared = cfg.free, own = smp_own(i), n = cfg.nvcpus, w;

	ready[i] = 1;
	wait_go();
	/* Racing first touches: every vCPU writes its own slot of each shared page. */
	for (u64 a = shared; a < shared + SMP_SHARED; a += PAGE_SIZE)
		RD(a + i * 8) = pat(a, 0x400 + i);
	for (u64 a = own; a < own + SMP_OWN; a += 8)
		RD(a) = pat(a, 4);
	dmb();
	phase1[i] = 1;
	if ((w = wait_all(phase1, n)) != n) {
		pr("memtest: smp FAIL vCPU %lu: timeout waiting for vCPU %lu\n", i, w);
		system_off();
	}
	for (u64 a = shared; a < shared + SMP_SHARED; a += PAGE_SIZE)
		for (u64 j = 0; j < n; j++)
			check(i, a + j * 8, pat(a, 0x400 + j));
	for (u64 a = own; a < own + SMP_OWN; a += 8)
		check(i, a, pat(a, 4));
	dmb();
	finished[i] = 1;
}

static void mode_smp(void)
{
	u64 n = cfg.nvcpus, expected = n * (SMP_OWN / PAGE_SIZE) + SMP_SHARED / PAGE_SIZE, fills, w, bad = 0;
	struct mem_stats s0, s1;

	if (!need_ram("smp", smp_own(n)))
		return;
	s0 = stats_or_fail("smp");
	if (!start_secondaries("smp"))
		return;
	if ((w = wait_all(ready, n)) != n) {
		pr("memtest: smp FAIL vCPU %lu did not start\n", w);
		return;
	}
	go = 1;
	dmb();
	smp_worker(0);
	if ((w = wait_all(finished, n)) != n) {
		pr("memtest: smp FAIL timeout waiting for vCPU %lu to finish\n", w);
		return;
	}
	s1 = stats_or_fail("smp");
	for (u64 i = 0; i < n; i++) {
		report_bad("smp", i);
		bad += nbad[i];
	}
	fills = s1.fills - s0.fills;
	if (!bad && fills_ok(fills, expected))
		pr("memtest: smp ok vcpus=%lu fills=%lu expected=%lu\n", n, fills, expected);
	else
		pr("memtest: smp FAIL vcpus=%lu fills=%lu expected=%lu bad=%lu\n", n, fills, expected, bad);
}

/* ---- 5: outside ---- */
static void mode_outside(void)
{
	u64 addrs[3] = { 0x1000, cfg.ram_end + 0x40000000UL, 0x7f00000000UL }, aborted = 0, good = 0;
	struct abort_rec a;

	for (int k = 0; k < 3; k++) {
		if (!probe(addrs[k], false, 0, &a)) {
			pr("memtest: outside FAIL read of 0x%lx did not abort\n", addrs[k]);
			continue;
		}
		aborted++;
		pr("memtest: abort far=0x%lx esr=0x%lx\n", a.far, a.esr);
		if (is_sea(&a, addrs[k]))
			good++;
		else
			pr("memtest: outside FAIL abort for 0x%lx: want EC 0x25 DFSC 0x10 FAR 0x%lx, "
			   "got count %lu far 0x%lx esr 0x%lx elr %s\n",
			   addrs[k], addrs[k], a.count, a.far, a.esr, a.elr == ~0UL ? "wrong" : "ok");
	}
	/* RAM still works, without an abort. */
	if (probe(cfg.free, true, 0x5a5a5a5a5a5a5a5aUL, &a) || probe(cfg.free, false, 0, &a) ||
	    RD(cfg.free) != 0x5a5a5a5a5a5a5a5aUL) {
		pr("memtest: outside FAIL RAM at 0x%lx does not work after the aborts\n", cfg.free);
		return;
	}
	if (good == 3)
		pr("memtest: outside ok aborts=%lu\n", aborted);
	else
		pr("memtest: outside FAIL aborts=%lu good=%lu\n", aborted, good);
}

/* ---- 6: quota ---- */
static void mode_quota(void)
{
	struct mem_quota q0 = mem_quota(), q1;
	struct abort_rec a;
	u64 touched = 0, addr;
	/* Without Quire (DEBUG) no quota refuses: let the store past the end of RAM abort instead. */
	u64 limit = cfg.ram_end + (have_stats ? 0 : PAGE_SIZE);
	bool hit = false;

	if (!q0.ok && have_stats) {
		pr("memtest: quota FAIL MEM_QUOTA not answered\n");
		return;
	}
	pr("memtest: quota start quota=%lu charged=%lu refused=%lu\n", q0.quota, q0.charged, q0.refused);
	for (addr = cfg.free; addr < limit; addr += PAGE_SIZE) {
		if (probe(addr, true, pat(addr, 6), &a)) {
			hit = true;
			break;
		}
		touched++;
	}
	q1 = mem_quota();
	if (!hit) {
		pr("memtest: quota FAIL touched=%lu pages up to the end of RAM without an abort\n", touched);
		return;
	}
	pr("memtest: abort far=0x%lx esr=0x%lx\n", a.far, a.esr);
	for (u64 p = cfg.free; p < addr; p += PAGE_SIZE)
		check(0, p, pat(p, 6));
	if (is_sea(&a, addr) && !nbad[0] &&
	    (!have_stats || (q1.ok && q1.charged == q1.quota && q1.refused >= 1)))
		pr("memtest: quota ok touched=%lu quota=%lu charged=%lu refused=%lu\n", touched, q1.quota,
		   q1.charged, q1.refused);
	else {
		report_bad("quota", 0);
		pr("memtest: quota FAIL touched=%lu quota=%lu charged=%lu refused=%lu far=0x%lx esr=0x%lx "
		   "(store at 0x%lx)\n",
		   touched, q1.quota, q1.charged, q1.refused, a.far, a.esr, addr);
	}
	pr("memtest: quota still running after the refusal\n");
}

/* Quire prints this VM's exit profile (include/quire/hypercall.h: the mark). */
static void exit_mark(void)
{
	register u64 x0 asm("x0") = QUIRE_MARK_X0, x1 asm("x1") = QUIRE_MARK_X1;

	asm volatile("wfi" : : "r"(x0), "r"(x1) : "memory");
}

/* ---- 7: bench ---- */
#define BENCH_PAGES 4096

static void mode_bench(void)
{
	u64 base = cfg.free, t0, t1, t2, t3;

	if (!need_ram("bench", base + BENCH_PAGES * PAGE_SIZE))
		return;
	/* Quire's exit profile before and after the fills: make bench sets its view beside the guest's. */
	exit_mark();
	t0 = counter();
	for (u64 p = 0; p < BENCH_PAGES; p++)
		RD(base + p * PAGE_SIZE) = p;
	t1 = counter();
	exit_mark();
	t2 = counter();
	for (u64 p = 0; p < BENCH_PAGES; p++)
		RD(base + p * PAGE_SIZE) = p + 1;
	t3 = counter();
	pr("memtest: bench fill_ticks=%lu touch_ticks=%lu pages=%u freq=%lu\n", t1 - t0, t3 - t2,
	   BENCH_PAGES, counter_freq());
}

/* ---- 8: bench-smp ---- */
static void bench_worker(u64 i)
{
	u64 base = cfg.free + i * BENCH_PAGES * PAGE_SIZE;

	ready[i] = 1;
	wait_go();
	for (u64 p = 0; p < BENCH_PAGES; p++)
		RD(base + p * PAGE_SIZE) = p;
	dmb();
	finished[i] = 1;
}

static void mode_bench_smp(void)
{
	u64 n = cfg.nvcpus, t0, t1, w;

	if (!need_ram("bench-smp", cfg.free + n * BENCH_PAGES * PAGE_SIZE) ||
	    !start_secondaries("bench-smp"))
		return;
	if ((w = wait_all(ready, n)) != n) {
		pr("memtest: bench-smp FAIL vCPU %lu did not start\n", w);
		return;
	}
	t0 = counter();
	go = 1;
	dmb();
	bench_worker(0);
	if ((w = wait_all(finished, n)) != n) {
		pr("memtest: bench-smp FAIL timeout waiting for vCPU %lu\n", w);
		return;
	}
	t1 = counter();
	pr("memtest: bench-smp vcpus=%lu fill_ticks=%lu pages_per_vcpu=%u freq=%lu\n", n, t1 - t0,
	   BENCH_PAGES, counter_freq());
}

/* ---- 9: hostile ---- */
/*
 * A badly behaved guest: loads and stores where there is nothing, unknown
 * device registers, unknown hypercalls over HVC and SMC, bad PSCI arguments,
 * trapped and IMPLEMENTATION DEFINED system registers, and a flood of aborts.
 * Each must come back as an error the guest can handle (an abort, RAZ/WI,
 * NOT_SUPPORTED, an UNDEF) and the guest must keep running.
 */
#define HOSTILE_FLOOD 10000
#define HOSTILE_FLOOD_ADDR 0x0c000000UL
#define SENTINEL 0xdeadbeefcafef00dUL
#define VPL011 0x09000000UL
#define VGICD 0x08000000UL
#define NOT_SUPPORTED ((u64)(s64)SMCCC_NOT_SUPPORTED)

static u64 h_checks, h_failed;

/* Count a check; the word for its line. */
static const char *verdict(bool ok)
{
	h_checks++;
	h_failed += !ok;
	return ok ? "ok" : "FAIL";
}

static u64 ec_of(u64 esr)
{
	return esr >> 26 & 0x3f;
}

/* A 32-bit load or store, as a device driver does it. */
static bool probe32(u64 addr, bool write, u64 *value, struct abort_rec *rec)
{
	u64 before = aborts[vcpu_self()].count, pc, v = *value;

	if (write)
		asm volatile("adr %1, 1f\n1:\tstr %w0, [%2]" : "+r"(v), "=&r"(pc) : "r"(addr) : "memory");
	else
		asm volatile("adr %1, 1f\n1:\tldr %w0, [%2]" : "+r"(v), "=&r"(pc) : "r"(addr) : "memory");
	*value = v;
	return took(before, pc, rec);
}

/* A load pair: no instruction syndrome (ISV 0) for a hypervisor to emulate it with. */
static bool probe_ldp(u64 addr, struct abort_rec *rec)
{
	u64 before = aborts[vcpu_self()].count, pc, a = SENTINEL, b = SENTINEL;

	asm volatile("adr %2, 1f\n1:\tldp %0, %1, [%3]" : "+r"(a), "+r"(b), "=&r"(pc) : "r"(addr) : "memory");
	return took(before, pc, rec);
}

/*
 * MRS/MSR of a register named in the source; true if it trapped into the
 * guest (an UNDEF is let through the vector while these run). The value read
 * is left in val, which holds SENTINEL if the MRS did not write it.
 */
#define SYS_READ(reg, val, rec)                                                              \
	({                                                                                   \
		struct abort_rec *r_ = &aborts[vcpu_self()];                                 \
		u64 b_ = r_->count, pc_;                                                     \
		bool t_;                                                                     \
		(val) = SENTINEL;                                                            \
		r_->undef_ok = 1;                                                            \
		asm volatile("adr %1, 1f\n1:\tmrs %0, " #reg : "+r"(val), "=&r"(pc_) : : "memory"); \
		r_->undef_ok = 0;                                                            \
		t_ = took(b_, pc_, rec);                                                     \
		t_;                                                                          \
	})
#define SYS_WRITE(reg, v, rec)                                                               \
	({                                                                                   \
		struct abort_rec *r_ = &aborts[vcpu_self()];                                 \
		u64 b_ = r_->count, pc_;                                                     \
		bool t_;                                                                     \
		r_->undef_ok = 1;                                                            \
		asm volatile("adr %0, 1f\n1:\tmsr " #reg ", %1" : "=&r"(pc_) : "r"((u64)(v)) : "memory"); \
		r_->undef_ok = 0;                                                            \
		t_ = took(b_, pc_, rec);                                                     \
		t_;                                                                          \
	})

/*
 * An SMCCC call over HVC or SMC with the two instructions after it: the
 * first must run (mark = 1), i.e. the call returns right after itself.
 */
static struct smccc_res call(bool smc, u64 fn, u64 a1, bool *next)
{
	register u64 x0 asm("x0") = fn, x1 asm("x1") = a1, x2 asm("x2") = 0, x3 asm("x3") = 0;
	u64 mark;

	if (smc)
		asm volatile("mov %4, #0\n\tsmc #0\n\tmov %4, #1"
			     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "=&r"(mark)
			     :
			     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
			       "x15", "x16", "x17", "memory");
	else
		asm volatile("mov %4, #0\n\thvc #0\n\tmov %4, #1"
			     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "=&r"(mark)
			     :
			     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
			       "x15", "x16", "x17", "memory");
	*next = mark == 1;
	return (struct smccc_res){ x0, x1, x2, x3 };
}

/* Loads and stores where the VM has neither RAM nor a device: synchronous external aborts. */
static void hostile_sea(void)
{
	static const u64 addrs[] = {
		0x0a004000UL, /* just past the 32 virtio-mmio slots */
		0x09010000UL, /* the PL031 RTC on QEMU virt: not emulated */
		0x0c000000UL, /* platform bus */
		0x10000000UL, /* PCIe MMIO window */
		0x3ffff000UL, /* the page below RAM */
	};

	for (unsigned k = 0; k < sizeof(addrs) / sizeof(addrs[0]); k++) {
		u64 addr = addrs[k];
		struct abort_rec r = { 0 }, w = { 0 };
		bool rd = probe(addr, false, 0, &r), wr = probe(addr, true, SENTINEL, &w);
		bool ok = rd && wr && is_sea(&r, addr) && is_sea(&w, addr);

		pr("memtest: hostile sea %s addr=0x%lx read: %s esr=0x%lx far=0x%lx write: %s esr=0x%lx "
		   "far=0x%lx\n",
		   verdict(ok), addr, rd ? "aborted" : "completed", r.esr, r.far,
		   wr ? "aborted" : "completed", w.esr, w.far);
	}
}

/* Registers the emulated PL011 and GIC distributor do not have: RAZ/WI, no abort. */
static void hostile_mmio_unknown(void)
{
	static const u64 addrs[] = { VPL011 + 0xf00, VGICD + 0xd00, VGICD + 0xefc };

	for (unsigned k = 0; k < sizeof(addrs) / sizeof(addrs[0]); k++) {
		u64 addr = addrs[k], v0 = SENTINEL, ones = 0xffffffffUL, v1 = SENTINEL;
		struct abort_rec a = { 0 };
		bool ab = probe32(addr, false, &v0, &a) || probe32(addr, true, &ones, &a) ||
			  probe32(addr, false, &v1, &a);

		pr("memtest: hostile mmio-unknown %s addr=0x%lx read=0x%lx after-write=0x%lx%s\n",
		   verdict(!ab && v0 == 0 && v1 == 0), addr, v0, v1, ab ? " aborted" : "");
	}
}

/* The emulated PL011's PrimeCell ID, one byte per word at 0xff0..0xffc. */
static void hostile_pl011_id(void)
{
	static const u64 want[4] = { 0x0d, 0xf0, 0x05, 0xb1 };
	u64 got[4];
	bool ok = true;
	struct abort_rec a;

	for (int k = 0; k < 4; k++) {
		got[k] = SENTINEL;
		if (probe32(VPL011 + 0xff0 + 4 * k, false, &got[k], &a))
			got[k] = ~0UL;
		ok &= got[k] == want[k];
	}
	pr("memtest: hostile pl011-id %s cellid=0x%lx 0x%lx 0x%lx 0x%lx\n", verdict(ok), got[0], got[1],
	   got[2], got[3]);
}

/* Unknown function IDs over both conduits: NOT_SUPPORTED, back at the next instruction. */
static void hostile_calls(void)
{
	static const u64 ids[] = { 0x86000000UL, 0xc7001234UL, 0x84000fffUL };

	for (int smc = 0; smc < 2; smc++) {
		const char *how = smc ? "smc" : "hvc";
		u64 before = aborts[0].count;
		bool ok = true, next;

		for (unsigned k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
			struct smccc_res r = call(smc, ids[k], 0, &next);

			if (r.x0 != NOT_SUPPORTED || !next) {
				pr("memtest: hostile %s 0x%lx returned x0=0x%lx, %s\n", how, ids[k], r.x0,
				   next ? "at the next instruction" : "NOT at the next instruction");
				ok = false;
			}
		}
		ok &= aborts[0].count == before;
		pr("memtest: hostile %s-unknown %s ids=3\n", how, verdict(ok));
	}
}

/* The discovery calls a guest makes first, over both conduits. */
static void hostile_smccc(void)
{
	static const struct {
		const char *name;
		u64 fn, a1, want;
	} calls[] = {
		{ "SMCCC_VERSION", SMCCC_VERSION, 0, 0x10001 },
		{ "PSCI_VERSION", PSCI_VERSION, 0, 0x10001 },
		{ "PSCI_FEATURES(CPU_ON)", PSCI_FEATURES, PSCI_CPU_ON_64, 0 },
		{ "PSCI_FEATURES(unknown)", PSCI_FEATURES, 0x84000fffUL, NOT_SUPPORTED },
	};

	for (int smc = 0; smc < 2; smc++) {
		bool ok = true, next;

		for (unsigned k = 0; k < sizeof(calls) / sizeof(calls[0]); k++) {
			u64 x0 = call(smc, calls[k].fn, calls[k].a1, &next).x0;

			if (x0 != calls[k].want || !next) {
				pr("memtest: hostile %s %s returned 0x%lx, want 0x%lx%s\n", smc ? "smc" : "hvc",
				   calls[k].name, x0, calls[k].want, next ? "" : " (not at the next instruction)");
				ok = false;
			}
		}
		pr("memtest: hostile smccc-%s %s calls=4\n", smc ? "smc" : "hvc", verdict(ok));
	}
}

/* PSCI with arguments that make no sense for a 1-vCPU VM. */
static void hostile_psci(void)
{
	s64 no_cpu = psci_cpu_on(7, (u64)secondary_entry, 0);
	s64 self = psci_cpu_on(0, (u64)secondary_entry, 0);
	s64 bad_entry = psci_cpu_on(0, 0x0a000000UL, 0);
	s64 aff_no_cpu = (s64)hvc(PSCI_AFFINITY_INFO_64, 5, 0, 0).x0;
	s64 aff_level = (s64)hvc(PSCI_AFFINITY_INFO_64, 0, 1, 0).x0;
	s64 aff_self = (s64)hvc(PSCI_AFFINITY_INFO_64, 0, 0, 0).x0;
	/* MPIDR 0x100 (Aff1 1) names no vCPU here; only reported, not checked. */
	s64 aff1 = psci_cpu_on(0x100, (u64)secondary_entry, 0);
	bool ok = no_cpu == PSCI_RET_INVALID_PARAMS && self == PSCI_RET_ALREADY_ON &&
		  (bad_entry == PSCI_RET_INVALID_PARAMS || bad_entry == PSCI_RET_ALREADY_ON) &&
		  aff_no_cpu == PSCI_RET_INVALID_PARAMS && aff_level == PSCI_RET_INVALID_PARAMS &&
		  aff_self == 0;

	pr("memtest: hostile psci %s on(7)=%ld on(self)=%ld on(entry 0xa000000)=%ld aff(5)=%ld "
	   "aff(0, level 1)=%ld aff(0)=%ld on(mpidr 0x100)=%ld\n",
	   verdict(ok), no_cpu, self, bad_entry, aff_no_cpu, aff_level, aff_self, aff1);
}

/*
 * The debug and PMU registers are the guest's own (issue 15: they used to read
 * as zero): PMCR_EL0.E and MDSCR_EL1.TDCC read back. The auxiliary control
 * register reads as zero and ignores writes; the physical timer is emulated:
 * CVAL reads back, CTL shows ISTATUS.
 */
static void hostile_sysreg_razwi(void)
{
	struct abort_rec a;
	u64 pmcr, pmcnten, mdscr, cntp_ctl, cntp_cval, actlr;
	bool t = false;

	t |= SYS_WRITE(pmcr_el0, 1, &a);
	t |= SYS_READ(pmcr_el0, pmcr, &a);
	t |= SYS_WRITE(pmcntenset_el0, 1, &a);
	t |= SYS_READ(pmcntenset_el0, pmcnten, &a);
	t |= SYS_WRITE(pmcr_el0, 0, &a);
	t |= SYS_WRITE(mdscr_el1, 1UL << 12, &a); /* TDCC */
	t |= SYS_READ(mdscr_el1, mdscr, &a);
	t |= SYS_WRITE(mdscr_el1, 0, &a);
	t |= SYS_WRITE(cntp_cval_el0, 0x1234, &a);
	t |= SYS_READ(cntp_cval_el0, cntp_cval, &a);
	t |= SYS_WRITE(cntp_ctl_el0, 1, &a);
	t |= SYS_READ(cntp_ctl_el0, cntp_ctl, &a);
	t |= SYS_WRITE(cntp_ctl_el0, 0, &a);
	t |= SYS_WRITE(actlr_el1, 1, &a);
	t |= SYS_READ(actlr_el1, actlr, &a);
	pr("memtest: hostile sysreg-razwi %s pmcr=0x%lx pmcntenset=0x%lx mdscr=0x%lx cntp_cval=0x%lx "
	   "cntp_ctl=0x%lx actlr=0x%lx%s\n",
	   verdict(!t && (pmcr & 1) && pmcnten == 1 && mdscr == 1UL << 12 && cntp_cval == 0x1234 &&
		   cntp_ctl == 5 && !actlr),
	   pmcr, pmcnten, mdscr, cntp_cval, cntp_ctl, actlr, t ? " (an exception was taken)" : "");
}

/* An IMPLEMENTATION DEFINED register (HCR_EL2.TIDCP): UNDEF at the instruction, then skipped. */
static void hostile_sysreg_undef(void)
{
	struct abort_rec r = { 0 }, w = { 0 };
	u64 v;
	bool rd = SYS_READ(s3_1_c15_c2_1, v, &r), wr = SYS_WRITE(s3_1_c15_c2_1, 0, &w);
	bool ok = rd && wr && r.count == 1 && w.count == 1 && ec_of(r.esr) == 0 && ec_of(w.esr) == 0 &&
		  r.elr != ~0UL && w.elr != ~0UL;

	pr("memtest: hostile sysreg-undef %s reg=s3_1_c15_c2_1 read=%s esr=0x%lx write=%s esr=0x%lx\n",
	   verdict(ok), rd ? "undef" : "completed", r.esr, wr ? "undef" : "completed", w.esr);
	(void)v;
}

/* A load pair from a device: nothing to emulate it with, an abort instead. */
static void hostile_mmio_nosyndrome(void)
{
	struct abort_rec a = { 0 };
	bool ab = probe_ldp(VPL011 + 0x18, &a);

	pr("memtest: hostile mmio-ldp %s addr=0x%lx %s esr=0x%lx far=0x%lx\n",
	   verdict(ab && is_sea(&a, VPL011 + 0x18)), VPL011 + 0x18, ab ? "aborted" : "completed", a.esr,
	   a.far);
}

/* Abort after abort: each one comes back, Quire logs none of them again. */
static void hostile_flood(void)
{
	u64 good = 0, t0 = counter(), t1;
	struct abort_rec a;

	for (u64 i = 0; i < HOSTILE_FLOOD; i++)
		if (probe(HOSTILE_FLOOD_ADDR + (i % 512) * 8, i & 1, i, &a) &&
		    is_sea(&a, HOSTILE_FLOOD_ADDR + (i % 512) * 8))
			good++;
	t1 = counter();
	pr("memtest: hostile flood %s aborts=%lu of %u ns_per_abort=%lu\n", verdict(good == HOSTILE_FLOOD),
	   good, HOSTILE_FLOOD, (t1 - t0) * 1000000000UL / counter_freq() / HOSTILE_FLOOD);
}

/* After all that, RAM and the console still work. */
static void hostile_ram(void)
{
	struct abort_rec a;
	u64 addr = cfg.free;
	bool ab = probe(addr, true, pat(addr, 9), &a) || probe(addr, false, 0, &a);

	pr("memtest: hostile ram %s addr=0x%lx\n", verdict(!ab && RD(addr) == pat(addr, 9)), addr);
}

static void mode_hostile(void)
{
#ifdef DEBUG
	pr("memtest: hostile FAIL needs Quire (it checks Quire's answers)\n");
	return;
#endif
	if (!need_ram("hostile", cfg.free + PAGE_SIZE))
		return;
	hostile_sea();
	hostile_mmio_unknown();
	hostile_pl011_id();
	hostile_calls();
	hostile_smccc();
	hostile_psci();
	hostile_sysreg_razwi();
	hostile_sysreg_undef();
	hostile_mmio_nosyndrome();
	hostile_flood();
	hostile_ram();
	if (!h_failed)
		pr("memtest: hostile ok checks=%lu\n", h_checks);
	else
		pr("memtest: hostile FAIL checks=%lu failed=%lu\n", h_checks, h_failed);
}

/* ---- 10: dirty: fill every free page with a non-zero pattern (for another VM to scan after) ---- */
static void mode_dirty(void)
{
	u64 pages = 0;

	for (u64 a = cfg.free; a < cfg.ram_end; a += 8) {
		RD(a) = pat(a, 0xd1) | 1;
		pages += !(a & (PAGE_SIZE - 1));
	}
	pr("memtest: dirty ok pages=%lu\n", pages);
}

/* ---- 11: zeroscan: every byte of a freshly booted VM's free RAM must read as zero ---- */
static void mode_zeroscan(void)
{
	u64 pages = 0, nonzero = 0, first = 0, val = 0;

	for (u64 a = cfg.free; a < cfg.ram_end; a += 8) {
		u64 v = RD(a);

		pages += !(a & (PAGE_SIZE - 1));
		if (v && !nonzero++) {
			first = a;
			val = v;
		}
	}
	if (nonzero)
		pr("memtest: zeroscan FAIL pages=%lu nonzero_words=%lu first=0x%lx value=0x%lx\n", pages,
		   nonzero, first, val);
	else
		pr("memtest: zeroscan ok pages=%lu\n", pages);
}

/* ---- 12: yield: QUIRE_HC_YIELD in a loop; beside another such VM on one CPU, each is a switch ---- */
#define YIELDS 20000

static void mode_yield(void)
{
	u64 t0 = counter(), t1;

	for (u64 i = 0; i < YIELDS; i++)
		hvc(QUIRE_HC_YIELD, 0, 0, 0);
	t1 = counter();
	pr("memtest: yield calls=%u ticks=%lu freq=%lu\n", YIELDS, t1 - t0, counter_freq());
}

/*
 * ---- 13: share: pages Quire should merge, then copy again on write ----
 * SHARE_PAGES pages alike (one pattern), SHARE_PAGES written then zeroed, and
 * SHARE_PAGES each unlike any other. Waits (polling; the scanner runs on
 * another, idle CPU) until the sharing counters show the first two sets
 * merged, checks every word, then writes one word of each merged page
 * (copy-on-write; timed, then the same writes again to the copies as the
 * baseline) and checks every word again and that the counters came back.
 */
#define SHARE_PAGES 512

struct share_counts {
	u64 zero, shared, cow;
};

static struct share_counts share_counts(void)
{
	struct smccc_res r = hvc(QUIRE_HC_SHARE_STATS, 0, 0, 0);

	return (struct share_counts){ r.x1, r.x2, r.x3 };
}

static u64 share_want(u64 a, u64 set)
{
	u64 off = a & (PAGE_SIZE - 1), page = a / PAGE_SIZE;

	if (set == 0)
		return pat(off, 0x5a) | 1; /* alike */
	if (set == 1)
		return 0;
	return pat(a, page) | 1; /* unlike */
}

/* Words that differ from what the three sets should hold; after the writes, merged pages' first words are a ^ first. */
static u64 share_check(u64 base, u64 first, bool written)
{
	u64 bad = 0;

	for (u64 set = 0; set < 3; set++)
		for (u64 a = base + set * SHARE_PAGES * PAGE_SIZE; a < base + (set + 1) * SHARE_PAGES * PAGE_SIZE;
		     a += 8) {
			u64 want = written && set < 2 && !(a & (PAGE_SIZE - 1)) ? a ^ first : share_want(a, set);

			bad += RD(a) != want;
		}
	return bad;
}

/* ---- 14: noshare: the same pages in a VM whose sharing is off: nothing may merge in 2 s of scanning ---- */
static void mode_noshare(void)
{
	u64 base = (cfg.free + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), n = SHARE_PAGES, t0, bad;
	struct share_counts c0, c1;

	if (!need_ram("noshare", base + 3 * n * PAGE_SIZE))
		return;
	c0 = share_counts();
	for (u64 set = 0; set < 3; set++)
		for (u64 a = base + set * n * PAGE_SIZE; a < base + (set + 1) * n * PAGE_SIZE; a += 8)
			RD(a) = share_want(a, set);
	t0 = counter();
	while (counter() - t0 < 2 * counter_freq())
		;
	c1 = share_counts();
	if ((bad = share_check(base, 0, false)) || c1.zero || c1.shared || c1.cow || c0.zero || c0.shared) {
		pr("memtest: noshare FAIL bad words %lu; zero %lu -> %lu, shared %lu -> %lu, cow %lu\n", bad, c0.zero,
		   c1.zero, c0.shared, c1.shared, c1.cow);
		return;
	}
	pr("memtest: noshare ok pages=%lu\n", 3 * n);
}

static void mode_share(void)
{
	u64 base = (cfg.free + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), n = SHARE_PAGES, t0, t1, t2, t3, t4, bad;
	struct share_counts c0, c1, c2;

	if (!need_ram("share", base + 3 * n * PAGE_SIZE))
		return;
	c0 = share_counts();
	for (u64 set = 0; set < 3; set++)
		for (u64 a = base + set * n * PAGE_SIZE; a < base + (set + 1) * n * PAGE_SIZE; a += 8)
			RD(a) = set == 1 ? 1 : share_want(a, set);
	for (u64 a = base + n * PAGE_SIZE; a < base + 2 * n * PAGE_SIZE; a += 8)
		RD(a) = 0;
	t0 = counter();
	do
		c1 = share_counts();
	while ((c1.zero < c0.zero + n || c1.shared < c0.shared + n) && counter() - t0 < cfg.timeout);
	t1 = counter();
	if (c1.zero < c0.zero + n || c1.shared < c0.shared + n) {
		pr("memtest: share FAIL not merged: zero %lu -> %lu, shared %lu -> %lu (want +%lu each)\n", c0.zero,
		   c1.zero, c0.shared, c1.shared, n);
		return;
	}
	if ((bad = share_check(base, 0, false))) {
		pr("memtest: share FAIL %lu words changed by merging\n", bad);
		return;
	}
	t2 = counter();
	/* Each page's first word becomes its own (a ^ 7): the copies are unlike, nothing merges them again. */
	for (u64 a = base; a < base + n * PAGE_SIZE; a += PAGE_SIZE)
		RD(a) = a ^ 7;
	t3 = counter();
	for (u64 a = base; a < base + n * PAGE_SIZE; a += PAGE_SIZE)
		RD(a) = a ^ 7;
	t4 = counter();
	for (u64 a = base + n * PAGE_SIZE; a < base + 2 * n * PAGE_SIZE; a += PAGE_SIZE)
		RD(a) = a ^ 7;
	c2 = share_counts();
	if ((bad = share_check(base, 7, true))) {
		pr("memtest: share FAIL %lu words wrong after copy-on-write\n", bad);
		return;
	}
	/* (More zero pages of memtest's own may merge meanwhile: zero is not checked.) */
	if (c2.cow < c1.cow + 2 * n || c2.shared > c1.shared - n) {
		pr("memtest: share FAIL counters after writes: cow %lu -> %lu, shared %lu -> %lu, zero %lu -> %lu\n",
		   c1.cow, c2.cow, c1.shared, c2.shared, c1.zero, c2.zero);
		return;
	}
	pr("memtest: share ok pages=%lu merge_ticks=%lu cow_ticks=%lu touch_ticks=%lu freq=%lu\n", n, t1 - t0,
	   t3 - t2, t4 - t3, counter_freq());
}

/*
 * ---- 15: swap: a verifying stress over more memory than the VM may hold ----
 * Run with a resident limit well below the area (docs/memory.md, "Swap").
 * Every page gets a generation; its words are pat(address, generation), so
 * a page read back from the wrong slot, or a stale copy, shows. Every 16th
 * page stays zero (it must cost no disk). Phases: write everything, verify
 * everything, rewrite random pages after verifying them, verify everything.
 */
#define SWAP_AREA_MAX (400 * MiB)
#define SWAP_RANDOM 20000

struct swap_counts {
	u64 outs, ins, swapped;
};

static struct swap_counts swap_counts(void)
{
	struct smccc_res r = hvc(QUIRE_HC_SWAP_STATS, 0, 0, 0);

	return (struct swap_counts){ r.x1, r.x2, r.x3 };
}

static u64 swap_max_resident;

static void swap_fill(u64 a, unsigned char gen)
{
	for (u64 w = a; w < a + PAGE_SIZE; w += 8)
		RD(w) = gen ? pat(w, gen) : 0;
	if (!(page_of(a) % 64)) {
		u64 r = mem_stats().resident;

		swap_max_resident = r > swap_max_resident ? r : swap_max_resident;
	}
}

static u64 swap_check(u64 a, unsigned char gen)
{
	u64 bad = 0;

	for (u64 w = a; w < a + PAGE_SIZE; w += 8)
		bad += RD(w) != (gen ? pat(w, gen) : 0);
	return bad;
}

static u64 swap_verify(u64 base, u64 n, const unsigned char *gen)
{
	u64 bad = 0;

	for (u64 p = 0; p < n; p++)
		bad += swap_check(base + p * PAGE_SIZE, gen[p]);
	return bad;
}

static void mode_swap(void)
{
	unsigned char *gen = (unsigned char *)((cfg.free + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	u64 base = ((u64)gen + SWAP_AREA_MAX / PAGE_SIZE + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	u64 n = (cfg.ram_end - base) / PAGE_SIZE, seed = 0x5eed, t0, t1, t2, t3, t4, bad;
	struct swap_counts c0, c1, c2, c3;

	n = n > SWAP_AREA_MAX / PAGE_SIZE ? SWAP_AREA_MAX / PAGE_SIZE : n;
	if (!need_ram("swap", base + 64 * PAGE_SIZE))
		return;
	c0 = swap_counts();
	t0 = counter();
	for (u64 p = 0; p < n; p++) {
		gen[p] = p % 16 == 5 ? 0 : 1;
		swap_fill(base + p * PAGE_SIZE, gen[p]);
	}
	t1 = counter();
	c1 = swap_counts();
	if ((bad = swap_verify(base, n, gen))) {
		pr("memtest: swap FAIL %lu words wrong after writing %lu pages\n", bad, n);
		return;
	}
	t2 = counter();
	c2 = swap_counts();
	for (u64 k = 0; k < SWAP_RANDOM; k++) {
		u64 p = xorshift(&seed) % n, a = base + p * PAGE_SIZE;

		if ((bad = swap_check(a, gen[p]))) {
			pr("memtest: swap FAIL page %lu (generation %u): %lu words wrong\n", p, gen[p], bad);
			return;
		}
		gen[p] = gen[p] == 255 ? 1 : gen[p] + 1;
		swap_fill(a, gen[p]);
	}
	t3 = counter();
	if ((bad = swap_verify(base, n, gen))) {
		pr("memtest: swap FAIL %lu words wrong at the end\n", bad);
		return;
	}
	t4 = counter();
	c3 = swap_counts();
	if (c1.outs == c0.outs || c3.ins == c1.ins) {
		pr("memtest: swap FAIL nothing went to the disk and back: outs %lu -> %lu, ins %lu -> %lu\n",
		   c0.outs, c3.outs, c1.ins, c3.ins);
		return;
	}
	pr("memtest: swap ok pages=%lu max_resident=%lu outs=%lu ins=%lu swapped=%lu write_outs=%lu "
	   "verify_ins=%lu write_ticks=%lu verify_ticks=%lu random_ticks=%lu final_ticks=%lu freq=%lu\n",
	   n, swap_max_resident, c3.outs - c0.outs, c3.ins - c0.ins, c3.swapped, c1.outs - c0.outs,
	   c2.ins - c1.ins, t1 - t0, t2 - t1, t3 - t2, t4 - t3, counter_freq());
}

/*
 * ---- 16: fill, 17: fill-reset: one word in every page of RAM above the
 * image, then power off (16) or PSCI SYSTEM_RESET (17, which boots it again:
 * a VM that restarts for ever, each time with all its RAM to give back) ----
 */
static void mode_fill(void)
{
	u64 a0 = (cfg.free + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), t0 = counter();

	for (u64 a = a0; a < cfg.ram_end; a += PAGE_SIZE)
		RD(a) = pat(a, 16);
	for (u64 a = a0; a < cfg.ram_end; a += PAGE_SIZE)
		if (RD(a) != pat(a, 16)) {
			pr("memtest: fill FAIL at 0x%lx\n", a);
			return;
		}
	pr("memtest: fill ok pages=%lu ticks=%lu\n", (cfg.ram_end - a0) / PAGE_SIZE, counter() - t0);
	if (cfg.mode == 17)
		hvc(PSCI_SYSTEM_RESET, 0, 0, 0);
}

/*
 * ---- 18: setway: the MMU and caches on (an identity map of 1 GiB blocks),
 * a pattern written, DC CISW over a few sets and ways, caches off, the
 * pattern read back uncached, caches on again. Quire traps set/way (TSW)
 * and then the SCTLR_EL1 writes (TVM), and cleans the VM to PoC at each
 * step (docs/memory.md); each emulated SCTLR_EL1 write must read back ----
 */
#define SCTLR_M (1UL << 0)
#define SCTLR_C (1UL << 2)
#define SCTLR_I (1UL << 12)
#define SETWAY_PAGES 64

static u64 setway_l1[512] __attribute__((aligned(4096)));

#define MSR(reg, v) asm volatile("msr " reg ", %0\n\tisb" : : "r"((u64)(v)) : "memory")
#define MRS(reg) ({ u64 _v; asm volatile("mrs %0, " reg : "=r"(_v)); _v; })

static bool sctlr_set(u64 want)
{
	MSR("sctlr_el1", want);
	return MRS("sctlr_el1") == want;
}

static void mode_setway(void)
{
	u64 base = (cfg.free + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), sctlr = MRS("sctlr_el1"), bad = 0;

	if (!need_ram("setway", base + SETWAY_PAGES * PAGE_SIZE))
		return;
	/* Block 0 (the devices): Device-nGnRnE, attr 0. Block 1 (RAM): Normal write-back, attr 1. */
	setway_l1[0] = 0x0UL | (1UL << 10) | 1;
	setway_l1[1] = 0x40000000UL | (1UL << 10) | (3UL << 8) | (1UL << 2) | 1;
	MSR("mair_el1", 0xff00);
	/* T0SZ 25 (39-bit VA, walks from level 1), inner/outer WBWA, inner shareable, 4 KiB, no TTBR1, 36-bit PA. */
	MSR("tcr_el1", 25 | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (1UL << 32));
	MSR("ttbr0_el1", (u64)setway_l1);
	asm volatile("dsb ish\n\ttlbi vmalle1\n\tdsb ish\n\tisb" : : : "memory");
	if (!sctlr_set(sctlr | SCTLR_M | SCTLR_C | SCTLR_I)) {
		pr("memtest: setway FAIL caches did not turn on\n");
		return;
	}
	for (u64 a = base; a < base + SETWAY_PAGES * PAGE_SIZE; a += 8)
		RD(a) = pat(a, 18);
	/* Clean and invalidate by set/way as firmware does (level 1, sets 0..7, ways 0..1): each traps. */
	for (u64 way = 0; way < 2; way++)
		for (u64 set = 0; set < 8; set++)
			asm volatile("dc cisw, %0" : : "r"((way << 31) | (set << 6)) : "memory");
	asm volatile("dsb sy" : : : "memory");
	/* Caches and MMU off: trapped now (TVM), emulated, and the VM cleaned to PoC first. */
	if (!sctlr_set(sctlr & ~(SCTLR_M | SCTLR_C))) {
		pr("memtest: setway FAIL the SCTLR_EL1 write (caches off) did not take\n");
		return;
	}
	for (u64 a = base; a < base + SETWAY_PAGES * PAGE_SIZE; a += 8)
		bad += RD(a) != pat(a, 18);
	if (!sctlr_set(sctlr | SCTLR_M | SCTLR_C | SCTLR_I) || !sctlr_set(sctlr)) {
		pr("memtest: setway FAIL the SCTLR_EL1 writes (caches on, then off) did not take\n");
		return;
	}
	if (bad)
		pr("memtest: setway FAIL %lu words differ read uncached\n", bad);
	else
		pr("memtest: setway ok pages=%lu\n", (u64)SETWAY_PAGES);
}

/*
 * ---- 19: gicd ----
 * The distributor's registers as the GICv2 architecture (IHI 0048B) has
 * them, probed with byte, halfword and word accesses. Everything stays
 * disabled (GICD_CTLR 0, SGIs disabled), so nothing pending is delivered
 * and the pending state stays where the distributor shows it. With two
 * vCPUs, vCPU 1 reads its banked registers after vCPU 0 sent it an SGI.
 */
#define GICD_CTLR 0x000
#define GICD_TYPER 0x004
#define GICD_IIDR 0x008
#define GICD_ICENABLER 0x180
#define GICD_ISPENDR 0x200
#define GICD_ICPENDR 0x280
#define GICD_IPRIORITYR 0x400
#define GICD_ITARGETSR 0x800
#define GICD_ICFGR 0xc00
#define GICD_SGIR 0xf00
#define GICD_CPENDSGIR 0xf10
#define GICD_SPENDSGIR 0xf20
#define GICD_SPI 40 /* an SPI the platform has (32..63) */

static u64 gicd_rd(u64 off, unsigned size)
{
	u64 a = VGICD + off, v;

	if (size == 1)
		asm volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
	else if (size == 2)
		asm volatile("ldrh %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
	else
		asm volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static void gicd_wr(u64 off, unsigned size, u64 v)
{
	u64 a = VGICD + off;

	if (size == 1)
		asm volatile("strb %w0, [%1]" : : "r"(v), "r"(a) : "memory");
	else if (size == 2)
		asm volatile("strh %w0, [%1]" : : "r"(v), "r"(a) : "memory");
	else
		asm volatile("str %w0, [%1]" : : "r"(v), "r"(a) : "memory");
}

static u64 g_checks, g_failed;

static void gicd_check(const char *what, u64 want, u64 got)
{
	g_checks++;
	g_failed += want != got;
	pr("memtest: gicd %s %s: want 0x%lx got 0x%lx\n", want == got ? "ok" : "FAIL", what, want, got);
}

/* vCPU 1's reads of its banked registers, for vCPU 0 to check. */
static volatile u64 g1_targets0, g1_target31, g1_spendsgir0, g1_ispendr0;

static void gicd_worker(u64 i)
{
	if (i != 1)
		return;
	wait_go();
	g1_targets0 = gicd_rd(GICD_ITARGETSR, 4);
	g1_target31 = gicd_rd(GICD_ITARGETSR + 31, 1);
	g1_spendsgir0 = gicd_rd(GICD_SPENDSGIR, 4);
	g1_ispendr0 = gicd_rd(GICD_ISPENDR, 4);
	dmb(); /* the results before the flag */
	finished[1] = 1;
}

static void gicd_typer(void)
{
	u64 typer = gicd_rd(GICD_TYPER, 4);

	/* 96 interrupts (docs/guest-platform.md): ITLinesNumber 2; one CPU interface per vCPU. */
	gicd_check("TYPER.ITLinesNumber", 2, typer & 0x1f);
	gicd_check("TYPER.CPUNumber", cfg.nvcpus - 1, typer >> 5 & 7);
	gicd_check("TYPER.SecurityExtn", 0, typer >> 10 & 1);
	gicd_check("TYPER read-only", typer, (gicd_wr(GICD_TYPER, 4, ~typer), gicd_rd(GICD_TYPER, 4)));
	gicd_check("IIDR.Implementer is Arm", 0x43b, gicd_rd(GICD_IIDR, 4) & 0xfff);
	/* Word-only registers: a byte access is not one the GIC supports; Quire makes it RAZ/WI. */
	gicd_check("TYPER byte read (word only: RAZ)", 0, gicd_rd(GICD_TYPER, 1));
	gicd_wr(GICD_CTLR, 1, 1);
	gicd_check("CTLR byte write (word only: WI)", 0, gicd_rd(GICD_CTLR, 4));
}

static void gicd_targets(u64 mask)
{
	bool up = cfg.nvcpus == 1; /* one CPU interface: ITARGETSR RAZ/WI (IHI 0048B 4.3.12) */
	u64 self = up ? 0 : 0x01010101, t;

	/* SGI and PPI targets: read-only, each byte the reading CPU interface's bit. */
	for (u64 r = 0; r < 8; r++)
		if ((t = gicd_rd(GICD_ITARGETSR + 4 * r, 4)) != self)
			break;
	gicd_check("ITARGETSR0-7 words read as vCPU 0", self, t);
	gicd_check("ITARGETSR byte of PPI 27", self & 0xff, gicd_rd(GICD_ITARGETSR + 27, 1));
	gicd_wr(GICD_ITARGETSR, 4, 0xffffffff);
	gicd_wr(GICD_ITARGETSR + 29, 1, 0xfe);
	gicd_check("ITARGETSR0 word write ignored", self, gicd_rd(GICD_ITARGETSR, 4));
	gicd_check("ITARGETSR7 byte write ignored", self, gicd_rd(GICD_ITARGETSR + 28, 4));
	/* SPI targets: only the CPU interfaces the VM has. */
	t = GICD_ITARGETSR + GICD_SPI;
	gicd_wr(t, 4, 0);
	gicd_wr(t + 1, 1, 0xff);
	gicd_check("SPI target byte write 0xff keeps the VM's vCPUs", up ? 0 : mask << 8, gicd_rd(t, 4));
	gicd_wr(t, 4, 0xffffffff);
	gicd_check("SPI target word write 0xffffffff keeps the VM's vCPUs", up ? 0 : mask * 0x01010101,
		   gicd_rd(t, 4));
	gicd_wr(t + 2, 1, 0x01);
	gicd_check("SPI target byte write leaves the other bytes", up ? 0 : (mask * 0x01000101) | 0x10000,
		   gicd_rd(t, 4));
	gicd_check("SPI target byte read", up ? 0 : 0x01, gicd_rd(t + 2, 1));
	gicd_wr(t, 2, 0);
	gicd_check("SPI target halfword write (not byte or word: WI)", up ? 0 : (mask * 0x01000101) | 0x10000,
		   gicd_rd(t, 4));
	gicd_check("SPI target halfword read (RAZ)", 0, gicd_rd(t, 2));
	gicd_check("ITARGETSR of interrupt 96 (not implemented: RAZ)", 0,
		   (gicd_wr(GICD_ITARGETSR + 96, 4, 0x01010101), gicd_rd(GICD_ITARGETSR + 96, 4)));
	gicd_wr(t, 4, 0);
}

static void gicd_priority(void)
{
	u64 p = GICD_IPRIORITYR + GICD_SPI, bits;

	gicd_wr(p, 4, 0);
	gicd_wr(p + 1, 1, 0xff);
	bits = gicd_rd(p + 1, 1);
	/* At least 16 levels, the implemented bits the top ones (IHI 0048B 3.3). */
	gicd_check("IPRIORITYR implements the top bits of a byte", 1,
		   (bits & 0xf0) == 0xf0 && ((bits + (bits & -bits)) & 0xff) == 0);
	gicd_check("IPRIORITYR byte write, word read", bits << 8, gicd_rd(p, 4));
	gicd_wr(p, 4, 0x80604020);
	gicd_check("IPRIORITYR word write, word read", 0x80604020 & bits * 0x01010101, gicd_rd(p, 4));
	gicd_wr(p + 3, 1, 0xa0);
	gicd_check("IPRIORITYR byte write leaves the other bytes", 0xa0604020 & bits * 0x01010101,
		   gicd_rd(p, 4));
	gicd_check("IPRIORITYR byte read", 0x60 & bits, gicd_rd(p + 2, 1));
	gicd_wr(p + 2, 2, 0);
	gicd_check("IPRIORITYR halfword write (not byte or word: WI)", 0xa0604020 & bits * 0x01010101,
		   gicd_rd(p, 4));
	/* SGI 0 and PPI 31: banked, writable. */
	gicd_wr(GICD_IPRIORITYR + 31, 1, 0x40);
	gicd_check("IPRIORITYR of PPI 31", 0x40 & bits, gicd_rd(GICD_IPRIORITYR + 31, 1));
}

static void gicd_icfgr(void)
{
	u64 v;

	/* SGIs: edge (0b10), read-only. */
	gicd_wr(GICD_ICFGR, 4, 0);
	gicd_check("ICFGR0 (SGIs edge, read-only)", 0xaaaaaaaa, gicd_rd(GICD_ICFGR, 4));
	/* PPIs: read-only here (IMPLEMENTATION DEFINED whether programmable). */
	v = gicd_rd(GICD_ICFGR + 4, 4);
	gicd_wr(GICD_ICFGR + 4, 4, ~v);
	gicd_check("ICFGR1 (PPIs) read-only", v, gicd_rd(GICD_ICFGR + 4, 4));
	/* SPIs: Int_config[1] of each is programmable. */
	gicd_wr(GICD_ICFGR + 8, 4, 0xaaaaaaaa);
	gicd_check("ICFGR2 (SPIs 32-47) set edge", 0xaaaaaaaa, gicd_rd(GICD_ICFGR + 8, 4) & 0xaaaaaaaa);
	gicd_wr(GICD_ICFGR + 8, 4, 0);
	gicd_check("ICFGR2 (SPIs 32-47) set level", 0, gicd_rd(GICD_ICFGR + 8, 4) & 0xaaaaaaaa);
	gicd_check("ICFGR byte read (word only: RAZ)", 0, gicd_rd(GICD_ICFGR, 1));
}

static void gicd_sgis(u64 mask)
{
	/* Nothing delivered: distributor and all SGIs disabled. */
	gicd_wr(GICD_CTLR, 4, 0);
	gicd_wr(GICD_ICENABLER, 4, 0xffff);
	gicd_wr(GICD_CPENDSGIR, 4, 0xffffffff);
	gicd_wr(GICD_CPENDSGIR + 4, 4, 0xffffffff);
	gicd_wr(GICD_CPENDSGIR + 8, 4, 0xffffffff);
	gicd_wr(GICD_CPENDSGIR + 12, 4, 0xffffffff);
	gicd_check("ISPENDR0 SGI bits after CPENDSGIR", 0, gicd_rd(GICD_ISPENDR, 4) & 0xffff);
	/* SGI pending state is set through SPENDSGIR, not ISPENDR0 (IHI 0048B 4.3.7). */
	gicd_wr(GICD_ISPENDR, 4, 0xffff);
	gicd_check("ISPENDR0 write to SGI bits ignored", 0, gicd_rd(GICD_ISPENDR, 4) & 0xffff);
	/* SGI 5 from vCPU 0: byte 1 of SPENDSGIR1. */
	gicd_wr(GICD_SPENDSGIR + 5, 1, 0x01);
	gicd_check("SPENDSGIR byte write, word read", 0x0100, gicd_rd(GICD_SPENDSGIR + 4, 4));
	gicd_check("ISPENDR0 shows SGI 5 pending", 1u << 5, gicd_rd(GICD_ISPENDR, 4) & 0xffff);
	gicd_wr(GICD_ICPENDR, 4, 0xffff);
	gicd_check("ICPENDR0 write to SGI bits ignored", 1u << 5, gicd_rd(GICD_ISPENDR, 4) & 0xffff);
	gicd_wr(GICD_CPENDSGIR + 5, 1, 0x01);
	gicd_check("CPENDSGIR byte write clears", 0, gicd_rd(GICD_SPENDSGIR + 4, 4));
	/* Source bits of CPU interfaces the VM does not have: RAZ/WI. */
	gicd_wr(GICD_SPENDSGIR + 8, 4, 0xffffffff);
	gicd_check("SPENDSGIR word write keeps the VM's vCPUs", mask * 0x01010101,
		   gicd_rd(GICD_SPENDSGIR + 8, 4));
	gicd_check("SPENDSGIR byte read", mask, gicd_rd(GICD_SPENDSGIR + 9, 1));
	gicd_wr(GICD_CPENDSGIR + 8, 4, 0xffffffff);
	gicd_check("CPENDSGIR word write clears", 0, gicd_rd(GICD_SPENDSGIR + 8, 4));
	/* GICD_SGIR, TargetListFilter 0b10: to the requesting vCPU, source itself. */
	gicd_wr(GICD_SGIR, 4, 2u << 24 | 7);
	gicd_check("SGIR to self: SGI 7 pending from vCPU 0", 0x01000000, gicd_rd(GICD_SPENDSGIR + 4, 4));
	gicd_wr(GICD_CPENDSGIR + 4, 4, 0xffffffff);
	/* TargetListFilter 0b00 to every CPU interface: the VM's vCPUs only. */
	gicd_wr(GICD_SGIR, 4, 0xffu << 16 | 3);
	gicd_check("SGIR target list: SGI 3 pending on vCPU 0", 0x01000000, gicd_rd(GICD_SPENDSGIR, 4));
	gicd_wr(GICD_CPENDSGIR, 4, 0xffffffff);
	gicd_check("SPENDSGIR halfword read (RAZ)", 0, gicd_rd(GICD_SPENDSGIR, 2));
}

static void mode_gicd(void)
{
	u64 mask = (1UL << cfg.nvcpus) - 1;

	if (cfg.nvcpus > 1 && !start_secondaries("gicd"))
		return;
	gicd_typer();
	gicd_targets(mask);
	gicd_priority();
	gicd_icfgr();
	gicd_sgis(mask);
	if (cfg.nvcpus > 1) {
		/* vCPU 1 sees SGI 3 from vCPU 0 (the target-list SGI above) and its own targets. */
		dmb(); /* the SGIs before go */
		finished[0] = 1;
		go = 1;
		if (wait_all(finished, 2) != 2) {
			pr("memtest: gicd FAIL vCPU 1 did not finish\n");
			return;
		}
		gicd_check("vCPU 1: ITARGETSR0 reads as vCPU 1", 0x02020202, g1_targets0);
		gicd_check("vCPU 1: ITARGETSR byte of PPI 31", 0x02, g1_target31);
		gicd_check("vCPU 1: SPENDSGIR0 SGI 3 from vCPU 0", 0x01000000, g1_spendsgir0);
		gicd_check("vCPU 1: ISPENDR0 SGI 3", 1u << 3, g1_ispendr0 & 0xffff);
	}
	if (g_failed)
		pr("memtest: gicd FAIL %lu of %lu checks\n", g_failed, g_checks);
	else
		pr("memtest: gicd ok checks=%lu vcpus=%lu\n", g_checks, cfg.nvcpus);
}

/*
 * ---- 20: virtio: the 32 virtio-mmio slots at 0x0a000000 answer as empty
 * version 2 transports (magic, version 2, device ID 0, vendor "QEMU"),
 * ignore writes, and a byte read reads as zero: no access aborts ----
 */
static void mode_virtio(void)
{
	for (u64 i = 0; i < 32; i++) {
		u64 b = VIRTIO_MMIO + i * 0x200;
		u64 magic = R32(b), version = R32(b + 4), device = R32(b + 8), vendor = R32(b + 0xc);

		if (magic != 0x74726976 || version != 2 || device != 0 || vendor != 0x554d4551) {
			pr("memtest: virtio FAIL slot %lu: magic 0x%lx version %lu device %lu vendor 0x%lx\n", i,
			   magic, version, device, vendor);
			return;
		}
		R32(b + 0x070) = 0xf; /* Status: ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK */
		R32(b + 0x050) = 0;   /* QueueNotify */
		if (R32(b + 0x070) || R32(b + 0x034) || *(volatile unsigned char *)(b + 0x100)) {
			pr("memtest: virtio FAIL slot %lu: status, QueueNumMax or config space not zero\n", i);
			return;
		}
	}
	pr("memtest: virtio ok slots=32\n");
}

/*
 * ---- 28: virtio-hostile: a driver that lies, against the balloon in slot 0
 * (the VM's config says balloon = "on"). Each lie must put the device into
 * DEVICE_NEEDS_RESET with a configuration interrupt status, and a reset
 * must bring it back; then an honest inflate of one page works, and that
 * page reads as zero afterwards (it left the VM). A notification storm
 * changes nothing. ----
 */
#define VQ_NUM 8

static struct vdrv bal = { .mode = "virtio-hostile", .regs = VIRTIO_SLOT(0), .num = VQ_NUM };

static void mode_virtio_hostile(void)
{
	u64 pfn_page = cfg.free + 64 * PAGE_SIZE, victim = cfg.free + 128 * PAGE_SIZE, cases = 0;
	u64 vq_base = bal.base = cfg.free + 16 * PAGE_SIZE;
	volatile unsigned short *used = vdrv_used(&bal);

	if (!need_ram("virtio-hostile", victim + PAGE_SIZE))
		return;
	if (R32(VIRTIO_MMIO + 8) != 5) {
		pr("memtest: virtio-hostile FAIL slot 0 is device %u, not the balloon (balloon = \"on\"?)\n",
		   R32(VIRTIO_MMIO + 8));
		return;
	}
	/* Rings outside RAM, a size past QueueNumMax, a size not a power of 2, a misaligned ring. */
	vdrv_setup(&bal, VQ_NUM, 0x1000, vq_base + 0x1000, vq_base + 0x2000);
	cases += vdrv_refused(&bal, "desc outside RAM");
	vdrv_setup(&bal, 1024, vq_base, vq_base + 0x1000, vq_base + 0x2000);
	cases += vdrv_refused(&bal, "queue size 1024");
	vdrv_setup(&bal, 6, vq_base, vq_base + 0x1000, vq_base + 0x2000);
	cases += vdrv_refused(&bal, "queue size 6");
	vdrv_setup(&bal, VQ_NUM, vq_base + 8, vq_base + 0x1000, vq_base + 0x2000);
	cases += vdrv_refused(&bal, "misaligned desc");
	vdrv_setup(&bal, VQ_NUM, vq_base, vq_base + 0x1000, cfg.ram_end - 8);
	cases += vdrv_refused(&bal, "used ring past RAM's end");
	/* Lies in the rings. */
	vdrv_honest(&bal);
	vdrv_offer(&bal, 0, 1000);
	cases += vdrv_refused(&bal, "avail idx 1000 ahead");
	vdrv_honest(&bal);
	vdrv_offer(&bal, VQ_NUM + 3, 1);
	cases += vdrv_refused(&bal, "head past the table");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, pfn_page, 4, 1, 1);
	vdrv_desc(&bal, 1, pfn_page, 4, 1, 0);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "a chain that loops");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, pfn_page, 4, 1, 77);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "next past the table");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, 0x1000, 4, 0, 0);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "a buffer outside RAM");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, cfg.ram_end - 16, 0xffffffffu, 0, 0);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "a huge length");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, pfn_page, 4, 4, 0); /* INDIRECT, not offered */
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "an indirect descriptor");
	vdrv_honest(&bal);
	WR(pfn_page, 0x7f000000UL); /* a page number far outside RAM */
	vdrv_desc(&bal, 0, pfn_page, 4, 0, 0);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "a page number outside RAM");
	vdrv_honest(&bal);
	vdrv_desc(&bal, 0, pfn_page, 3, 0, 0);
	vdrv_offer(&bal, 0, 1);
	cases += vdrv_refused(&bal, "a buffer of 3 bytes");
	if (cases != 14)
		return;
	/* A storm of notifications with nothing offered, and to queues that do not exist: nothing happens. */
	vdrv_honest(&bal);
	for (u32 k = 0; k < 20000; k++)
		R32(VIRTIO_MMIO + 0x050) = k % 9;
	if (R32(VIRTIO_MMIO + 0x070) & VS_NEEDS_RESET || used[1] != 0) {
		pr("memtest: virtio-hostile FAIL a notify storm changed the device: status 0x%x used %u\n",
		   R32(VIRTIO_MMIO + 0x070), used[1]);
		return;
	}
	/* Honest at last: inflate one page we wrote; it leaves the VM and reads as zero after. */
	for (u64 a = victim; a < victim + PAGE_SIZE; a += 8)
		WR(a, 0x5a5a5a5a5a5a5a5aUL ^ a);
	*(volatile u32 *)pfn_page = (u32)(victim >> 12);
	vdrv_desc(&bal, 0, pfn_page, 4, 0, 0);
	vdrv_offer(&bal, 0, 1);
	if (used[1] != 1 || (R32(VIRTIO_MMIO + 0x070) & VS_NEEDS_RESET)) {
		pr("memtest: virtio-hostile FAIL an honest inflate: used %u status 0x%x\n", used[1],
		   R32(VIRTIO_MMIO + 0x070));
		return;
	}
	for (u64 a = victim; a < victim + PAGE_SIZE; a += 8)
		if (RD(a)) {
			pr("memtest: virtio-hostile FAIL an inflated page still reads 0x%lx at 0x%lx\n", RD(a), a);
			return;
		}
	pr("memtest: virtio-hostile ok cases=%lu\n", cases);
}

/*
 * ---- 21: ipi: vCPU 0 sends IPI_COUNT SGIs to vCPU 1, which only spins with
 * interrupts unmasked (no trap, no timer). Each carries a sequence number in
 * memory; vCPU 0 sends the next once vCPU 1's handler has counted this one
 * (it counts before its EOI, so the next SGI often arrives while this one is
 * still active). Every one must arrive, in order. Also, with a second SGI
 * ID pending at once, more SGIs than list registers at a time. ----
 */
#define IPI_COUNT 65536
#define IPI_SGI 1
#define GICV_CPU 0x08010000UL
#define GICC_CTLR 0x00
#define GICC_PMR 0x04
#define GICC_IAR 0x0c
#define GICC_EOIR 0x10

static volatile u64 ipi_seq, ipi_got, ipi_bad, ipi_spin_stop, ipi_burst;

#define PPI_VTIMER 27
#define PPI_PTIMER 30
static void vtimer_irq(void); /* mode 22 */
static void ptimer_irq(void); /* mode 24 */
static void pmu_irq(void); /* mode 26 */
#define PPI_PMU 23
static void bench_exits_irq(u32 iar); /* mode 23: its own, EOI included */

void guest_irq(void)
{
	u32 iar = R32(GICV_CPU + GICC_IAR), id = iar & 0x3ff;

	if (cfg.mode == 23) {
		bench_exits_irq(iar);
		return;
	}
	if (id == PPI_VTIMER) {
		vtimer_irq();
	} else if (id == PPI_PMU) {
		pmu_irq();
	} else if (id == PPI_PTIMER) {
		ptimer_irq();
	} else if (id == IPI_SGI) {
		if (ipi_got != ipi_seq)
			ipi_bad++;
		ipi_got++;
		/* Still active a while after it counted: the next SGI arrives before the EOI. */
		for (volatile int k = 0; k < 300; k++)
			;
	} else if (id >= 2 && id < 16) {
		ipi_burst |= 1u << id;
	} else if (id < 1020) {
		ipi_bad++;
	}
	if (id < 1020)
		R32(GICV_CPU + GICC_EOIR) = iar;
}

static void ipi_receiver(void)
{
	R32(VGICD + 0x100) = 0xffff; /* GICD_ISENABLER0 is banked: this vCPU's own SGIs */
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	ready[1] = 1;
	asm volatile("msr daifclr, #2" : : : "memory"); /* IRQs unmasked: now it only spins */
	while (!ipi_spin_stop)
		;
	asm volatile("msr daifset, #2" : : : "memory");
	finished[1] = 1;
}

static void ipi_send(u32 targets, u32 id)
{
	dmb();
	R32(VGICD + 0xf00) = targets << 16 | id; /* GICD_SGIR, target list filter 0 */
}

static void mode_ipi(void)
{
	u64 t0, t1, deadline;

	if (cfg.nvcpus < 2) {
		pr("memtest: ipi FAIL needs 2 vCPUs\n");
		return;
	}
	R32(VGICD) = 1; /* GICD_CTLR */
	if (!start_secondaries("ipi"))
		return;
	while (!ready[1])
		;
	t0 = counter();
	deadline = t0 + cfg.timeout;
	for (u64 i = 0; i < IPI_COUNT; i++) {
		ipi_seq = i;
		ipi_send(1u << 1, IPI_SGI);
		while (ipi_got != i + 1)
			if (counter() > deadline) {
				pr("memtest: ipi FAIL IPI %lu of %u never arrived (got %lu, out of order %lu)\n", i,
				   IPI_COUNT, ipi_got, ipi_bad);
				ipi_spin_stop = 1;
				return;
			}
	}
	t1 = counter();
	/* Fourteen other SGIs at once: more than the list registers hold; every one arrives. */
	for (u32 id = 2; id < 16; id++)
		ipi_send(1u << 1, id);
	while (ipi_burst != 0xfffc && counter() < deadline)
		;
	ipi_spin_stop = 1;
	while (!finished[1])
		;
	if (ipi_bad || ipi_burst != 0xfffc)
		pr("memtest: ipi FAIL out of order or unexpected %lu, burst 0x%lx (want 0xfffc)\n", ipi_bad,
		   ipi_burst);
	else
		pr("memtest: ipi ok ipis=%u ticks=%lu freq=%lu\n", IPI_COUNT, t1 - t0, counter_freq());
}

/*
 * ---- 22: vtimer: the virtual timer's interrupt follows the timer. With
 * IRQs masked the timer fires (Quire forwards it: pending in a list
 * register), then the guest turns the timer off (or masks it), makes an
 * exit (HVC), and unmasks IRQs: the interrupt must not be taken. With the
 * timer left on, it must be. ----
 */
static volatile u64 vtimer_irqs;

static void vtimer_irq(void)
{
	vtimer_irqs++;
	MSR("cntv_ctl_el0", 0); /* the handler turns its source off, as a driver does */
}

/* Fire the timer with IRQs masked, wait until it has been forwarded, then apply ctl; IRQs taken after. */
static u64 vtimer_round(u64 ctl_after)
{
	u64 t, n0 = vtimer_irqs;

	MSR("cntv_cval_el0", MRS("cntvct_el0") + counter_freq() / 10000);
	MSR("cntv_ctl_el0", 1);
	while (!(MRS("cntv_ctl_el0") & 4))
		;
	/* 1 ms: the physical PPI reached Quire and was forwarded (pending in a list register). */
	for (t = counter() + counter_freq() / 1000; counter() < t;)
		;
	MSR("cntv_ctl_el0", ctl_after);
	hvc(QUIRE_HC_MEM_STATS, 0, 0, 0); /* an exit: Quire looks at its list registers */
	asm volatile("msr daifclr, #2" : : : "memory");
	for (t = counter() + counter_freq() / 1000; counter() < t;)
		;
	asm volatile("msr daifset, #2" : : : "memory");
	MSR("cntv_ctl_el0", 0);
	return vtimer_irqs - n0;
}

static void mode_vtimer(void)
{
	u64 off, masked, on;

	R32(VGICD + 0x100) = 1u << PPI_VTIMER; /* GICD_ISENABLER0 */
	R32(VGICD) = 1;
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	off = vtimer_round(0);	   /* disabled */
	masked = vtimer_round(3); /* enabled, IMASK */
	on = vtimer_round(1);	   /* still firing */
	if (off || masked || on != 1)
		pr("memtest: vtimer FAIL taken after disable %lu, after mask %lu, left on %lu (want 0 0 1)\n",
		   off, masked, on);
	else
		pr("memtest: vtimer ok\n");
}

/*
 * ---- 24: ptimer: the EL1 physical timer (CNTP_*) works: its registers,
 * its interrupt (PPI 30) while the vCPU spins and while it waits in WFI,
 * IMASK holding the interrupt back, TVAL signed. ----
 */
static volatile u64 ptimer_irqs;

static void ptimer_irq(void)
{
	ptimer_irqs++;
	MSR("cntp_ctl_el0", 0); /* the handler turns its source off, as a driver does */
}

static bool ptimer_wait(u64 n, bool wfi)
{
	u64 deadline = counter() + counter_freq();

	while (ptimer_irqs < n && counter() < deadline)
		if (wfi)
			asm volatile("wfi");
	return ptimer_irqs >= n;
}

static void mode_ptimer(void)
{
	const char *bad = 0;
	u64 tval, ctl;

	R32(VGICD + 0x100) = 1u << PPI_PTIMER; /* GICD_ISENABLER0 */
	R32(VGICD) = 1;
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	MSR("cntp_cval_el0", 0x123456789UL);
	if (MRS("cntp_cval_el0") != 0x123456789UL)
		bad = "CVAL does not read back";
	MSR("cntp_tval_el0", counter_freq()); /* 1 s ahead */
	tval = MRS("cntp_tval_el0");
	if (!bad && (tval == 0 || tval > counter_freq()))
		bad = "TVAL does not count down from what was written";
	asm volatile("msr daifclr, #2" : : : "memory");
	MSR("cntp_tval_el0", counter_freq() / 1000);
	MSR("cntp_ctl_el0", 1);
	if (!bad && !ptimer_wait(1, false))
		bad = "no interrupt while spinning";
	MSR("cntp_tval_el0", counter_freq() / 1000);
	MSR("cntp_ctl_el0", 1);
	if (!bad && !ptimer_wait(2, true))
		bad = "no interrupt in WFI";
	/* Masked: it fires (ISTATUS) but its interrupt is held back until IMASK is cleared. */
	MSR("cntp_tval_el0", counter_freq() / 1000);
	MSR("cntp_ctl_el0", 3);
	ptimer_wait(3, false);
	ctl = MRS("cntp_ctl_el0");
	if (!bad && (ptimer_irqs != 2 || ctl != 7))
		bad = "IMASK did not hold it back, or ISTATUS is not set";
	tval = MRS("cntp_tval_el0");
	if (!bad && !(tval & 0x80000000UL))
		bad = "TVAL is not negative once the deadline passed";
	MSR("cntp_ctl_el0", 1);
	if (!bad && !ptimer_wait(3, false))
		bad = "no interrupt once IMASK was cleared";
	asm volatile("msr daifset, #2" : : : "memory");
	if (bad)
		pr("memtest: ptimer FAIL %s (interrupts %lu, CTL 0x%lx)\n", bad, ptimer_irqs, ctl);
	else
		pr("memtest: ptimer ok interrupts=%lu\n", ptimer_irqs);
}

/*
 * ---- 23: bench-exits: the cost of exits, in counter ticks (scripts/bench
 * runs this under -icount, where they become instructions). Each figure is
 * a whole guest -> EL2 -> guest round trip:
 *  - a 32-bit read of GICD_TYPER (the vGIC distributor, emulated by Quire)
 *    and of UARTFR (the vPL011), BX_READS each, minus the same loop reading RAM;
 *  - the virtual timer: from CNTV_CVAL to the guest's handler reading
 *    CNTVCT_EL0 (physical PPI to EL2, list register, vector, GICC_IAR), BX_TIMERS
 *    times, summed.
 * With 2 vCPUs (on 2 CPUs), instead: IPIs. vCPU 0 sends SGI BX_PING to
 * vCPU 1, which only spins with interrupts unmasked; its handler reads the
 * counter and wakes vCPU 0 with SGI BX_PONG. Under -icount QEMU runs the
 * CPUs round-robin on one clock, and an interrupt raised for the other CPU
 * waits until the running one stops: at the end of its slice (tens of ms;
 * QEMU kicks no CPU for an interrupt raised from its own thread), or when it
 * halts. So vCPU 0 waits in WFI right after its send, and Quire's real WFI
 * hands QEMU to CPU 1: from vCPU 0's counter before the GICD_SGIR write to
 * vCPU 1's in its handler the clock counts the send, the delivery (the
 * physical SGI at EL2, the list register, the vector, GICC_IAR) and also
 * vCPU 0's way into WFI and QEMU's switch, which a spinning sender on real
 * CPUs never pays. Side by side, the same number of pokes measure that
 * part alone: vCPU 0 stores its counter to bx_poke_t0 and waits in WFI the
 * same way; vCPU 1's spin loop sees the store and reads the counter. The
 * round trip is the IPI's time minus the poke's (the spin loop's few
 * instructions to see the store go with it). Its acknowledgement back to a
 * spinning sender would be a store. ----
 */
#define BX_READS 4096
#define BX_TIMERS 64
#define BX_IPIS 256
#define BX_PING 2
#define BX_PONG 3
#define VPL011_FR (VPL011 + 0x18) /* UARTFR */

static volatile u64 bx_timer_sum, bx_timers, bx_pongs, bx_stop, bx_deadline;
static volatile u64 bx_t0, bx_ipi_sum, bx_poke_t0, bx_poke_sum;
static void ipi_send(u32 targets, u32 id);

static void bench_exits_irq(u32 iar)
{
	u32 id = iar & 0x3ff;

	if (id == PPI_VTIMER) {
		/* First thing: the counter against the deadline, then the source off. */
		u64 now = MRS("cntvct_el0");

		bx_timer_sum += now - MRS("cntv_cval_el0");
		bx_timers++;
		MSR("cntv_ctl_el0", 0);
	} else if (id == BX_PING) {
		bx_ipi_sum += counter() - bx_t0;
		ipi_send(1u << 0, BX_PONG); /* wakes vCPU 0 (not timed) */
	} else if (id == BX_PONG) {
		bx_pongs++;
	}
	if (id < 1020)
		R32(GICV_CPU + GICC_EOIR) = iar;
}

static void bx_receiver(void)
{
	R32(VGICD + 0x100) = 1u << BX_PING; /* GICD_ISENABLER0 is banked: this vCPU's own */
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	ready[1] = 1;
	asm volatile("msr daifclr, #2" : : : "memory"); /* IRQs unmasked: now it only spins */
	while (!bx_stop && counter() < bx_deadline)
		if (bx_poke_t0) {
			bx_poke_sum += counter() - bx_poke_t0;
			bx_poke_t0 = 0;
			ipi_send(1u << 0, BX_PONG); /* wakes vCPU 0 (not timed) */
		}
	asm volatile("msr daifset, #2" : : : "memory");
	finished[1] = 1;
}

/* 2 vCPUs: IPIs to a spinning vCPU (bx_receiver, timing them in bench_exits_irq). */
static void bench_ipis(void)
{
	bx_deadline = counter() + cfg.timeout;
	R32(VGICD) = 1; /* GICD_CTLR */
	if (!start_secondaries("bench-exits"))
		return;
	while (!ready[1])
		;
	R32(VGICD + 0x100) = 1u << BX_PONG; /* GICD_ISENABLER0: this vCPU's own */
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	/* Even rounds an IPI, odd ones a poke, so that both see the same machine. */
	for (u64 i = 0; i < 2 * BX_IPIS && counter() < bx_deadline; i++) {
		if (i & 1) {
			bx_poke_t0 = counter();
		} else {
			bx_t0 = counter();
			ipi_send(1u << 1, BX_PING);
		}
		while (bx_pongs != i + 1 && counter() < bx_deadline)
			asm volatile("msr daifclr, #2; wfi; msr daifset, #2" : : : "memory");
	}
	bx_stop = 1;
	while (!finished[1])
		;
	if (bx_pongs != 2 * BX_IPIS)
		pr("memtest: bench-exits FAIL %lu of %u IPIs and pokes acknowledged\n", bx_pongs, 2 * BX_IPIS);
	else
		pr("memtest: bench-exits ipi_ticks=%lu poke_ticks=%lu ipis=%u freq=%lu\n", bx_ipi_sum, bx_poke_sum,
		   BX_IPIS, counter_freq());
}

static u64 bx_read_loop(u64 addr)
{
	u64 t0 = counter(), sink = 0;

	for (u64 i = 0; i < BX_READS; i++)
		sink += R32(addr);
	(void)sink;
	return counter() - t0;
}

static void mode_bench_exits(void)
{
	u64 base, vgic, pl011, deadline;

	if (cfg.nvcpus > 1) {
		bench_ipis();
		return;
	}
	base = bx_read_loop(cfg.free);
	vgic = bx_read_loop(VGICD + 0x004) - base; /* GICD_TYPER */
	pl011 = bx_read_loop(VPL011_FR) - base;
	R32(VGICD + 0x100) = 1u << PPI_VTIMER; /* GICD_ISENABLER0 */
	R32(VGICD) = 1;			       /* GICD_CTLR */
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	deadline = counter() + cfg.timeout;
	for (u64 i = 0; i < BX_TIMERS; i++) {
		MSR("cntv_cval_el0", MRS("cntvct_el0") + counter_freq() / 10000);
		MSR("cntv_ctl_el0", 1);
		asm volatile("msr daifclr, #2" : : : "memory");
		while (bx_timers != i + 1 && counter() < deadline)
			;
		asm volatile("msr daifset, #2" : : : "memory");
	}
	if (bx_timers != BX_TIMERS) {
		pr("memtest: bench-exits FAIL %lu of %u timer interrupts\n", bx_timers, BX_TIMERS);
		return;
	}
	pr("memtest: bench-exits mmio_vgic_ticks=%lu mmio_pl011_ticks=%lu n=%u timer_ticks=%lu timers=%u "
	   "freq=%lu\n", vgic, pl011, BX_READS, bx_timer_sum, BX_TIMERS, counter_freq());
}

/*
 * ---- 25: debug: self-hosted debug works in the guest and is its own.
 * A hardware breakpoint, a watchpoint on a store, software step through a
 * sequence with instructions Quire emulates (each step exception at the next
 * instruction), the OS lock holding breakpoints back, every DBGB and DBGW
 * register reading back. With 2 vCPUs (on one CPU, smp=1): vCPU 1 first
 * sees only zeros where vCPU 0 has values and a breakpoint armed, takes no
 * breakpoint of vCPU 0's, and each keeps its own values across switches. ----
 */
#define EC_BKPT_CUR 0x31
#define EC_STEP_CUR 0x33
#define EC_WATCH_CUR 0x35
#define MDSCR_SS (1UL << 0)
#define MDSCR_KDE (1UL << 13)
#define MDSCR_MDE (1UL << 15)
#define SPSR_SS (1UL << 21)
#define DBG_STEPS 6

static volatile u64 dbg_hits[MAX_VCPUS][3]; /* breakpoint, step, watchpoint */
static volatile u64 dbg_elr[MAX_VCPUS], dbg_far[MAX_VCPUS], dbg_other[MAX_VCPUS];
static volatile u64 dbg_step_left, dbg_step_elr[DBG_STEPS];
static volatile u64 watch_var;
static volatile u64 dbg_leak, dbg_keep[MAX_VCPUS], dbg_done[MAX_VCPUS];
static u64 dbg_skip_bp = ~0UL; /* vCPU 0's breakpoint armed for vCPU 1: not part of the pattern */

/* The n-th DBGBVR (kind 0), DBGBCR (1), DBGWVR (2), DBGWCR (3): read, or written when w. */
#define DBG_ONE(n)                                                                                           \
	case n:                                                                                              \
		switch (kind) {                                                                              \
		case 0: if (w) MSR("dbgbvr" #n "_el1", v); return MRS("dbgbvr" #n "_el1");             \
		case 1: if (w) MSR("dbgbcr" #n "_el1", v); return MRS("dbgbcr" #n "_el1");             \
		case 2: if (w) MSR("dbgwvr" #n "_el1", v); return MRS("dbgwvr" #n "_el1");             \
		default: if (w) MSR("dbgwcr" #n "_el1", v); return MRS("dbgwcr" #n "_el1");            \
		}
static u64 dbg_rw(u64 n, u64 kind, bool w, u64 v)
{
	switch (n) {
		DBG_ONE(0) DBG_ONE(1) DBG_ONE(2) DBG_ONE(3) DBG_ONE(4) DBG_ONE(5) DBG_ONE(6) DBG_ONE(7)
		DBG_ONE(8) DBG_ONE(9) DBG_ONE(10) DBG_ONE(11) DBG_ONE(12) DBG_ONE(13) DBG_ONE(14) DBG_ONE(15)
	}
	return 0;
}

static u64 dbg_brps(void)
{
	return ((MRS("id_aa64dfr0_el1") >> 12) & 0xf) + 1;
}

static u64 dbg_wrps(void)
{
	return ((MRS("id_aa64dfr0_el1") >> 20) & 0xf) + 1;
}

/* A value for register n of a kind that the registers hold as written (valid fields only, E clear). */
static u64 dbg_pattern(u64 n, u64 kind, u64 salt)
{
	switch (kind) {
	case 0: return RAM_BASE + salt * 0x100000 + n * 0x100;		  /* DBGBVR: word aligned */
	case 1: return 0xfUL << 5 | ((n + salt) % 3 + 1) << 1;		  /* BAS, PMC */
	case 2: return RAM_BASE + salt * 0x100000 + 0x8000 + n * 0x40;  /* DBGWVR: doubleword aligned */
	default: return (1UL << ((n + salt) % 8)) << 5 | ((n + salt) % 3 + 1) << 3 | 3UL << 1; /* BAS, LSC, PAC */
	}
}

/* Registers that differ from the pattern (salt 0: all zero); writes it first when w. */
static u64 dbg_check(u64 salt, bool zero, bool w)
{
	u64 bad = 0, nb = dbg_brps(), nw = dbg_wrps();

	for (u64 kind = 0; kind < 4; kind++)
		for (u64 n = 0; n < (kind < 2 ? nb : nw); n++) {
			u64 want = zero ? 0 : dbg_pattern(n, kind, salt);

			if (kind < 2 && n == dbg_skip_bp && vcpu_self() == 0)
				continue;
			if (w)
				dbg_rw(n, kind, true, want);
			if (dbg_rw(n, kind, false, 0) != want)
				bad++;
		}
	return bad;
}

void guest_debug(u64 esr, u64 far, u64 elr)
{
	u64 me = vcpu_self(), ec = (esr >> 26) & 0x3f;

	dbg_elr[me] = elr;
	dbg_far[me] = far;
	if (ec == EC_BKPT_CUR) {
		dbg_hits[me][0]++;
		MSR("dbgbcr0_el1", 0); /* off, so the instruction runs when we return to it */
		if (dbg_step_left) {
			/* The start of the stepped sequence: step on from its first instruction. */
			MSR("mdscr_el1", MRS("mdscr_el1") | MDSCR_SS);
			MSR("spsr_el1", MRS("spsr_el1") | SPSR_SS);
		}
	} else if (ec == EC_STEP_CUR) {
		u64 i = dbg_hits[me][1]++;

		if (i < DBG_STEPS)
			dbg_step_elr[i] = elr;
		if (--dbg_step_left)
			MSR("spsr_el1", MRS("spsr_el1") | SPSR_SS);
		else
			MSR("mdscr_el1", MRS("mdscr_el1") & ~MDSCR_SS);
	} else if (ec == EC_WATCH_CUR) {
		dbg_hits[me][2]++;
		MSR("dbgwcr0_el1", 0);
	} else {
		dbg_other[me]++;
	}
}

__attribute__((noipa, noinline)) int bp_target(int x)
{
	return x * 3 + 1;
}

__attribute__((noipa, noinline)) int bp_other(int x)
{
	return x * 5 + 2;
}

/*
 * Stepped through: a trapped MRS (the emulated physical timer) and an
 * emulated MMIO read (GICD_TYPER) among plain instructions, no branch.
 */
void step_seq(u64 gicd);
asm(".text\n.global step_seq\nstep_seq:\n"
    "\tnop\n"
    "\tmrs x1, cntp_ctl_el0\n"
    "\tadd x2, x2, #1\n"
    "\tldr w3, [x0, #4]\n"
    "\tadd x2, x2, #1\n"
    "\tnop\n"
    "\tret\n");

static void dbg_arm_bp(u64 addr)
{
	MSR("dbgbvr0_el1", addr);
	MSR("dbgbcr0_el1", 0xfUL << 5 | 3UL << 1 | 1); /* BAS all, PMC EL1 and EL0, enabled */
}

static const char *dbg_run(void)
{
	int (*volatile call)(int) = bp_target;
	u64 me = 0, h;

	if (dbg_check(0, true, false) || MRS("mdscr_el1") != 0)
		return "a fresh vCPU's debug registers are not all zero";
	if (MRS("oslsr_el1") != 0x8)
		return "OSLSR_EL1 is not OSLM=0b10, unlocked";
	MSR("mdscr_el1", MDSCR_KDE | MDSCR_MDE);
	asm volatile("msr daifclr, #8" : : : "memory"); /* debug exceptions unmasked at EL1 */
	/* Breakpoint. */
	dbg_arm_bp((u64)bp_target);
	if (call(1) != 4 || dbg_hits[me][0] != 1 || dbg_elr[me] != (u64)bp_target)
		return "no breakpoint exception at the function";
	/* Watchpoint: a store fires it, a load does not. */
	MSR("dbgwvr0_el1", (u64)&watch_var);
	MSR("dbgwcr0_el1", 0xffUL << 5 | 2UL << 3 | 3UL << 1 | 1); /* BAS all, stores, EL1 and EL0 */
	h = watch_var;
	if (dbg_hits[me][2] != 0)
		return "a load fired a store watchpoint";
	watch_var = h + 7;
	if (dbg_hits[me][2] != 1 || dbg_far[me] != (u64)&watch_var || watch_var != h + 7)
		return "no watchpoint exception on the store";
	/* Software step, started from a breakpoint on the sequence. */
	dbg_step_left = DBG_STEPS;
	dbg_arm_bp((u64)step_seq);
	step_seq(VGICD);
	if (dbg_hits[me][1] != DBG_STEPS)
		return "software step: not one step exception per instruction";
	for (u64 i = 0; i < DBG_STEPS; i++)
		if (dbg_step_elr[i] != (u64)step_seq + 4 * (i + 1)) {
			pr("memtest: debug step %lu at 0x%lx, want 0x%lx\n", i, dbg_step_elr[i],
			   (u64)step_seq + 4 * (i + 1));
			return "software step: a step exception not at the next instruction";
		}
	/* OS lock: no breakpoint while it is set; what was set meanwhile acts once it is cleared. */
	MSR("oslar_el1", 1);
	if (MRS("oslsr_el1") != 0xa)
		return "OSLSR_EL1.OSLK not set by OSLAR_EL1";
	dbg_arm_bp((u64)bp_target);
	if (MRS("dbgbvr0_el1") != (u64)bp_target)
		return "DBGBVR0_EL1 does not read back while the OS lock is set";
	h = dbg_hits[me][0];
	call(2);
	if (dbg_hits[me][0] != h)
		return "a breakpoint exception while the OS lock is set";
	MSR("oslar_el1", 0);
	if (MRS("oslsr_el1") != 0x8)
		return "OSLSR_EL1.OSLK not cleared";
	call(3);
	if (dbg_hits[me][0] != h + 1)
		return "no breakpoint exception once the OS lock is cleared";
	if (dbg_other[me])
		return "an unexpected debug exception";
	/* Every register reads back. */
	if (dbg_check(1, false, true))
		return "a DBGB or DBGW register does not read back what was written";
	return 0;
}

/* vCPU 1: zeros where vCPU 0 has values, no breakpoint of vCPU 0's; then its own values kept. */
static void dbg_worker(u64 me)
{
	int (*volatile call)(int) = bp_other;

	if (dbg_check(0, true, false) || MRS("mdscr_el1") != 0)
		dbg_leak++;
	asm volatile("msr daifclr, #8" : : : "memory");
	call(1); /* vCPU 0 has a breakpoint here: not ours */
	if (dbg_hits[me][0] || dbg_other[me])
		dbg_leak++;
	dbg_check(2, false, true);
	for (int i = 0; i < 50; i++) {
		hvc(QUIRE_HC_YIELD, 0, 0, 0);
		if (dbg_check(2, false, false))
			dbg_keep[me]++;
	}
	dbg_done[me] = 1;
}

static void mode_debug(void)
{
	const char *bad = dbg_run();
	u64 deadline = counter() + cfg.timeout;

	if (!bad && cfg.nvcpus > 1) {
		/* vCPU 0's values, with one breakpoint armed where vCPU 1 will run. */
		MSR("dbgbvr1_el1", (u64)bp_other);
		MSR("dbgbcr1_el1", 0xfUL << 5 | 3UL << 1 | 1);
		dbg_skip_bp = 1;
		if (!start_secondaries("debug"))
			return;
		for (int i = 0; i < 50; i++) {
			hvc(QUIRE_HC_YIELD, 0, 0, 0);
			if (dbg_check(1, false, false))
				dbg_keep[0]++;
		}
		while (!dbg_done[1] && counter() < deadline)
			hvc(QUIRE_HC_YIELD, 0, 0, 0);
		if (!dbg_done[1])
			bad = "vCPU 1 did not finish";
		else if (dbg_leak)
			bad = "vCPU 1 saw vCPU 0's debug registers or took its breakpoint";
		else if (dbg_keep[0] || dbg_keep[1])
			bad = "a vCPU's debug registers changed across switches";
	}
	asm volatile("msr daifset, #8" : : : "memory");
	if (bad)
		pr("memtest: debug FAIL %s (breakpoints %lu steps %lu watchpoints %lu)\n", bad, dbg_hits[0][0],
		   dbg_hits[0][1], dbg_hits[0][2]);
	else
		pr("memtest: debug ok brps=%lu wrps=%lu breakpoints=%lu steps=%lu watchpoints=%lu vcpus=%lu\n",
		   dbg_brps(), dbg_wrps(), dbg_hits[0][0], dbg_hits[0][1], dbg_hits[0][2], cfg.nvcpus);
}

/*
 * ---- 26: pmu: the cycle counter counts; an event counter counts
 * INST_RETIRED (when QEMU has it: under -icount) close to a loop's
 * instructions, or CPU_CYCLES; an overflow raises INTID 23 in the guest
 * (an event counter's and the cycle counter's), once each; the ID
 * registers say what works. busy=<permille> is how much of a spinning
 * interval the cycle counter saw (QEMU: 1 GHz on the virtual clock): about
 * half when another VM shares the CPU, since it stops while the vCPU is
 * off its CPU. ----
 */
#define PMCR_E 1UL
#define PMCR_P 2UL
#define PMCR_C 4UL
#define PMU_LOOP 100000

static volatile u64 pmu_irqs, pmu_ovs;

static void pmu_irq(void)
{
	u64 ovs = MRS("pmovsset_el0");

	pmu_ovs |= ovs;
	MSR("pmovsclr_el0", ovs); /* the handler clears its source, as a driver does */
	pmu_irqs++;
}

static u64 pmu_loop(u64 n)
{
	u64 c0, c1;

	asm volatile("mrs %0, pmevcntr0_el0\n"
		     "1:\tsubs %2, %2, #1\n"
		     "\tb.ne 1b\n"
		     "\tmrs %1, pmevcntr0_el0"
		     : "=&r"(c0), "=&r"(c1), "+r"(n)
		     :
		     : "cc");
	return c1 - c0;
}

static bool pmu_overflow(u64 bit, u64 deadline)
{
	u64 n0 = pmu_irqs;

	pmu_ovs = 0;
	MSR("pmintenset_el1", 1UL << bit);
	if (bit == 31)
		MSR("pmccntr_el0", 0xffffffffUL - 20000);
	else
		MSR("pmevcntr0_el0", 0xffffffffUL - 20000);
	asm volatile("msr daifclr, #2" : : : "memory");
	while (pmu_irqs == n0 && counter() < deadline)
		;
	/* A while longer: a second interrupt would come now if the level did not follow the flag. */
	for (u64 t = counter() + counter_freq() / 100; counter() < t;)
		;
	asm volatile("msr daifset, #2" : : : "memory");
	MSR("pmintenclr_el1", 1UL << bit);
	return pmu_irqs == n0 + 1 && pmu_ovs == 1UL << bit;
}

static const char *pmu_idregs(void)
{
	u64 pfr0 = MRS("id_aa64pfr0_el1"), dfr0 = MRS("id_aa64dfr0_el1");

	if ((pfr0 & 0xff) != 0x11)
		return "ID_AA64PFR0_EL1: EL0 and EL1 not AArch64-only";
	if (((pfr0 >> 24) & 0xf) || ((pfr0 >> 28) & 0xf) || ((pfr0 >> 32) & 0xf))
		return "ID_AA64PFR0_EL1 advertises GIC system registers, RAS or SVE";
	if (((dfr0 >> 8) & 0xf) != 1 || ((dfr0 >> 4) & 0xf) || ((dfr0 >> 32) & 0xf) || ((dfr0 >> 36) & 0xf) != 0xf)
		return "ID_AA64DFR0_EL1: want PMUv3, no trace, no SPE, no double lock";
	if (MRS("s3_0_c0_c1_0") || MRS("s3_0_c0_c3_0") || MRS("s3_0_c0_c3_3") || MRS("s3_0_c0_c4_4"))
		return "an AArch32, unallocated or SVE ID register is not zero";
	MSR("osdlr_el1", 1);
	if (MRS("osdlr_el1"))
		return "OSDLR_EL1 not RAZ/WI with no double lock";
	return 0;
}

static void mode_pmu(void)
{
	const char *bad = pmu_idregs();
	u64 pmcr = MRS("pmcr_el0"), n = (pmcr >> 11) & 0x1f, ceid0 = MRS("pmceid0_el0");
	u64 ev = (ceid0 >> 8) & 1 ? 0x08 : 0x11, c0, c1, count = 0, t0, t1, busy = 0;
	u64 deadline = counter() + counter_freq() * 2; /* an overflow is due in microseconds */

	if (!bad && (n == 0 || !((ceid0 >> 0x11) & 1)))
		bad = "PMCR_EL0.N is 0 or CPU_CYCLES is not counted";
	if (!bad) {
		MSR("pmccfiltr_el0", 0); /* EL0 and EL1, not EL2 */
		MSR("pmcntenset_el0", 1UL << 31 | 1);
		MSR("pmevtyper0_el0", ev);
		MSR("pmcr_el0", PMCR_E | PMCR_P | PMCR_C);
		c0 = MRS("pmccntr_el0");
		count = pmu_loop(PMU_LOOP);
		c1 = MRS("pmccntr_el0");
		if (c1 <= c0)
			bad = "the cycle counter did not count";
		else if (ev == 0x08 && (count < 2 * PMU_LOOP || count > 2 * PMU_LOOP + 8))
			bad = "INST_RETIRED is not the loop's instructions";
		else if (ev == 0x11 && count == 0)
			bad = "CPU_CYCLES did not count";
		pr("memtest: pmu count event=0x%lx count=%lu loop=%u\n", ev, count, PMU_LOOP);
	}
	if (!bad) {
		/* How much of 200 ms of spinning the cycle counter saw. */
		t0 = counter();
		c0 = MRS("pmccntr_el0");
		while (counter() - t0 < counter_freq() / 5)
			;
		c1 = MRS("pmccntr_el0");
		t1 = counter();
		busy = (c1 - c0) * counter_freq() / (t1 - t0) / 1000000;
	}
	if (!bad) {
		R32(VGICD + 0x100) = 1u << PPI_PMU; /* GICD_ISENABLER0 */
		R32(VGICD) = 1;
		R32(GICV_CPU + GICC_PMR) = 0xff;
		R32(GICV_CPU + GICC_CTLR) = 1;
		MSR("pmevtyper0_el0", 0x11);
		if (!pmu_overflow(0, deadline))
			bad = "event counter overflow: not one interrupt 23 with PMOVSSET bit 0";
		else if (!pmu_overflow(31, deadline))
			bad = "cycle counter overflow: not one interrupt 23 with PMOVSSET bit 31";
	}
	MSR("pmcr_el0", 0);
	if (bad)
		pr("memtest: pmu FAIL %s (N %lu event 0x%lx count %lu irqs %lu ovs 0x%lx)\n", bad, n, ev, count,
		   pmu_irqs, pmu_ovs);
	else
		pr("memtest: pmu ok n=%lu event=0x%lx count=%lu loop=%u irqs=%lu busy=%lu\n", n, ev, count,
		   PMU_LOOP, pmu_irqs, busy);
}

/*
 * ---- 27: dbg-hostile: a guest that aims its breakpoints and watchpoints at
 * EL2 (HMC, SSC), writes wild values to every debug register, locks the OS
 * lock, and fills the PMU with garbage, overflow interrupts included, then
 * makes Quire work (HVCs, emulated MMIO and system registers, yields).
 * Quire takes no debug exception; the VM and its neighbours run on. It also
 * checks first that it starts with zero debug and PMU state. ----
 */
static void mode_dbg_hostile(void)
{
	struct abort_rec a;
	const char *bad = 0;
	u64 n = (MRS("pmcr_el0") >> 11) & 0x1f, v;

	if (dbg_check(0, true, false) || MRS("mdscr_el1"))
		bad = "a fresh VM's debug registers are not zero";
	if (!bad && (MRS("pmccntr_el0") || MRS("pmcntenset_el0") || MRS("pmintenset_el1") ||
		     MRS("pmovsset_el0") || (MRS("pmcr_el0") & PMCR_E)))
		bad = "a fresh VM's PMU is not in its reset state";
	for (u64 i = 0; !bad && i < n; i++) {
		MSR("pmselr_el0", i);
		if (MRS("pmxevcntr_el0"))
			bad = "a fresh VM's event counter is not zero";
	}
	/* Breakpoints and a watchpoint over the low 2 GiB matching at EL2 only (HMC, SSC 0b11, PAC/PMC 0). */
	for (u64 i = 0; i < dbg_brps(); i++) {
		dbg_rw(i, 0, true, RAM_BASE + i * 0x1000);
		dbg_rw(i, 1, true, 1UL << 13 | 3UL << 14 | 0xfUL << 5 | 1);
	}
	MSR("dbgwvr0_el1", 0);
	MSR("dbgwcr0_el1", 31UL << 24 | 1UL << 13 | 3UL << 14 | 0xffUL << 5 | 3UL << 3 | 1);
	MSR("mdscr_el1", MDSCR_KDE | MDSCR_MDE);
	asm volatile("msr daifclr, #8" : : : "memory");
	for (int i = 0; i < 20; i++) {
		hvc(QUIRE_HC_MEM_STATS, 0, 0, 0);
		(void)R32(VGICD + 4);
		(void)MRS("cntp_ctl_el0");
		hvc(QUIRE_HC_YIELD, 0, 0, 0);
	}
	asm volatile("msr daifset, #8" : : : "memory");
	if (!bad && dbg_other[0] + dbg_hits[0][0] + dbg_hits[0][2])
		bad = "a debug exception reached the guest from an EL2-only breakpoint or watchpoint";
	/* Wild values everywhere, debug exceptions masked at EL1; past BRPs/WRPs they UNDEF. */
	v = aborts[0].count;
	aborts[0].undef_ok = 1;
	for (u64 i = 0; i < 16; i++)
		for (u64 k = 0; k < 4; k++)
			dbg_rw(i, k, true, ~0UL);
	aborts[0].undef_ok = 0;
	/* Two kinds each, an MSR and an MRS for each register. */
	if (!bad && aborts[0].count - v != 4 * (16 - dbg_brps()) + 4 * (16 - dbg_wrps()))
		bad = "not one UNDEF for each access to a breakpoint or watchpoint past BRPs/WRPs";
	SYS_WRITE(mdscr_el1, ~0UL, &a);
	SYS_WRITE(mdccint_el1, ~0UL, &a);
	SYS_WRITE(dbgprcr_el1, ~0UL, &a);
	SYS_WRITE(osdlr_el1, ~0UL, &a);
	SYS_WRITE(s3_0_c0_c4_0, ~0UL, &a); /* ID_AA64PFR0_EL1: read-only */
	SYS_WRITE(pmcr_el0, ~0UL, &a);
	SYS_WRITE(pmcntenset_el0, ~0UL, &a);
	SYS_WRITE(pmintenset_el1, ~0UL, &a);
	SYS_WRITE(pmovsset_el0, ~0UL, &a);
	SYS_WRITE(pmccfiltr_el0, ~0UL, &a);
	SYS_WRITE(pmuserenr_el0, ~0UL, &a);
	SYS_WRITE(pmccntr_el0, ~0UL, &a);
	for (u64 i = 0; i < 32; i++) {
		SYS_WRITE(pmselr_el0, i, &a);
		SYS_WRITE(pmxevtyper_el0, ~0UL, &a);
		SYS_WRITE(pmxevcntr_el0, ~0UL - i, &a);
	}
	SYS_WRITE(pmevcntr30_el0, ~0UL, &a); /* past N */
	SYS_READ(pmevtyper30_el0, v, &a);
	SYS_WRITE(oslar_el1, ~0UL, &a);
	if (!bad && MRS("oslsr_el1") != 0xa)
		bad = "OSLSR_EL1 is not OSLM=0b10, locked";
	for (int i = 0; i < 50; i++) {
		hvc(QUIRE_HC_MEM_STATS, 0, 0, 0);
		(void)R32(VGICD + 4);
		hvc(QUIRE_HC_YIELD, 0, 0, 0);
	}
	(void)v;
	if (bad)
		pr("memtest: dbg-hostile FAIL %s\n", bad);
	else
		pr("memtest: dbg-hostile ok\n");
}

/*
 * ---- 32: bench-idle: a second in WFI (its virtual timer wakes it), then
 * mode 7: Quire's idle CPUs have had time to pre-zero pages for the fills. ----
 */
/* Sleep on the virtual timer for 'ticks' (idle CPUs zero pages meanwhile). */
static void idle_for(u64 ticks)
{
	u64 end = counter() + ticks;

	R32(VGICD + 0x100) = 1u << PPI_VTIMER; /* GICD_ISENABLER0 */
	R32(VGICD) = 1;			       /* GICD_CTLR */
	R32(GICV_CPU + GICC_PMR) = 0xff;
	R32(GICV_CPU + GICC_CTLR) = 1;
	while (counter() < end) {
		MSR("cntv_cval_el0", end);
		MSR("cntv_ctl_el0", 1); /* vtimer_irq turns it off again */
		asm volatile("msr daifclr, #2; wfi; msr daifset, #2" : : : "memory");
	}
	MSR("cntv_ctl_el0", 0);
}

static void mode_bench_idle(void)
{
	idle_for(counter_freq());
	mode_bench();
}

/*
 * ---- 33: exits: between two marks (Quire prints the VM's exit profile),
 * exactly EXITS_N exits of each of five kinds, nothing else that exits: the
 * test compares the two tables. Then ten more marks, of which Quire prints
 * two (four in a VM's life). ----
 */
#define EXITS_N 300

static void mode_exits(void)
{
	u64 base = cfg.free, t0, t1, sum = 0;

	if (!need_ram("exits", base + EXITS_N * PAGE_SIZE))
		return;
	/* Warm: this code's own pages and stack are mapped before the first mark. */
	sum += R32(VGICD + 0x004) + R32(VPL011_FR) + MRS("id_aa64mmfr0_el1");
	t0 = counter();
	exit_mark();
	for (u64 i = 0; i < EXITS_N; i++) {
		RD(base + i * PAGE_SIZE) = i;			/* a fill */
		sum += R32(VGICD + 0x004);			/* GICD_TYPER */
		sum += R32(VPL011_FR);				/* UARTFR */
		sum += hvc(PSCI_VERSION, 0, 0, 0).x0;		/* HVC */
		sum += MRS("id_aa64mmfr0_el1");			/* trapped by HCR_EL2.TID3 */
	}
	exit_mark();
	t1 = counter();
	pr("memtest: exits n=%u ticks=%lu sum=%lu done\n", EXITS_N, t1 - t0, sum & 1);
	/* A guest marking without end: Quire prints only its first few (QUIRE_EXIT_MARKS). */
	for (unsigned i = 0; i < 10; i++)
		exit_mark();
	pr("memtest: exits spam done\n");
}

/*
 * ---- 34: blocks: 2 MiB stage-2 blocks (the VM has blocks = "on") ----
 * After 2 s asleep (idle CPUs pre-zero runs), one word written in each
 * page of BLOCKS_MIB of RAM from a 2 MiB boundary, in order, between two
 * marks: the first block is filled page by page, each later one at once
 * (fill-ahead), so fills = 512 per 4 KiB-filled block + 1 per block. Every
 * other word of every page must read zero (a block's pages are zeroed) and
 * each written word back. Then code copied into a page of the last block
 * runs: the first fetch from a block splits it (execute permission is
 * granted page by page).
 */
#define BLOCK_SIZE (2 * MiB)
#define BLOCKS_MIB 32

struct block_counts {
	u64 blocks, fills, splits;
};

static struct block_counts block_counts(void)
{
	struct smccc_res r = hvc(QUIRE_HC_BLOCK_STATS, 0, 0, 0);

	return (struct block_counts){ r.x1, r.x2, r.x3 };
}

static void mode_blocks(void)
{
	u64 a0 = (cfg.free + BLOCK_SIZE - 1) & ~(BLOCK_SIZE - 1), a1 = a0 + BLOCKS_MIB * MiB;
	u64 pages = (a1 - a0) / PAGE_SIZE, nblocks = (a1 - a0) / BLOCK_SIZE, t0, tb = 0, t1, nonzero = 0, bad = 0;
	u64 fills, bfills, want_fills;
	struct block_counts b0, b1, b2;
	struct mem_stats s0, s1;
	/* mov w0, #42; ret */
	static const u32 code[] = { 0x52800540, 0xd65f03c0 };
	u32 *fn = (u32 *)(a1 - BLOCK_SIZE + 5 * PAGE_SIZE);

	if (!need_ram("blocks", a1))
		return;
	idle_for(counter_freq() * 2);
	s0 = stats_or_fail("blocks");
	b0 = block_counts();
	exit_mark();
	t0 = counter();
	for (u64 p = 0; p < pages; p++) {
		if (p == 512)
			tb = counter(); /* the first block done, page by page */
		RD(a0 + p * PAGE_SIZE + (p % 512) * 8) = pat(a0 + p * PAGE_SIZE, 34);
	}
	t1 = counter();
	exit_mark();
	s1 = stats_or_fail("blocks");
	b1 = block_counts();
	fills = s1.fills - s0.fills;
	bfills = b1.fills - b0.fills;
	want_fills = (nblocks - bfills) * 512 + bfills;
	for (u64 p = 0; p < pages; p++)
		for (u64 w = 0; w < 512; w++) {
			u64 a = a0 + p * PAGE_SIZE + w * 8;

			if (w == p % 512)
				bad += RD(a) != pat(a0 + p * PAGE_SIZE, 34);
			else
				nonzero += RD(a) != 0;
		}
	for (unsigned k = 0; k < 2; k++)
		fn[k] = code[k];
	/* The guest's own maintenance for code it wrote: to the PoU, then the instruction cache. */
	asm volatile("dc cvau, %0; dsb ish; ic ivau, %0; dsb ish; isb" : : "r"(fn) : "memory");
	u64 ret = ((u64 (*)(void))fn)();
	b2 = block_counts();
	if (bfills < nblocks - 1 || fills != want_fills || b1.blocks - b0.blocks != bfills || bad || nonzero ||
	    ret != 42 || b2.splits != b1.splits + 1 || b2.blocks != b1.blocks - 1)
		pr("memtest: blocks FAIL pages=%lu fills=%lu want_fills=%lu block_fills=%lu blocks=%lu bad=%lu "
		   "nonzero=%lu ret=%lu splits=%lu->%lu blocks_after_exec=%lu\n", pages, fills, want_fills, bfills,
		   b1.blocks, bad, nonzero, ret, b1.splits, b2.splits, b2.blocks);
	else
		pr("memtest: blocks ok pages=%lu fills=%lu block_fills=%lu blocks=%lu splits=%lu ticks=%lu "
		   "first_block_ticks=%lu freq=%lu\n", pages, fills, bfills, b1.blocks, b2.splits, t1 - t0, tb - t0,
		   counter_freq());
}

static const char *const mode_names[] = { "?", "seq", "random", "sparse", "smp", "outside", "quota",
					  "bench", "bench-smp", "hostile", "dirty", "zeroscan", "yield", "share",
					  "noshare", "swap", "fill", "fill-reset", "setway", "gicd", "virtio", "ipi", "vtimer",
					  "bench-exits", "ptimer", "debug", "pmu", "dbg-hostile", "virtio-hostile",
					  "virtio-blk-hostile", "virtio-net-hostile", "net-echo", "bench-idle", "exits",
					  "blocks" };

void guest_main(u64 mode, u64 ram_size, u64 index, u64 nvcpus)
{
#ifdef DEBUG
	/* Bare QEMU enters an ELF with x0..x3 = 0. */
	mode = DEBUG_MODE;
	ram_size = (u64)DEBUG_MEM_MB * MiB;
	index = 0;
	nvcpus = DEBUG_VCPUS;
#endif
	cfg.mode = mode;
	cfg.ram_size = ram_size;
	cfg.ram_end = RAM_BASE + ram_size;
	cfg.nvcpus = nvcpus;
	cfg.free = (u64)__bss_end;
	cfg.timeout = counter_freq() * 60;
	pr("memtest: mode %lu (%s) vcpus=%lu ram=%lu MiB image=0x%lx-0x%lx\n", mode,
	   mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode] : "?", nvcpus,
	   ram_size / MiB, RAM_BASE, cfg.free);
	if (index != 0 || vcpu_self() != 0 || nvcpus < 1 || nvcpus > MAX_VCPUS || cfg.free >= cfg.ram_end) {
		pr("memtest: FAIL bad entry state: vCPU index %lu MPIDR.Aff0 %lu vCPUs %lu\n", index,
		   vcpu_self(), nvcpus);
		system_off();
	}
	switch (mode) {
	case 1: mode_seq(); break;
	case 2: mode_random(); break;
	case 3: mode_sparse(); break;
	case 4: mode_smp(); break;
	case 5: mode_outside(); break;
	case 6: mode_quota(); break;
	case 7: mode_bench(); break;
	case 8: mode_bench_smp(); break;
	case 9: mode_hostile(); break;
	case 10: mode_dirty(); break;
	case 11: mode_zeroscan(); break;
	case 12: mode_yield(); break;
	case 13: mode_share(); break;
	case 14: mode_noshare(); break;
	case 15: mode_swap(); break;
	case 16: case 17: mode_fill(); break;
	case 18: mode_setway(); break;
	case 19: mode_gicd(); break;
	case 20: mode_virtio(); break;
	case 21: mode_ipi(); break;
	case 22: mode_vtimer(); break;
	case 23: mode_bench_exits(); break;
	case 24: mode_ptimer(); break;
	case 25: mode_debug(); break;
	case 26: mode_pmu(); break;
	case 27: mode_dbg_hostile(); break;
	case 28: mode_virtio_hostile(); break;
	case 29: mode_vblk_hostile(cfg.free, cfg.ram_end); break;
	case 30: mode_vnet_hostile(cfg.free, cfg.ram_end); break;
	case 31: mode_net_echo(cfg.free, cfg.ram_end); break;
	case 32: mode_bench_idle(); break;
	case 33: mode_exits(); break;
	case 34: mode_blocks(); break;
	default: pr("memtest: FAIL unknown mode %lu\n", mode); break;
	}
	system_off();
}

void secondary_main(u64 index)
{
	if (index != vcpu_self()) {
		pr("memtest: FAIL vCPU started with context %lu has MPIDR.Aff0 %lu\n", index, vcpu_self());
		system_off();
	}
	if (cfg.mode == 4)
		smp_worker(index);
	else if (cfg.mode == 8)
		bench_worker(index);
	else if (cfg.mode == 21 && index == 1)
		ipi_receiver();
	else if (cfg.mode == 23 && index == 1)
		bx_receiver();
	else if (cfg.mode == 19)
		gicd_worker(index);
	else if (cfg.mode == 25 && index == 1)
		dbg_worker(index);
}
