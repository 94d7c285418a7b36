/* EL2 stage-1 translation: an identity map of the machine. */
#ifndef ARCH_MMU_H
#define ARCH_MMU_H
#include <quire/machine.h>

struct mmu_regs {
	u64 mair, tcr, ttbr, sctlr;
};

/* What secondaries load in secondary_entry; cleaned to PoC before they start. */
extern struct mmu_regs boot_mmu_regs;

void mmu_load(const struct mmu_regs *r);
/* Before the DT is parsed: RAM only where the image and the DT are. */
void mmu_enable_early(paddr_t fdt);
/* RAM from the DT as Normal memory, everything else as Device. */
void mmu_enable_final(const struct machine *m);
/* Clean [p, p+size) to the point of coherency. */
void dcache_clean_poc(const void *p, u64 size);
#endif
