/*
 * Each CPU's run loop and the scheduler's decisions on it: which vCPU runs
 * (core/sched.c's queues), when a slice ends, idling with the sharing
 * scanner, waiting in WFI or for the disk, kicks from other CPUs, and
 * retiring the vCPUs of stopped VMs. The switch itself, the timer and the
 * interrupt controller are the arch's primitives (arch/vcpu.h).
 *
 * A CPU with a single vCPU never arms its slice timer and never switches:
 * it costs nothing.
 */
#include <quire/balloon.h>
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/exit.h>
#include <quire/pool.h>
#include <quire/run.h>
#include <quire/sched.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vdisk.h>
#include <quire/vnet.h>
#include <quire/vm.h>
#include <arch/cpu.h>
#include <arch/ptimer.h>
#include <arch/vcpu.h>
#include <arch/vgic.h>

static u64 us_to_ticks(u64 us)
{
	return clock_freq() * us / 1000000;
}

/* MIN's, each argument evaluated once (MIN evaluates the one it returns twice: a lock, a counter read). */
static inline u64 min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

/* The slice and the minimum in counter ticks: set by each CPU's sched_loop (the same values), read on every switch. */
static _Atomic u64 slice_ticks, min_ticks;

void sched_timer_fired(void)
{
	atomic_store(&this_cpu()->resched, true);
	/* With the VMs' tables, what no table holds: CPUs without a vCPU doing idle work. */
	if (exit_mark_check(clock_ticks())) {
		u64 idle = 0;

		for (unsigned i = 0; i < MAX_CPUS; i++)
			idle += __atomic_load_n(&cpus[i].idle_work_ticks, __ATOMIC_RELAXED);
		printk("quire: exits idle cpus idle_work_ticks=%lu\n", (unsigned long)idle);
	}
}

/*
 * cur's physical timer deadline, for Quire's timer while cur is loaded. One
 * already passed has set its interrupt (ptimer_update on load, on Quire's
 * timer, on a write): arming for it again would fire at once, for ever.
 */
static u64 own_ptimer(struct vcpu *cur)
{
	u64 t = cur ? ptimer_deadline(cur) : ~0UL;

	return t != ~0UL && t > clock_ticks() ? t : ~0UL;
}

/* Arm the timer for whatever may need this CPU next while cur runs (or none); others: the blocked vCPUs' deadline. */
static void arm_next_from(struct cpu *c, struct vcpu *cur, u64 others)
{
	u64 t = min_u64(min_u64(others, own_ptimer(cur)), exit_mark_deadline());

	if (cur && sched_queued(c->id) > 1) {
		u64 end = c->slice_start + atomic_load_explicit(atomic_load(&c->woke) ? &min_ticks : &slice_ticks,
								memory_order_relaxed);

		t = end < t ? end : t;
	}
	htimer_arm(t);
}

static void arm_next(struct cpu *c, struct vcpu *cur)
{
	arm_next_from(c, cur, sched_next_deadline(c->id, cur));
}

void idle_work(struct cpu *c, struct vcpu *cur)
{
	u64 t0 = clock_ticks(), slice = us_to_ticks(SCHED_SLICE_US), t1, zero_wake;

	/* The sharing scanner stops at the first interrupt: the CPU has better things to do. */
	if (share_scan(c->id, t0, slice, cpu_irq_waiting))
		share_add_ticks(clock_ticks() - t0);
	balloon_policy(c->id);
	vdisk_kick(c->id);
	vnet_kick(c->id);
	/* Zero freed pages for the fault path: a bounded share of idle time, also stopping at an interrupt. */
	zero_wake = pool_idle_zero(c->id, clock_ticks(), slice, cpu_irq_waiting);
	t1 = clock_ticks();
	/* Wake for the next blocked vCPU's timer here (other than cur), cur's physical timer, the scanner, the
	 * zeroer, or an exit-profile mark. */
	htimer_arm(min_u64(min_u64(min_u64(sched_next_deadline(c->id, cur), share_next_wake(t1, slice)), zero_wake),
			   min_u64(own_ptimer(cur), exit_mark_deadline())));
}

void vcpu_timer_changed(struct vcpu *v)
{
	arm_next(this_cpu(), v);
}

/* v is off its CPU: for a paused VM, the latest such moment is when its time stopped. */
static void vcpu_unloaded(struct vcpu *v)
{
	struct vm *vm = v->vm;

	if (atomic_load(&vm->paused)) {
		u64 now = clock_ticks(), at = atomic_load(&vm->paused_at);

		while (atomic_load(&vm->paused) && at < now && !atomic_compare_exchange_weak(&vm->paused_at, &at, now))
			;
	}
	atomic_fetch_sub(&vm->loaded, 1);
}

/* now: the counter a moment ago, its slice's start (a switch's own time is the next vCPU's). */
static void load(struct cpu *c, struct vcpu *v, struct trap_frame *f, u64 now)
{
	struct vm *vm = v->vm;

	if (atomic_load(&v->state) == VCPU_START && atomic_exchange(&vm->report_start, false)) {
		u64 now = clock_us();

		printk("quire: %s: first instruction %lu us after it stopped (teardown %lu us)\n", vm->name,
		       (unsigned long)(now - vm->stop_us), (unsigned long)(vm->reaped_us - vm->stop_us));
	}
	/* Where vCPUs share the CPU, WFE (a spinning lock) gives the CPU to another. */
	vcpu_load(v, f, sched_queued(c->id) > 1);
	atomic_fetch_add(&vm->loaded, 1);
	if (!atomic_load_explicit(&vm->first_entry, memory_order_relaxed))
		atomic_store_explicit(&vm->first_entry, clock_ticks(), memory_order_relaxed);
	c->slice_start = now;
}

static void save(struct vcpu *v, struct trap_frame *f)
{
	vcpu_save(v, f);
	vcpu_unloaded(v);
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
		vcpu_retire(v);
		vm_reap(v->vm, c->id);
	}
}

bool vcpu_idle_until(struct vcpu *v, bool (*woken)(struct vcpu *v))
{
	struct cpu *c = this_cpu();
	u64 pmu, t;

	while (!woken(v)) {
		if (sched_queued(c->id) > 1) {
			/* A stopped neighbour's vCPUs here are this CPU's to retire, idle or not. */
			reap_stopped(c, v);
			if (sched_any_runnable(c->id, v, clock_ticks())) {
				atomic_store(&v->blocked, true);
				return false;
			}
		}
		atomic_store(&c->resched, false);
		/* Quire's idle work is not the guest's to count. */
		pmu = vcpu_pmu_pause(v);
		t = clock_ticks();
		idle_work(c, v);
		exit_idle(c, clock_ticks() - t, true);
		/*
		 * Idle work may itself have woken v or a neighbour (a guest disk it
		 * moved on raised their interrupt, from this CPU: no SGI comes):
		 * waiting now would sleep through it.
		 */
		if (!woken(v) && !atomic_load(&c->resched)) {
			t = clock_ticks();
			cpu_wait();
			exit_idle(c, clock_ticks() - t, false);
		}
		vcpu_pmu_resume(v, pmu);
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

static void __noreturn sched_loop(void)
{
	struct cpu *c = this_cpu();
	struct trap_frame *f = cpu_frame();

	cpu_guest_setup();
	atomic_store_explicit(&slice_ticks, us_to_ticks(SCHED_SLICE_US), memory_order_relaxed);
	atomic_store_explicit(&min_ticks, us_to_ticks(SCHED_MIN_US), memory_order_relaxed);
	for (;;) {
		struct vcpu *v;
		u64 t;

		atomic_store(&c->resched, false);
		atomic_store(&c->woke, false);
		irq_handle(NULL);
		reap_stopped(c, NULL);
		v = sched_pick(c->id, NULL, clock_ticks());
		if (v) {
			load(c, v, f, clock_ticks());
			atomic_store(&v->blocked, false);
			atomic_store(&v->io_wait, false);
			arm_next(c, v);
			vgic_flush(v);
			vcpu_enter(f);
		}
		t = clock_ticks();
		idle_work(c, NULL);
		c->idle_work_ticks += clock_ticks() - t;
		/* As in vcpu_idle_until: a vCPU here that idle work woke runs now, not at the next interrupt. */
		if (!atomic_load(&c->resched))
			cpu_wait();
	}
}

void __noreturn vcpu_loop(void)
{
	cpu_run_fresh(sched_loop);
}

void __noreturn vcpu_exit(void)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu;

	vcpu_stop_here(v);
	vcpu_unloaded(v); /* before a reap can rebuild the VM */
	if (atomic_load(&v->vm->off)) {
		int s = atomic_load(&v->state);

		if (s != VCPU_DEAD && atomic_compare_exchange_strong(&v->state, &s, VCPU_DEAD)) {
			vcpu_retire(v);
			vm_reap(v->vm, c->id);
		}
	}
	cpu_run_fresh(sched_loop);
}

void sched_resched(struct trap_frame *f)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu, *next;
	u64 now, ran, others;
	bool paused, must, woke, stopped;

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
	now = clock_ticks();
	ran = now - c->slice_start;
	must = atomic_load(&v->blocked) || paused || v->yield;
	woke = atomic_exchange(&c->woke, false);
	if (!must && ran < atomic_load_explicit(&slice_ticks, memory_order_relaxed) &&
	    !(woke && ran >= atomic_load_explicit(&min_ticks, memory_order_relaxed))) {
		reap_stopped(c, v);
		if (woke)
			atomic_store(&c->woke, true); /* preempt when the minimum is up */
		arm_next(c, v);
		return;
	}
	/* One look at the queue: the next vCPU, the others' deadlines, and any stopped VM's vCPUs to reap first. */
	next = sched_pick_switch(c->id, v, now, &others, &stopped);
	if (stopped) {
		reap_stopped(c, v);
		next = sched_pick_switch(c->id, v, now, &others, &stopped);
	}
	v->yield = false;
	if (!next) {
		if (paused) {
			save(v, f);
			cpu_run_fresh(sched_loop);
		}
		/* Alone: keep running (a WFI may return early, a page still in transit faults again). */
		atomic_store(&v->blocked, false);
		atomic_store(&v->io_wait, false);
		c->slice_start = now;
		arm_next(c, v);
		return;
	}
	save(v, f);
	load(c, next, f, now);
	atomic_store(&next->blocked, false);
	atomic_store(&next->io_wait, false);
	/* v's timer is in its saved context now: its deadline joins the others'. */
	arm_next_from(c, next, min_u64(others, sched_blocked_deadline(v)));
}
