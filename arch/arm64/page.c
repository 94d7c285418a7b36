/*
 * Preparing machine pages for guests. A guest that runs with its stage-1 MMU
 * off (every guest at boot) reads memory as Device, bypassing the caches, so
 * what Quire wrote through its cacheable mapping must be cleaned to the point
 * of coherency first (Cortex-A72 has no FEAT_S2FWB to make that unneeded).
 * And invalidated too: a guest that writes with its caches off and then turns
 * them on must not hit lines Quire left behind (clean, but older than what
 * the guest wrote to memory).
 */
#include <quire/fault.h>
#include <string.h>
#include <quire/pool.h>
#include <quire/share.h>
#include <arch/mmu.h>
#include <arch/sysreg.h>

#define CTR_DIC (1UL << 29)
#define CTR_L1IP_PIPT 3UL

static u64 zva_block, dline, iline;
static bool icache_coherent, icache_pipt;

static void learn_sizes(void)
{
	u64 dczid = read_sysreg(dczid_el0), ctr = read_sysreg(ctr_el0);

	/* DZP set means DC ZVA is prohibited: zero with stores instead. */
	zva_block = (dczid & (1 << 4)) ? 0 : 4UL << (dczid & 0xf);
	iline = 4UL << (ctr & 0xf);
	icache_coherent = ctr & CTR_DIC;
	icache_pipt = ((ctr >> 14) & 3) == CTR_L1IP_PIPT;
	dline = 4UL << ((ctr >> 16) & 0xf);
}

static void dcache_clean_inval_page(paddr_t pa)
{
	if (dline == 64) {
		/* The common case (Cortex-A72), unrolled as page_zero's: two instructions a line, not four. */
		asm volatile("mov x16, %0\n"
			     ".rept 64\n"
			     "dc civac, x16\n"
			     "add x16, x16, #64\n"
			     ".endr"
			     : : "r"(pa) : "x16", "memory");
	} else {
		for (u64 a = pa; a < pa + PAGE_SIZE; a += dline)
			asm volatile("dc civac, %0" : : "r"(a) : "memory");
	}
	/* Complete before anyone maps the page or reads it from memory. */
	dsb(ish);
}

void page_zero(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	if (zva_block == 64 && dline == 64) {
		/* The common case (Cortex-A72): zero, clean and invalidate each 64-byte line, no loop. */
		asm volatile("mov x16, %0\n"
			     ".rept 64\n"
			     "dc zva, x16\n"
			     "dc civac, x16\n"
			     "add x16, x16, #64\n"
			     ".endr"
			     : : "r"(pa) : "x16", "memory");
		/* The zeroes are at PoC before the page is handed on. */
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
	dcache_clean_inval_page(pa);
}

void page_copy_for_guest(paddr_t dst, paddr_t src)
{
	u64 t = (uintptr_t)page_va(dst), s = (uintptr_t)page_va(src), a, b, c, d, e, f, g, h;

	if (!dline)
		learn_sizes();
	if (dline != 64) {
		memcpy(page_va(dst), page_va(src), PAGE_SIZE);
		dcache_clean_inval_page(dst);
		return;
	}
	/*
	 * The common case (Cortex-A72): each 64-byte line copied with four LDPs
	 * and four STPs, then cleaned and invalidated at once, no loop: ten
	 * instructions a line, where memcpy and a separate pass took seventeen.
	 * No barrier between a line's stores and its DC CIVAC: a data cache
	 * maintenance by address is ordered after earlier stores to the same
	 * line (of the minimum line size, which dline is), so it writes back
	 * what they stored.
	 */
	asm volatile(".rept 64\n\t"
		     "ldp %[a], %[b], [%[s]], #16\n\t"
		     "ldp %[c], %[d], [%[s]], #16\n\t"
		     "ldp %[e], %[f], [%[s]], #16\n\t"
		     "ldp %[g], %[h], [%[s]], #16\n\t"
		     "stp %[a], %[b], [%[t]]\n\t"
		     "stp %[c], %[d], [%[t], #16]\n\t"
		     "stp %[e], %[f], [%[t], #32]\n\t"
		     "stp %[g], %[h], [%[t], #48]\n\t"
		     "dc civac, %[t]\n\t"
		     "add %[t], %[t], #64\n"
		     ".endr"
		     : [t] "+r"(t), [s] "+r"(s), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d),
		       [e] "=&r"(e), [f] "=&r"(f), [g] "=&r"(g), [h] "=&r"(h)
		     :
		     : "memory");
	/* The copy is in memory (PoC) before the leaf that maps it is written (s2_install). */
	dsb(ish);
}

bool page_same(paddr_t pa, paddr_t pb)
{
	u64 p = (uintptr_t)page_va(pa), q = (uintptr_t)page_va(pb), end = p + PAGE_SIZE;
	u64 a, b, c, d, e, f, g, h;
	bool same;

	/*
	 * 32 bytes a step: two LDPs from each page, a compare and three
	 * conditional compares chained on "equal so far", one branch out at the
	 * first difference; eight steps to an iteration (about 1,170
	 * instructions a page where memcmp's word loop took 2,300).
	 */
	asm("1:\n"
	    ".rept 8\n\t"
	    "ldp %[a], %[b], [%[p]], #16\n\t"
	    "ldp %[c], %[d], [%[p]], #16\n\t"
	    "ldp %[e], %[f], [%[q]], #16\n\t"
	    "ldp %[g], %[h], [%[q]], #16\n\t"
	    "cmp %[a], %[e]\n\t"
	    "ccmp %[b], %[f], #0, eq\n\t"
	    "ccmp %[c], %[g], #0, eq\n\t"
	    "ccmp %[d], %[h], #0, eq\n\t"
	    "b.ne 2f\n"
	    ".endr\n\t"
	    "cmp %[p], %[end]\n\t"
	    "b.ne 1b\n"
	    "2:\n\t"
	    "cset %w[same], eq"
	    : [same] "=r"(same), [p] "+r"(p), [q] "+r"(q), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c),
	      [d] "=&r"(d), [e] "=&r"(e), [f] "=&r"(f), [g] "=&r"(g), [h] "=&r"(h)
	    : [end] "r"(end), "m"(*(const u8(*)[PAGE_SIZE])page_va(pa)), "m"(*(const u8(*)[PAGE_SIZE])page_va(pb))
	    : "cc");
	return same;
}

void page_sync_icache(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	/* CTR_EL0.DIC: instruction fetches see data writes; nothing stale can be fetched. */
	if (icache_coherent)
		return;
	if (!icache_pipt) {
		/* Another index than the physical one may hold the page's lines: all of them go. */
		asm volatile("ic ialluis" : : : "memory");
	} else {
		/* Quire's address of the page is its PA, which is what indexes the cache. */
		for (u64 a = pa; a < pa + PAGE_SIZE; a += iline)
			asm volatile("ic ivau, %0" : : "r"(a) : "memory");
	}
	/* The invalidation is complete on every CPU before the page is mapped executable. */
	dsb(ish);
}

void page_sync_for_guest(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	dcache_clean_inval_page(pa);
}

void page_sync_for_quire(paddr_t pa)
{
	if (!dline)
		learn_sizes();
	dcache_clean_inval_page(pa);
}

void *page_va(paddr_t pa)
{
	return (void *)(uintptr_t)pa; /* Quire maps all RAM at its own address */
}
