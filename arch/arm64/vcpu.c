/*
 * Running vCPUs on physical CPUs: loading a vCPU's state into the CPU and
 * saving it back, entry by ERET, and each CPU's scheduling loop.
 *
 * A vCPU's general registers live in the trap frame at the top of its CPU's
 * stack while it is loaded, and in its vcpu_ctx otherwise. A switch saves
 * the running vCPU and loads the next one into that same frame, so the
 * return from the trap enters the next vCPU. EL1 registers, the virtual
 * timer and the vGIC CPU interface are switched eagerly; FP/SIMD lazily
 * (CPTR_EL2.TFP traps the first use after a switch), and so are the debug
 * registers (MDCR_EL2.TDA, debug.c) and the PMU (MDCR_EL2.TPM, pmu.c),
 * except for a vCPU that was debugging or counting. A CPU with a single
 * vCPU never arms its slice timer and never switches: it costs nothing.
 */
#include <string.h>
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/sched.h>
#include <quire/share.h>
#include <quire/swap.h>
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

void vcpu_enter(struct trap_frame *f) __noreturn;

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
	return &vctx[v->vm->id - 1][v->index];
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

static struct trap_frame *frame_here(void)
{
	return (struct trap_frame *)(cpu_stacks[cpu_id()] + STACK_SIZE) - 1;
}

static u64 us_to_ticks(u64 us)
{
	return counter_freq() * us / 1000000;
}

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
 * meanwhile, vgic_restore marks it again on its next load.
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

/* The EL2 physical timer: the end of a slice or the next blocked vCPU's timer. */
static void htimer_arm(u64 when)
{
	if (when == ~0UL) {
		write_sysreg(0, cnthp_ctl_el2);
	} else {
		write_sysreg(when, cnthp_cval_el2);
		write_sysreg(1, cnthp_ctl_el2);
	}
	isb();
}

void sched_timer_fired(void)
{
	write_sysreg(0, cnthp_ctl_el2);
	atomic_store(&this_cpu()->resched, true);
}

/* Arm the timer for whatever may need this CPU next while cur runs (or none). */
/*
 * cur's physical timer deadline, for Quire's timer while cur is loaded. One
 * already passed has set its interrupt (ptimer_update on load, on Quire's
 * timer, on a write): arming for it again would fire at once, for ever.
 */
static u64 own_ptimer(struct vcpu *cur)
{
	u64 t = cur ? ptimer_deadline(cur) : ~0UL;

	return t > counter_read() ? t : ~0UL;
}

static void arm_next(struct cpu *c, struct vcpu *cur)
{
	u64 t = MIN(sched_next_deadline(c->id, cur), own_ptimer(cur));

	if (cur && sched_queued(c->id) > 1) {
		u64 end = c->slice_start + us_to_ticks(atomic_load(&c->woke) ? SCHED_MIN_US : SCHED_SLICE_US);

		t = end < t ? end : t;
	}
	htimer_arm(t);
}

static bool irq_waiting(void)
{
	return read_sysreg(isr_el1) != 0;
}

void idle_work(struct cpu *c, struct vcpu *cur)
{
	u64 t0 = counter_read(), slice = us_to_ticks(SCHED_SLICE_US), t1;

	/* The sharing scanner stops at the first interrupt: the CPU has better things to do. */
	if (share_scan(c->id, t0, slice, irq_waiting))
		share_add_ticks(counter_read() - t0);
	t1 = counter_read();
	/* Wake for the next blocked vCPU's timer here (other than cur), cur's physical timer, or the scanner. */
	htimer_arm(MIN(MIN(sched_next_deadline(c->id, cur), share_next_wake(t1, slice)), own_ptimer(cur)));
}

void vcpu_timer_changed(struct vcpu *v)
{
	arm_next(this_cpu(), v);
}

static void reap_stopped(struct cpu *c, struct vcpu *cur);

bool vcpu_idle_until(struct vcpu *v, bool (*woken)(struct vcpu *v))
{
	struct cpu *c = this_cpu();
	struct vcpu_pmu *pmu = &ctx_of(v)->pmu;
	u64 pmcr;

	while (!woken(v)) {
		if (sched_queued(c->id) > 1) {
			/* A stopped neighbour's vCPUs here are this CPU's to retire, idle or not. */
			reap_stopped(c, v);
			if (sched_any_runnable(c->id, v, counter_read())) {
				atomic_store(&v->blocked, true);
				return false;
			}
		}
		atomic_store(&c->resched, false);
		/* Quire's idle work is not the guest's to count. */
		pmcr = pmu_pause(pmu);
		idle_work(c, v);
		dsb(sy);
		wfi();
		pmu_resume(pmu, pmcr);
		irq_handle(v);
	}
	/* The kick of a pause that landed after the loop looked at it was cleared above: the scheduler must see it. */
	if (atomic_load(&v->vm->paused))
		atomic_store(&c->resched, true);
	return true;
}

static bool io_done(struct vcpu *v)
{
	return swap_gen() != v->io_gen || atomic_load(&v->vm->off);
}

void vcpu_wait_io(struct vcpu *v, u64 gen)
{
	v->io_gen = gen;
	/* Whoever completes a request bumps the generation, then kicks vCPUs with io_wait set. */
	atomic_store(&v->io_wait, true);
	/* If it gives the CPU away, the scheduler looks at io_wait; whoever resumes it clears it. */
	if (vcpu_idle_until(v, io_done))
		atomic_store(&v->io_wait, false);
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
	if (c->fp_owner == v)
		c->fp_owner = NULL;
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

static void vcpu_load(struct vcpu *v, struct trap_frame *f)
{
	struct cpu *c = this_cpu();
	struct vcpu_ctx *x = ctx_of(v);
	struct vm *vm = v->vm;
	bool fresh = atomic_load(&v->state) == VCPU_START;

	if (fresh) {
		vcpu_reset(v, x);
		if (atomic_exchange(&vm->report_start, false)) {
			u64 now = clock_us();

			printk("quire: %s: first instruction %lu us after it stopped (teardown %lu us)\n", vm->name,
			       (unsigned long)(now - vm->stop_us), (unsigned long)(vm->reaped_us - vm->stop_us));
		}
	}
	/* Where vCPUs share the CPU, WFE (a spinning lock) gives the CPU to another. */
	write_sysreg(HCR_GUEST | setway_hcr(v) | (sched_queued(c->id) > 1 ? HCR_TWE : 0), hcr_el2);
	write_sysreg(s2_vttbr(vm), vttbr_el2);
	write_sysreg((1UL << 31) | v->index, vmpidr_el2);
	/* Before its timer is restored: CVAL compares with the counter less this. */
	write_sysreg(vm->cntvoff, cntvoff_el2);
	write_sysreg(CPTR_EL2_RES1 | (c->fp_owner == v ? 0 : CPTR_EL2_TFP), cptr_el2);
	isb();
	el1_context_restore(&x->el1);
	if (fresh || c->last_ran[vm->id - 1] != v) {
		/*
		 * TLBs are shared by the vCPUs of a VM (one VMID) but a guest keeps
		 * them per CPU: what another of its vCPUs (or an earlier life of the
		 * VMID) left here must not be seen by this one.
		 */
		asm volatile("tlbi vmalls12e1\n\tic iallu" : : : "memory");
		dsb(nsh);
		isb();
		c->last_ran[vm->id - 1] = v;
	}
	vgic_restore(v);
	/* After the vGIC: a PMU overflow interrupt it had active is active again before its level returns. */
	debug_load(&x->dbg);
	pmu_load(&x->pmu);
	mdcr_write(x);
	/* Its physical timer may have fired while it was away. */
	ptimer_update(v);
	*f = x->frame;
	c->vcpu = v;
	atomic_fetch_add(&vm->loaded, 1);
	c->slice_start = counter_read();
}

/* v is off its CPU: for a paused VM, the latest such moment is when its time stopped. */
static void vcpu_unloaded(struct vcpu *v)
{
	struct vm *vm = v->vm;
	u64 now = counter_read(), at = atomic_load(&vm->paused_at);

	while (atomic_load(&vm->paused) && at < now && !atomic_compare_exchange_weak(&vm->paused_at, &at, now))
		;
	atomic_fetch_sub(&vm->loaded, 1);
}

static void vcpu_save(struct vcpu *v, const struct trap_frame *f)
{
	struct vcpu_ctx *x = ctx_of(v);

	x->frame = *f;
	el1_context_save(&x->el1);
	/* Its timer must not fire for the next vCPU; the scheduler watches its deadline instead. */
	write_sysreg(0, cntv_ctl_el0);
	isb();
	/* Before the vGIC: the PMU's overflow interrupt is down before its active state is released. */
	pmu_put(&x->pmu);
	debug_put(&x->dbg);
	mdcr_write(NULL);
	vgic_save(v);
	this_cpu()->vcpu = NULL;
	vcpu_unloaded(v);
}

void vcpu_fp_trap(struct vcpu *v)
{
	struct cpu *c = this_cpu();

	/* TFP traps EL2's own use of the registers too: clear it before moving them. */
	write_sysreg(CPTR_EL2_RES1, cptr_el2);
	isb();
	if (c->fp_owner != v) {
		if (c->fp_owner)
			fpsimd_save(&ctx_of(c->fp_owner)->fp);
		fpsimd_restore(&ctx_of(v)->fp);
		c->fp_owner = v;
	}
}

/* v leaves its CPU for good (its VM stopped): nothing of it may stay behind. */
static void vcpu_retire(struct cpu *c, struct vcpu *v)
{
	if (c->fp_owner == v)
		c->fp_owner = NULL;
	c->last_ran[v->vm->id - 1] = NULL;
}

/* Mark this CPU's vCPUs of stopped VMs dead, and reap each VM whose last vCPU that was. */
static void reap_stopped(struct cpu *c, struct vcpu *cur)
{
	struct vcpu *dead[MAX_VMS * MAX_VCPUS];
	unsigned n = sched_stopped(c->id, cur, dead, MAX_VMS * MAX_VCPUS);

	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = dead[i];
		int s = atomic_load(&v->state);

		/* STARTING: a CPU_ON is filling it in; look again next time. */
		if (s == VCPU_STARTING || !atomic_compare_exchange_strong(&v->state, &s, VCPU_DEAD))
			continue;
		vcpu_retire(c, v);
		vm_reap(v->vm, c->id);
	}
}

static void __noreturn sched_loop(void);

/*
 * Nothing on this stack is needed any more: start over just below the trap
 * frame at its top, which vcpu_load fills while the loop still runs.
 */
static void __noreturn run_loop_fresh_stack(void)
{
	write_sysreg(HCR_RW, hcr_el2);
	isb();
	asm volatile("mov sp, %0\n\tbr %1" : : "r"(frame_here()), "r"(sched_loop) : "memory");
	__builtin_unreachable();
}

/* EL2 controls that are the same for every vCPU on this CPU. */
static void cpu_guest_setup(void)
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
}

void __noreturn vcpu_loop(void)
{
	run_loop_fresh_stack();
}

static void __noreturn sched_loop(void)
{
	struct cpu *c = this_cpu();
	struct trap_frame *f = frame_here();

	cpu_guest_setup();
	for (;;) {
		struct vcpu *v;

		atomic_store(&c->resched, false);
		atomic_store(&c->woke, false);
		irq_handle(NULL);
		reap_stopped(c, NULL);
		v = sched_pick(c->id, NULL, counter_read());
		if (v) {
			vcpu_load(v, f);
			atomic_store(&v->blocked, false);
			atomic_store(&v->io_wait, false);
			arm_next(c, v);
			vgic_flush(v);
			vcpu_enter(f);
		}
		idle_work(c, NULL);
		dsb(sy);
		wfi();
	}
}

void __noreturn vcpu_exit(void)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu;

	/* Its debug and PMU state goes with it; none of it may act for the next vCPU here. */
	pmu_put(&ctx_of(v)->pmu);
	debug_put(&ctx_of(v)->dbg);
	mdcr_write(NULL);
	vgic_vcpu_stop(v);
	c->vcpu = NULL;
	vcpu_unloaded(v); /* before a reap can rebuild the VM */
	if (atomic_load(&v->vm->off)) {
		int s = atomic_load(&v->state);

		if (s != VCPU_DEAD && atomic_compare_exchange_strong(&v->state, &s, VCPU_DEAD)) {
			vcpu_retire(c, v);
			vm_reap(v->vm, c->id);
		}
	}
	run_loop_fresh_stack();
}

void sched_resched(struct trap_frame *f)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu, *next;
	u64 now, ran;
	bool paused, must, woke;

	/* Cleared before anything is looked at: a kick after this (a pause, say) asks again. */
	atomic_store(&c->resched, false);
	paused = atomic_load(&v->vm->paused);
	/* Alone on its CPU (most kicks are interrupts for it): nothing to reap, nobody to switch to. */
	if (sched_queued(c->id) == 1 && !paused) {
		v->yield = false;
		if (atomic_load_explicit(&c->woke, memory_order_relaxed))
			atomic_store(&c->woke, false);
		if (atomic_load_explicit(&v->blocked, memory_order_relaxed))
			atomic_store(&v->blocked, false);
		if (atomic_load_explicit(&v->io_wait, memory_order_relaxed))
			atomic_store(&v->io_wait, false);
		return;
	}
	now = counter_read();
	ran = now - c->slice_start;
	must = atomic_load(&v->blocked) || paused || v->yield;
	woke = atomic_exchange(&c->woke, false);
	reap_stopped(c, v);
	if (!must && ran < us_to_ticks(SCHED_SLICE_US) && !(woke && ran >= us_to_ticks(SCHED_MIN_US))) {
		if (woke)
			atomic_store(&c->woke, true); /* preempt when the minimum is up */
		arm_next(c, v);
		return;
	}
	next = sched_pick(c->id, v, now);
	v->yield = false;
	if (!next) {
		if (paused) {
			vcpu_save(v, f);
			run_loop_fresh_stack();
		}
		/* Alone: keep running (a WFI may return early, a page still in transit faults again). */
		atomic_store(&v->blocked, false);
		atomic_store(&v->io_wait, false);
		c->slice_start = now;
		arm_next(c, v);
		return;
	}
	vcpu_save(v, f);
	vcpu_load(next, f);
	atomic_store(&next->blocked, false);
	atomic_store(&next->io_wait, false);
	arm_next(c, next);
}
