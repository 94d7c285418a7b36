/*
 * The exit profile, read (include/quire/exitprof.h): a VM's vCPUs' counters
 * summed, and printed as the monitor's `exits` table, at a guest's mark (a
 * WFI with QUIRE_MARK_X0/X1, include/quire/hypercall.h), and at the counter
 * quire.exitmark=T names, where make bench reads them.
 */
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/exitprof.h>
#include <quire/vcpu.h>
#include <quire/vmconfig.h>

static const char *const names[EXIT_KINDS] = {
	[EXIT_FILL] = "fill",		 [EXIT_COW] = "cow",		  [EXIT_ACCESS_FLAG] = "access-flag",
	[EXIT_EXEC] = "exec",		 [EXIT_SWAP_IN] = "swap-in",	  [EXIT_ABORT] = "abort",
	[EXIT_HVC] = "hvc",		 [EXIT_MMIO_VGIC] = "mmio-vgic",  [EXIT_MMIO_PL011] = "mmio-pl011",
	[EXIT_MMIO_BALLOON] = "mmio-balloon", [EXIT_MMIO_DISK] = "mmio-disk", [EXIT_MMIO_NET] = "mmio-net",
	[EXIT_MMIO_VIRTIO] = "mmio-virtio", [EXIT_SGI] = "sgi-send",	  [EXIT_WFI] = "wfi",
	[EXIT_WFE] = "wfe",		 [EXIT_IRQ] = "irq",		  [EXIT_IRQ_VTIMER] = "irq-vtimer",
	[EXIT_IRQ_KICK] = "irq-kick",	 [EXIT_IRQ_SLICE] = "irq-slice",  [EXIT_IRQ_MAINT] = "irq-maint",
	[EXIT_IRQ_DEVICE] = "irq-device", [EXIT_SYSREG] = "sysreg",	  [EXIT_FP] = "fp",
	[EXIT_OTHER] = "other",
};

const char *exit_kind_name(enum exit_kind k)
{
	return (unsigned)k < EXIT_KINDS && names[k] ? names[k] : "?";
}

/* Counters another CPU may be adding to: each read whole (aligned 64-bit), never torn. */
static u64 peek(const u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void exit_table(const struct vm *vm, struct exit_table *t)
{
	unsigned n = MIN(__atomic_load_n(&vm->nvcpus, __ATOMIC_RELAXED), (unsigned)MAX_VCPUS);

	*t = (struct exit_table){ .first_entry = atomic_load_explicit(&vm->first_entry, memory_order_relaxed) };
	for (unsigned i = 0; i < n; i++) {
		/* A VM being built (a restart) has its vCPU count before its vCPUs: those are skipped. */
		const struct vcpu *v = __atomic_load_n(&vm->vcpu[i], __ATOMIC_RELAXED);
		const struct exit_prof *p;

		if (!v)
			continue;
		p = &v->prof;

		for (unsigned k = 0; k < EXIT_KINDS; k++) {
			t->p.k[k].n += peek(&p->k[k].n);
			t->p.k[k].ticks += peek(&p->k[k].ticks);
		}
		t->p.idle_ticks += peek(&p->idle_ticks);
		t->p.idle_work_ticks += peek(&p->idle_work_ticks);
	}
}

void exit_table_print(const struct vm *vm, u64 now)
{
	struct exit_table t;
	struct exit_stat sum = { 0, 0 };

	exit_table(vm, &t);
	for (unsigned k = 0; k < EXIT_KINDS; k++) {
		sum.n += t.p.k[k].n;
		sum.ticks += t.p.k[k].ticks;
	}
	/* Ticks, not microseconds: under QEMU -icount they are instructions (x16 on virt). */
	printk("quire: exits %s counter=%lu first_entry=%lu freq=%lu idle_ticks=%lu idle_work_ticks=%lu\n",
	       vm->name, (unsigned long)now, (unsigned long)t.first_entry, (unsigned long)clock_freq(),
	       (unsigned long)t.p.idle_ticks, (unsigned long)t.p.idle_work_ticks);
	printk("  %-13s %10s %12s %10s\n", "reason", "exits", "ticks", "ticks/exit");
	for (unsigned k = 0; k < EXIT_KINDS; k++)
		if (t.p.k[k].n)
			printk("  %-13s %10lu %12lu %10lu.%lu\n", names[k], (unsigned long)t.p.k[k].n,
			       (unsigned long)t.p.k[k].ticks, (unsigned long)(t.p.k[k].ticks / t.p.k[k].n),
			       (unsigned long)(t.p.k[k].ticks * 10 / t.p.k[k].n % 10));
	printk("  %-13s %10lu %12lu\n", "total", (unsigned long)sum.n, (unsigned long)sum.ticks);
}

/* quire.exitmark=T: the counter at which every VM's profile is printed; 0 once it has been (or none). */
static _Atomic u64 mark_at;

void exit_mark_init(const char *bootargs)
{
	u64 t;
	int rc = bootargs_u64(bootargs, "quire.exitmark=", &t);

	if (rc < 0)
		printk("quire: quire.exitmark ignored: not a decimal counter value\n");
	if (rc <= 0 || !t)
		return;
	atomic_store(&mark_at, t);
	printk("quire: every VM's exit profile is printed at counter %lu (quire.exitmark)\n", (unsigned long)t);
}

u64 exit_mark_deadline(void)
{
	u64 t = atomic_load_explicit(&mark_at, memory_order_relaxed);

	return t ? t : ~0UL;
}

bool exit_mark_check(u64 now)
{
	u64 t = atomic_load_explicit(&mark_at, memory_order_relaxed);

	/* One CPU prints, once. */
	if (!t || now < t || !atomic_compare_exchange_strong(&mark_at, &t, 0))
		return false;
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);

		if (vm && vm_state(vm) != VM_EMPTY)
			exit_table_print(vm, now);
	}
	return true;
}
