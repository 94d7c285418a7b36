/* Per-CPU state and the CPU-level operations core code may use. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <quire/config.h>

#define STACK_SIZE 0x4000 /* per CPU */

#ifndef __ASSEMBLER__
#include <quire/cpu.h>
#include <quire/machine.h>
#include <arch/sysreg.h>
#include <quire/vm.h>

struct vcpu;

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

/* ID_AA64ISAR0_EL1.CRC32 (bits [19:16]): the CRC32 instructions. */
static inline bool cpu_has_crc32(void)
{
	return (read_sysreg(id_aa64isar0_el1) >> 16) & 0xf;
}

void udelay(u64 us);
void __noreturn cpu_halt(void);
unsigned cpus_online(void);
void cpu_online_add(void);
void cpu_init_percpu(unsigned id, u64 mpidr);
/* PSCI SYSTEM_OFF through the host DT's conduit; false if there is none (or it returned). */
bool system_off(const struct machine *m);
void smp_boot(const struct machine *m);
#endif
#endif
