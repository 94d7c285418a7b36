/*
 * libFuzzer target: fault_decode and violation_handle against independent
 * models.
 *
 * Input: 24 bytes of (esr, far, hpfar) for fault_decode; then one byte of
 * quota and 4-byte operations on a fresh VM over the real pools and the fake
 * stage-2 walker on the fake arch (fake_arch.c): a fault (page, class, write/fetch, CPU) or a reserve
 * of idle pages. A reference model tracks which pages and tables are mapped
 * and what is charged, and predicts every answer.
 *
 * A fault on a page already mapped must be VIO_RACED and change nothing
 * (regression_raced_fault_* in test_violation.c pinned the old defect).
 *
 *   make -C tests/host fuzz && ../../build/host/fuzz_fault -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arch/fault_decode.h>
#include <quire/errno.h>
#include <quire/vm.h>
#include "fake_arch.h"
#include "hostmem.h"

#define REQUIRE(cond, ...)                                                       \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "fuzz_fault: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                            \
			fputc('\n', stderr);                                     \
			abort();                                                 \
		}                                                                \
	} while (0)

static u64 get64(const u8 *p)
{
	u64 v;

	memcpy(&v, p, 8);
	return v;
}

/* ---- fault_decode -------------------------------------------------------- */

static enum fault_class model_class(u8 fsc)
{
	static const enum fault_class by_group[4] = { FAULT_ADDR_SIZE, FAULT_TRANSLATION, FAULT_ACCESS_FLAG,
						      FAULT_PERMISSION };

	if (fsc < 0x10)
		return by_group[fsc / 4];
	if (fsc >= 0x10 && fsc <= 0x1f && fsc != 0x11)
		return FAULT_EXTERNAL;
	switch (fsc) {
	case 0x21:
		return FAULT_ALIGNMENT;
	case 0x30:
		return FAULT_TLB_CONFLICT;
	default:
		return FAULT_OTHER;
	}
}

static void check_decode(u64 esr, u64 far, u64 hpfar)
{
	struct s2_fault f, pristine;
	unsigned ec = (unsigned)(esr >> 26) & 63;
	bool data = ec == 0x24, bit[64];
	u8 fsc = esr & 63;

	for (int b = 0; b < 64; b++)
		bit[b] = esr >> b & 1;
	memset(&pristine, 0xc3, sizeof(pristine));
	f = pristine;
	if (!fault_decode(esr, far, hpfar, &f)) {
		REQUIRE(ec != 0x20 && ec != 0x24, "abort EC 0x%x rejected", ec);
		REQUIRE(!memcmp(&f, &pristine, sizeof(f)), "rejected but written");
		return;
	}
	REQUIRE(ec == 0x20 || ec == 0x24, "EC 0x%x accepted", ec);
	REQUIRE(f.ec == ec, "ec");
	REQUIRE(f.instr == !data, "instr");
	REQUIRE(f.fsc == fsc, "fsc");
	REQUIRE(f.cls == model_class(fsc), "class %d for fsc 0x%x", f.cls, fsc);
	REQUIRE(f.level == (fsc < 0x10 ? (fsc & 3) : 0), "level %u for fsc 0x%x", f.level, fsc);
	REQUIRE(f.write == (bit[7] ? model_class(fsc) == FAULT_PERMISSION : data && bit[6]), "write");
	REQUIRE(f.cm == (data && bit[8]), "cm");
	REQUIRE(f.ea == bit[9], "ea");
	REQUIRE(f.far_valid == !bit[10], "far_valid");
	REQUIRE(f.s1ptw == bit[7], "s1ptw");
	REQUIRE(f.il == bit[25], "il");
	REQUIRE(f.isv == (data && bit[24]), "isv");
	if (f.isv) {
		REQUIRE(f.sas == ((esr >> 22) & 3), "sas");
		REQUIRE(f.sse == bit[21] && f.sf == bit[15] && f.ar == bit[14], "sse/sf/ar");
		REQUIRE(f.srt == ((esr >> 16) & 31), "srt");
	} else {
		REQUIRE(!f.sas && !f.sse && !f.srt && !f.sf && !f.ar, "syndrome without ISV");
	}
	REQUIRE(f.va == far, "va");
	REQUIRE((f.ipa.bits & 0xfff) == (far & 0xfff), "page offset");
	for (int b = 12; b < 64; b++) {
		bool want = b < 52 && (hpfar >> (b - 8) & 1); /* IPA[51:12] = HPFAR[43:4] */

		REQUIRE((f.ipa.bits >> b & 1) == want, "ipa bit %d", b);
	}
}

/* ---- violation_handle ---------------------------------------------------- */

#define MACH_BASE 0x80000000UL
#define MACH_PAGES 96
#define RAM_PAGES 1536 /* three 2 MiB tables */
#define EXTRA 32       /* pages tried below and above RAM */
#define NREGIONS (RAM_PAGES / 512)

static struct pool pool;
static void *desc;
static struct vm vm;

static struct model {
	bool mapped[RAM_PAGES];
	bool table[NREGIONS];	/* the last-level table of each 2 MiB */
	u32 upper;		/* tables above those (shared by all of RAM), made so far */
	u32 nmapped, ntables, idle;
	u64 quota_hits;
} mo;

static u32 model_charged(void)
{
	return 1 + mo.ntables + mo.nmapped + mo.idle;
}

/* Pages this CPU can get from the VMM pool now (nothing runs concurrently). */
/* Pages a CPU can get: the shared stack, its cache, and other caches it may steal from. */
static u32 avail(unsigned cpu)
{
	(void)cpu;
	return pool_free_pages(&pool);
}

static void give_back(struct vm *v, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i = pool_pidx_of(&pool, pa);

	REQUIRE(i != PIDX_NONE, "unmanaged page 0x%llx mapped", (unsigned long long)pa);
	REQUIRE(vm_in_ram(v, ipa) && mo.mapped[(ipa.bits - GUEST_RAM_BASE) >> PAGE_SHIFT], "stray mapping");
	atomic_fetch_sub(&v->pool.active, 1);
	vmpool_give_back(&v->pool, cpu, i, false);
}

static void check_books(void)
{
	REQUIRE(atomic_load(&vm.pool.charged) == model_charged(), "charged %u, model %u",
		atomic_load(&vm.pool.charged), model_charged());
	REQUIRE(atomic_load(&vm.pool.charged) <= vm.pool.quota, "over quota");
	REQUIRE(atomic_load(&vm.pool.pgtables) == 1 + mo.ntables, "pgtables");
	REQUIRE(atomic_load(&vm.pool.active) == mo.nmapped, "active");
	REQUIRE(atomic_load(&vm.pool.fills) == mo.nmapped, "fills");
	REQUIRE(atomic_load(&vm.pool.quota_hits) == mo.quota_hits, "quota_hits");
	REQUIRE(atomic_load(&vm.pool.idle.count) == mo.idle, "idle %u, model %u", atomic_load(&vm.pool.idle.count),
		mo.idle);
	REQUIRE(pool_free_pages(&pool) + atomic_load(&vm.pool.charged) == MACH_PAGES, "pages lost");
}

/*
 * A new page for the model: from the idle set, else charged from the VMM
 * pool (*left pages reachable, *pending taken already in this fault).
 * VIO_MAPPED or the refusal.
 */
static enum vio_result model_take(u32 *left, u32 *pending)
{
	if (mo.idle) {
		mo.idle--;
		++*pending;
		return VIO_MAPPED;
	}
	if (model_charged() + *pending >= vm.pool.quota)
		return VIO_SEA_QUOTA;
	if (!*left)
		return VIO_SEA_NOMEM;
	--*left;
	++*pending;
	return VIO_MAPPED;
}

static void do_fault(const u8 *op)
{
	unsigned cpu = (op[0] >> 2) % MAX_CPUS;
	unsigned idx = (op[1] | op[2] << 8) % (RAM_PAGES + 2 * EXTRA);
	u8 cls = op[3];
	u8 fsc = cls & 0x20 ? cls & 0x3f : 0x04 | (cls & 3); /* half of them translation faults */
	bool instr = cls & 0x80, write = cls & 0x40;
	u64 ipa = idx < EXTRA ? GUEST_RAM_BASE - (u64)(idx + 1) * PAGE_SIZE
				 : GUEST_RAM_BASE + (u64)(idx - EXTRA) * PAGE_SIZE;
	u64 esr = (u64)(instr ? 0x20 : 0x24) << 26 | 1u << 25 | (write ? 1u << 6 : 0) | fsc;
	unsigned page = idx - EXTRA;
	bool in_ram = idx >= EXTRA && page < RAM_PAGES;
	struct s2_fault f;
	enum vio_result want, got;
	u32 left = avail(cpu), pending = 0;

	ipa |= (op[1] * 41u + op[2]) & 0xfff;
	REQUIRE(fault_decode(esr, 0xffff000000000000ULL | ipa, (ipa >> 12) << 4, &f), "decode");
	if (model_class(fsc) == FAULT_TLB_CONFLICT) {
		want = VIO_RACED; /* this CPU's TLB forgets the VM; HPFAR is no guide, in RAM or not */
	} else if (!in_ram) {
		want = VIO_SEA_OUTSIDE;
	} else if (model_class(fsc) != FAULT_TRANSLATION) {
		want = VIO_UNHANDLED;
	} else if (mo.mapped[page]) {
		paddr_t before = s2_lookup(&vm, IPA(ipa));

		got = violation_handle(&vm, &f, cpu);
		REQUIRE(s2_lookup(&vm, IPA(ipa)) == before, "mapping changed");
		REQUIRE(got == VIO_RACED, "fault on a mapped page answered %s", vio_result_name(got));
		check_books();
		return;
	} else {
		unsigned r = page / 512;

		/* The tables come first, top down, and stay, even if the data page then cannot be had. */
		want = VIO_MAPPED;
		while (want == VIO_MAPPED && mo.upper < FAKE_S2_PATH_TABLES - 1) {
			want = model_take(&left, &pending);
			if (want == VIO_MAPPED) {
				mo.upper++;
				mo.ntables++;
				pending--; /* now counted as a table */
			}
		}
		if (want == VIO_MAPPED && !mo.table[r]) {
			want = model_take(&left, &pending);
			if (want == VIO_MAPPED) {
				mo.table[r] = true;
				mo.ntables++;
				pending--; /* now counted as a table */
			}
		}
		if (want == VIO_MAPPED)
			want = model_take(&left, &pending);
		if (want == VIO_MAPPED) {
			mo.mapped[page] = true;
			mo.nmapped++;
		}
		if (want == VIO_SEA_QUOTA)
			mo.quota_hits++;
	}
	got = violation_handle(&vm, &f, cpu);
	REQUIRE(got == want, "page %d (ipa 0x%llx, fsc 0x%x): %s, model says %s", in_ram ? (int)page : -1,
		(unsigned long long)ipa, fsc, vio_result_name(got), vio_result_name(want));
	if (in_ram) {
		paddr_t pa = s2_lookup(&vm, IPA(ipa));

		REQUIRE((pa != 0) == mo.mapped[page], "lookup disagrees");
		if (got == VIO_MAPPED) {
			pidx_t i = pool_pidx_of(&pool, pa);

			REQUIRE(i != PIDX_NONE && pool_desc(&pool, i)->gpn == ipa >> PAGE_SHIFT, "descriptor");
			REQUIRE(pool_desc(&pool, i)->owner == vm.id, "owner");
			REQUIRE(hostmem_page_is_zero(pa), "new page not zero");
			/* The guest writes to it, so a page ever reused unzeroed shows. */
			memset(hostmem_ptr(pa), 0xee, PAGE_SIZE);
		}
	}
	check_books();
}

static void do_reserve(const u8 *op)
{
	unsigned cpu = (op[0] >> 2) % MAX_CPUS, n = op[1] % 8;
	u32 room = vm.pool.quota - model_charged(), left = avail(cpu);
	u32 want = MIN(n, MIN(room, left));

	REQUIRE(vmpool_reserve_idle(&vm.pool, cpu, n) == want, "reserve");
	mo.idle += want;
	check_books();
}

static void run_vm(const u8 *data, size_t size)
{
	u32 quota = data[0];
	pidx_t i;
	int rc;

	memset(&mo, 0, sizeof(mo));
	memset(&vm, 0, sizeof(vm));
	vm.id = 1;
	vm.ram_base = IPA(GUEST_RAM_BASE);
	vm.ram_size = RAM_PAGES * PAGE_SIZE;
	vmpool_init(&vm.pool, &pool, vm.id, quota);
	rc = s2_init(&vm, data[0] % MAX_CPUS);
	if (!quota) {
		REQUIRE(rc == -EDQUOT && !atomic_load(&vm.pool.charged), "s2_init with no quota");
		return;
	}
	REQUIRE(rc == 0, "s2_init");
	for (size_t k = 1; k + 4 <= size; k += 4) {
		if ((data[k] & 3) == 3)
			do_reserve(data + k);
		else
			do_fault(data + k);
	}
	for (unsigned p = 0; p < RAM_PAGES; p++)
		REQUIRE((s2_lookup(&vm, IPA(GUEST_RAM_BASE + (u64)p * PAGE_SIZE)) != 0) == mo.mapped[p], "page %u", p);
	s2_destroy(&vm, give_back, NULL, NULL, data[size - 1] % MAX_CPUS);
	while ((i = lfstack_pop(&vm.pool.idle, pool.desc)) != PIDX_NONE)
		vmpool_give_back(&vm.pool, 0, i, true);
	REQUIRE(!atomic_load(&vm.pool.charged) && !atomic_load(&vm.pool.pgtables) && !atomic_load(&vm.pool.active),
		"books after destroy");
	REQUIRE(pool_free_pages(&pool) == MACH_PAGES, "pages lost after destroy");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	struct machine m;

	if (size >= 24)
		check_decode(get64(data), get64(data + 8), get64(data + 16));
	if (size < 25)
		return 0;
	memset(&m, 0, sizeof(m));
	m.mem[0].base = MACH_BASE;
	m.mem[0].size = MACH_PAGES * PAGE_SIZE;
	m.nmem = 1;
	m.mem_total = m.mem[0].size;
	if (!once) {
		once = true;
		hostmem_add(m.mem[0].base, m.mem[0].size);
		desc = malloc(pool_desc_bytes(&m));
	}
	/* A fresh pool each time over the same, dirty, memory. */
	REQUIRE(pool_init(&pool, &m, NULL, 0, desc) == MACH_PAGES, "pool_init");
	run_vm(data + 24, size - 24);
	return 0;
}
