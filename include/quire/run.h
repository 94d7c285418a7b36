/* Each CPU's run loop and the scheduler's decisions on it (core/run.c), and core's interrupts (core/irq.c). */
#ifndef QUIRE_RUN_H
#define QUIRE_RUN_H
#include <quire/vcpu.h>

struct trap_frame;
struct cpu;

/* This CPU's loop: wait for its vCPU to be started, run it. */
void __noreturn vcpu_loop(void);
/* Leave the guest for good (powered off, CPU_OFF, fatal): back to vcpu_loop on a clean stack. */
void __noreturn vcpu_exit(void);
/* Take every pending physical interrupt; v is the vCPU running here, if any. */
void irq_handle(struct vcpu *v);
/* At the end of a trap: switch to another vCPU if the scheduler says so (f becomes its frame). */
void sched_resched(struct trap_frame *f);
/* The slice timer (Quire's own) fired. */
void sched_timer_fired(void);
/* v, running here, changed a timer deadline Quire keeps for it: arm Quire's own timer again. */
void vcpu_timer_changed(struct vcpu *v);
/*
 * The CPU is about to wait (nothing to run, or its lone vCPU cur in WFI):
 * run the sharing scanner, then arm the timer for the other vCPUs'
 * deadlines and the scanner's next slice.
 */
void idle_work(struct cpu *c, struct vcpu *cur);
/*
 * v waits on its CPU until woken(v); the CPU runs the sharing scanner and
 * sleeps meanwhile. false: another vCPU here can run, so v is left blocked
 * and the caller gives the CPU away.
 */
bool vcpu_idle_until(struct vcpu *v, bool (*woken)(struct vcpu *v));
/* After VIO_WAIT: wait (running others here meanwhile) until swap_gen() is no longer gen. */
void vcpu_wait_io(struct vcpu *v, u64 gen);
#endif
