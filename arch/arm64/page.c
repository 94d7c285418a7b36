/*
 * Preparing machine pages for guests. A guest that runs with its stage-1 MMU
 * off (every guest at boot) reads memory as Device, bypassing the caches, so
 * what Quire wrote through its cacheable mapping must be cleaned to the point
 * of coherency first (Cortex-A72 has no FEAT_S2FWB to make that unneeded).
 */
#include <quire/pool.h>
#include <arch/mmu.h>
#include <arch/sysreg.h>

void page_zero(paddr_t pa)
{
	u64 dczid = read_sysreg(dczid_el0);
	u64 block = 4UL << (dczid & 0xf);
	u64 *p = (u64 *)(uintptr_t)pa;

	if (dczid & (1 << 4)) { /* DZP: DC ZVA prohibited */
		for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
			p[i] = 0;
	} else {
		for (u64 a = pa; a < pa + PAGE_SIZE; a += block)
			asm volatile("dc zva, %0" : : "r"(a) : "memory");
	}
	dcache_clean_poc(p, PAGE_SIZE);
}

void page_sync_for_guest(paddr_t pa)
{
	dcache_clean_poc((const void *)(uintptr_t)pa, PAGE_SIZE);
	asm volatile("ic ialluis" : : : "memory");
	dsb(ish);
	isb();
}
