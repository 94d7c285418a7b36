/*
 * Running a vCPU on its physical CPU: EL2 and EL1 state for the guest, entry
 * by ERET, and the way back when it stops. Each vCPU is pinned to one
 * physical CPU and owns it, so the guest's EL1 registers simply stay in the
 * CPU while it runs (context switching comes with the scheduler).
 */
#include <string.h>
#include <quire/console.h>
#include <quire/vdev.h>
#include <arch/cpu.h>
#include <arch/el1_context.h>
#include <arch/gic.h>
#include <arch/stage2.h>
#include <arch/vgic.h>
#include <arch/sysreg.h>
#include <arch/vcpu.h>

#define HCR_VM (1UL << 0)
#define HCR_SWIO (1UL << 1)
#define HCR_PTW (1UL << 2)
#define HCR_FMO (1UL << 3)
#define HCR_IMO (1UL << 4)
#define HCR_AMO (1UL << 5)
#define HCR_FB (1UL << 9)
#define HCR_BSU_IS (1UL << 10)
#define HCR_TWI (1UL << 13)
#define HCR_TSC (1UL << 19)
#define HCR_TIDCP (1UL << 20)
#define HCR_TACR (1UL << 21)
#define HCR_TSW (1UL << 22)
#define HCR_RW (1UL << 31)
#define HCR_GUEST (HCR_VM | HCR_SWIO | HCR_PTW | HCR_FMO | HCR_IMO | HCR_AMO | HCR_FB | HCR_BSU_IS | \
		   HCR_TWI | HCR_TSC | HCR_TIDCP | HCR_TACR | HCR_TSW | HCR_RW)
/* Debug and PMU registers trap (RAZ/WI in trap.c): TPMCR, TPM, TDA, TDOSA, TDRA. */
#define MDCR_EL2_GUEST ((1UL << 5) | (1UL << 6) | (1UL << 9) | (1UL << 10) | (1UL << 11))
/* The guest reads the counter; its physical timer traps (it has the virtual one). */
#define CNTHCTL_EL2_GUEST 1UL

#define CPACR_EL1_FPEN (3UL << 20)
#define PSR_EL1h_DAIF 0x3c5

void vcpu_enter(struct trap_frame *f) __noreturn;

/* The EL1 state of the vCPU each CPU runs, saved when it leaves. */
static struct el1_context ctx[MAX_CPUS];

void vcpu_pin(struct vcpu *v, unsigned pcpu)
{
	v->pcpu = pcpu;
	cpus[pcpu].vcpu = v;
}

void vcpu_kick(struct vcpu *v)
{
	dsb(ish);
	sev();
	if (v->pcpu != cpu_id())
		gic_kick(v->pcpu);
}

void vm_set_irq_level(struct vm *vm, u32 intid, bool level)
{
	vgic_set_level(vm, intid, level);
}

int vm_arch_init(struct vm *vm, unsigned cpu)
{
	vgic_init(vm);
	/* The guest's GIC CPU interface is the hardware's GICV frame. */
	for (u64 off = 0; off < gic_gicv_size(); off += PAGE_SIZE) {
		int rc = s2_map_page(vm, IPA(VGIC_CPU_BASE + off), gic_gicv_base() + off,
				     S2_R | S2_W | S2_DEVICE, cpu);
		if (rc)
			return rc;
	}
	return 0;
}

static void __noreturn vcpu_start(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct trap_frame *f = (struct trap_frame *)(cpu_stacks[cpu_id()] + STACK_SIZE) - 1;

	write_sysreg(HCR_GUEST, hcr_el2);
	write_sysreg(MDCR_EL2_GUEST | (read_sysreg(mdcr_el2) & 0x1f), mdcr_el2);
	write_sysreg(CNTHCTL_EL2_GUEST, cnthctl_el2);
	write_sysreg(0, cntvoff_el2);
	/* FP/SIMD traps until the guest first uses it (trap.c lets it through then). */
	write_sysreg(CPTR_EL2_RES1 | CPTR_EL2_TFP, cptr_el2);
	gich_write(GICH_VMCR, 0);
	gich_write(GICH_APR, 0);
	write_sysreg(s2_vtcr(), vtcr_el2);
	write_sysreg(s2_vttbr(vm), vttbr_el2);
	write_sysreg((1UL << 31) | v->index, vmpidr_el2);
	write_sysreg(read_sysreg(midr_el1), vpidr_el2);
	/* A vCPU starts (or restarts) from the architectural reset state of EL1. */
	el1_context_reset(&ctx[cpu_id()]);
	ctx[cpu_id()].cpacr = CPACR_EL1_FPEN;
	el1_context_restore(&ctx[cpu_id()]);
	/* A VMID may have served a VM that is gone: no translation of it may survive. */
	asm volatile("tlbi vmalls12e1" : : : "memory");
	dsb(nsh);
	isb();

	memset(f, 0, sizeof(*f));
	f->x[0] = v->context;
	f->x[1] = v->args[1];
	f->x[2] = v->index;
	f->x[3] = v->args[3];
	f->elr = v->entry;
	f->spsr = PSR_EL1h_DAIF;
	atomic_store(&v->state, VCPU_RUNNING);
	vgic_flush(v);
	vcpu_enter(f);
}

void __noreturn vcpu_loop(void)
{
	struct vcpu *v = this_cpu()->vcpu;

	if (!v)
		cpu_halt();
	for (;;) {
		if (atomic_load(&v->vm->off)) {
			atomic_store(&v->state, VCPU_DEAD);
			vm_reap(v->vm, cpu_id());
			if (!atomic_load(&v->vm->off))
				continue; /* restarted right here: look at the new state */
		} else if (atomic_load(&v->state) == VCPU_START) {
			vcpu_start(v);
		}
		irq_handle(NULL);
		/* A kick taken by irq_handle just now must not be slept through. */
		if (!atomic_load(&v->vm->off) && atomic_load(&v->state) == VCPU_START)
			continue;
		wfi();
	}
}

void __noreturn vcpu_exit(void)
{
	el1_context_save(&ctx[cpu_id()]);
	vgic_vcpu_stop(this_cpu()->vcpu);
	/* Nothing on this stack is needed any more: start over at its top. */
	write_sysreg(HCR_RW, hcr_el2);
	isb();
	asm volatile("mov sp, %0\n\tbr %1" : : "r"(cpu_stacks[cpu_id()] + STACK_SIZE), "r"(vcpu_loop)
		     : "memory");
	__builtin_unreachable();
}
