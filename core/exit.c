/*
 * A guest's exits, dispatched (include/quire/exit.h): stage-2 aborts to the
 * violation handler, device accesses to the emulated devices, hypercalls,
 * WFI and WFE to the run loop; and what must happen before the guest runs
 * again. The arch's trap code decodes the exit; anything the guest may not
 * do becomes an exception in the guest, never a crash of Quire.
 */
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/hypercall.h>
#include <quire/errno.h>
#include <quire/exit.h>
#include <quire/fault.h>
#include <quire/run.h>
#include <quire/swap.h>
#include <quire/vdev.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include <arch/cpu.h>
#include <arch/regs.h>
#include <arch/vcpu.h>
#include <arch/vgic.h>

static bool is_device(u64 ipa)
{
	return (ipa >= VGIC_DIST_BASE && ipa < VGIC_DIST_BASE + VGIC_DIST_SIZE) ||
	       (ipa >= VPL011_BASE && ipa < VPL011_BASE + VPL011_SIZE) ||
	       (ipa >= VIRTIO_MMIO_BASE && ipa < VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE);
}

void exit_mmio_bad(struct vcpu *v, const struct mmio_access *a)
{
	vm_log_once(v->vm, VM_LOG_MMIO,
		    "quire: %s vCPU %u: %s of %u bytes at device address 0x%lx, no such register "
		    "for that size: %s (logged once)\n",
		    v->vm->name, v->index, a->write ? "write" : "read", a->size, a->ipa,
		    a->write ? "ignored" : "reads as zero");
}

void exit_virtio(struct vcpu *v, struct trap_frame *f, const struct mmio_access *a)
{
	u64 gen = swap_gen(), val = a->write ? vcpu_reg(f, a->reg) : 0;
	int rc = virtio_mmio_access(v->vm, a->ipa - VIRTIO_MMIO_BASE, a->size, a->write, &val, cpu_id());

	/*
	 * A notify whose guest memory is on its way from swap (-EAGAIN), or
	 * claimed for a moment, or the device busy on another CPU (-EBUSY): the
	 * guest stays at its access and makes it again, after the disk for
	 * -EAGAIN; the device goes on from where it stopped.
	 */
	if (rc == -EAGAIN) {
		vcpu_wait_io(v, gen);
		return;
	}
	if (rc == -EBUSY)
		return;
	exit_mmio_done(v, f, a, rc == 0, val);
}

void exit_abort_rest(struct vcpu *v, struct trap_frame *f, const struct s2_fault *flt, enum vio_result r, u64 gen)
{
	if (r == VIO_WAIT) {
		vcpu_wait_io(v, gen);
		return;
	}
	if (r == VIO_SEA_OUTSIDE && flt->isv) {
		struct mmio_access a = { flt->ipa.bits, 1u << flt->sas, flt->srt, flt->write, flt->sse, flt->sf };

		if (exit_mmio(v, f, &a))
			return;
	}
	if (flt->instr && inject_abort_would_loop(f)) {
		/* The guest's own vector table cannot be fetched: injecting again would loop forever. */
		printk("quire: %s vCPU %u: its exception vector at 0x%lx is not in guest RAM (%s); "
		       "it cannot take an abort; stopping the VM\n",
		       v->vm->name, v->index, vcpu_pc(f), vio_result_name(r));
		vm_power_off(v->vm, "stopped");
		vcpu_exit();
	}
	if (r == VIO_SEA_OUTSIDE && is_device(flt->ipa.bits))
		vm_log_once(v->vm, VM_LOG_MMIO_NOISV,
			    "quire: %s vCPU %u: device access at IPA 0x%lx by an instruction with no syndrome "
			    "(load/store pair or writeback) cannot be emulated; injecting a synchronous "
			    "external abort (logged once)\n", v->vm->name, v->index, flt->ipa.bits);
	else
		vm_log_once(v->vm, VM_LOG_VIO + r,
			    "quire: %s vCPU %u: %s at IPA 0x%lx (VA 0x%lx, %s, level %u): %s; "
			    "injecting a synchronous external abort (logged once)\n",
			    v->vm->name, v->index, flt->instr ? "instruction fetch" : flt->write ? "write" : "read",
			    flt->ipa.bits, flt->va, fault_class_name(flt->cls), flt->level, vio_result_name(r));
	inject_data_abort(f, flt->va, flt->instr, flt->write);
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

__noinline void exit_wait(struct vcpu *v, struct trap_frame *f, bool wfe)
{
	vcpu_skip_insn(f);
	/* The exit-profile mark (include/quire/hypercall.h): printed, and the WFI returns. */
	if (!wfe && vcpu_reg(f, 0) == QUIRE_MARK_X0 && vcpu_reg(f, 1) == QUIRE_MARK_X1) {
		if (atomic_fetch_add(&v->vm->exit_marks, 1) < QUIRE_EXIT_MARKS)
			exit_table_print(v->vm, clock_ticks());
		return;
	}
	if (wfe) {
		v->yield = true;
		atomic_store(&this_cpu()->resched, true);
		return;
	}
	vcpu_idle_until(v, wfi_woken);
}

void exit_hypercall(struct vcpu *v, struct trap_frame *f)
{
	if (!hypercall(v, vcpu_args(f)))
		vcpu_exit();
}

bool exit_irq(struct vcpu *v)
{
	irq_handle(v);
	if (!exit_may_go_on(v))
		return false;
	vgic_flush(v);
	return true;
}
