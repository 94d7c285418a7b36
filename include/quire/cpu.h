/*
 * A physical CPU as core sees it: the vCPU it holds and the scheduler's
 * flags. What only the arch keeps per CPU (its identity in the hardware,
 * whose registers it holds) is in ->arch, the arch's struct arch_cpu.
 * this_cpu() and cpu_id() are the arch's primitives (arch/cpu.h).
 */
#ifndef QUIRE_CPU_H
#define QUIRE_CPU_H
#include <quire/config.h>
#include <quire/types.h>
#include <arch/cpu_state.h>

struct vcpu;

struct cpu {
	unsigned id;		  /* logical: 0 is the boot CPU */
	struct vcpu *vcpu;	  /* loaded (its state is in this CPU), if any */
	_Atomic bool resched;	  /* look at the run queue before entering a guest again */
	_Atomic bool woke;	  /* ... because a blocked vCPU here may have woken */
	u64 slice_start;	  /* counter when the loaded vCPU's slice began */
	/* The exit being handled (include/quire/exitprof.h): its start, its vCPU, its reason. */
	u64 exit_t0;
	struct vcpu *exit_v;
	u8 exit_kind;
	u64 idle_work_ticks;	  /* idle work with no vCPU loaded: Quire's own time, no VM's */
	struct arch_cpu arch;
};

extern struct cpu cpus[MAX_CPUS];
#endif
