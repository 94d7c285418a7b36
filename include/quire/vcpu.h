/* A virtual CPU, as core code sees it. */
#ifndef QUIRE_VCPU_H
#define QUIRE_VCPU_H
#include <quire/exitprof.h>
#include <quire/vm.h>

enum vcpu_state {
	VCPU_OFF,	/* not started, or stopped with PSCI CPU_OFF */
	VCPU_STARTING,	/* CPU_ON is filling in entry and context */
	VCPU_START,	/* CPU_ON accepted: run from entry with x0 = context */
	VCPU_RUNNING,
	VCPU_DEAD,	/* its VM stopped */
};

struct vcpu {
	struct vm *vm;
	unsigned index; /* within the VM; also its MPIDR_EL1 Aff0 */
	unsigned pcpu;	/* the physical CPU whose run queue holds it */
	_Atomic int state;
	_Atomic bool blocked; /* in WFI with nothing to take: not runnable until an interrupt */
	bool yield;	      /* gave up the rest of its slice (WFE) */
	_Atomic bool io_wait; /* waits for the swap disk: not runnable until swap_gen() != io_gen */
	u64 io_gen;
	u64 entry, context;
	/* Interrupt work pending or in the list registers: checked on every exit, so kept here. */
	_Atomic bool vgic_active;
	/* SGIs sent to it and not yet taken: word id / 8, bit (id % 8) * 8 + source vCPU (arch/arm64/vgic.c). */
	_Atomic u64 sgi_mail[2];
	/*
	 * Its CPU's only: a list register holds what is resampled on each entry
	 * (a forwarded or level interrupt); VGIC_WATCH_NEXT: from the next exit on.
	 */
	u8 vgic_watch;
	u64 args[4]; /* x0..x3 at entry */
	struct {
		u64 cval;	/* CNTP_CVAL_EL0 */
		u32 ctl;	/* CNTP_CTL_EL0's ENABLE and IMASK */
	} ptimer;		/* its EL1 physical timer, emulated (arch/arm64/ptimer.c) */
	bool setway_tvm; /* set/way maintenance seen: SCTLR_EL1 & co. trap (HCR_EL2.TVM) until caches go on */
	struct exit_prof prof; /* its exits, by reason (the monitor's exits command) */
};

/*
 * Handle an HVC or trapped SMC from the guest; x holds x0..x3 on entry and
 * the results on return. Returns false if the vCPU must stop running.
 */
bool hypercall(struct vcpu *v, u64 x[4]);

/* Arch: make a vCPU look at its state again (wake its CPU, or make it leave the guest). */
void vcpu_kick(struct vcpu *v);
/* The same for an interrupt marked in v's vGIC: the scheduler is asked only if it must be. */
void vcpu_kick_irq(struct vcpu *v);
/* Device memory the arch hands a VM as it is: at ipa, size bytes of the machine's pa (0 if none). */
struct vm_passthrough {
	ipa_t ipa;
	paddr_t pa;
	u64 size;
};
/* Arch: what a VM of this kind needs beyond RAM (the vGIC), and what core maps for it (its CPU interface). */
struct vm_passthrough vm_arch_init(struct vm *vm);
#endif
