/*
 * The boot CPU's path in C: console, early MMU, machine description, final
 * MMU, secondary CPUs, banner. Secondaries join in idle_loop().
 */
#include <stdatomic.h>
#include <libfdt.h>
#include <string.h>
#include <quire/banner.h>
#include <quire/bench.h>
#include <quire/blk.h>
#include <quire/swap.h>
#include <quire/conmux.h>
#include <quire/guest.h>
#include <quire/modules.h>
#include <quire/printf.h>
#include <quire/sched.h>
#include <quire/share.h>
#include <quire/vm.h>
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

#define EL2_VA_BITS 39 /* mmu.c's identity map: Quire reaches no address above it */

extern char _start[], _end[];
extern _Atomic unsigned cpus_crashed;
void idle_loop(void);
s64 smccc_smc(u64 fid, u64 a1, u64 a2, u64 a3);

static struct machine machine;
static struct pool vmm_pool;
static _Atomic bool boot_done;
/* quire.exit=last-vm, set once every configured VM is made: only then can "all stopped" mean it. */
static _Atomic bool exit_armed;
static _Atomic bool powering_off; /* the one CPU that saw every VM stopped */

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

static void __noreturn fatal(const char *why)
{
	printk("\nQuire: FATAL: %s\nQuire: halting.\n", why);
	cpu_halt();
}

/* Hand every page of RAM that is not Quire's, the DT's or reserved to the VMM pool. */
static void memory_init(paddr_t fdt)
{
	struct region ex[MAX_RESERVED + 4];
	unsigned nex = 0;
	u64 desc = pool_desc_bytes(&machine), ram = machine.mem_total;
	u64 share = share_meta_bytes(ram >> PAGE_SHIFT), bytes = desc + share;
	struct region img[8];
	unsigned nimg = 0;
	paddr_t at;
	u32 n;

	ex[nex++] = (struct region){ (paddr_t)(uintptr_t)_start, (u64)(_end - _start) };
	ex[nex++] = (struct region){ fdt, fdt_totalsize((const void *)(uintptr_t)fdt) };
	for (unsigned i = 0; i < machine.nreserved; i++)
		ex[nex++] = machine.reserved[i].r;
	if (machine.boot_module.size)
		ex[nex++] = machine.boot_module;
	if (!pool_place(&machine, ex, nex, bytes, &at))
		fatal("no room in RAM for the page descriptors");
	ex[nex++] = (struct region){ at, bytes };
	n = pool_init(&vmm_pool, &machine, ex, nex, (void *)(uintptr_t)at);
	printk("pool: %u pages (%lu MiB) for guests; descriptors %lu bytes each, %lu KiB at 0x%lx "
	       "= %lu.%02lu%% of RAM\n",
	       n, (unsigned long)n >> 8, (unsigned long)sizeof(struct mpage), desc >> 10, at,
	       desc * 100 / ram, desc * 10000 / ram % 100);
	/* Images VMs map read-only: whole pages of what quire.bin carries, clean to PoC for guests with caches off. */
	for (const struct vmcfg_image *g = guest_images; g->name && nimg < ARRAY_SIZE(img); g++) {
		img[nimg++] = (struct region){ (paddr_t)(uintptr_t)g->data, ALIGN_DOWN(g->size, PAGE_SIZE) };
		dcache_clean_poc(g->data, g->size);
	}
	/* ID_AA64ISAR0_EL1.CRC32 (bits [19:16]): the CRC32 instructions. */
	share_hash = (read_sysreg(id_aa64isar0_el1) >> 16) & 0xf ? page_hash_crc : page_hash_mul;
	share_init(&vmm_pool, (void *)(uintptr_t)(at + desc), img, nimg, counter_read());
	printk("share: %s page hash, zero page and sharing metadata %lu KiB (%u bytes per page) = %lu.%02lu%% of RAM\n",
	       share_hash_name(), share >> 10, (unsigned)(share / (ram >> PAGE_SHIFT)), share * 100 / ram,
	       share * 10000 / ram % 100);
}

/*
 * The VM configuration: a config DTB the loader passed as the boot module,
 * else the built-in one. A boot module that is not a good one is refused,
 * with the reason, not passed over: whoever gave it meant it to be used.
 */
static const void *vm_config_blob(const char **from, char *err, size_t errlen)
{
	const struct region *m = &machine.boot_module;
	const void *p = (const void *)(uintptr_t)m->base;
	const struct vmcfg_image *g;
	int rc;

	if (m->size || machine.boot_module_bad) {
		*from = "from the boot module";
		if (machine.boot_module_bad) {
			q_snprintf(err, errlen, "the host DT places it where Quire cannot read it (see above)");
			return NULL;
		}
		if (m->size < sizeof(struct fdt_header)) {
			q_snprintf(err, errlen, "the boot module at 0x%lx is %lu bytes, too small for a device tree",
				   m->base, (unsigned long)m->size);
			return NULL;
		}
		rc = fdt_check_header(p);
		if (rc) {
			q_snprintf(err, errlen, "the boot module at 0x%lx is not a device tree: %s", m->base,
				   fdt_strerror(rc));
			return NULL;
		}
		if (fdt_totalsize(p) > m->size) {
			q_snprintf(err, errlen, "the boot module's device tree claims %u bytes, more than the %lu "
				   "the loader gave", fdt_totalsize(p), (unsigned long)m->size);
			return NULL;
		}
		if (fdt_node_check_compatible(p, 0, "quire,vm-config")) {
			q_snprintf(err, errlen, "the boot module's device tree is not compatible with "
				   "\"quire,vm-config\"");
			return NULL;
		}
		return p;
	}
	g = guest_find("vm_config");
	*from = "built in";
	if (!g)
		q_snprintf(err, errlen, "this build carries none");
	return g ? g->data : NULL;
}

/* Images a VM may boot: everything carried but the guest DT template and the config, then the boot modules. */
static unsigned bootable_images(struct vmcfg_image *out, unsigned max)
{
	unsigned n = 0;

	for (const struct vmcfg_image *g = guest_images; g->name && n + 1 < max; g++)
		if (strcmp(g->name, "guest_dtb") && strcmp(g->name, "vm_config"))
			out[n++] = *g;
	n += modules_images(out + n, max - n - 1);
	out[n] = (struct vmcfg_image){ NULL, NULL, 0 };
	return n;
}

#define PSCI_SYSTEM_OFF 0x84000008u /* PSCI 0.2+, SMC32 function ID */

static void __noreturn machine_power_off(void)
{
	printk("quire: every VM has stopped; powering the machine off (quire.exit=last-vm)\n");
	if (machine.psci.conduit == PSCI_CONDUIT_SMC) {
		/* pl011_putc returns with bytes still in the UART's FIFO: let the line out first. */
		udelay(20000);
		smccc_smc(PSCI_SYSTEM_OFF, 0, 0, 0);
		printk("quire: PSCI SYSTEM_OFF returned; halting\n");
	} else {
		printk("quire: no PSCI in the host DT to power off with; halting\n");
	}
	/* This CPU stops here; the others have no vCPU left and wait in idle_loop's WFI. */
	cpu_halt();
}

/* At least one VM was made, and every VM made is STOPPED with no restart queued. */
static bool all_vms_stopped(void)
{
	unsigned made = 0;

	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);

		if (!vm)
			continue;
		made++;
		if (vm_state(vm) != VM_STOPPED || atomic_load(&vm->restart))
			return false;
	}
	return made > 0;
}

/*
 * The reaper's STOPPED store and the boot CPU's exit_armed store are each
 * made before the other is read (seq_cst): the last VM to stop is seen by
 * one of them even if it stops while start_vms still runs. Two reapers may
 * both see every VM stopped: the exchange lets one power off.
 */
void vm_stopped_hook(void)
{
	if (!atomic_load(&exit_armed) || !all_vms_stopped() || atomic_exchange(&powering_off, true))
		return;
	machine_power_off();
}

static void start_vms(unsigned ipa_bits)
{
	static struct vm_config cfg[MAX_VMS];
	struct vmcfg_image images[8 + MAX_MODULES];
	struct vmcfg_limits lim = { cpus_online(), pool_free_pages(&vmm_pool), images, swap_enabled(), false };
	const char *from, *blocker = machine_vm_blocker(&machine);
	u64 guest = 0, limits = 0, kept = 0;
	char err[256];
	const void *blob = vm_config_blob(&from, err, sizeof(err));
	u32 mib;
	int n;

	vm_system_init(&vmm_pool, ipa_bits, cpus_online());
	if (bootargs_has(machine.bootargs, "quire.novm"))
		return;
	if (blocker) {
		/* A VM would be created and never run: say so instead. */
		printk("quire: %s in the host DT: VMs cannot run; starting no VM\n", blocker);
		conmux_start(true);
		return;
	}
	bootable_images(images, ARRAY_SIZE(images));
	n = blob ? vmconfig_parse(blob, cfg, MAX_VMS, &mib, err, sizeof(err)) : -1;
	if (n > 0) {
		/* A VM on a boot module the loader did not give (or that does not suit it) is refused alone. */
		static char refused[MAX_VMS * 160];

		n = vmconfig_drop_module_vms(cfg, n, &lim, refused, sizeof(refused));
		console_write(refused);
	}
	if (n < 0 || vmconfig_check(cfg, n, &lim, err, sizeof(err))) {
		printk("quire: VM configuration (%s) refused: %s\n", from, err);
		printk("quire: starting no VM\n");
		conmux_start(true);
		return;
	}
	for (int i = 0; i < n; i++) {
		guest += cfg[i].mem_size;
		limits += (u64)vmconfig_quota_pages(&cfg[i]) << PAGE_SHIFT;
		kept += (u64)vmconfig_guaranteed_pages(&cfg[i], lim.swap) << PAGE_SHIFT;
	}
	printk("quire: VM configuration %s: %d VM%s, %lu MiB of guest memory on %lu MiB of machine memory "
	       "(%s %lu.%02lux); resident limits with stage-2 tables %lu MiB, guaranteed %lu MiB\n",
	       from, n, n > 1 ? "s" : "", (unsigned long)(guest >> 20), (unsigned long)(lim.machine_pages >> 8),
	       guest > lim.machine_pages << PAGE_SHIFT ? "overcommitted" : "not overcommitted",
	       (unsigned long)(guest / (lim.machine_pages << PAGE_SHIFT)),
	       (unsigned long)(guest * 100 / (lim.machine_pages << PAGE_SHIFT) % 100), (unsigned long)(limits >> 20),
	       (unsigned long)(kept >> 20));
	if (bootargs_has(machine.bootargs, "quire.console=raw")) {
		if (n == 1)
			conmux_raw();
		else
			printk("quire: quire.console=raw ignored: it is for a single VM, and %d are configured\n", n);
	}
	for (int i = 0; i < n; i++)
		if (!vm_create(&cfg[i], i + 1, 0, err, sizeof(err)))
			printk("quire: %s not started: %s\n", cfg[i].name, err);
	conmux_start(bootargs_has(machine.bootargs, "quire.input=monitor"));
}

void __noreturn boot_primary(paddr_t fdt, unsigned entry_el)
{
	char buf[2048];
	struct boot_info b;

	early_console();
	cpus[0].id = 0;
	cpus[0].mpidr = read_sysreg(mpidr_el1) & MPIDR_AFF_MASK;
	write_sysreg(&cpus[0], tpidr_el2);

	if (!fdt || (fdt & 7))
		fatal("no device tree: x0 must hold its 8-byte aligned physical address (arm64 boot protocol)");
	mmu_enable_early(fdt);
	console_enable_locking();

	if (machine_from_fdt((const void *)(uintptr_t)fdt, &machine, buf, sizeof(buf))) {
		print_dt_notes();
		fatal(buf);
	}
	/* Quire's identity map reaches EL2_VA_BITS: RAM and devices past it or PARange cannot be used. */
	if (machine_fit(&machine, MIN(parange_bits(), EL2_VA_BITS),
			(struct region){ (paddr_t)(uintptr_t)_start, (u64)(_end - _start) }, buf, sizeof(buf))) {
		print_dt_notes();
		fatal(buf);
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

	memory_init(fdt);
	unsigned ipa_bits = s2_setup();
	printk("stage 2: %u-bit IPA, 4 KiB granule, walks from level 1, VTCR_EL2 0x%lx\n", ipa_bits,
	       s2_vtcr());
	printk("sched: time slice %u us; a woken vCPU preempts after %u us\n", SCHED_SLICE_US, SCHED_MIN_US);
	bench_boot(BENCH_POOL_READY, &vmm_pool, machine.bootargs);
	blk_use_pool(&vmm_pool);
	blk_init(&machine, BLK_MIN_BYTES);
	swap_init(&vmm_pool, 0);
	bench_boot(BENCH_DISK_READY, &vmm_pool, machine.bootargs);
	if (machine.uart.found)
		console_input_init(&machine);
	start_vms(ipa_bits);
	if (bootargs_has(machine.bootargs, "quire.exit=last-vm")) {
		atomic_store(&exit_armed, true);
		vm_stopped_hook(); /* every VM may have stopped (or failed to start) already */
	}
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
