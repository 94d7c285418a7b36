/*
 * vm_discard_page (core/discard.c) under threads, as a balloon's notify
 * runs beside the VM's vCPUs, the sharing scanner and the swap disk's
 * completions: a discarding thread gives back random pages of two VMs
 * while a thread per VM copies whole pages in and out with gmem_copy
 * (faults, copy-on-write, swap-ins and evictions on its way), a scanner
 * merges pages, and a disk thread completes swap requests. vm1 swaps
 * (a resident limit below its RAM), both share in one domain.
 *
 * Contents check torn or misplaced pages: a page always reads as one
 * 64-bit word repeated, zero (never written, or discarded) or a value a
 * writer stored there: its lower pages name their page (never merged but
 * with the zero page), its upper ones take a few common values (merged
 * often). At the end every leaf is checked against the counters, every
 * page read back, and the VMs torn down: every machine page and swap slot
 * must come back.
 *
 * The disk here is thread-safe (fake_blk.c is not): requests wait on a
 * queue under a mutex until the disk thread completes them.
 *
 * Built twice by the Makefile: under ASan+UBSan and under TSan.
 * QUIRE_STRESS_MS sets the run time (default 1000 ms; longer on a loaded
 * machine until enough happened, at most 30 s).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quire/blk.h>
#include <quire/discard.h>
#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>
#include "../../core/share_priv.h"
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "hostmem.h"
#include "vm_registry.h"
#define STRESS_NAME "test_discard_stress"
#include "stress.h"

#define MACH_BASE 0x80000000UL
#define IMG_BASE 0x20000000UL
#define MACH_PAGES 2048
#define RAM GUEST_RAM_BASE
#define PG(n) (RAM + (u64)(n) * PAGE_SIZE)
#define NPAGES 128	/* each VM's RAM */
#define OWN_PAGES 64	/* pages 0..63 name themselves; 64..127 take common values */
#define LIMIT 48	/* vm1's resident limit */
#define DISK_PAGES 1024
#define DISK_DEPTH 8
#define NVMS 2

/* The CPU index of each thread (the pools' per-CPU caches). */
enum { CPU_VM1, CPU_VM2, CPU_DISCARD, CPU_SCAN, CPU_DISK, CPU_MAIN };

static struct pool pool;
static void *desc, *meta;
static u32 free_start;
static struct vm vms[NVMS];
static _Atomic bool stop, disk_stop;
static u64 run_ms = 1000;

#if defined(__SANITIZE_THREAD__)
/*
 * One race TSan finds here is not discard's, and is left to its owners:
 * the swap clock's first look at a page (swap_evictable, before it claims
 * the leaf) reads the descriptor's plain `owner` while the scanner may be
 * freeing that page (pool.c's release clears it). Benign as it stands: the
 * clock looks again once the leaf is claimed, but a data race in C11 terms.
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "race:swap_evictable\n";
}
#endif

/* ---- a thread-safe disk ------------------------------------------------------ */

static pthread_mutex_t disk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk_req *queue[DISK_DEPTH];
static unsigned queued;
static u8 *disk;
static _Atomic unsigned long disk_done;

bool blk_present(void)
{
	return true;
}

u64 blk_bytes(void)
{
	return (u64)DISK_PAGES * PAGE_SIZE;
}

unsigned blk_depth(void)
{
	return DISK_DEPTH;
}

u32 blk_irq(void)
{
	return 0;
}

/* The disk layer: all of this disk is swap. */
u64 disk_swap_first(void)
{
	return 0;
}

u64 disk_swap_sectors(void)
{
	return blk_bytes() >> BLK_SECTOR_SHIFT;
}

bool blk_init(const struct machine *m, u64 min_bytes)
{
	(void)m, (void)min_bytes;
	return true;
}

int blk_submit(struct blk_req *r)
{
	int rc = 0;

	if (!r->npages || r->npages > BLK_MAX_PAGES ||
	    (r->sector << BLK_SECTOR_SHIFT) + (u64)r->npages * PAGE_SIZE > blk_bytes()) {
		FAIL("a request outside the disk\n");
		return -EINVAL;
	}
	pthread_mutex_lock(&disk_lock);
	if (queued == DISK_DEPTH)
		rc = -EBUSY;
	else
		queue[queued++] = r;
	pthread_mutex_unlock(&disk_lock);
	return rc;
}

/* Complete the oldest request, if any (its callback runs on cpu): whether there was one. */
static bool disk_step(unsigned cpu)
{
	struct blk_req *r = NULL;
	u64 off;

	pthread_mutex_lock(&disk_lock);
	if (queued) {
		r = queue[0];
		memmove(queue, queue + 1, --queued * sizeof(*queue));
	}
	pthread_mutex_unlock(&disk_lock);
	if (!r)
		return false;
	off = r->sector << BLK_SECTOR_SHIFT;
	for (u32 k = 0; k < r->npages; k++, off += PAGE_SIZE) {
		if (r->write)
			memcpy(disk + off, hostmem_ptr(r->pa[k]), PAGE_SIZE);
		else
			memcpy(hostmem_ptr(r->pa[k]), disk + off, PAGE_SIZE);
	}
	r->status = 0;
	r->done(r, cpu);
	atomic_fetch_add(&disk_done, 1);
	return true;
}

void blk_complete(unsigned cpu)
{
	while (disk_step(cpu))
		;
}

static void *disk_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&disk_stop))
		if (!disk_step(CPU_DISK))
			sched_yield();
	return NULL;
}

/* ---- contents ------------------------------------------------------------------ */

static u64 xorshift(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define OWN_TAG 0x5a00000000000000UL
#define COMMON_TAG 0xc0de000000000000UL

/* What a writer stores in page p: its own name and a sequence number, or one of three common values, or zeros. */
static u64 word_for(u32 p, u64 r)
{
	if (!(r % 8))
		return 0;
	if (p < OWN_PAGES)
		return OWN_TAG | (u64)p << 32 | (u32)(r >> 8 | 1);
	return COMMON_TAG | (1 + r % 3);
}

/* A page's contents as read whole: one word repeated, which page p may hold. */
static bool page_ok(u32 p, const u64 *w, u64 *bad)
{
	for (unsigned k = 1; k < PAGE_SIZE / 8; k++)
		if (w[k] != w[0]) {
			*bad = w[k];
			return false;
		}
	*bad = w[0];
	if (!w[0])
		return true;
	if (p < OWN_PAGES)
		return (w[0] & 0xffffffff00000000UL) == (OWN_TAG | (u64)p << 32);
	return w[0] >= (COMMON_TAG | 1) && w[0] <= (COMMON_TAG | 3);
}

/* ---- the threads ----------------------------------------------------------------- */

struct stats {
	_Atomic unsigned long writes, reads, waits, busy, discarded, nothing, discard_busy, scans;
};
static struct stats st;

/* A vCPU or device of VM v: whole pages in and out. */
static void *copier(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg, cpu = s ? CPU_VM2 : CPU_VM1;
	struct vm *v = &vms[s];
	u64 rng = 0x9e3779b97f4a7c15UL * (s + 1), buf[PAGE_SIZE / 8];

	while (!atomic_load(&stop)) {
		u64 r = xorshift(&rng), bad;
		u32 p = r % NPAGES;
		bool write = (r >> 7) % 8 < 5;
		int rc;

		if (write) {
			u64 w = word_for(p, r >> 10);

			for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
				buf[k] = w;
		}
		rc = gmem_copy(v, PG(p), buf, PAGE_SIZE, write, cpu);
		if (rc == -EAGAIN) {
			atomic_fetch_add(&st.waits, 1);
			sched_yield(); /* a vCPU waits for the disk */
			continue;
		}
		if (rc == -EBUSY) {
			atomic_fetch_add(&st.busy, 1);
			continue;
		}
		if (rc) {
			FAIL("vm%u page %u: gmem_copy said %d\n", s + 1, p, rc);
			break;
		}
		if (!(r % 16))
			sched_yield(); /* two cores: let the balloon and the scanner at the pages */
		if (write) {
			atomic_fetch_add(&st.writes, 1);
		} else {
			atomic_fetch_add(&st.reads, 1);
			if (!page_ok(p, buf, &bad))
				FAIL("vm%u page %u reads 0x%llx (torn, or another page's)\n", s + 1, p,
				     (unsigned long long)bad);
		}
	}
	return NULL;
}

/* The balloon: random pages of either VM leave. */
static void *discarder(void *arg)
{
	u64 rng = 0x2545f4914f6cdd1dUL;

	(void)arg;
	while (!atomic_load(&stop)) {
		u64 r = xorshift(&rng);
		struct vm *v = &vms[r % NVMS];
		int rc = vm_discard_page(v, PG((r >> 8) % NPAGES), CPU_DISCARD);

		if (rc == 1)
			atomic_fetch_add(&st.discarded, 1);
		else if (rc == 0)
			atomic_fetch_add(&st.nothing, 1);
		else if (rc == -EBUSY || rc == -EAGAIN) /* claimed, or on its way to or from the disk */
			atomic_fetch_add(&st.discard_busy, 1);
		else
			FAIL("vm_discard_page said %d\n", rc);
		if (!(r % 8))
			sched_yield(); /* the vCPUs' pages should not all be gone */
	}
	return NULL;
}

/*
 * The sharing scanner, in slices with pauses as on idle time: the host
 * preempts a thread holding the share lock, and a scanner never off the
 * CPU would keep the others spinning on it.
 */
static void *scanner(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		for (unsigned s = 0; s < NVMS; s++)
			for (unsigned k = 0; k < 32; k++)
				if (share_scan_next(&vms[s], CPU_SCAN) == SCAN_WRAPPED)
					atomic_fetch_add(&st.scans, 1);
		usleep(200);
	}
	return NULL;
}

/* ---- the machine ------------------------------------------------------------------- */

static void setup(void)
{
	struct region img = { IMG_BASE, PAGE_SIZE };

	hostmem_pool(&pool, MACH_BASE, MACH_PAGES, &desc);
	hostmem_add(IMG_BASE, PAGE_SIZE);
	meta = aligned_alloc(PAGE_SIZE, share_meta_bytes(pool.ndesc));
	disk = malloc((u64)DISK_PAGES * PAGE_SIZE);
	if (!meta || !disk)
		abort();
	share_init(&pool, meta, &img, 1, 0x1234);
	swap_init(&pool, CPU_MAIN);
	free_start = pool_free_pages(&pool);
	for (unsigned s = 0; s < NVMS; s++) {
		struct vm *v = &vms[s];

		v->id = s + 1;
		snprintf(v->name, sizeof(v->name), "vm%u", v->id);
		v->ram_base = IPA(RAM);
		v->ram_size = NPAGES * PAGE_SIZE;
		v->cfg.sharing = SHARE_DOMAIN;
		snprintf(v->cfg.share_domain, sizeof(v->cfg.share_domain), "dA");
		v->cfg.scan_pages = 1u << 16;
		if (!s) {
			v->cfg.resident_limit = v->cfg.resident_min = LIMIT * PAGE_SIZE;
			v->cfg.swap_limit = (u64)DISK_PAGES * PAGE_SIZE;
		}
		vmpool_init(&v->pool, &pool, v->id, s ? NPAGES + 64 : LIMIT + 64);
		if (s2_init(v, CPU_MAIN))
			abort();
		share_vm_init(v);
		swap_vm_init(v);
		registry[s] = v;
	}
	CHECK(vms[0].swap.on && !vms[1].swap.on, "vm1 must swap, vm2 not\n");
}

/* Every leaf against the VM's counters, every page's contents, with nothing running. */
static void check_vm(unsigned s)
{
	struct vm *v = &vms[s];
	u32 valid = 0, swapped = 0, clean = 0;
	u64 buf[PAGE_SIZE / 8], bad;

	for (u32 p = 0; p < NPAGES; p++) {
		u64 e = fake_s2_raw(v, IPA(PG(p)));
		paddr_t pa = s2_lookup(v, IPA(PG(p)));

		if (pa) {
			pidx_t i = pool_pidx_of(&pool, pa);

			valid++;
			if (i != PIDX_NONE && (atomic_load(&pool.desc[i].flags) & MP_SWAPCACHE))
				clean++;
			if (!page_ok(p, hostmem_ptr(pa), &bad))
				FAIL("vm%u page %u holds 0x%llx\n", s + 1, p, (unsigned long long)bad);
		} else if (s2e_swapped(e)) {
			swapped++;
		} else if (e) {
			FAIL("vm%u page %u: leaf 0x%llx with nothing running\n", s + 1, p, (unsigned long long)e);
		}
	}
	CHECK(atomic_load(&v->pool.active) + atomic_load(&v->pool.zero) + atomic_load(&v->pool.shared) == valid,
	      "vm%u: %u active + %u zero + %u shared, %u pages mapped\n", s + 1, atomic_load(&v->pool.active),
	      atomic_load(&v->pool.zero), atomic_load(&v->pool.shared), valid);
	CHECK(atomic_load(&v->pool.swapped) == swapped, "vm%u: %u counted swapped, %u leaves\n", s + 1,
	      atomic_load(&v->pool.swapped), swapped);
	CHECK(atomic_load(&v->swap.slots) == swapped + clean, "vm%u: %u slots held, %u swapped + %u clean\n", s + 1,
	      atomic_load(&v->swap.slots), swapped, clean);
	CHECK(atomic_load(&v->pool.charged) ==
		      atomic_load(&v->pool.active) + atomic_load(&v->pool.pgtables) + atomic_load(&v->pool.idle.count),
	      "vm%u: %u charged\n", s + 1, atomic_load(&v->pool.charged));
	/* Swapped pages read back as what was written. */
	for (u32 p = 0; p < NPAGES; p++) {
		int rc;

		while ((rc = gmem_copy(v, PG(p), buf, PAGE_SIZE, false, CPU_MAIN)) == -EAGAIN)
			blk_complete(CPU_MAIN);
		if (rc)
			FAIL("vm%u page %u: read back said %d\n", s + 1, p, rc);
		else if (!page_ok(p, buf, &bad))
			FAIL("vm%u page %u reads back 0x%llx\n", s + 1, p, (unsigned long long)bad);
	}
	blk_complete(CPU_MAIN);
}

static void destroy(unsigned s)
{
	struct vm *v = &vms[s];
	pidx_t i;

	share_vm_stop(v);
	s2_destroy(v, swap_page_release, swap_release, NULL, CPU_MAIN);
	while ((i = lfstack_pop(&v->pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&v->pool, CPU_MAIN, i, true);
	vmpool_fini(&v->pool);
	CHECK(!atomic_load(&v->pool.charged) && !atomic_load(&v->pool.active) && !atomic_load(&v->pool.pgtables) &&
		      !atomic_load(&v->pool.zero) && !atomic_load(&v->pool.shared) && !atomic_load(&v->pool.swapped) &&
		      !atomic_load(&v->swap.slots),
	      "vm%u gone with %u charged, %u active, %u tables, %u zero, %u shared, %u swapped, %u slots\n", s + 1,
	      atomic_load(&v->pool.charged), atomic_load(&v->pool.active), atomic_load(&v->pool.pgtables),
	      atomic_load(&v->pool.zero), atomic_load(&v->pool.shared), atomic_load(&v->pool.swapped),
	      atomic_load(&v->swap.slots));
	registry[s] = NULL;
}

/* Enough of everything happened for the run to mean something. */
static bool enough(void)
{
	return atomic_load(&st.discarded) >= 500 && atomic_load(&st.writes) >= 500 && atomic_load(&st.reads) >= 500 &&
	       atomic_load(&st.scans) >= 10 && atomic_load(&sw.outs) >= 50 && atomic_load(&sw.ins) >= 50 &&
	       atomic_load(&vms[0].share.merged) + atomic_load(&vms[1].share.merged) >= 50;
}

int main(void)
{
	const char *ms = getenv("QUIRE_STRESS_MS");
	pthread_t t[NVMS + 2], dt;
	struct swap_stats ss;
	u64 start;

	if (ms)
		run_ms = strtoull(ms, NULL, 10);
	setup();
	pthread_create(&dt, NULL, disk_thread, NULL);
	for (uintptr_t s = 0; s < NVMS; s++)
		pthread_create(&t[s], NULL, copier, (void *)s);
	pthread_create(&t[NVMS], NULL, discarder, NULL);
	pthread_create(&t[NVMS + 1], NULL, scanner, NULL);
	start = now_ns() / 1000000;
	while (now_ns() / 1000000 < start + 30000 && (now_ns() / 1000000 < start + run_ms || !enough()) &&
	       !atomic_load(&errors))
		sched_yield();
	atomic_store(&stop, true);
	for (unsigned k = 0; k < NVMS + 2; k++)
		pthread_join(t[k], NULL);
	/* The disk runs until every request of the last faults and evictions is done. */
	while (atomic_load(&vms[0].swap.inflight))
		sched_yield();
	atomic_store(&disk_stop, true);
	pthread_join(dt, NULL);
	blk_complete(CPU_MAIN);

	printf("discards: %lu pages left, %lu found nothing, %lu busy; copies: %lu writes, %lu reads, %lu waits, "
	       "%lu busy; %lu scans, %lu + %lu merged; swap: %lu out, %lu in\n",
	       atomic_load(&st.discarded), atomic_load(&st.nothing), atomic_load(&st.discard_busy),
	       atomic_load(&st.writes), atomic_load(&st.reads), atomic_load(&st.waits), atomic_load(&st.busy),
	       atomic_load(&st.scans), atomic_load(&vms[0].share.merged), atomic_load(&vms[1].share.merged),
	       atomic_load(&sw.outs), atomic_load(&sw.ins));
	CHECK(enough(), "too little happened to tell\n");
	CHECK(!atomic_load(&vms[0].off) && !atomic_load(&vms[1].off), "a VM was stopped\n");
	for (unsigned s = 0; s < NVMS; s++)
		check_vm(s);
	for (unsigned s = 0; s < NVMS; s++)
		destroy(s);
	swap_stats(&ss);
	CHECK(ss.used == 0, "%lu swap slots still used\n", ss.used);
	CHECK(share_shared_pages() == 0, "%u shared pages left\n", share_shared_pages());
	CHECK(pool_free_pages(&pool) == free_start, "%u of %u pages free at the end\n", pool_free_pages(&pool),
	      free_start);
	free(desc);
	free(meta);
	free(disk);
	hostmem_reset();
	if (atomic_load(&errors)) {
		fprintf(stderr, "test_discard_stress: %u errors\n", atomic_load(&errors));
		return 1;
	}
	printf("test_discard_stress: all passed\n");
	return 0;
}
