/*
 * The boot CPU's work once the arch has the CPU, its MMU and the machine
 * description up: the VMM pool over free RAM, sharing, the swap disk,
 * console input, and the VMs of the configuration; and the power-off when
 * the last VM stops (quire.exit=last-vm). Called by the arch's boot path,
 * before the CPUs enter their run loops.
 */
#include <stdatomic.h>
#include <libfdt.h>
#include <string.h>
#include <quire/bench.h>
#include <quire/clock.h>
#include <quire/blk.h>
#include <quire/boot.h>
#include <quire/conmux.h>
#include <quire/console.h>
#include <quire/exitprof.h>
#include <quire/disk.h>
#include <quire/entropy.h>
#include <quire/guest.h>
#include <quire/modules.h>
#include <quire/pool.h>
#include <quire/printf.h>
#include <quire/sched.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>
#include <quire/vmconfig.h>
#include <quire/vswitch.h>
#include <arch/cpu.h>
#include <arch/mmu.h>
#include <arch/vcpu.h>

static const struct machine *mach;
static struct pool vmm_pool;
/* quire.exit=last-vm, set once every configured VM is made: only then can "all stopped" mean it. */
static _Atomic bool exit_armed;
static _Atomic bool powering_off; /* the one CPU that saw every VM stopped */

void __noreturn boot_fatal(const char *why)
{
	printk("\nQuire: FATAL: %s\nQuire: halting.\n", why);
	cpu_halt();
}

/* Hand every page of RAM that is not Quire's, the DT's or reserved to the VMM pool. */
static void memory_init(paddr_t fdt, struct region image)
{
	struct region ex[MAX_RESERVED + 4];
	unsigned nex = 0;
	u64 desc = pool_desc_bytes(mach), ram = mach->mem_total;
	u64 share = share_meta_bytes(ram >> PAGE_SHIFT), bytes = desc + share;
	struct region img[8];
	unsigned nimg = 0;
	paddr_t at;
	u32 n;

	ex[nex++] = image;
	ex[nex++] = (struct region){ fdt, fdt_totalsize((const void *)(uintptr_t)fdt) };
	for (unsigned i = 0; i < mach->nreserved; i++)
		ex[nex++] = mach->reserved[i].r;
	if (mach->boot_module.size)
		ex[nex++] = mach->boot_module;
	if (!pool_place(mach, ex, nex, bytes, &at))
		boot_fatal("no room in RAM for the page descriptors");
	ex[nex++] = (struct region){ at, bytes };
	n = pool_init(&vmm_pool, mach, ex, nex, (void *)(uintptr_t)at);
	printk("pool: %u pages (%lu MiB) for guests; descriptors %lu bytes each, %lu KiB at 0x%lx "
	       "= %lu.%02lu%% of RAM\n",
	       n, (unsigned long)n >> 8, (unsigned long)sizeof(struct mpage), desc >> 10, at,
	       desc * 100 / ram, desc * 10000 / ram % 100);
	/* Images VMs map read-only: whole pages of what quire.bin carries, clean to PoC for guests with caches off. */
	for (const struct vmcfg_image *g = guest_images; g->name && nimg < ARRAY_SIZE(img); g++) {
		img[nimg++] = (struct region){ (paddr_t)(uintptr_t)g->data, ALIGN_DOWN(g->size, PAGE_SIZE) };
		dcache_clean_poc(g->data, g->size);
	}
	share_hash = cpu_has_crc32() ? page_hash_crc : page_hash_mul;
	share_init(&vmm_pool, (void *)(uintptr_t)(at + desc), img, nimg, clock_ticks());
	printk("share: %s page hash, zero page and sharing metadata %lu KiB (%u bytes per page) = %lu.%02lu%% of RAM\n",
	       share_hash_name(), share >> 10, (unsigned)(share / (ram >> PAGE_SHIFT)), share * 100 / ram,
	       share * 10000 / ram % 100);
	/* Off to compare, or for a guest that must see only 4 KiB mappings (docs/memory.md, "2 MiB blocks"). */
	if (bootargs_has(mach->bootargs, "quire.blocks=off")) {
		s2_blocks_default = false;
		printk("stage2: 2 MiB blocks off (quire.blocks=off)\n");
	}
	/* Off only to measure the fault path that zeroes for itself (docs/memory.md, "Pre-zeroed pages"). */
	if (bootargs_has(mach->bootargs, "quire.prezero=off")) {
		pool_prezero_start(&vmm_pool, false);
		printk("pool: pre-zeroed pages off (quire.prezero=off): every fill zeroes its page\n");
	} else {
		pool_prezero_start(&vmm_pool, true);
		printk("pool: pre-zeroed pages on: idle CPUs zero up to %u pages per %u us each, keeping at most %u "
		       "(%u MiB)\n", PREZERO_SLICE_PAGES, SCHED_SLICE_US, vmm_pool.prezero_cap,
		       vmm_pool.prezero_cap >> 8);
	}
}

/*
 * The VM configuration: a config DTB the loader passed as the boot module,
 * else the built-in one. A boot module that is not a good one is refused,
 * with the reason, not passed over: whoever gave it meant it to be used.
 */
static const void *vm_config_blob(const char **from, char *err, size_t errlen)
{
	const struct region *m = &mach->boot_module;
	const void *p = (const void *)(uintptr_t)m->base;
	const struct vmcfg_image *g;
	int rc;

	if (m->size || mach->boot_module_bad) {
		*from = "from the boot module";
		if (mach->boot_module_bad) {
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

static void __noreturn machine_power_off(void)
{
	printk("quire: every VM has stopped; powering the machine off (quire.exit=last-vm)\n");
	if (!system_off(mach))
		printk("quire: %s; halting\n", mach->psci.conduit == PSCI_CONDUIT_SMC ? "PSCI SYSTEM_OFF returned"
										: "no PSCI in the host DT to power off with");
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
	struct vmcfg_limits lim = { cpus_online(), pool_free_pages(&vmm_pool), images, swap_enabled(), false, true,
				    disk_table() };
	const char *from, *blocker = machine_vm_blocker(mach);
	u64 guest = 0, limits = 0, kept = 0;
	char err[256];
	const void *blob = vm_config_blob(&from, err, sizeof(err));
	u32 mib;
	int n;

	vm_system_init(&vmm_pool, ipa_bits, cpus_online());
	if (bootargs_has(mach->bootargs, "quire.novm"))
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

		n = vmconfig_drop_vms(cfg, n, &lim, refused, sizeof(refused));
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
	if (bootargs_has(mach->bootargs, "quire.console=raw")) {
		if (n == 1)
			conmux_raw();
		else
			printk("quire: quire.console=raw ignored: it is for a single VM, and %d are configured\n", n);
	}
	for (int i = 0; i < n; i++)
		if (!vm_create(&cfg[i], i + 1, 0, err, sizeof(err)))
			printk("quire: %s not started: %s\n", cfg[i].name, err);
	conmux_start(bootargs_has(mach->bootargs, "quire.input=monitor"));
}

void boot_core(const struct machine *m, paddr_t fdt, struct region image, unsigned ipa_bits)
{
	mach = m;
	if (entropy_init(m->seed, m->seed_len, clock_ticks()))
		printk("entropy: guests' rng-seed from the loader's %u bytes of seed\n", m->seed_len);
	else
		printk("entropy: the loader gave %u bytes of seed (no /chosen rng-seed): guests' rng-seed comes "
		       "from the counter and is guessable\n", m->seed_len);
	memory_init(fdt, image);
	printk("sched: time slice %u us; a woken vCPU preempts after %u us\n", SCHED_SLICE_US, SCHED_MIN_US);
	bench_boot(BENCH_POOL_READY, &vmm_pool, m->bootargs);
	blk_use_pool(&vmm_pool);
	blk_init(m, BLK_MIN_BYTES);
	disk_init(&vmm_pool, 0);
	vsw_init(&vmm_pool);
	swap_init(&vmm_pool, 0);
	bench_boot(BENCH_DISK_READY, &vmm_pool, m->bootargs);
	if (m->uart.found)
		console_input_init(m);
	exit_mark_init(m->bootargs);
	start_vms(ipa_bits);
	if (bootargs_has(m->bootargs, "quire.exit=last-vm")) {
		atomic_store(&exit_armed, true);
		vm_stopped_hook(); /* every VM may have stopped (or failed to start) already */
	}
}
