/* A trapped MSR/MRS (ESR_EL2.EC 0x18), decoded, and what its handler made of it. */
#ifndef ARCH_SYSREG_ACCESS_H
#define ARCH_SYSREG_ACCESS_H
#include <quire/types.h>

struct sysreg_access {
	unsigned op0, op1, crn, crm, op2;
	bool read;
	bool el0; /* from the guest's EL0 */
	u64 val;  /* in: the value written; out: the value read */
};

enum sysreg_result {
	SR_DONE,     /* emulated: the instruction is skipped, a read returns val */
	SR_RETRY,    /* the registers are the vCPU's own now: run the instruction again */
	SR_UNDEF,    /* not a register the guest has */
	SR_NOT_MINE, /* not this handler's encoding */
};
#endif
