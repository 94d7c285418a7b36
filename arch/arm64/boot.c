/*
 * The boot CPU's path in C: console, early MMU, machine description, final
 * MMU, the GIC, secondary CPUs, banner, stage 2; then core's part
 * (core/boot.c). Secondaries join in idle_loop(). Entry code: calls down
 * into core, never called by it.
 */
#include <stdatomic.h>
#include <quire/banner.h>
#include <quire/boot.h>
#include <quire/console.h>
#include <quire/machine.h>
#include <quire/pl011.h>
#include <quire/platform.h>
#include <quire/run.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/mmu.h>
#include <arch/stage2.h>
#include <arch/vcpu.h>

#define EL2_VA_BITS 39 /* mmu.c's identity map: Quire reaches no address above it */

extern char _start[], _end[];
extern _Atomic unsigned cpus_crashed;
void idle_loop(void);
s64 smccc_smc(u64 fid, u64 a1, u64 a2, u64 a3);

static struct machine machine;
static _Atomic bool boot_done;

static void early_console(void)
{
	if (platform.uart_pins)
		platform.uart_pins();
	pl011_console_init(platform.early_uart, platform.uart_clock_hz);
}

void __noreturn boot_refuse_el(unsigned el)
{
	early_console();
	printk("\nQuire: entered at EL%u; it must be entered at EL2 (or EL3, which it leaves for EL2).\n"
	       "Quire: refusing to run. Start it with the virtualization extensions enabled,\n"
	       "Quire: e.g. QEMU -M virt,virtualization=on, or from firmware that leaves EL2 to the kernel.\n",
	       el);
	for (;;)
		wfi();
}

/* What machine_from_fdt and machine_fit refused or changed, before anything relies on it. */
static void print_dt_notes(void)
{
	console_write(machine.notes);
	if (machine.notes_lost)
		printk("quire: host DT: %u more lines like these not shown\n", machine.notes_lost);
}

void __noreturn boot_primary(paddr_t fdt, unsigned entry_el)
{
	char buf[2048];
	struct boot_info b;
	unsigned ipa_bits;

	early_console();
	cpus[0].id = 0;
	cpus[0].arch.mpidr = read_sysreg(mpidr_el1) & MPIDR_AFF_MASK;
	write_sysreg(&cpus[0], tpidr_el2);

	if (!fdt || (fdt & 7))
		boot_fatal("no device tree: x0 must hold its 8-byte aligned physical address (arm64 boot protocol)");
	mmu_enable_early(fdt);
	console_enable_locking();

	if (machine_from_fdt((const void *)(uintptr_t)fdt, &machine, buf, sizeof(buf))) {
		print_dt_notes();
		boot_fatal(buf);
	}
	/* Quire's identity map reaches EL2_VA_BITS: RAM and devices past it or PARange cannot be used. */
	if (machine_fit(&machine, MIN(parange_bits(), EL2_VA_BITS),
			(struct region){ (paddr_t)(uintptr_t)_start, (u64)(_end - _start) }, buf, sizeof(buf))) {
		print_dt_notes();
		boot_fatal(buf);
	}
	print_dt_notes();
	mmu_enable_final(&machine);
	if (machine.gic.found && machine.gic.gich.size)
		gic_init(&machine);
	if (machine.uart.found && machine.uart.base != platform.early_uart)
		pl011_console_init(machine.uart.base, platform.uart_clock_hz);

	if (machine.gic.found && machine.gic.gich.size)
		gic_init_cpu();
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

	ipa_bits = s2_setup();
	printk("stage 2: %u-bit IPA, 4 KiB granule, walks from level 1, VTCR_EL2 0x%lx\n", ipa_bits, s2_vtcr());
	boot_core(&machine, fdt, (struct region){ (paddr_t)(uintptr_t)_start, (u64)(_end - _start) }, ipa_bits);
	atomic_store_explicit(&boot_done, true, memory_order_release);
	dsb(ish);
	sev();
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
	while (!atomic_load_explicit(&boot_done, memory_order_acquire))
		wfe();
	vcpu_loop();
}
