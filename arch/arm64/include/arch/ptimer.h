/*
 * The EL1 physical timer of a vCPU, emulated as KVM does: its registers
 * (CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0) trap (CNTHCTL_EL2.EL1PCEN
 * clear) and live in struct vcpu; its output drives the vCPU's PPI 30, a
 * level-sensitive interrupt in the vGIC; its deadline is kept on Quire's
 * own EL2 timer while the vCPU runs or waits, as the virtual timer's is.
 */
#ifndef ARCH_PTIMER_H
#define ARCH_PTIMER_H
#include <quire/vcpu.h>

#define PPI_PTIMER 30

/* A trapped CNTP_* access (op0 3, op1 3, CRn 14, CRm 2; op2 0 TVAL, 1 CTL, 2 CVAL); true if its deadline may have moved. */
bool ptimer_access(struct vcpu *v, unsigned op2, bool read, u64 *val);
/* The counter value at which its output rises (perhaps passed already), ~0 if it cannot (off or masked). */
u64 ptimer_deadline(const struct vcpu *v);
/* Look at its output now and set its interrupt's level (after a timer interrupt, on load). */
void ptimer_update(struct vcpu *v);
#endif
