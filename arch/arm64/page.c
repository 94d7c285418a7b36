/*
 * Preparing machine pages for guests. A guest that runs with its stage-1 MMU
 * off (every guest at boot) reads memory as Device, bypassing the caches, so
 * what Quire wrote through its cacheable mapping must be cleaned to the point
 * of coherency first (Cortex-A72 has no FEAT_S2FWB to make that unneeded).
 */
#include <quire/pool.h>
#include <arch/mmu.h>
#include <arch/sysreg.h>

static u64 zva_block, dline;

static void learn_sizes(void)
{
	u64 dczid = read_sysreg(dczid_el0);

	/* DZP set means DC ZVA is prohibited: zero with stores instead. */
	zva_block = (dczid & (1 << 4)) ? 0 : 4UL << (dczid & 0xf);
	dline = 4UL << ((read_sysreg(ctr_el0) >> 16) & 0xf);
}

void page_zero(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	if (zva_block == 64 && dline == 64) {
		/* The common case (Cortex-A72): zero and clean each 64-byte line, no loop. */
		asm volatile("mov x16, %0\n"
			     ".rept 64\n"
			     "dc zva, x16\n"
			     "dc cvac, x16\n"
			     "add x16, x16, #64\n"
			     ".endr"
			     : : "r"(pa) : "x16", "memory");
		dsb(ish);
		return;
	}
	if (zva_block) {
		for (u64 a = pa; a < pa + PAGE_SIZE; a += zva_block)
			asm volatile("dc zva, %0" : : "r"(a) : "memory");
	} else {
		for (u64 *p = (u64 *)(uintptr_t)pa; p < (u64 *)(uintptr_t)(pa + PAGE_SIZE); p++)
			*p = 0;
	}
	dcache_clean_poc((const void *)(uintptr_t)pa, PAGE_SIZE);
}

void page_sync_for_guest(paddr_t pa)
{
	dcache_clean_poc((const void *)(uintptr_t)pa, PAGE_SIZE);
	asm volatile("ic ialluis" : : : "memory");
	dsb(ish);
	isb();
}

void page_sync_for_quire(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	for (u64 a = pa; a < pa + PAGE_SIZE; a += dline)
		asm volatile("dc civac, %0" : : "r"(a) : "memory");
	dsb(ish);
}

void *page_va(paddr_t pa)
{
	return (void *)(uintptr_t)pa; /* Quire maps all RAM at its own address */
}
