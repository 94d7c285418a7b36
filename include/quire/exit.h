/*
 * A guest's exits as core sees them. The arch's trap code decodes its own
 * syndrome into portable records (struct s2_fault for an abort, struct
 * mmio_access for a device access) and calls core's handler for each kind
 * (core/exit.c): the violation handler, the emulated devices, the
 * hypercalls, waiting. Exits only the arch can handle (its system
 * registers, FP, debug) it handles itself.
 */
#ifndef QUIRE_EXIT_H
#define QUIRE_EXIT_H
#include <quire/exitprof.h>
#include <quire/fault.h>
#include <quire/run.h>
#include <quire/swap.h>
#include <quire/vcpu.h>
#include <quire/vdev.h>
#include <quire/vm.h>
#include <arch/cpu.h>
#include <arch/regs.h>
#include <arch/vgic.h>

struct trap_frame;

/*
 * The exit profile's clock (include/quire/exitprof.h). exit_begin at the
 * exit's first C, exit_end just before the guest runs again: the ticks
 * between go to the exiting vCPU under the reason the handlers left in
 * c->exit_kind. Two counter reads and five loads and stores on the fill path.
 */
static inline void exit_begin(struct cpu *c, struct vcpu *v, enum exit_kind k)
{
	if (!EXIT_PROF)
		return;
	c->exit_t0 = counter_read();
	c->exit_v = v;
	c->exit_kind = k;
}

static inline void exit_kind_set(enum exit_kind k)
{
	if (EXIT_PROF)
		this_cpu()->exit_kind = k;
}

/* d ticks of an exit were the guest's idle time (asleep, or Quire's idle work if work). */
static inline void exit_idle(struct cpu *c, u64 d, bool work)
{
	if (!EXIT_PROF)
		return;
	c->exit_t0 += d;
	if (work)
		c->exit_v->prof.idle_work_ticks += d;
	else
		c->exit_v->prof.idle_ticks += d;
}

static inline void exit_end(struct cpu *c)
{
	struct exit_stat *s;

	if (!EXIT_PROF)
		return;
	s = &c->exit_v->prof.k[c->exit_kind];
	s->n++;
	s->ticks += counter_read() - c->exit_t0;
}

/* A load or store at a device's address, as its syndrome gives it. */
struct mmio_access {
	u64 ipa;
	u8 size;	/* bytes: 1, 2, 4 or 8 */
	u8 reg;		/* the register loaded or stored; 31: the zero register */
	bool write;
	bool sign_extend; /* a load sign-extends to the register */
	bool reg64;	/* a load fills all 64 bits of the register (else 32) */
};

/*
 * Core's handlers, one per kind of exit the arch decodes (f is the guest's
 * frame: its registers, arch/regs.h):
 *  - exit_abort: a stage-2 abort (struct s2_fault): the violation handler,
 *    then perhaps a device, or an abort injected into the guest;
 *  - exit_mmio: a translation fault with a syndrome outside the VM's RAM
 *    (struct mmio_access): straight to the device. False if there is no
 *    device there: the arch then decodes the fault whole, for exit_abort;
 *    exit_mmio_bad logs a register the device does not have;
 *  - exit_hypercall: a hypercall or PSCI call, the PC past the instruction;
 *  - exit_wait: WFI, or WFE (wfe).
 * No switch on a kind between the arch's decoding and them: the hot ones
 * (a fill, a device read) inline into the trap as they did before.
 */
void exit_mmio_bad(struct vcpu *v, const struct mmio_access *a);
void exit_hypercall(struct vcpu *v, struct trap_frame *f);
void exit_wait(struct vcpu *v, struct trap_frame *f, bool wfe);
/* What the violation handler could not settle (gen: swap_gen() before it ran). */
void exit_abort_rest(struct vcpu *v, struct trap_frame *f, const struct s2_fault *flt, enum vio_result r, u64 gen);

/* A device access done (ok: the device had the register): the loaded value in place, the guest past it. */
static inline void exit_mmio_done(struct vcpu *v, struct trap_frame *f, const struct mmio_access *a, bool ok, u64 val)
{
	if (!ok) {
		exit_mmio_bad(v, a);
		val = 0;
	}
	if (!a->write) {
		if (a->sign_extend && a->size < 8 && (val & (1UL << (8 * a->size - 1))))
			val |= ~0UL << (8 * a->size);
		if (!a->reg64)
			val &= 0xffffffffUL;
		vcpu_reg_set(f, a->reg, val);
	}
	vcpu_skip_insn(f);
}

/* The virtio-mmio window: out of line, a notify may have to run again (core/exit.c). */
void exit_virtio(struct vcpu *v, struct trap_frame *f, const struct mmio_access *a);

/* Inline: the device read is the hot exit after the fill, and its record stays in registers. */
static inline bool exit_mmio(struct vcpu *v, struct trap_frame *f, const struct mmio_access *a)
{
	u64 ipa = a->ipa, val = a->write ? vcpu_reg(f, a->reg) : 0;
	bool ok;

	if (ipa >= VGIC_DIST_BASE && ipa < VGIC_DIST_BASE + VGIC_DIST_SIZE) {
		exit_kind_set(EXIT_MMIO_VGIC);
		ok = vgic_dist_access(v, ipa - VGIC_DIST_BASE, a->size, a->write, &val);
	} else if (ipa >= VPL011_BASE && ipa < VPL011_BASE + VPL011_SIZE) {
		exit_kind_set(EXIT_MMIO_PL011);
		ok = vpl011_access(v->vm, ipa - VPL011_BASE, a->size, a->write, &val);
	} else if (ipa >= VIRTIO_MMIO_BASE && ipa < VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE) {
		u64 slot = (ipa - VIRTIO_MMIO_BASE) / VIRTIO_MMIO_SLOT;

		exit_kind_set(slot < EXIT_MMIO_VIRTIO - EXIT_MMIO_BALLOON ? EXIT_MMIO_BALLOON + slot : EXIT_MMIO_VIRTIO);
		exit_virtio(v, f, a);
		return true;
	} else {
		return false;
	}
	exit_mmio_done(v, f, a, ok, val);
	return true;
}

/* What a stage-2 abort was, by its class and the violation handler's answer. */
static inline enum exit_kind exit_abort_kind(const struct s2_fault *flt, enum vio_result r)
{
	if (r == VIO_WAIT)
		return EXIT_SWAP_IN;
	if (r != VIO_MAPPED && r != VIO_RACED)
		return EXIT_ABORT;
	if (flt->cls == FAULT_ACCESS_FLAG)
		return EXIT_ACCESS_FLAG;
	if (flt->cls == FAULT_PERMISSION)
		return flt->write ? EXIT_COW : EXIT_EXEC;
	return flt->cls == FAULT_TRANSLATION && r == VIO_MAPPED ? EXIT_FILL : EXIT_ABORT;
}

static inline void exit_abort(struct vcpu *v, struct trap_frame *f, const struct s2_fault *flt)
{
	u64 gen = swap_gen();
	enum vio_result r = violation_handle(v->vm, flt, cpu_id());

	/* Its reason, from what the handler found (the fill's case first: its kind was set at entry). */
	if (flt->cls != FAULT_TRANSLATION || r != VIO_MAPPED)
		exit_kind_set(exit_abort_kind(flt, r));
	if (r != VIO_MAPPED && r != VIO_RACED && r != VIO_STOP)
		exit_abort_rest(v, f, flt, r, gen);
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
	exit_end(this_cpu());
}
/*
 * Physical interrupts taken from the guest v, handled. True if v may go on
 * at once (its list registers filled); false if exit_resume must run, with
 * the whole frame.
 */
bool exit_irq(struct vcpu *v);
#endif
