/* The ID registers a guest reads (HCR_EL2.TID3 traps them): the CPU's, less what Quire does not virtualise. */
#ifndef ARCH_IDREGS_H
#define ARCH_IDREGS_H
#include <quire/types.h>

/* The ID group 3 space: op0 = 3, op1 = 0, CRn = 0, CRm = 1..7. */
static inline bool idregs_is_reg(unsigned op0, unsigned op1, unsigned crn, unsigned crm)
{
	return op0 == 3 && op1 == 0 && crn == 0 && crm >= 1 && crm <= 7;
}

/* The value the guest reads at (CRm, op2) in that space. */
u64 idregs_read(unsigned crm, unsigned op2);
#endif
