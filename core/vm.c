/*
 * Creating VMs: the pool and stage-2 tables, the guest image copied into
 * pages mapped before the first instruction, and the vCPUs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <libfdt.h>
#include <quire/balloon.h>
#include <quire/clock.h>
#include <quire/conmux.h>
#include <quire/console.h>
#include <quire/disk.h>
#include <quire/sched.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vdev.h>
#include <quire/errno.h>
#include <quire/guest.h>
#include <quire/modules.h>
#include <quire/printf.h>
#include <quire/spinlock.h>
#include <quire/vcpu.h>
#include <quire/vdisk.h>
#include <quire/vnet.h>
#include <quire/virtio.h>
#include <quire/vmconfig.h>

_Static_assert(VMCFG_MAX_VMS == MAX_VMS && VMCFG_MAX_VCPUS == MAX_VCPUS, "one limit, two headers");

static struct vm vms[MAX_VMS];
static struct vcpu vcpus[MAX_VMS][MAX_VCPUS];

/*
 * An image by the name a config gives it: "module:NAME" is a boot module
 * from the host DT (core/modules.c), anything else one quire.bin carries.
 * Two name spaces, so a module never stands in for a built-in image unasked.
 */
const struct vmcfg_image *guest_find(const char *name)
{
	if (!strncmp(name, MODULE_PREFIX, sizeof(MODULE_PREFIX) - 1)) {
		const struct boot_module *b = module_find(name);

		return b ? &b->img : NULL;
	}
	for (const struct vmcfg_image *g = guest_images; g->name; g++)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

int guest_dt_build(const void *tmpl, void *buf, int size, const struct vm *vm, const char *bootargs,
		   u64 initrd_start, u64 initrd_end);

#define LINUX_BOOTARGS "console=ttyAMA0 earlycon=pl011,mmio32,0x9000000 panic=-1"

/*
 * s2_destroy's callback for a run still mapped whole: if every page is this
 * VM's alone (not shared, no copy in swap), only the scanner's table may
 * know them; then the run goes back whole, for the next block.
 */
static bool block_release(struct vm *vm, ipa_t ipa, pidx_t first, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;

	(void)ipa;
	for (u32 k = 0; k < RUN_PAGES; k++) {
		const struct mpage *d = pool_desc(p, first + k);

		if (d->owner != vm->id || atomic_load_explicit(&d->refcount, memory_order_relaxed) != 1 ||
		    atomic_load_explicit(&d->flags, memory_order_relaxed) &
			    (MP_SHARED | MP_SWAPCACHE | MP_PINNED | MP_PGTABLE | MP_IDLE))
			return false;
	}
	for (u32 k = 0; k < RUN_PAGES; k++)
		share_forget(first + k);
	vmpool_give_back_run(&vm->pool, cpu, first);
	return true;
}

static const char *load_error(int rc)
{
	return rc == -EDQUOT ? "its resident limit is too small" : "out of machine pages";
}

/* One DT buffer and one page for all, under load_lock: VMs are created (and restarted) on several CPUs. */
static u8 load_dtb[VMCFG_DT_MAX] __aligned(8), load_page[PAGE_SIZE] __aligned(8);
static spinlock_t load_lock = SPINLOCK_INIT;

/* Put guest page p together in load_page (load_lock held): every segment's bytes in it, zeroes elsewhere. */
static void assemble_page(const struct image_layout *l, const u8 *data, u64 p)
{
	memset(load_page, 0, PAGE_SIZE);
	for (unsigned k = 0; k < l->nseg; k++) {
		const struct image_segment *t = &l->seg[k];
		u64 from = MAX(p, t->ipa), end = MIN(p + PAGE_SIZE, t->ipa + t->filesz);

		if (from < end)
			memcpy(load_page + (from - p), data + t->offset + (from - t->ipa), end - from);
	}
}

/*
 * The image's segments, page by page: a page wholly inside one segment's
 * file bytes and page aligned in the image goes in as it is (shared with
 * quire.bin's copy if it can be); any other (a segment's ends, two
 * segments in one page, an ELF's odd offsets) is put together first.
 * Pages of zeroes only (bss) are left to the RAM, which is zero on demand.
 */
static int load_segments(struct vm *vm, const struct image_layout *l, const u8 *data, unsigned cpu)
{
	u64 done = 0; /* pages below this are in */

	for (unsigned i = 0; i < l->nseg; i++) {
		const struct image_segment *s = &l->seg[i];
		u64 to = ALIGN_UP(s->ipa + s->filesz, PAGE_SIZE);

		for (u64 p = MAX(ALIGN_DOWN(s->ipa, PAGE_SIZE), done); s->filesz && p < to; p += PAGE_SIZE) {
			bool whole = p >= s->ipa && p + PAGE_SIZE <= s->ipa + s->filesz;
			const u8 *src = whole ? data + s->offset + (p - s->ipa) : NULL;
			int rc;

			if (whole && !((uintptr_t)src % PAGE_SIZE)) {
				rc = vm_copy_in(vm, p, src, PAGE_SIZE, cpu);
			} else {
				spin_lock(&load_lock);
				assemble_page(l, data, p);
				rc = vm_copy_in(vm, p, load_page, PAGE_SIZE, cpu);
				spin_unlock(&load_lock);
			}
			if (rc)
				return rc;
		}
		done = MAX(done, to);
	}
	return 0;
}

/* The guest DT where the layout puts it (an ELF's only if it fits below the image, as QEMU). */
static int load_dt(struct vm *vm, const struct image_layout *l, const char *image, const char *bootargs,
		   u64 rd_size, unsigned cpu, char *err, size_t errlen)
{
	const struct vmcfg_image *t = guest_find("guest_dtb");
	int rc;

	if (!t) {
		q_snprintf(err, errlen, "this build carries no guest DT template");
		return -EINVAL;
	}
	spin_lock(&load_lock);
	rc = guest_dt_build(t->data, load_dtb, sizeof(load_dtb), vm, bootargs, l->initrd, l->initrd + rd_size);
	if (rc) {
		q_snprintf(err, errlen, "guest DT: %s", fdt_strerror(rc));
		rc = -EINVAL;
	} else if (fdt_totalsize(load_dtb) > l->dtb_room) {
		/* Only an ELF's room can be this short: QEMU then loads no DT, and neither does Quire. */
		printk("quire: %s: no room for the guest DT below ELF image '%s' (%lu bytes)\n", vm->name, image,
		       (unsigned long)l->dtb_room);
	} else {
		rc = vm_copy_in(vm, l->dtb, load_dtb, fdt_totalsize(load_dtb), cpu);
	}
	spin_unlock(&load_lock);
	return rc;
}

/*
 * Any kind of image, where image_layout puts it (the checker's layout
 * too): a Linux Image by the arm64 boot protocol, raw and ELF images as
 * QEMU's -kernel loads them, a Quire test guest at the RAM base with its
 * own contract (x0 = arg, x1 = RAM size, x3 = vCPUs).
 */
static int load_image(struct vm *vm, const struct vmcfg_image *k, unsigned cpu, char *err, size_t errlen)
{
	const struct vm_config *c = &vm->cfg;
	const struct vmcfg_image *rd = c->initramfs[0] ? guest_find(c->initramfs) : NULL;
	u64 rd_size = rd ? rd->size : 0;
	/* Linux gets Quire's default command line; raw and ELF images, as under QEMU, none unless asked. */
	const char *bootargs = c->bootargs_set ? c->bootargs : NULL;
	struct image_layout l;
	int rc = 0;

	if (c->initramfs[0] && !rd) {
		q_snprintf(err, errlen, "this build carries no image '%s'", c->initramfs);
		return -EINVAL;
	}
	if (image_layout(c, k->data, k->size, rd_size, &l, err, errlen))
		return -EINVAL;
	if (l.kind == IMAGE_LINUX && !c->bootargs_set)
		bootargs = LINUX_BOOTARGS;
	if (l.dtb)
		rc = load_dt(vm, &l, k->name, bootargs, rd_size, cpu, err, errlen);
	if (!rc)
		rc = load_segments(vm, &l, k->data, cpu);
	if (!rc && rd)
		rc = vm_copy_in(vm, l.initrd, rd->data, rd->size, cpu);
	if (rc) {
		if (rc != -EINVAL)
			q_snprintf(err, errlen, "cannot load '%s': %s", k->name, load_error(rc));
		return rc;
	}
	vm->vcpu[0]->entry = l.entry;
	vm->vcpu[0]->context = l.x0;
	/* x2 is the vCPU's index, 0 (vcpu_reset); x1 and x3 are 0 but for test guests. */
	if (l.kind == IMAGE_TEST_GUEST) {
		vm->vcpu[0]->args[1] = c->mem_size;
		vm->vcpu[0]->args[3] = c->vcpus;
	}
	return 0;
}

void vm_log_once(struct vm *vm, unsigned kind, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (atomic_fetch_or(&vm->logged, 1u << kind) & (1u << kind))
		return;
	va_start(ap, fmt);
	q_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf);
}

bool vm_power_off(struct vm *vm, const char *how)
{
	int s = VM_RUNNING;

	/* Only a running VM stops, once: the CAS picks the one caller that does. */
	if (!atomic_compare_exchange_strong(&vm->life, &s, VM_STOPPING))
		return false;
	vm->stop_us = clock_us();
	/* vCPUs leave on seeing off; the reap that follows needs life == STOPPING, set above. */
	atomic_store(&vm->off, true);
	printk("quire: %s %s (faults served %lu, resident %u pages, stage-2 tables %u pages, quota %u)\n",
	       vm->name, how, (unsigned long)atomic_load(&vm->pool.fills), atomic_load(&vm->pool.active),
	       atomic_load(&vm->pool.pgtables), vm->pool.quota);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpu[i]);
	return true;
}

static struct pool *vmm_pool;
static unsigned vm_ipa_bits, vm_ncpus;

void vm_system_init(struct pool *pool, unsigned ipa_bits, unsigned ncpus)
{
	vmm_pool = pool;
	vm_ipa_bits = ipa_bits;
	vm_ncpus = ncpus;
}


static struct vm *build(struct vm *slot, const struct vm_config *c, unsigned cpu, char *err, size_t errlen);

/*
 * A restart asked for (vm->restart) is done by whoever finds the VM STOPPED
 * and claims it (STOPPED -> STARTING) while the flag is set: the reaper at
 * the end of a teardown, or the monitor. The claim comes first and the flag
 * is taken under it, so the VM is never seen STOPPED with its restart
 * already taken but not begun (quire.exit=last-vm would power off then).
 * The flag and the state are each stored before the other is read, so a
 * restart asked for while another CPU gives its claim back is not lost.
 */
static void restart_if_asked(struct vm *vm, unsigned cpu)
{
	while (atomic_load(&vm->restart)) {
		int s = VM_STOPPED;
		struct vm_config cfg;
		char err[160];

		if (!atomic_compare_exchange_strong(&vm->life, &s, VM_STARTING))
			return; /* not stopped, or another CPU holds it: that one looks at the flag */
		if (!atomic_exchange(&vm->restart, false)) {
			atomic_store(&vm->life, VM_STOPPED); /* taken meanwhile: look again */
			continue;
		}
		cfg = vm->cfg;
		if (build(vm, &cfg, cpu, err, sizeof(err)))
			printk("quire: %s restarted with fresh memory\n", cfg.name);
		else
			printk("quire: %s cannot restart: %s\n", cfg.name, err);
		return;
	}
}

void vm_reap(struct vm *vm, unsigned cpu)
{
	int s = VM_STOPPING;
	u32 held;
	pidx_t i;

	for (unsigned k = 0; k < vm->nvcpus; k++)
		if (atomic_load(&vm->vcpu[k]->state) != VCPU_DEAD)
			return;
	/* A request still on the disk reads or writes its pages: the last completion reaps it. */
	if (!swap_vm_idle(vm))
		return;
	/* The last vCPU's CPU and a swap completion may both get here: one wins. */
	if (!atomic_compare_exchange_strong(&vm->life, &s, VM_REAPING))
		return;
	for (unsigned k = 0; k < vm->nvcpus; k++)
		sched_remove(vm->vcpu[k]);
	conmux_vm_reset(vm);
	/*
	 * Its devices as new, under each one's lock: a monitor command still in
	 * one (balloon_info giving back the stats buffer) finishes first, and
	 * none touches the VM's memory after it is gone.
	 */
	virtio_reset_all(vm);
	held = atomic_load(&vm->pool.charged);
	share_vm_stop(vm);
	s2_destroy(vm, swap_page_release, swap_release, block_release, cpu);
	while ((i = lfstack_pop(&vm->pool.idle, vm->pool.vmm->desc)) != PIDX_NONE)
		vmpool_give_back(&vm->pool, cpu, i, true);
	vmpool_fini(&vm->pool);
	vm->reaped_us = clock_us();
	printk("quire: %s: %u pages returned to the pool (%u still held)\n", vm->name, held,
	       atomic_load(&vm->pool.charged));
	atomic_store(&vm->life, VM_STOPPED);
	restart_if_asked(vm, cpu);
	/* After the restart, if one was asked: a VM it built is STARTING, not STOPPED. */
	vm_stopped_hook();
}

static struct vm *create_vm(const struct vm_config *c, unsigned id, unsigned cpu, char *err, size_t errlen)
{
	const struct vmcfg_image *g = guest_find(c->kernel);
	struct vm *vm = &vms[id - 1];
	int rc;

	if (!g) {
		q_snprintf(err, errlen, "no image named '%s' in this build", c->kernel);
		return NULL;
	}
	/* Not life and what follows it: this CPU holds the slot as VM_STARTING. */
	memset(vm, 0, offsetof(struct vm, life));
	vm->id = id;
	vm->cfg = *c;
	memcpy(vm->name, c->name, sizeof(vm->name));
	vm->ram_base = IPA(c->mem_base);
	vm->ram_size = c->mem_size;
	if (c->mem_base + c->mem_size > (1UL << vm_ipa_bits)) {
		q_snprintf(err, errlen, "its RAM does not fit a %u-bit IPA space", vm_ipa_bits);
		return NULL;
	}
	vmpool_init(&vm->pool, vmm_pool, id, vmconfig_quota_pages(c));
	swap_vm_init(vm);
	vm->nvcpus = c->vcpus;
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct vcpu *v = &vcpus[id - 1][i];

		memset(v, 0, sizeof(*v));
		v->vm = vm;
		v->index = i;
		atomic_init(&v->state, VCPU_OFF);
		vm->vcpu[i] = v;
	}
	rc = s2_init(vm, cpu);
	vm->s2.blocks_on &= vm->cfg.blocks;
	if (!rc)
		share_vm_init(vm);
	if (!rc) {
		struct vm_passthrough d = vm_arch_init(vm);

		for (u64 off = 0; off < d.size && !rc; off += PAGE_SIZE)
			rc = s2_map_page(vm, IPA(d.ipa.bits + off), d.pa + off, S2_R | S2_W | S2_DEVICE, cpu);
	}
	if (rc) {
		q_snprintf(err, errlen, "no pages for its stage-2 tables");
		return NULL;
	}
	vpl011_reset(vm);
	if (c->balloon)
		balloon_attach(vm, VMCFG_BALLOON_SLOT, c->balloon_oom);
	if (c->disk[0]) {
		/* Checked at boot (vmconfig_drop_vms); the table does not change after. */
		const struct gpt_part *p = disk_table() ? gpt_find(disk_table(), c->disk) : NULL;

		if (!p) {
			q_snprintf(err, errlen, "the host disk has no partition '%s' for its disk", c->disk);
			return NULL;
		}
		vdisk_attach(vm, VMCFG_DISK_SLOT, p, c->disk_ro);
	}
	if (c->net && !vnet_attach(vm, VMCFG_NET_SLOT, c->mac, cpu)) {
		q_snprintf(err, errlen, "no memory for its network port's ring");
		return NULL;
	}
	if (load_image(vm, g, cpu, err, errlen))
		return NULL;
	return vm;
}

/* Give back what a VM that could not be made holds (its tables, loaded pages). */
static void undo(struct vm *vm, unsigned cpu)
{
	share_vm_stop(vm);
	if (vm->s2.root)
		s2_destroy(vm, swap_page_release, swap_release, block_release, cpu);
	vmpool_fini(&vm->pool);
	atomic_store(&vm->off, true);
	atomic_store(&vm->life, VM_STOPPED);
}

/* Build the VM in slot, which this CPU holds as VM_STARTING; NULL (and STOPPED again) if it cannot. */
static struct vm *build(struct vm *slot, const struct vm_config *c, unsigned cpu, char *err, size_t errlen)
{
	bool again = slot->stop_us != 0; /* it ran and stopped before: a restart */
	struct vm *vm;
	char where[48];
	unsigned len = 0;
	int s;

	vm = create_vm(c, (unsigned)(slot - vms) + 1, cpu, err, errlen);
	if (!vm) {
		undo(slot, cpu);
		return NULL;
	}
	vm->report_start = again;
	/* Each vCPU on the least-loaded CPU its affinity allows: a VM's vCPUs spread out. */
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		unsigned p = sched_place(c->cpus, vm_ncpus);

		sched_add(vm->vcpu[i], p);
		len += q_snprintf(where + len, sizeof(where) - len, "%s%u", i ? "," : "", p);
	}
	printk("quire: %s: %s, %u vCPU%s on CPU %s, %lu MiB RAM at 0x%lx on demand, resident limit %lu MiB\n",
	       vm->name, c->kernel, vm->nvcpus, vm->nvcpus > 1 ? "s" : "", where,
	       (unsigned long)(c->mem_size >> 20), (unsigned long)c->mem_base,
	       (unsigned long)(c->resident_limit >> 20));
	/*
	 * RUNNING before its first vCPU may run, so that vCPU's power-off finds
	 * it RUNNING; a kill in between leaves vCPU 0 OFF, and the CAS sees that.
	 */
	atomic_store(&vm->life, VM_RUNNING);
	s = VCPU_OFF;
	atomic_compare_exchange_strong(&vm->vcpu[0]->state, &s, VCPU_START);
	vcpu_kick(vm->vcpu[0]);
	return vm;
}

struct vm *vm_create(const struct vm_config *c, unsigned id, unsigned cpu, char *err, size_t errlen)
{
	struct vm *slot = &vms[id - 1];
	int s = atomic_load(&slot->life);

	/* Only an empty slot or a VM whose teardown is over can be built: this CPU claims it. */
	if ((s != VM_EMPTY && s != VM_STOPPED) || !atomic_compare_exchange_strong(&slot->life, &s, VM_STARTING)) {
		q_snprintf(err, errlen, "it is %s", vm_state_name(s));
		return NULL;
	}
	return build(slot, c, cpu, err, errlen);
}

/* --- lifecycle, for the monitor ---------------------------------------- */

enum vm_state vm_state(const struct vm *vm)
{
	int s = vm ? atomic_load(&vm->life) : VM_EMPTY;

	return s == VM_RUNNING && atomic_load(&vm->paused) ? VM_PAUSED : s;
}

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = { "empty", "starting", "running", "paused", "stopping", "reaping",
					     "stopped" };

	return s <= VM_STOPPED ? names[s] : "?";
}

struct vm *vm_get(unsigned id)
{
	return id >= 1 && id <= MAX_VMS && atomic_load(&vms[id - 1].life) != VM_EMPTY ? &vms[id - 1] : NULL;
}

struct vm *vm_find(const char *name)
{
	unsigned id = 0;
	const char *p = name;

	for (; *p >= '0' && *p <= '9' && id < 100; p++)
		id = id * 10 + (*p - '0');
	if (p != name && !*p)
		return vm_get(id);
	for (unsigned i = 0; i < MAX_VMS; i++)
		if (atomic_load(&vms[i].life) != VM_EMPTY && !strcmp(vms[i].name, name))
			return &vms[i];
	return NULL;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpu[i]);
}

/* Pause (or resume) a running (paused) VM; its CPUs look at their run queues again. */
static int set_paused(struct vm *vm, bool pause)
{
	if (vm_state(vm) != (pause ? VM_RUNNING : VM_PAUSED))
		return -EINVAL;
	if (pause) {
		atomic_store(&vm->paused_at, clock_ticks());
	} else if (!atomic_load(&vm->loaded)) {
		/*
		 * Its time stood still from when its last vCPU left: move its
		 * virtual counter back by that much, before any vCPU can load
		 * again (none can while paused). A vCPU still loaded never saw
		 * the pause, so then its time ran on and nothing moves.
		 */
		u64 now = clock_ticks(), at = atomic_load(&vm->paused_at);

		if (now > at)
			vm->cntvoff += now - at;
	}
	atomic_store(&vm->paused, pause);
	kick_all(vm);
	return 0;
}

int vm_pause(struct vm *vm)
{
	return set_paused(vm, true);
}

int vm_resume(struct vm *vm)
{
	return set_paused(vm, false);
}

int vm_kill(struct vm *vm)
{
	enum vm_state s = vm_state(vm);

	if (s != VM_RUNNING && s != VM_PAUSED)
		return -EINVAL;
	vm_power_off(vm, "killed");
	return 0;
}

int vm_restart(struct vm *vm, unsigned cpu)
{
	switch (vm_state(vm)) {
	case VM_RUNNING:
	case VM_PAUSED:
		atomic_store(&vm->restart, true); /* before anyone can see it off and reap it */
		vm_power_off(vm, "stopped for a restart");
		return 0;
	case VM_STOPPING:
	case VM_REAPING:
	case VM_STOPPED:
		/* Done at once if it is stopped, else by whoever ends its teardown. */
		atomic_store(&vm->restart, true);
		restart_if_asked(vm, cpu);
		return 0;
	default:
		return -EINVAL;
	}
}
