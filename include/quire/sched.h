/*
 * The vCPU scheduler's policy: one run queue per physical CPU, round robin
 * with time slices. A vCPU is placed on the least-loaded CPU its VM's
 * affinity allows when the VM is created and stays there (no migration),
 * so its state only ever moves between that CPU and memory. The mechanics
 * (saving and loading a vCPU, the slice timer) are the arch's.
 */
#ifndef QUIRE_SCHED_H
#define QUIRE_SCHED_H
#include <quire/vcpu.h>

#define SCHED_SLICE_US 4000	/* a vCPU's time slice when others wait */
#define SCHED_MIN_US 1000	/* a woken vCPU preempts the running one after this much */

/* The least-loaded CPU below ncpus whose bit is set in allowed (0 = any). */
unsigned sched_place(u32 allowed, unsigned ncpus);
void sched_add(struct vcpu *v, unsigned cpu);
void sched_remove(struct vcpu *v);
/* vCPUs queued on a CPU. */
unsigned sched_queued(unsigned cpu);
/* Can v run now? Blocked (WFI) vCPUs can when they have an interrupt to take. */
bool vcpu_runnable(struct vcpu *v, u64 now);
/* The next runnable vCPU on cpu's queue after cur in round-robin order, other than cur; NULL if none. */
struct vcpu *sched_pick(unsigned cpu, struct vcpu *cur, u64 now);
/* Is a vCPU other than cur runnable on cpu's queue (without picking it)? */
bool sched_any_runnable(unsigned cpu, struct vcpu *cur, u64 now);
/* The earliest virtual-timer deadline of a blocked vCPU on cpu's queue, other than cur; ~0 if none. */
u64 sched_next_deadline(unsigned cpu, struct vcpu *cur);
/* A blocked vCPU's virtual-timer deadline as sched_next_deadline counts it; ~0 if it does not count. */
u64 sched_blocked_deadline(struct vcpu *v);
/*
 * A switch's look at cpu's queue, under one hold of its lock: sched_pick's
 * choice; in *deadline, sched_next_deadline's over the vCPUs other than cur
 * and the one picked (cur's timer is saved only as it leaves: the caller
 * adds its deadline then); in *stopped, whether sched_stopped would find any.
 */
struct vcpu *sched_pick_switch(unsigned cpu, struct vcpu *cur, u64 now, u64 *deadline, bool *stopped);
/* vCPUs on cpu's queue whose VM stopped and that are not yet DEAD (cur excluded); returns how many. */
unsigned sched_stopped(unsigned cpu, struct vcpu *cur, struct vcpu **out, unsigned max);

/* Arch: would this blocked, unloaded vCPU take an interrupt now (its timer, the vGIC)? */
bool vcpu_wake_pending(struct vcpu *v, u64 now);
/* Arch: its virtual timer's deadline in counter ticks, ~0 if none. */
u64 vcpu_timer_deadline(struct vcpu *v);
#endif
