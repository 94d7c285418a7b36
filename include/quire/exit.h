/*
 * A guest's exit as core sees it. The arch's trap code decodes its own
 * syndrome into this record and hands it to exit_handle() (core/exit.c),
 * which dispatches it: the violation handler, the emulated devices, the
 * hypercalls, waiting. Exits only the arch can handle (its system
 * registers, FP, debug) it handles itself.
 */
#ifndef QUIRE_EXIT_H
#define QUIRE_EXIT_H
#include <quire/fault.h>
#include <quire/run.h>
#include <quire/swap.h>
#include <quire/vcpu.h>
#include <quire/vm.h>
#include <arch/cpu.h>
#include <arch/vgic.h>

struct trap_frame;

/* A load or store at a device's address, as its syndrome gives it. */
struct mmio_access {
	u64 ipa;
	u8 size;	/* bytes: 1, 2, 4 or 8 */
	u8 reg;		/* the register loaded or stored; 31: the zero register */
	bool write;
	bool sign_extend; /* a load sign-extends to the register */
	bool reg64;	/* a load fills all 64 bits of the register (else 32) */
};

enum exit_kind {
	EXIT_ABORT,	/* a stage-2 abort: the violation handler, then perhaps a device */
	EXIT_MMIO,	/* a translation fault with a syndrome outside the VM's RAM: straight to the device */
	EXIT_HYPERCALL, /* a hypercall or PSCI call; the PC is past the instruction */
	EXIT_WAIT,	/* WFI, or WFE (wfe) */
};

struct vm_exit {
	enum exit_kind kind;
	union {
		struct s2_fault abort;
		struct mmio_access mmio;
		bool wfe;
	};
};

/*
 * A load or store at an emulated device's address: the device answers, the
 * guest goes on past it. False if no emulated device is there.
 */
bool exit_device(struct vcpu *v, struct trap_frame *f, const struct mmio_access *a);
/* What the violation handler could not settle (gen: swap_gen() before it ran). */
void exit_abort_rest(struct vcpu *v, struct trap_frame *f, const struct s2_fault *flt, enum vio_result r, u64 gen);

/* A stage-2 abort. Inline: the fault path (a fill, copy-on-write, a swap-in) pays for no call of its own. */
static inline void exit_abort(struct vcpu *v, struct trap_frame *f, const struct s2_fault *flt)
{
	u64 gen = swap_gen();
	enum vio_result r = violation_handle(v->vm, flt, cpu_id());

	if (r != VIO_MAPPED && r != VIO_RACED && r != VIO_STOP)
		exit_abort_rest(v, f, flt, r, gen);
}
void exit_hypercall(struct vcpu *v, struct trap_frame *f);
void exit_wait(struct vcpu *v, struct trap_frame *f, bool wfe);

/*
 * Handle the exit; f is the guest's frame (its registers, arch/regs.h).
 * False only for EXIT_MMIO with no device at that address: the arch then
 * decodes the exit whole, as EXIT_ABORT. Inline, as exit_resume: where the
 * kind is known the call is the handler's own, and the fast paths (a
 * device read, an IPI) pay for no dispatch.
 */
static inline bool exit_handle(struct vcpu *v, struct trap_frame *f, const struct vm_exit *e)
{
	switch (e->kind) {
	case EXIT_MMIO:
		return exit_device(v, f, &e->mmio);
	case EXIT_ABORT:
		exit_abort(v, f, &e->abort);
		break;
	case EXIT_HYPERCALL:
		exit_hypercall(v, f);
		break;
	case EXIT_WAIT:
		exit_wait(v, f, e->wfe);
		break;
	}
	return true;
}

/* Nothing for the scheduler to do: v's VM runs, its CPU is not asked to look, v is not blocked. */
static inline bool exit_may_go_on(struct vcpu *v)
{
	return !atomic_load(&v->vm->off) && !atomic_load(&this_cpu()->resched) && !atomic_load(&v->blocked);
}

/*
 * Before the guest runs again: a VM stopped meanwhile (never returns), the
 * scheduler's turn (f may become another vCPU's), the list registers.
 */
static inline void exit_resume(struct vcpu *v, struct trap_frame *f)
{
	if (!exit_may_go_on(v)) {
		if (atomic_load(&v->vm->off))
			vcpu_exit();
		sched_resched(f);
	}
	vgic_flush(this_cpu()->vcpu);
}
/*
 * Physical interrupts taken from the guest v, handled. True if v may go on
 * at once (its list registers filled); false if exit_resume must run, with
 * the whole frame.
 */
bool exit_irq(struct vcpu *v);
#endif
