#ifndef ARCH_VCPU_H
#define ARCH_VCPU_H
#include <quire/vcpu.h>
#include <arch/trap_frame.h>
#include <arch/sysreg_access.h>

/* The physical console UART's input interrupt, to the console multiplexer. */
void console_input_init(const struct machine *m);
/* Its interrupt id, or ~0 if it has none Quire takes. */
u32 console_input_irq(void);

/*
 * Primitives of core's run loop (core/run.c): the context switch. v's
 * general registers are in f, the frame at the top of this CPU's stack
 * (cpu_frame), while it runs; the rest in its saved context otherwise.
 */
struct trap_frame *cpu_frame(void);
/* Load v (reset first if it is starting) into this CPU and f; shared_cpu: other vCPUs queue here. */
void vcpu_load(struct vcpu *v, struct trap_frame *f, bool shared_cpu);
void vcpu_save(struct vcpu *v, const struct trap_frame *f);
/* v leaves this CPU without saving (it stops): its debug, PMU and vGIC state let go. */
void vcpu_stop_here(struct vcpu *v);
/* v leaves this CPU for good (its VM stopped): nothing of it may stay behind. */
void vcpu_retire(struct vcpu *v);
/* Enter the guest loaded in f (ERET). */
void __noreturn vcpu_enter(struct trap_frame *f);
/* Run loop() on this CPU's stack from the top, with no guest state in the CPU's controls. */
void __noreturn cpu_run_fresh(void (*loop)(void));
/* EL2 controls that are the same for every vCPU on this CPU. */
void cpu_guest_setup(void);
/* Quire's own timer at the counter's value when (~0: off). */
void htimer_arm(u64 when);
/* An interrupt waits for this CPU (which runs with them masked). */
bool cpu_irq_waiting(void);
/* Sleep until an interrupt. */
void cpu_wait(void);
/* v's PMU stopped while Quire works for it, and started again (the value pause gave). */
u64 vcpu_pmu_pause(struct vcpu *v);
void vcpu_pmu_resume(struct vcpu *v, u64 saved);
/* The vCPU's first FP/SIMD use since it was loaded: give it its registers. */
void vcpu_fp_trap(struct vcpu *v);
/* A trapped debug or PMU register access (MDCR_EL2): debug.c or pmu.c with v's state, MDCR_EL2 kept in step. */
enum sysreg_result vcpu_debug_access(struct vcpu *v, struct sysreg_access *a);
/* Called from el2_exception for exceptions taken from the guest. */
void guest_trap(struct trap_frame *f, unsigned vector);
void guest_sync(struct trap_frame *f);
/* vectors.S's short IRQ path from a guest: trap.c */
bool guest_irq_fast(void);
void guest_irq_rest(struct trap_frame *f);

/* Exception injection into the guest's EL1 (its registers are live on this CPU). */
void inject_data_abort(struct trap_frame *f, u64 far, bool instr, bool write);
void inject_undef(struct trap_frame *f);
/* The guest faulted fetching at its own exception vector: an abort injected now would loop. */
bool inject_abort_would_loop(const struct trap_frame *f);
#endif
