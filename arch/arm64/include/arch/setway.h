/*
 * Set/way cache maintenance by a guest (DC ISW, CSW, CISW trap with
 * HCR_EL2.TSW), emulated as KVM does: see arch/arm64/setway.c.
 */
#ifndef ARCH_SETWAY_H
#define ARCH_SETWAY_H
#include <quire/vcpu.h>

#define HCR_EL2_TVM (1UL << 26)

/* HCR_EL2 bits this vCPU needs beyond the usual ones: vcpu_load ORs them in. */
static inline u64 setway_hcr(const struct vcpu *v)
{
	return v->setway_tvm ? HCR_EL2_TVM : 0;
}
/* A trapped DC ISW/CSW/CISW. */
void setway_op(struct vcpu *v);
/*
 * A trapped MSR (EC 0x18, op0 3): if HCR_EL2.TVM trapped it, emulate it
 * (val is the guest's register) and return true.
 */
bool setway_vm_reg_write(struct vcpu *v, unsigned op1, unsigned crn, unsigned crm, unsigned op2, u64 val);
#endif
