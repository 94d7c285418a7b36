/*
 * The boot CPU's path in C: console, early MMU, machine description, final
 * MMU, secondary CPUs, banner. Secondaries join in idle_loop().
 */
#include <stdatomic.h>
#include <quire/banner.h>
#include <quire/console.h>
#include <quire/pl011.h>
#include <quire/platform.h>
#include <arch/cpu.h>
#include <arch/mmu.h>

extern char _start[], _end[];
extern _Atomic unsigned cpus_crashed;
void idle_loop(void);

static struct machine machine;

void __noreturn boot_refuse_el(unsigned el)
{
	pl011_console_init(platform.early_uart, platform.uart_clock_hz);
	printk("\nQuire: entered at EL%u; it must be entered at EL2 (or EL3, which it leaves for EL2).\n"
	       "Quire: refusing to run. Start it with the virtualization extensions enabled,\n"
	       "Quire: e.g. QEMU -M virt,virtualization=on, or from firmware that leaves EL2 to the kernel.\n",
	       el);
	for (;;)
		wfi();
}

static void __noreturn fatal(const char *why)
{
	printk("\nQuire: FATAL: %s\nQuire: halting.\n", why);
	cpu_halt();
}

void __noreturn boot_primary(paddr_t fdt, unsigned entry_el)
{
	char buf[2048];
	struct boot_info b;

	pl011_console_init(platform.early_uart, platform.uart_clock_hz);
	cpus[0].id = 0;
	cpus[0].mpidr = read_sysreg(mpidr_el1) & MPIDR_AFF_MASK;
	write_sysreg(&cpus[0], tpidr_el2);

	if (!fdt || (fdt & 7))
		fatal("no device tree: x0 must hold its 8-byte aligned physical address (arm64 boot protocol)");
	mmu_enable_early(fdt);
	console_enable_locking();

	if (machine_from_fdt((const void *)(uintptr_t)fdt, &machine, buf, sizeof(buf)))
		fatal(buf);
	mmu_enable_final(&machine);
	if (machine.uart.found && machine.uart.base != platform.early_uart)
		pl011_console_init(machine.uart.base, platform.uart_clock_hz);
	if (!machine.gic.found)
		printk("Quire: warning: no GICv2 in the device tree\n");

	smp_boot(&machine);

	b.platform = platform.name;
	b.el = current_el();
	b.entry_el = entry_el;
	b.cpus_online = cpus_online();
	b.image_base = (paddr_t)(uintptr_t)_start;
	b.image_size = _end - _start;
	b.fdt = fdt;
	banner_format(buf, sizeof(buf), &machine, &b);
	console_write(buf);
	printk("boot: banner at counter %lu, frequency %lu Hz\n", counter_read(), counter_freq());
	idle_loop();
}

#ifdef QUIRE_TEST_CRASH
/*
 * Test build: the highest-numbered online CPU faults at EL2 on purpose;
 * every other CPU then reports that it still runs.
 */
static void test_crash(void)
{
	static _Atomic unsigned ready;
	atomic_fetch_add(&ready, 1);
	while (atomic_load(&ready) < cpus_online())
		;
	if (cpu_id() == cpus_online() - 1) {
		udelay(10000);
		*(volatile u64 *)0xdead0000beefUL = 1;
	}
	while (!atomic_load_explicit(&cpus_crashed, memory_order_acquire))
		udelay(1000);
	udelay(10000 * (cpu_id() + 1));
	printk("cpu%u: alive after a crash on another CPU\n", cpu_id());
}
#endif

void __noreturn idle_loop(void)
{
#ifdef QUIRE_TEST_CRASH
	test_crash();
#endif
	for (;;)
		wfi();
}
