/* Zeroing machine pages with DC ZVA, a cache line (or block) per instruction. */
#include <quire/pool.h>
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
}
