/* Arch-only stage-2 helpers; the portable interface is in quire/vm.h. */
#ifndef ARCH_STAGE2_H
#define ARCH_STAGE2_H
#include <quire/vm.h>

/* Compute VTCR_EL2 from PARange; returns the IPA size in bits. */
unsigned s2_setup(void);
u64 s2_vtcr(void);
u64 s2_vttbr(const struct vm *vm);
/*
 * Replace the valid leaf at ipa with pa/prot (pa == 0 unmaps), with
 * break-before-make: invalidate, DSB, TLBI IPAS2E1IS + VMALLE1IS, DSB, write.
 */
int s2_replace(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned prot);
#endif
