/*
 * Exceptions taken from a guest: dispatch on ESR_EL2.EC. Stage-2 aborts go
 * to the violation handler, HVC and trapped SMC to the hypercalls; anything
 * the guest may not do becomes an exception in the guest, never a crash of
 * Quire.
 */
#include <quire/console.h>
#include <quire/fault.h>
#include <arch/cpu.h>
#include <arch/esr.h>
#include <arch/sysreg.h>
#include <arch/vcpu.h>

/* Log the first occurrence of each kind of event per VM, not a flood. */
static bool first_time(struct vm *vm, unsigned kind)
{
	static _Atomic u32 seen[MAX_VMS];
	u32 bit = 1u << kind;

	return !(atomic_fetch_or(&seen[vm->id - 1], bit) & bit);
}

enum { LOG_VIO = 0, LOG_UNDEF = 8, LOG_WFX = 9, LOG_SERROR = 10 };

static void abort_from_guest(struct vcpu *v, struct trap_frame *f)
{
	struct s2_fault flt;
	enum vio_result r;

	if (!fault_decode(f->esr, f->far, read_sysreg(hpfar_el2), &flt))
		return; /* not reached: called for EC 0x20 and 0x24 only */
	r = violation_handle(v->vm, &flt, cpu_id());
	if (r == VIO_MAPPED || r == VIO_RACED)
		return;
	if (flt.instr && (f->elr & ~0x7ffUL) == read_sysreg(vbar_el1)) {
		/* The guest's own vector table cannot be fetched: injecting again would loop forever. */
		printk("quire: %s vCPU %u: its exception vector at 0x%lx is not in guest RAM (%s); "
		       "it cannot take an abort; stopping the VM\n",
		       v->vm->name, v->index, f->elr, vio_result_name(r));
		atomic_store(&v->vm->off, true);
		vcpu_exit();
	}
	if (first_time(v->vm, LOG_VIO + r))
		printk("quire: %s vCPU %u: %s at IPA 0x%lx (VA 0x%lx, %s, level %u): %s; "
		       "injecting a synchronous external abort (logged once)\n",
		       v->vm->name, v->index, flt.instr ? "instruction fetch" : flt.write ? "write" : "read",
		       flt.ipa.bits, flt.va, fault_class_name(flt.cls), flt.level, vio_result_name(r));
	inject_data_abort(f, f->far, flt.instr);
}

static void undef(struct vcpu *v, struct trap_frame *f, u32 ec)
{
	if (first_time(v->vm, LOG_UNDEF))
		printk("quire: %s vCPU %u: %s (EC 0x%02x, ISS 0x%07x) at 0x%lx is not emulated; "
		       "injecting UNDEF (logged once)\n",
		       v->vm->name, v->index, esr_ec_name(ec), ec, esr_iss(f->esr), f->elr);
	inject_undef(f);
}

void guest_trap(struct trap_frame *f, unsigned vector)
{
	struct vcpu *v = this_cpu()->vcpu;
	u32 ec = esr_ec(f->esr);

	if (vector == VEC_LOWER64_IRQ || vector == VEC_LOWER64_IRQ + 1)
		return; /* no interrupts are routed to guests yet */
	if (vector != VEC_LOWER64_SYNC) {
		printk("quire: %s vCPU %u: SError or AArch32 exception (ESR_EL2 0x%lx); stopping the VM\n",
		       v->vm->name, v->index, f->esr);
		atomic_store(&v->vm->off, true);
		vcpu_exit();
	}
	switch (ec) {
	case EC_DABT_LOW:
	case EC_IABT_LOW:
		abort_from_guest(v, f);
		return;
	case EC_SMC64:
		f->elr += 4; /* a trapped SMC returns to itself; HVC already points past */
		/* fall through */
	case EC_HVC64:
		if (!hypercall(v, f->x))
			vcpu_exit();
		if (atomic_load(&v->vm->off))
			vcpu_exit();
		return;
	case EC_WFx:
		f->elr += 4;
		return;
	default:
		undef(v, f, ec);
		return;
	}
}
