/* Arch-only stage-2 helpers; the portable interface is in quire/vm.h. */
#ifndef ARCH_STAGE2_H
#define ARCH_STAGE2_H
#include <quire/vm.h>

/* Compute VTCR_EL2 from PARange; returns the IPA size in bits. */
unsigned s2_setup(void);
u64 s2_vtcr(void);
u64 s2_vttbr(const struct vm *vm);
/*
 * Clean and invalidate every page the VM maps (Normal memory) to the point
 * of coherency, for set/way emulation; run in a trap of one of its vCPUs.
 * Returns the pages done.
 */
u64 s2_flush_dcache(struct vm *vm);
#endif
