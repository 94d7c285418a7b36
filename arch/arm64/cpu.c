/*
 * The physical CPUs as primitives for core: per-CPU state, the counter as
 * a clock, delays, halting, and turning the machine off through PSCI.
 * Calls nothing in core.
 */
#include <stdatomic.h>
#include <quire/clock.h>
#include <quire/machine.h>
#include <arch/cpu.h>

#define PSCI_SYSTEM_OFF 0x84000008u /* PSCI 0.2+, SMC32 function ID */

struct cpu cpus[MAX_CPUS];
u8 cpu_stacks[MAX_CPUS][STACK_SIZE] __aligned(16);
static _Atomic unsigned ncpus_up = 1;

s64 smccc_smc(u64 fid, u64 a1, u64 a2, u64 a3);

void udelay(u64 us)
{
	u64 start = counter_read(), ticks = us * counter_freq() / 1000000;

	while (counter_read() - start < ticks)
		;
}

u64 clock_ticks_us(u64 ticks)
{
	u64 f = counter_freq();

	/* Split so that ticks * 10^6 cannot overflow for any uptime. */
	return ticks / f * 1000000 + ticks % f * 1000000 / f;
}

u64 clock_ticks(void)
{
	return counter_read();
}

u64 clock_freq(void)
{
	return counter_freq();
}

u64 clock_us(void)
{
	return clock_ticks_us(counter_read());
}

void __noreturn cpu_halt(void)
{
	asm volatile("msr daifset, #0xf");
	for (;;)
		wfi();
}

unsigned cpus_online(void)
{
	return atomic_load_explicit(&ncpus_up, memory_order_acquire);
}

void cpu_online_add(void)
{
	atomic_fetch_add_explicit(&ncpus_up, 1, memory_order_release);
}

void cpu_init_percpu(unsigned id, u64 mpidr)
{
	cpus[id].id = id;
	cpus[id].arch.mpidr = mpidr;
	write_sysreg(&cpus[id], tpidr_el2);
}

bool system_off(const struct machine *m)
{
	if (m->psci.conduit != PSCI_CONDUIT_SMC)
		return false;
	/* pl011_putc returns with bytes still in the UART's FIFO: let the line out first. */
	udelay(20000);
	smccc_smc(PSCI_SYSTEM_OFF, 0, 0, 0);
	return false;
}
