/*
 * A vCPU's state on a physical CPU: loading it and saving it back, entry
 * by ERET, the EL2 controls for guests, Quire's own timer and waiting for
 * an interrupt. Primitives for core's run loop (core/run.c): nothing here
 * calls core.
 *
 * A vCPU's general registers live in the trap frame at the top of its CPU's
 * stack while it is loaded, and in its vcpu_ctx otherwise. A switch saves
 * the running vCPU and loads the next one into that same frame, so the
 * return from the trap enters the next vCPU. EL1 registers, the virtual
 * timer and the vGIC CPU interface are switched eagerly; FP/SIMD lazily
 * (CPTR_EL2.TFP traps the first use after a switch), and so are the debug
 * registers (MDCR_EL2.TDA, debug.c) and the PMU (MDCR_EL2.TPM, pmu.c),
 * except for a vCPU that was debugging or counting.
 */
#include <string.h>
#include <quire/sched.h>
#include <quire/vdev.h>
#include <arch/cpu.h>
#include <arch/debug.h>
#include <arch/el1_context.h>
#include <arch/gic.h>
#include <arch/pmu.h>
#include <arch/ptimer.h>
#include <arch/setway.h>
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
#define HCR_TWE (1UL << 14)
#define HCR_TID3 (1UL << 18)
#define HCR_TSC (1UL << 19)
#define HCR_TIDCP (1UL << 20)
#define HCR_TACR (1UL << 21)
#define HCR_TSW (1UL << 22)
#define HCR_RW (1UL << 31)
#define HCR_GUEST (HCR_VM | HCR_SWIO | HCR_PTW | HCR_FMO | HCR_IMO | HCR_AMO | HCR_FB | HCR_BSU_IS | \
		   HCR_TWI | HCR_TID3 | HCR_TSC | HCR_TIDCP | HCR_TACR | HCR_TSW | HCR_RW)
/*
 * MDCR_EL2: the OS lock and DBGPRCR (TDOSA) and the ROM table address (TDRA)
 * always trap; the other debug registers (TDA) and the PMU's (TPM) until the
 * vCPU's own are in the CPU. TDE clear: debug exceptions go to the guest's EL1.
 */
#define MDCR_EL2_TPM (1UL << 6)
#define MDCR_EL2_TDA (1UL << 9)
#define MDCR_EL2_TDOSA (1UL << 10)
#define MDCR_EL2_TDRA (1UL << 11)
#define MDCR_EL2_HPMN_MASK 0x1fUL
/* The guest reads the counter; its physical timer traps (it has the virtual one). */
#define CNTHCTL_EL2_GUEST 1UL

#define CPACR_EL1_FPEN (3UL << 20)
#define PSR_EL1h_DAIF 0x3c5

struct fpsimd {
	u64 q[64]; /* q0-q31 */
	u64 fpsr, fpcr;
};
void fpsimd_save(struct fpsimd *s);
void fpsimd_restore(const struct fpsimd *s);

/* A vCPU's state while it is not loaded. */
struct vcpu_ctx {
	struct trap_frame frame;
	struct el1_context el1;
	struct fpsimd fp;
	struct vcpu_debug dbg;
	struct vcpu_pmu pmu;
};

static struct vcpu_ctx vctx[MAX_VMS][MAX_VCPUS];

static struct vcpu_ctx *ctx_of(const struct vcpu *v)
{
	struct vcpu_ctx *x = &vctx[v->vm->id - 1][v->index];

	/*
	 * Opaque to the compiler, which otherwise works the address out again
	 * (8 instructions) at each use in the inlined switch code, rather than
	 * keep it in a register.
	 */
	asm("" : "+r"(x));
	return x;
}

/* HPMN: every event counter is the guest's (the reset value where there is no PMUv3). */
static u64 mdcr_hpmn;

static void mdcr_write(const struct vcpu_ctx *x)
{
	write_sysreg(MDCR_EL2_TDOSA | MDCR_EL2_TDRA | (x && x->dbg.loaded ? 0 : MDCR_EL2_TDA) |
			     (x && x->pmu.loaded ? 0 : MDCR_EL2_TPM) | mdcr_hpmn,
		     mdcr_el2);
	/* The ERET into the guest synchronises it. */
}

enum sysreg_result vcpu_debug_access(struct vcpu *v, struct sysreg_access *a)
{
	struct vcpu_ctx *x = ctx_of(v);
	enum sysreg_result r = a->op0 == 2 ? debug_access(&x->dbg, a)
			       : pmu_is_reg(a) ? pmu_access(&x->pmu) : SR_NOT_MINE;

	mdcr_write(x); /* either may have loaded or put its registers */
	return r;
}

struct trap_frame *cpu_frame(void)
{
	return (struct trap_frame *)(cpu_stacks[cpu_id()] + STACK_SIZE) - 1;
}

/* Kicks: primitives, as the vGIC raises interrupts with them too; the scheduler decides on the other CPU. */
void vcpu_kick(struct vcpu *v)
{
	struct cpu *c = &cpus[v->pcpu];

	if (atomic_load(&v->blocked))
		atomic_store(&c->woke, true);
	atomic_store(&c->resched, true);
	if (v->pcpu == cpu_id())
		return; /* it looks at resched before it re-enters the guest */
	gic_kick(v->pcpu); /* its DSB makes the stores above visible before the SGI */
}

/*
 * An interrupt for v, already marked in its vGIC (vgic_active, a
 * sequentially consistent store). Loaded on its CPU and not blocked, v
 * only needs to come to EL2: the flush before it re-enters the guest, or
 * its idle loop's wake test, takes the mark, and the scheduler has nothing
 * to decide. A kick for a vCPU that is not loaded, or that gave its CPU
 * away, goes through the scheduler. If v is being switched out or in
 * meanwhile, the mark waits for the flush before its next entry: only a
 * flush clears it (vgic_save and vgic_restore leave it as it is).
 */
void vcpu_kick_irq(struct vcpu *v)
{
	struct cpu *c = &cpus[v->pcpu];

	if (atomic_load(&v->blocked) || __atomic_load_n(&c->vcpu, __ATOMIC_RELAXED) != v) {
		vcpu_kick(v);
		return;
	}
	if (v->pcpu != cpu_id())
		gic_kick(v->pcpu); /* its DSB makes the mark visible before the SGI */
}


void vm_set_irq_level(struct vm *vm, u32 intid, bool level)
{
	vgic_set_level(vm, intid, level);
}

struct vm_passthrough vm_arch_init(struct vm *vm)
{
	vgic_init(vm);
	/* The guest's GIC CPU interface is the hardware's GICV frame. */
	return (struct vm_passthrough){ IPA(VGIC_CPU_BASE), gic_gicv_base(), gic_gicv_size() };
}

void htimer_arm(u64 when)
{
	if (when == ~0UL) {
		write_sysreg(0, cnthp_ctl_el2);
	} else {
		write_sysreg(when, cnthp_cval_el2);
		write_sysreg(1, cnthp_ctl_el2);
	}
	isb();
}

bool vcpu_wake_pending(struct vcpu *v, u64 now)
{
	bool marked = atomic_load(&v->vgic_active) || atomic_load(&v->sgi_mail[0]) || atomic_load(&v->sgi_mail[1]);

	return (marked && vgic_wake_pending(v)) || vcpu_timer_deadline(v) <= now;
}

u64 vcpu_timer_deadline(struct vcpu *v)
{
	const struct el1_context *e = &ctx_of(v)->el1;

	u64 off = v->vm->cntvoff;

	u64 virt = ~0UL;

	/* CNTV_CTL_EL0: ENABLE set, IMASK clear. CVAL is in the VM's time: the machine's less CNTVOFF. */
	if ((e->cntv_ctl & 3) == 1)
		virt = e->cntv_cval > ~0UL - off ? ~0UL : e->cntv_cval + off;
	return MIN(virt, ptimer_deadline(v));
}

/* A vCPU started by its VM's creation or PSCI CPU_ON: the reset state, at its entry point. */
static void vcpu_reset(struct vcpu *v, struct vcpu_ctx *x)
{
	struct cpu *c = this_cpu();

	el1_context_reset(&x->el1);
	x->el1.cpacr = CPACR_EL1_FPEN;
	memset(&x->fp, 0, sizeof(x->fp));
	if (c->arch.fp_owner == v)
		c->arch.fp_owner = NULL;
	memset(&x->frame, 0, sizeof(x->frame));
	x->frame.x[0] = v->context;
	x->frame.x[1] = v->args[1];
	x->frame.x[2] = v->index;
	x->frame.x[3] = v->args[3];
	x->frame.elr = v->entry;
	x->frame.spsr = PSR_EL1h_DAIF;
	v->ptimer.ctl = 0;
	v->ptimer.cval = 0;
	debug_reset(&x->dbg);
	pmu_reset(&x->pmu);
	atomic_store(&v->blocked, false);
	v->yield = false;
	atomic_store(&v->state, VCPU_RUNNING);
}

void vcpu_load(struct vcpu *v, struct trap_frame *f, bool shared_cpu)
{
	struct cpu *c = this_cpu();
	struct vcpu_ctx *x = ctx_of(v);
	struct vm *vm = v->vm;
	bool fresh = atomic_load(&v->state) == VCPU_START;

	if (fresh)
		vcpu_reset(v, x);
	/* Where vCPUs share the CPU, WFE (a spinning lock) gives the CPU to another. */
	write_sysreg(HCR_GUEST | setway_hcr(v) | (shared_cpu ? HCR_TWE : 0), hcr_el2);
	write_sysreg(s2_vttbr(vm), vttbr_el2);
	write_sysreg((1UL << 31) | v->index, vmpidr_el2);
	/* Before its timer is restored: CVAL compares with the counter less this. */
	write_sysreg(vm->cntvoff, cntvoff_el2);
	write_sysreg(CPTR_EL2_RES1 | (c->arch.fp_owner == v ? 0 : CPTR_EL2_TFP), cptr_el2);
	/*
	 * CNTVOFF_EL2 in effect before the timer's CVAL and CTL come back
	 * (with the old offset it could fire for nothing). The other controls
	 * act on the guest only: the ISB closing el1_context_restore (before
	 * the TLBI below, which needs the new VMID) or the ERET covers them.
	 */
	isb();
	el1_context_restore(&x->el1);
	if (fresh || c->arch.last_ran[vm->id - 1] != v) {
		/*
		 * TLBs are shared by the vCPUs of a VM (one VMID) but a guest keeps
		 * them per CPU: what another of its vCPUs (or an earlier life of the
		 * VMID) left here must not be seen by this one.
		 */
		asm volatile("tlbi vmalls12e1\n\tic iallu" : : : "memory");
		dsb(nsh); /* the invalidations complete on this CPU (its own TLBs only: non-shareable) */
		isb();	  /* before anything fetched after them */
		c->arch.last_ran[vm->id - 1] = v;
	}
	vgic_restore(v);
	/* After the vGIC: a PMU overflow interrupt it had active is active again before its level returns. */
	debug_load(&x->dbg);
	pmu_load(&x->pmu);
	mdcr_write(x);
	/* Its physical timer may have fired while it was away. */
	ptimer_update(v);
	frame_copy_regs(f, &x->frame);
	c->vcpu = v;
}

void vcpu_save(struct vcpu *v, const struct trap_frame *f)
{
	struct vcpu_ctx *x = ctx_of(v);

	frame_copy_regs(&x->frame, f);
	el1_context_save(&x->el1);
	/* Its timer must not fire for the next vCPU; the scheduler watches its deadline instead. */
	write_sysreg(0, cntv_ctl_el0);
	isb(); /* the timer's output down before vgic_save looks at its PPI's active state */
	/* Before the vGIC: the PMU's overflow interrupt is down before its active state is released. */
	pmu_put(&x->pmu);
	debug_put(&x->dbg);
	/*
	 * MDCR_EL2 is left as it is: its traps act on a guest only, and the
	 * next vcpu_load (the only way back into one) writes it for that vCPU.
	 */
	vgic_save(v);
	this_cpu()->vcpu = NULL;
}

void vcpu_stop_here(struct vcpu *v)
{
	struct vcpu_ctx *x = ctx_of(v);

	/* Its debug and PMU state goes with it; none of it may act for the next vCPU here. */
	pmu_put(&x->pmu);
	debug_put(&x->dbg);
	mdcr_write(NULL);
	vgic_vcpu_stop(v);
	this_cpu()->vcpu = NULL;
}

u64 vcpu_pmu_pause(struct vcpu *v)
{
	return pmu_pause(&ctx_of(v)->pmu);
}

void vcpu_pmu_resume(struct vcpu *v, u64 saved)
{
	pmu_resume(&ctx_of(v)->pmu, saved);
}

bool cpu_irq_waiting(void)
{
	return read_sysreg(isr_el1) != 0;
}

void cpu_wait(void)
{
	gic_before_wfi();
	/* Everything this CPU wrote is out before it sleeps (another CPU may be waiting on it). */
	dsb(sy);
	wfi();
}

void vcpu_fp_trap(struct vcpu *v)
{
	struct cpu *c = this_cpu();

	/* TFP traps EL2's own use of the registers too: clear it before moving them. */
	write_sysreg(CPTR_EL2_RES1, cptr_el2);
	isb();
	if (c->arch.fp_owner != v) {
		if (c->arch.fp_owner)
			fpsimd_save(&ctx_of(c->arch.fp_owner)->fp);
		fpsimd_restore(&ctx_of(v)->fp);
		c->arch.fp_owner = v;
	}
}

void vcpu_retire(struct vcpu *v)
{
	struct cpu *c = this_cpu();

	if (c->arch.fp_owner == v)
		c->arch.fp_owner = NULL;
	c->arch.last_ran[v->vm->id - 1] = NULL;
}

/*
 * Nothing on this stack is needed any more: start over just below the trap
 * frame at its top, which vcpu_load fills while the loop still runs.
 */
void __noreturn cpu_run_fresh(void (*loop)(void))
{
	write_sysreg(HCR_RW, hcr_el2);
	isb();
	asm volatile("mov sp, %0\n\tbr %1" : : "r"(cpu_frame()), "r"(loop) : "memory");
	__builtin_unreachable();
}

void cpu_guest_setup(void)
{
	debug_cpu_init();
	pmu_cpu_init();
	mdcr_hpmn = pmu_counters() ? pmu_counters() : read_sysreg(mdcr_el2) & MDCR_EL2_HPMN_MASK;
	mdcr_write(NULL);
	write_sysreg(CNTHCTL_EL2_GUEST, cnthctl_el2);
	write_sysreg(0, cntvoff_el2);
	write_sysreg(s2_vtcr(), vtcr_el2);
	write_sysreg(read_sysreg(midr_el1), vpidr_el2);
	isb();
	vgic_cpu_init();
}
