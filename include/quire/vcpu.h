/* A virtual CPU, as core code sees it. */
#ifndef QUIRE_VCPU_H
#define QUIRE_VCPU_H
#include <quire/vm.h>

enum vcpu_state {
	VCPU_OFF,	/* not started, or stopped with PSCI CPU_OFF */
	VCPU_START,	/* CPU_ON accepted: run from entry with x0 = context */
	VCPU_RUNNING,
	VCPU_DEAD,	/* its VM stopped */
};

struct vcpu {
	struct vm *vm;
	unsigned index; /* within the VM; also its MPIDR_EL1 Aff0 */
	unsigned pcpu;	/* the physical CPU it is pinned to */
	_Atomic int state;
	u64 entry, context;
	u64 args[4]; /* x0..x3 at entry */
};

/*
 * Handle an HVC or trapped SMC from the guest; x holds x0..x3 on entry and
 * the results on return. Returns false if the vCPU must stop running.
 */
bool hypercall(struct vcpu *v, u64 x[4]);

/* Guest console output through QUIRE_HC_PUTC: line-buffered, prefixed with the VM name. */
void vm_console_putc(struct vm *vm, char c);

/* Arch: make a vCPU that is VCPU_OFF runnable on its physical CPU. */
void vcpu_kick(struct vcpu *v);
#endif
