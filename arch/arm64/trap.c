/*
 * Exceptions taken from a guest: dispatch on ESR_EL2.EC. Stage-2 aborts go
 * to the violation handler or an emulated device, HVC and trapped SMC to the
 * hypercalls, WFI to a real WFI, physical interrupts to the vGIC; anything
 * the guest may not do becomes an exception in the guest, never a crash of
 * Quire.
 */
#include <quire/blk.h>
#include <quire/conmux.h>
#include <quire/console.h>
#include <quire/sched.h>
#include <quire/fault.h>
#include <quire/swap.h>
#include <quire/run.h>
#include <quire/vdev.h>
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


static bool is_device(u64 ipa)
{
	return (ipa >= VGIC_DIST_BASE && ipa < VGIC_DIST_BASE + VGIC_DIST_SIZE) ||
	       (ipa >= VPL011_BASE && ipa < VPL011_BASE + VPL011_SIZE) ||
	       (ipa >= VIRTIO_MMIO_BASE && ipa < VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE);
}

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
 * A load or store at an emulated device's IPA, from its syndrome (iss: a
 * data abort's, ISV set): the device answers, the guest goes on past it.
 * False if no emulated device is there.
 */
static bool emulate_mmio(struct vcpu *v, struct trap_frame *f, u64 ipa, u32 iss)
{
	unsigned size = 1u << ISS_SAS(iss), rt = ISS_SRT(iss);
	bool write = iss & ISS_WNR, ok;
	u64 val = 0;

	if (write)
		val = rt == 31 ? 0 : f->x[rt];
	if (ipa >= VGIC_DIST_BASE && ipa < VGIC_DIST_BASE + VGIC_DIST_SIZE)
		ok = vgic_dist_access(v, ipa - VGIC_DIST_BASE, size, write, &val);
	else if (ipa >= VPL011_BASE && ipa < VPL011_BASE + VPL011_SIZE)
		ok = vpl011_access(v->vm, ipa - VPL011_BASE, size, write, &val);
	else if (ipa >= VIRTIO_MMIO_BASE && ipa < VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE)
		ok = virtio_mmio_access(v->vm, ipa - VIRTIO_MMIO_BASE, size, write, &val);
	else
		return false;
	if (!ok) {
		vm_log_once(v->vm, VM_LOG_MMIO,
			    "quire: %s vCPU %u: %s of %u bytes at device address 0x%lx, no such register "
			    "for that size: %s (logged once)\n",
			    v->vm->name, v->index, write ? "write" : "read", size, ipa,
			    write ? "ignored" : "reads as zero");
		val = 0;
	}
	if (!write && rt != 31) {
		if ((iss & ISS_SSE) && size < 8 && (val & (1UL << (8 * size - 1))))
			val |= ~0UL << (8 * size);
		if (!(iss & ISS_SF))
			val &= 0xffffffffUL;
		f->x[rt] = val;
	}
	f->elr += 4;
	return true;
}

/*
 * The common device access, before the violation handler: a data abort
 * with a syndrome, a translation fault not on a stage-1 walk, at a device's
 * IPA (never RAM: vmconfig_check keeps RAM off the device space; checked anyway).
 * Anything else takes the general path, which ends at emulate_mmio too.
 */
static bool mmio_fast(struct vcpu *v, struct trap_frame *f)
{
	u32 iss = esr_iss(f->esr);
	u64 ipa;

	if (esr_ec(f->esr) != EC_DABT_LOW || (iss & (ISS_ISV | ISS_CM | ISS_S1PTW)) != ISS_ISV ||
	    (iss & 0x3c) != 0x04)
		return false;
	/* HPFAR_EL2.FIPA (bits [43:4]) holds IPA[51:12]; the page offset comes from FAR. */
	ipa = ((read_sysreg(hpfar_el2) >> 4) & 0xffffffffffUL) << 12 | (f->far & 0xfff);
	if (vm_in_ram(v->vm, IPA(ipa)))
		return false;
	if (ipa == VGIC_SGIR && (iss & (ISS_WNR | 3u << 22)) == (ISS_WNR | 2u << 22)) {
		/* A 32-bit write to GICD_SGIR, an IPI: the most frequent device write, straight in. */
		vgic_sgir_write(v, ISS_SRT(iss) == 31 ? 0 : (u32)f->x[ISS_SRT(iss)]);
		f->elr += 4;
		return true;
	}
	return emulate_mmio(v, f, ipa, iss);
}

static void abort_from_guest(struct vcpu *v, struct trap_frame *f)
{
	struct s2_fault flt;
	enum vio_result r;

	u64 gen = swap_gen();

	if (!fault_decode(f->esr, f->far, read_sysreg(hpfar_el2), &flt))
		return; /* not reached: called for EC 0x20 and 0x24 only */
	r = violation_handle(v->vm, &flt, cpu_id());
	if (r == VIO_MAPPED || r == VIO_RACED || r == VIO_STOP)
		return;
	if (r == VIO_WAIT) {
		vcpu_wait_io(v, gen);
		return;
	}
	if (r == VIO_SEA_OUTSIDE && flt.isv && emulate_mmio(v, f, flt.ipa.bits, esr_iss(f->esr)))
		return;
	if (flt.instr && (f->elr & ~0x7ffUL) == read_sysreg(vbar_el1)) {
		/* The guest's own vector table cannot be fetched: injecting again would loop forever. */
		printk("quire: %s vCPU %u: its exception vector at 0x%lx is not in guest RAM (%s); "
		       "it cannot take an abort; stopping the VM\n",
		       v->vm->name, v->index, f->elr, vio_result_name(r));
		vm_power_off(v->vm, "stopped");
		vcpu_exit();
	}
	if (r == VIO_SEA_OUTSIDE && is_device(flt.ipa.bits))
		vm_log_once(v->vm, VM_LOG_MMIO_NOISV,
			    "quire: %s vCPU %u: device access at IPA 0x%lx by an instruction with no syndrome "
			    "(load/store pair or writeback) cannot be emulated; injecting a synchronous "
			    "external abort (logged once)\n", v->vm->name, v->index, flt.ipa.bits);
	else
		vm_log_once(v->vm, VM_LOG_VIO + r,
			    "quire: %s vCPU %u: %s at IPA 0x%lx (VA 0x%lx, %s, level %u): %s; "
			    "injecting a synchronous external abort (logged once)\n",
			    v->vm->name, v->index, flt.instr ? "instruction fetch" : flt.write ? "write" : "read",
			    flt.ipa.bits, flt.va, fault_class_name(flt.cls), flt.level, vio_result_name(r));
	inject_data_abort(f, f->far, flt.instr, flt.write);
}

static void undef(struct vcpu *v, struct trap_frame *f, u32 ec)
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
static void sysreg_trap(struct vcpu *v, struct trap_frame *f)
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

/*
 * WFI: the vCPU waits for an interrupt. Alone on its CPU it waits right here,
 * still loaded (a physical WFI, woken by its own timer's PPI or a kick);
 * if another vCPU here can run, it blocks and gives the CPU away. WFE
 * (trapped only where vCPUs share a CPU: a lock spinning) yields the slice.
 */
static bool wfi_woken(struct vcpu *v)
{
	vgic_flush(v);
	return vgic_lr_pending(v) || atomic_load(&v->vm->off) || atomic_load(&v->vm->paused);
}

static void wfi_trap(struct vcpu *v, struct trap_frame *f)
{
	struct cpu *c = this_cpu();

	f->elr += 4;
	if (f->esr & 1) {
		v->yield = true;
		atomic_store(&c->resched, true);
		return;
	}
	vcpu_idle_until(v, wfi_woken);
}

/* PSTATE.SS, saved in SPSR_EL2: software step's state (active-not-pending when 1). */
#define SPSR_SS (1UL << 21)

/* Before the guest runs again: a VM stopped meanwhile, the scheduler's turn, the list registers. */
static inline bool guest_may_go_on(struct vcpu *v)
{
	return !atomic_load(&v->vm->off) && !atomic_load(&this_cpu()->resched) && !atomic_load(&v->blocked);
}

static inline void guest_resume(struct vcpu *v, struct trap_frame *f)
{
	if (!guest_may_go_on(v)) {
		if (atomic_load(&v->vm->off))
			vcpu_exit();
		sched_resched(f);
	}
	vgic_flush(this_cpu()->vcpu);
}

/* A physical interrupt: its own short path (an IPI's delivery goes here). */
static void guest_irq(struct trap_frame *f)
{
	struct vcpu *v = this_cpu()->vcpu;

	irq_handle(v);
	guest_resume(v, f);
}

/*
 * A guest's IRQ, from vectors.S with only x0-x18 and x30 saved: handled, and
 * true if the guest may go on at once. False if the scheduler or a stop
 * needs the whole frame: the vector saves the rest and calls guest_irq_rest.
 */
bool guest_irq_fast(void)
{
	struct vcpu *v = this_cpu()->vcpu;

	if (!v)
		return false; /* not from a guest after all: el2_exception's crash report */
	irq_handle(v);
	if (!guest_may_go_on(v))
		return false;
	vgic_flush(v);
	return true;
}

void guest_irq_rest(struct trap_frame *f)
{
	struct vcpu *v = this_cpu()->vcpu;

	if (!v)
		el2_exception(f, VEC_LOWER64_IRQ);
	else
		guest_resume(v, f);
}

void guest_trap(struct trap_frame *f, unsigned vector)
{
	struct vcpu *v = this_cpu()->vcpu;
	u32 ec = esr_ec(f->esr);
	u64 elr = f->elr;

	if (vector == VEC_LOWER64_IRQ || vector == VEC_LOWER64_IRQ + 1) {
		guest_irq(f);
		return;
	}
	if (vector != VEC_LOWER64_SYNC) {
		printk("quire: %s vCPU %u: SError or AArch32 exception (ESR_EL2 0x%lx); stopping the VM\n",
		       v->vm->name, v->index, f->esr);
		vm_power_off(v->vm, "stopped");
		vcpu_exit();
	} else {
		switch (ec) {
		case EC_DABT_LOW:
			if (mmio_fast(v, f))
				break;
			/* fall through */
		case EC_IABT_LOW:
			abort_from_guest(v, f);
			break;
		case EC_SMC64:
			f->elr += 4; /* a trapped SMC returns to itself; HVC already points past */
			/* fall through */
		case EC_HVC64:
			if (!hypercall(v, f->x))
				vcpu_exit();
			break;
		case EC_WFx:
			wfi_trap(v, f);
			break;
		case EC_FP_ASIMD:
			vcpu_fp_trap(v);
			break;
		case EC_SYS64:
			sysreg_trap(v, f);
			break;
		default:
			undef(v, f, ec);
			break;
		}
		/*
		 * An instruction Quire emulated (and skipped) has been executed: if
		 * the guest is stepping it, the step is done, and the guest takes its
		 * software step exception before the next one (PSTATE.SS = 0,
		 * active-pending), as if the instruction had not trapped.
		 */
		if (f->elr == elr + 4)
			f->spsr &= ~SPSR_SS;
	}
	guest_resume(v, f);
}
