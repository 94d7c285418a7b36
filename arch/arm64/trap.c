/*
 * Exceptions taken from a guest (entry code): ESR_EL2 decoded into
 * portable exit records for core's handlers (core/exit.c: stage-2 aborts,
 * device accesses, hypercalls, WFI and WFE), physical interrupts to core's
 * handler; the exits that are arm64's own (system registers, FP/SIMD,
 * SError, the unknown) handled here. Anything the guest may not do becomes
 * an exception in the guest, never a crash of Quire.
 */
#include <quire/exit.h>
#include <quire/console.h>
#include <quire/fault.h>
#include <arch/fault_decode.h>
#include <quire/run.h>
#include <arch/cpu.h>
#include <arch/esr.h>
#include <arch/gic.h>
#include <arch/idregs.h>
#include <arch/pmu.h>
#include <arch/ptimer.h>
#include <arch/setway.h>
#include <arch/sysreg.h>
#include <arch/vcpu.h>
#include <arch/vgic.h>


/* ISS of a data abort (ESR_EL2, EC 0x24): the instruction syndrome. */
#define ISS_ISV (1u << 24)
#define ISS_SAS(iss) (((iss) >> 22) & 3)
#define ISS_SSE (1u << 21)
#define ISS_SRT(iss) (((iss) >> 16) & 0x1f)
#define ISS_SF (1u << 15)
#define ISS_CM (1u << 8)
#define ISS_S1PTW (1u << 7)
#define ISS_WNR (1u << 6)

/*
 * The common device access, before the violation handler: a data abort
 * with a syndrome, a translation fault not on a stage-1 walk, outside the
 * VM's RAM, to core as a struct mmio_access. A 32-bit write to GICD_SGIR,
 * an IPI, the most frequent, goes to the vGIC at once. False if it is not
 * such an access, or no device is there: then it is decoded whole.
 */
static bool mmio_fast(struct vcpu *v, struct trap_frame *f)
{
	u32 iss = esr_iss(f->esr);
	u64 ipa;

	if ((iss & (ISS_ISV | ISS_CM | ISS_S1PTW)) != ISS_ISV || (iss & 0x3c) != 0x04)
		return false;
	/* HPFAR_EL2.FIPA (bits [43:4]) holds IPA[51:12]; the page offset comes from FAR. */
	ipa = ((read_sysreg(hpfar_el2) >> 4) & 0xffffffffffUL) << 12 | (f->far & 0xfff);
	/* RAM is never a device (vmconfig_check keeps them apart): a fault there is the violation handler's. */
	if (vm_in_ram(v->vm, IPA(ipa)))
		return false;
	if (ipa == VGIC_SGIR && (iss & (ISS_WNR | 3u << 22)) == (ISS_WNR | 2u << 22)) {
		exit_kind_set(EXIT_SGI);
		vgic_sgir_write(v, ISS_SRT(iss) == 31 ? 0 : (u32)f->x[ISS_SRT(iss)]);
		f->elr += 4;
		return true;
	}
	return exit_mmio(v, f, &(struct mmio_access){ ipa, 1u << ISS_SAS(iss), ISS_SRT(iss), iss & ISS_WNR,
						       iss & ISS_SSE, iss & ISS_SF });
}

/*
 * A stage-2 abort, decoded whole for core. Not inlined into guest_trap: the
 * fault's record and the fill's registers would cost every other exit a
 * bigger frame.
 */
static void guest_abort(struct vcpu *v, struct trap_frame *f)
{
	struct s2_fault flt;

	if (fault_decode(f->esr, f->far, read_sysreg(hpfar_el2), &flt)) /* EC 0x20 or 0x24: true */
		exit_abort(v, f, &flt);
}

static __noinline void undef(struct vcpu *v, struct trap_frame *f, u32 ec)
{
	vm_log_once(v->vm, VM_LOG_UNDEF,
		    "quire: %s vCPU %u: %s (EC 0x%02x, ISS 0x%07x) at 0x%lx is not emulated; "
		    "injecting UNDEF (logged once)\n",
		    v->vm->name, v->index, esr_ec_name(ec), ec, esr_iss(f->esr), f->elr);
	inject_undef(f);
}

/*
 * MSR/MRS and system instructions that trap (EC 0x18), by encoding: the ID
 * registers (TID3, idregs.c); the debug (op0 = 2) and PMU registers
 * (MDCR_EL2, debug.c and pmu.c); the physical timer (CNTHCTL_EL2, emulated
 * in ptimer.c); set/way cache maintenance (TSW) and the stage-1 register
 * writes it makes trap (TVM, setway.c); ACTLR_EL1 (TACR) reads as zero and
 * ignores writes; the rest is UNDEF. Each unhandled kind is logged once per VM.
 */
static __noinline void sysreg_trap(struct vcpu *v, struct trap_frame *f)
{
	u32 iss = esr_iss(f->esr);
	unsigned rt = (iss >> 5) & 31;
	struct sysreg_access a = {
		.op0 = (iss >> 20) & 3, .op2 = (iss >> 17) & 7, .op1 = (iss >> 14) & 7,
		.crn = (iss >> 10) & 15, .crm = (iss >> 1) & 15, .read = iss & 1,
		.el0 = (f->spsr & 0xf) == 0, .val = rt == 31 ? 0 : f->x[rt],
	};
	enum sysreg_result r = SR_NOT_MINE;

	if (idregs_is_reg(a.op0, a.op1, a.crn, a.crm)) {
		a.val = idregs_read(a.crm, a.op2);
		r = a.read ? SR_DONE : SR_UNDEF;
	} else if (a.op0 == 2 || pmu_is_reg(&a)) {
		r = vcpu_debug_access(v, &a);
	} else if (a.op0 == 1 && a.op1 == 0 && a.crn == 7 && (a.crm == 6 || a.crm == 10 || a.crm == 14) &&
		   a.op2 == 2) {
		setway_op(v);
		r = SR_DONE;
	} else if (a.op0 == 3 && a.op1 == 3 && a.crn == 14 && a.crm == 2 && a.op2 <= 2) { /* CNTP_TVAL/CTL/CVAL_EL0 */
		if (ptimer_access(v, a.op2, a.read, &a.val))
			vcpu_timer_changed(v);
		r = SR_DONE;
	} else if (a.op0 == 3 && !a.read && setway_vm_reg_write(v, a.op1, a.crn, a.crm, a.op2, a.val)) {
		r = SR_DONE;
	} else if (a.op0 == 3 && a.op1 == 0 && a.crn == 1 && a.crm == 0 && a.op2 == 1) { /* ACTLR_EL1 */
		vm_log_once(v->vm, VM_LOG_SYSREG_RAZWI,
			    "quire: %s vCPU %u: system register op0=%u op1=%u CRn=%u CRm=%u op2=%u (%s) at 0x%lx "
			    "is not implemented: reads as zero, writes ignored (logged once)\n",
			    v->vm->name, v->index, a.op0, a.op1, a.crn, a.crm, a.op2, a.read ? "read" : "write", f->elr);
		a.val = 0;
		r = SR_DONE;
	}
	switch (r) {
	case SR_DONE:
		if (a.read && rt != 31)
			f->x[rt] = a.val;
		f->elr += 4;
		return;
	case SR_RETRY:
		return; /* the instruction runs again, on the vCPU's own registers */
	default:
		vm_log_once(v->vm, VM_LOG_SYSREG,
			    "quire: %s vCPU %u: system register op0=%u op1=%u CRn=%u CRm=%u op2=%u (%s) at 0x%lx "
			    "is not emulated; injecting UNDEF (logged once)\n",
			    v->vm->name, v->index, a.op0, a.op1, a.crn, a.crm, a.op2, a.read ? "read" : "write", f->elr);
		inject_undef(f);
	}
}

/* PSTATE.SS, saved in SPSR_EL2: software step's state (active-not-pending when 1). */
#define SPSR_SS (1UL << 21)
#define MDSCR_EL1_SS (1UL << 0)

/* A physical interrupt: its own short path (an IPI's delivery goes here). */
static void guest_irq(struct trap_frame *f)
{
	struct vcpu *v = this_cpu()->vcpu;

	exit_begin(this_cpu(), v, EXIT_IRQ);
	irq_handle(v);
	exit_resume(v, f);
}

/*
 * A guest's IRQ, from vectors.S with only x0-x18 and x30 saved: handled, and
 * true if the guest may go on at once. False if the scheduler or a stop
 * needs the whole frame: the vector saves the rest and calls guest_irq_rest.
 */
bool guest_irq_fast(void)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu;

	/* No vCPU: not from a guest after all, el2_exception's crash report. */
	if (!v)
		return false;
	exit_begin(c, v, EXIT_IRQ);
	if (!exit_irq(v))
		return false;
	exit_end(c);
	return true;
}

void guest_irq_rest(struct trap_frame *f)
{
	struct vcpu *v = this_cpu()->vcpu;

	if (!v)
		el2_exception(f, VEC_LOWER64_IRQ);
	else
		exit_resume(v, f);
}

/*
 * The other exceptions from a guest, by el2_exception: FIQ (an interrupt,
 * as IRQ), SError and AArch32 (not Quire's guests: the VM stops).
 */
void guest_trap(struct trap_frame *f, unsigned vector)
{
	struct vcpu *v = this_cpu()->vcpu;

	if (vector == VEC_LOWER64_SYNC) {
		guest_sync(f);
		return;
	}
	if (vector == VEC_LOWER64_IRQ || vector == VEC_LOWER64_IRQ + 1) {
		guest_irq(f);
		return;
	}
	printk("quire: %s vCPU %u: SError or AArch32 exception (ESR_EL2 0x%lx); stopping the VM\n",
	       v->vm->name, v->index, f->esr);
	vm_power_off(v->vm, "stopped");
	vcpu_exit();
}

/*
 * A synchronous exception from a guest, straight from its vector (the most
 * frequent exit, a stage-2 fill, pays for no other dispatch): ESR_EL2.EC
 * decoded for core's handlers or arm64's own.
 */
void guest_sync(struct trap_frame *f)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu;
	u32 ec = esr_ec(f->esr);
	u64 elr = f->elr;

	if (!v) {
		el2_exception(f, VEC_LOWER64_SYNC); /* not from a guest after all: the crash report */
		return;
	}
	/* A fill unless its handler says otherwise: the most frequent exit stores its reason once. */
	exit_begin(c, v, EXIT_FILL);
	switch (ec) {
	case EC_DABT_LOW:
		if (mmio_fast(v, f))
			break;
		/* fall through */
	case EC_IABT_LOW:
		guest_abort(v, f);
		break;
	case EC_SMC64:
		f->elr += 4; /* a trapped SMC returns to itself; HVC already points past */
		/* fall through */
	case EC_HVC64:
		exit_kind_set(EXIT_HVC);
		exit_hypercall(v, f);
		break;
	case EC_WFx:
		exit_kind_set(f->esr & 1 ? EXIT_WFE : EXIT_WFI);
		exit_wait(v, f, f->esr & 1 /* ISS.TI: WFE */);
		break;
	case EC_FP_ASIMD:
		exit_kind_set(EXIT_FP);
		vcpu_fp_trap(v);
		break;
	case EC_SYS64:
		exit_kind_set(EXIT_SYSREG);
		sysreg_trap(v, f);
		break;
	default:
		exit_kind_set(EXIT_OTHER);
		undef(v, f, ec);
		break;
	}
	/*
	 * An instruction Quire emulated (and skipped) has been executed: if
	 * the guest is stepping it, the step is done, and the guest takes its
	 * software step exception before the next one (PSTATE.SS = 0,
	 * active-pending), as if the instruction had not trapped. Stepping
	 * needs MDSCR_EL1.SS, which is 0 here unless the vCPU's debug state
	 * is loaded (debug.c): one read spares every other exit the rest.
	 */
	if ((read_sysreg(mdscr_el1) & MDSCR_EL1_SS) && f->elr == elr + 4)
		f->spsr &= ~SPSR_SS;
	exit_resume(v, f);
}
