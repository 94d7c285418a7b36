/* Stage-2 registers (VTCR_EL2, VTTBR_EL2); the portable interface is in quire/vm.h. */
#ifndef ARCH_STAGE2_H
#define ARCH_STAGE2_H
#include <quire/vm.h>

/* Compute VTCR_EL2 from PARange; returns the IPA size in bits. */
unsigned s2_setup(void);
u64 s2_vtcr(void);
u64 s2_vttbr(const struct vm *vm);
#endif
