/*
 * The boot CPU's path in C: console, early MMU, machine description, final
 * MMU, secondary CPUs, banner. Secondaries join in idle_loop().
 */
#include <stdatomic.h>
#include <libfdt.h>
#include <quire/banner.h>
#include <quire/pool.h>
#include <quire/vmconfig.h>
#include <quire/console.h>
#include <quire/pl011.h>
#include <quire/platform.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/mmu.h>
#include <arch/stage2.h>
#include <arch/vcpu.h>

extern char _start[], _end[];
extern _Atomic unsigned cpus_crashed;
void idle_loop(void);

static struct machine machine;
static struct pool vmm_pool;
static _Atomic bool boot_done;

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

/* Hand every page of RAM that is not Quire's, the DT's or reserved to the VMM pool. */
static void memory_init(paddr_t fdt)
{
	struct region ex[MAX_RESERVED + 3];
	unsigned nex = 0;
	u64 bytes = pool_desc_bytes(&machine), ram = machine.mem_total;
	paddr_t at;
	u32 n;

	ex[nex++] = (struct region){ (paddr_t)(uintptr_t)_start, (u64)(_end - _start) };
	ex[nex++] = (struct region){ fdt, fdt_totalsize((const void *)(uintptr_t)fdt) };
	for (unsigned i = 0; i < machine.nreserved; i++)
		ex[nex++] = machine.reserved[i].r;
	if (!pool_place(&machine, ex, nex, bytes, &at))
		fatal("no room in RAM for the page descriptors");
	ex[nex++] = (struct region){ at, bytes };
	n = pool_init(&vmm_pool, &machine, ex, nex, (void *)(uintptr_t)at);
	printk("pool: %u pages (%lu MiB) for guests; descriptors %lu bytes each, %lu KiB at 0x%lx "
	       "= %lu.%02lu%% of RAM\n",
	       n, (unsigned long)n >> 8, (unsigned long)sizeof(struct mpage), bytes >> 10, at,
	       bytes * 100 / ram, bytes * 10000 / ram % 100);
}

/* Pool alloc+free on the fault path's per-CPU fast path, for make bench. */
static void bench_pool(void)
{
	const unsigned n = 100000;
	u64 t0 = counter_read();

	for (unsigned k = 0; k < n; k++)
		pool_free(&vmm_pool, 0, pool_alloc(&vmm_pool, 0), false);
	printk("bench: pool_alloc_free ops=%u ticks=%lu freq=%lu\n", n, counter_read() - t0,
	       counter_freq());
}

#define DEFAULT_VMS "vm=linux:2:512:135000:0"

static void start_vms(unsigned ipa_bits)
{
	static struct vm_config cfg[MAX_VMS];
	char err[160];
	unsigned next_cpu = 0;
	int n = vmconfig_parse(machine.bootargs, cfg, MAX_VMS, err, sizeof(err));

	if (n < 0) {
		printk("quire: bad VM configuration in bootargs: %s; starting no VM\n", err);
		return;
	}
	if (n == 0 && !bootargs_has(machine.bootargs, "quire.novm")) {
		/* The system this image carries: one Linux guest, 2 vCPUs, 512 MiB. */
		vmconfig_parse(DEFAULT_VMS, cfg, MAX_VMS, err, sizeof(err));
		n = 1;
		if (cfg[0].vcpus > cpus_online())
			cfg[0].vcpus = cpus_online();
	}
	for (int i = 0; i < n; i++) {
		struct vm *vm;

		if (next_cpu + cfg[i].vcpus > cpus_online()) {
			printk("quire: vm%d needs %u CPUs but only %u are free; not started\n", i + 1,
			       cfg[i].vcpus, cpus_online() - next_cpu);
			continue;
		}
		vm = vm_create(&cfg[i], i + 1, &vmm_pool, ipa_bits, next_cpu, 0, err, sizeof(err));
		if (!vm) {
			printk("quire: vm%d not started: %s\n", i + 1, err);
			continue;
		}
		if (i == 0)
			console_input_init(&machine, vm);
		printk("quire: %s: guest %s, %u vCPU%s on CPU %u-%u, %lu MiB RAM on demand, quota %u pages\n",
		       vm->name, cfg[i].guest, vm->nvcpus, vm->nvcpus > 1 ? "s" : "", next_cpu,
		       next_cpu + vm->nvcpus - 1, (unsigned long)cfg[i].mem_mib, cfg[i].quota);
		next_cpu += vm->nvcpus;
	}
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
	if (machine.gic.found && machine.gic.gich.size)
		gic_init(&machine);
	if (machine.uart.found && machine.uart.base != platform.early_uart)
		pl011_console_init(machine.uart.base, platform.uart_clock_hz);
	if (!machine.gic.found)
		printk("Quire: warning: no GICv2 in the device tree\n");

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

	memory_init(fdt);
	unsigned ipa_bits = s2_setup();
	printk("stage 2: %u-bit IPA, 4 KiB granule, walks from level 1, VTCR_EL2 0x%lx\n", ipa_bits,
	       s2_vtcr());
	if (bootargs_has(machine.bootargs, "quire.bench=pool"))
		bench_pool();
	start_vms(ipa_bits);
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
