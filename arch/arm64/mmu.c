/*
 * EL2 stage-1 identity map, 4 KiB granule, 39-bit VA starting at level 1.
 *
 * RAM is Normal write-back; every other address is Device-nGnRE and
 * execute-never, so device registers are never cached or speculated into.
 * 1 GiB blocks where a whole gigabyte is alike, 2 MiB blocks where RAM and
 * devices share one (the Pi 4's top gigabyte).
 */
#include <string.h>
#include <arch/mmu.h>
#include <arch/sysreg.h>

#define VA_BITS 39
#define PTE_VALID (1UL << 0)
#define PTE_TABLE (1UL << 1)
#define PTE_ATTR(i) ((u64)(i) << 2)
#define PTE_SH_INNER (3UL << 8)
#define PTE_AF (1UL << 10)
#define PTE_XN (1UL << 54)
#define PTE_NORMAL (PTE_VALID | PTE_ATTR(MAIR_IDX_NORMAL) | PTE_SH_INNER | PTE_AF)
#define PTE_DEVICE (PTE_VALID | PTE_ATTR(MAIR_IDX_DEVICE) | PTE_AF | PTE_XN)
#define MAX_L2 16

static u64 early_l1[512] __aligned(4096);
static u64 l1[512] __aligned(4096);
static u64 l2[MAX_L2][512] __aligned(4096);
struct mmu_regs boot_mmu_regs;

extern char _start[], _end[];

static void make_regs(struct mmu_regs *r, u64 *table)
{
	u64 ps = parange();

	r->mair = MAIR_ATTR_DEVICE_nGnRE << (8 * MAIR_IDX_DEVICE) |
		  (u64)MAIR_ATTR_NORMAL_WB << (8 * MAIR_IDX_NORMAL);
	r->tcr = TCR_EL2_RES1 | TCR_T0SZ(VA_BITS) | TCR_IRGN0_WBWA | TCR_ORGN0_WBWA |
		 TCR_SH0_INNER | TCR_TG0_4K | (MIN(ps, 5UL) << TCR_PS_SHIFT);
	r->ttbr = (u64)(uintptr_t)table;
	r->sctlr = SCTLR_EL2_RES1 | SCTLR_EL2_M | SCTLR_EL2_C | SCTLR_EL2_I | SCTLR_EL2_SA;
}

void dcache_clean_poc(const void *p, u64 size)
{
	u64 line = 4UL << ((read_sysreg(ctr_el0) >> 16) & 0xf);
	u64 a = ALIGN_DOWN((u64)(uintptr_t)p, line), end = (u64)(uintptr_t)p + size;

	for (; a < end; a += line)
		asm volatile("dc cvac, %0" : : "r"(a) : "memory");
	dsb(sy);
}

static void dcache_inval_poc(const void *p, u64 size)
{
	u64 line = 4UL << ((read_sysreg(ctr_el0) >> 16) & 0xf);
	u64 a = ALIGN_DOWN((u64)(uintptr_t)p, line), end = (u64)(uintptr_t)p + size;

	for (; a < end; a += line)
		asm volatile("dc ivac, %0" : : "r"(a) : "memory");
	dsb(sy);
}

void mmu_enable_early(paddr_t fdt)
{
	struct mmu_regs r;
	u64 img = (u64)(uintptr_t)_start;

	/* Runs with the MMU off: plain stores, no atomics, no unaligned accesses. */
	for (u64 i = 0; i < 512; i++)
		early_l1[i] = (i * SZ_1G) | PTE_DEVICE;
	early_l1[img / SZ_1G] = ALIGN_DOWN(img, SZ_1G) | PTE_NORMAL;
	if (fdt / SZ_1G < 512)
		early_l1[fdt / SZ_1G] = ALIGN_DOWN(fdt, SZ_1G) | PTE_NORMAL;
	/*
	 * Our stores so far went straight to memory; drop any stale lines the
	 * image may still have in the caches from before we were entered.
	 */
	dcache_inval_poc(_start, _end - _start);
	make_regs(&r, early_l1);
	mmu_load(&r);
}

static bool overlaps_ram(const struct machine *m, u64 base, u64 size)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (m->mem[i].base < base + size && base < m->mem[i].base + m->mem[i].size)
			return true;
	return false;
}

static bool inside_ram(const struct machine *m, u64 base, u64 size)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (m->mem[i].base <= base && base + size <= m->mem[i].base + m->mem[i].size)
			return true;
	return false;
}

void mmu_enable_final(const struct machine *m)
{
	u64 limit = 1UL << MIN(parange_bits(), VA_BITS);
	unsigned nl2 = 0;

	memset(l1, 0, sizeof(l1));
	for (u64 g = 0; g < limit / SZ_1G; g++) {
		u64 base = g * SZ_1G;

		if (inside_ram(m, base, SZ_1G)) {
			l1[g] = base | PTE_NORMAL;
		} else if (!overlaps_ram(m, base, SZ_1G) || nl2 == MAX_L2) {
			l1[g] = base | PTE_DEVICE;
		} else {
			u64 *t = l2[nl2++];

			/* A 2 MiB block partly RAM (none on known boards) is mapped Normal. */
			for (u64 i = 0; i < 512; i++) {
				u64 b = base + i * SZ_2M;
				t[i] = b | (overlaps_ram(m, b, SZ_2M) ? PTE_NORMAL : PTE_DEVICE);
			}
			l1[g] = (u64)(uintptr_t)t | PTE_VALID | PTE_TABLE;
		}
	}
	dsb(ishst);
	make_regs(&boot_mmu_regs, l1);
	mmu_load(&boot_mmu_regs);
	/* Secondaries read these with their MMU off. */
	dcache_clean_poc(&boot_mmu_regs, sizeof(boot_mmu_regs));
}
