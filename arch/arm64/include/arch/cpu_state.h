/* What arm64 keeps per physical CPU beside core's struct cpu (include/quire/cpu.h). */
#ifndef ARCH_CPU_STATE_H
#define ARCH_CPU_STATE_H
#include <quire/config.h>
#include <quire/types.h>

struct vcpu;

struct arch_cpu {
	u64 mpidr;			/* MPIDR_EL1's affinity fields */
	struct vcpu *fp_owner;		/* whose FP/SIMD registers this CPU holds */
	struct vcpu *last_ran[MAX_VMS]; /* per VM, its vCPU this CPU ran last (TLB privacy) */
};
#endif
