/* Per-CPU state and the CPU-level operations core code may use. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <quire/config.h>

#define STACK_SIZE 0x4000 /* per CPU */

#ifndef __ASSEMBLER__
#include <quire/machine.h>
#include <arch/sysreg.h>

struct vcpu;

struct cpu {
	unsigned id; /* logical: 0 is the boot CPU */
	u64 mpidr;
	struct vcpu *vcpu; /* pinned to this CPU, if any */
};

extern struct cpu cpus[MAX_CPUS];
extern u8 cpu_stacks[MAX_CPUS][STACK_SIZE];

static inline struct cpu *this_cpu(void)
{
	return (struct cpu *)read_sysreg(tpidr_el2);
}

static inline unsigned cpu_id(void)
{
	return this_cpu()->id;
}

static inline u64 counter_read(void)
{
	isb();
	return read_sysreg(cntpct_el0);
}

static inline u64 counter_freq(void)
{
	return read_sysreg(cntfrq_el0);
}

void udelay(u64 us);
void __noreturn cpu_halt(void);
unsigned cpus_online(void);
void smp_boot(const struct machine *m);
#endif
#endif
