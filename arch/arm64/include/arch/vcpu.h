#ifndef ARCH_VCPU_H
#define ARCH_VCPU_H
#include <quire/vcpu.h>
#include <arch/trap_frame.h>
#include <arch/sysreg_access.h>

/* This CPU's loop: wait for its vCPU to be started, run it. */
void __noreturn vcpu_loop(void);
/* Leave the guest for good (powered off, CPU_OFF, fatal): back to vcpu_loop on a clean stack. */
void __noreturn vcpu_exit(void);
/* Take every pending physical interrupt; v is the vCPU running here, if any. */
void irq_handle(struct vcpu *v);
/* The physical console UART's input interrupt, to the console multiplexer. */
void console_input_init(const struct machine *m);
/* Its interrupt id, or ~0 if it has none Quire takes. */
u32 console_input_irq(void);
/* At the end of a trap: switch to another vCPU if the scheduler says so (f becomes its frame). */
void sched_resched(struct trap_frame *f);
/* The slice timer (EL2 physical timer) fired. */
void sched_timer_fired(void);
/* v, running here, changed a timer deadline Quire keeps for it: arm Quire's own timer again. */
void vcpu_timer_changed(struct vcpu *v);
/*
 * The CPU is about to wait (nothing to run, or its lone vCPU cur in WFI):
 * run the sharing scanner, then arm the timer for the other vCPUs'
 * deadlines and the scanner's next slice.
 */
struct cpu;
void idle_work(struct cpu *c, struct vcpu *cur);
/*
 * v waits on its CPU until woken(v); the CPU runs the sharing scanner and
 * sleeps meanwhile. false: another vCPU here can run, so v is left blocked
 * and the caller gives the CPU away.
 */
bool vcpu_idle_until(struct vcpu *v, bool (*woken)(struct vcpu *v));
/* After VIO_WAIT: wait (running others here meanwhile) until swap_gen() is no longer gen. */
void vcpu_wait_io(struct vcpu *v, u64 gen);
/* The vCPU's first FP/SIMD use since it was loaded: give it its registers. */
void vcpu_fp_trap(struct vcpu *v);
/* A trapped debug or PMU register access (MDCR_EL2): debug.c or pmu.c with v's state, MDCR_EL2 kept in step. */
enum sysreg_result vcpu_debug_access(struct vcpu *v, struct sysreg_access *a);
/* Called from el2_exception for exceptions taken from the guest. */
void guest_trap(struct trap_frame *f, unsigned vector);
/* vectors.S's short IRQ path from a guest: trap.c */
bool guest_irq_fast(void);
void guest_irq_rest(struct trap_frame *f);

/* Exception injection into the guest's EL1 (its registers are live on this CPU). */
void inject_data_abort(struct trap_frame *f, u64 far, bool instr, bool write);
void inject_undef(struct trap_frame *f);
#endif
