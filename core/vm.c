/*
 * Creating VMs: the pool and stage-2 tables, the guest image copied into
 * pages mapped before the first instruction, and the vCPUs.
 */
#include <stdarg.h>
#include <string.h>
#include <libfdt.h>
#include <quire/console.h>
#include <quire/vdev.h>
#include <quire/errno.h>
#include <quire/guest.h>
#include <quire/printf.h>
#include <quire/spinlock.h>
#include <quire/vcpu.h>
#include <quire/vmconfig.h>

static struct vm vms[MAX_VMS];
static struct vcpu vcpus[MAX_VMS][MAX_VCPUS];

struct vm_console {
	spinlock_t lock;
	char line[160];
	unsigned len;
};
static struct vm_console consoles[MAX_VMS];

const struct guest_image *guest_find(const char *name)
{
	for (const struct guest_image *g = guest_images; g->name; g++)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

void vm_console_putc(struct vm *vm, char c)
{
	struct vm_console *con = &consoles[vm->id - 1];

	spin_lock(&con->lock);
	if (c != '\n' && c != '\r' && con->len < sizeof(con->line) - 1)
		con->line[con->len++] = c;
	if (c == '\n' || con->len == sizeof(con->line) - 1) {
		con->line[con->len] = '\0';
		printk("%s: %s\n", vm->name, con->line);
		con->len = 0;
	}
	spin_unlock(&con->lock);
}

/* Copy len bytes to guest-physical at (page aligned), into pages mapped before the guest runs. */
static int copy_in(struct vm *vm, u64 at, const u8 *data, u64 len, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;

	for (u64 off = 0; off < len; off += PAGE_SIZE) {
		int why = 0, rc;
		bool whole = len - off >= PAGE_SIZE;
		pidx_t i = whole ? vmpool_take_for_copy(&vm->pool, cpu, &why) : vmpool_take(&vm->pool, cpu, &why);
		ipa_t ipa = IPA(at + off);

		if (i == PIDX_NONE)
			return why == 1 ? -EDQUOT : -ENOMEM;
		memcpy((void *)(uintptr_t)pool_pa(p, i), data + off, MIN(PAGE_SIZE, len - off));
		page_sync_for_guest(pool_pa(p, i));
		pool_desc(p, i)->gpn = ipa.bits >> PAGE_SHIFT;
		atomic_store(&pool_desc(p, i)->refcount, 1);
		atomic_store(&pool_desc(p, i)->flags, MP_ACTIVE);
		rc = s2_map_page(vm, ipa, pool_pa(p, i), S2_RWX, cpu);
		if (rc)
			return rc;
		atomic_fetch_add(&vm->pool.active, 1);
	}
	return 0;
}

int guest_dt_build(const void *tmpl, void *buf, int size, const struct vm *vm, const char *bootargs,
		   u64 initrd_start, u64 initrd_end);

#define LINUX_BOOTARGS "console=ttyAMA0 earlycon=pl011,mmio32,0x9000000 panic=-1"

/*
 * A Linux guest as the arm64 boot protocol wants it: the DT at the start of
 * RAM, the kernel 2 MiB in (plus its text_offset), the initramfs at 128 MiB
 * or past the kernel, x0 = the DT.
 */
static int load_linux(struct vm *vm, unsigned cpu, char *err, size_t errlen)
{
	static u8 dtb[64 << 10] __aligned(8);
	const struct guest_image *k = guest_find("linux"), *rd = guest_find("linux_initrd");
	const struct guest_image *t = guest_find("guest_dtb");
	u64 text_offset, image_size, kernel, initrd;
	int rc;

	if (!k || !rd || !t || k->size < 64 || memcmp(k->data + 56, "ARM\x64", 4)) {
		q_snprintf(err, errlen, "this build carries no arm64 Linux Image, initramfs and guest DT");
		return -EINVAL;
	}
	memcpy(&text_offset, k->data + 8, 8);
	memcpy(&image_size, k->data + 16, 8);
	kernel = vm->ram_base.bits + SZ_2M + text_offset;
	initrd = ALIGN_UP(kernel + MAX(image_size, k->size), SZ_2M);
	initrd = MAX(initrd, vm->ram_base.bits + MiB(128));
	if (initrd + rd->size > vm->ram_base.bits + vm->ram_size) {
		q_snprintf(err, errlen, "%lu MiB of RAM cannot hold the kernel and initramfs",
			   (unsigned long)(vm->ram_size >> 20));
		return -EINVAL;
	}
	rc = guest_dt_build(t->data, dtb, sizeof(dtb), vm, LINUX_BOOTARGS, initrd, initrd + rd->size);
	if (rc) {
		q_snprintf(err, errlen, "guest DT: %s", fdt_strerror(rc));
		return -EINVAL;
	}
	if ((rc = copy_in(vm, vm->ram_base.bits, dtb, fdt_totalsize(dtb), cpu)) ||
	    (rc = copy_in(vm, kernel, k->data, k->size, cpu)) ||
	    (rc = copy_in(vm, initrd, rd->data, rd->size, cpu))) {
		q_snprintf(err, errlen, "cannot load Linux: %s",
			   rc == -EDQUOT ? "its page quota is too small" : "out of machine pages");
		return rc;
	}
	vm->vcpu[0]->entry = kernel;
	vm->vcpu[0]->context = vm->ram_base.bits; /* x0: the DT */
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

void vm_power_off(struct vm *vm, const char *how)
{
	if (atomic_exchange(&vm->off, true))
		return;
	printk("quire: %s %s (fills %lu, resident %u pages, stage-2 tables %u pages, quota %u)\n",
	       vm->name, how, (unsigned long)atomic_load(&vm->pool.fills), atomic_load(&vm->pool.active),
	       atomic_load(&vm->pool.pgtables), vm->pool.quota);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpu[i]);
}

static unsigned vm_ipa_bits;

static void give_page(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i = pool_pidx_of(vm->pool.vmm, pa);

	(void)ipa;
	if (i == PIDX_NONE)
		return; /* a device frame (the GIC CPU interface), not RAM */
	atomic_fetch_sub(&vm->pool.active, 1);
	vmpool_give_back(&vm->pool, cpu, i, false);
}

void vm_reap(struct vm *vm, unsigned cpu)
{
	char err[160];
	u32 held;
	pidx_t i;

	for (unsigned k = 0; k < vm->nvcpus; k++)
		if (atomic_load(&vm->vcpu[k]->state) != VCPU_DEAD)
			return;
	if (atomic_exchange(&vm->reaped, true))
		return;
	held = atomic_load(&vm->pool.charged);
	s2_destroy(vm, give_page, cpu);
	while ((i = lfstack_pop(&vm->pool.idle, vm->pool.vmm->desc)) != PIDX_NONE)
		vmpool_give_back(&vm->pool, cpu, i, true);
	printk("quire: %s: %u pages returned to the pool (%u still held)\n", vm->name, held,
	       atomic_load(&vm->pool.charged));
	if (!atomic_load(&vm->restart))
		return;
	struct vm_config cfg = vm->cfg;
	if (!vm_create(&cfg, vm->id, vm->pool.vmm, vm_ipa_bits, vm->first_cpu, cpu, err, sizeof(err)))
		printk("quire: %s cannot restart: %s\n", vm->name, err);
	else
		printk("quire: %s restarted with fresh memory\n", vm->name);
}

struct vm *vm_create(const struct vm_config *c, unsigned id, struct pool *pool, unsigned ipa_bits,
		     unsigned first_cpu, unsigned cpu, char *err, size_t errlen)
{
	const struct guest_image *g = guest_find(c->guest);
	struct vm *vm = &vms[id - 1];
	int rc;

	if (!g) {
		q_snprintf(err, errlen, "no guest image named '%s' in this build", c->guest);
		return NULL;
	}
	memset(vm, 0, sizeof(*vm));
	vm->id = id;
	vm->cfg = *c;
	vm->first_cpu = first_cpu;
	vm_ipa_bits = ipa_bits;
	q_snprintf(vm->name, sizeof(vm->name), "vm%u", id);
	vm->ram_base = IPA(GUEST_RAM_BASE);
	vm->ram_size = c->mem_mib << 20;
	if (vm->ram_base.bits + vm->ram_size > (1UL << ipa_bits)) {
		q_snprintf(err, errlen, "%lu MiB of RAM at 0x%lx does not fit a %u-bit IPA space",
			   (unsigned long)c->mem_mib, vm->ram_base.bits, ipa_bits);
		return NULL;
	}
	if (g->size > vm->ram_size) {
		q_snprintf(err, errlen, "guest '%s' (%lu bytes) is larger than its RAM", g->name,
			   (unsigned long)g->size);
		return NULL;
	}
	vmpool_init(&vm->pool, pool, id, c->quota);
	vm->nvcpus = c->vcpus;
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct vcpu *v = &vcpus[id - 1][i];

		memset(v, 0, sizeof(*v));
		v->vm = vm;
		v->index = i;
		atomic_init(&v->state, VCPU_OFF);
		vm->vcpu[i] = v;
		vcpu_pin(v, first_cpu + i);
	}
	rc = s2_init(vm, cpu);
	if (!rc)
		rc = vm_arch_init(vm, cpu);
	if (rc) {
		q_snprintf(err, errlen, "no pages for its stage-2 tables");
		return NULL;
	}
	vpl011_reset(vm);
	if (!strcmp(g->name, "linux")) {
		if (load_linux(vm, cpu, err, errlen))
			return NULL;
	} else {
		rc = copy_in(vm, vm->ram_base.bits, g->data, g->size, cpu);
		if (rc) {
			q_snprintf(err, errlen, "cannot load guest '%s': %s", g->name,
				   rc == -EDQUOT ? "its page quota is too small" : "out of machine pages");
			return NULL;
		}
		/* Test guests start at their first byte; x0 = arg, x1 = RAM size, x2 = index, x3 = vCPUs. */
		vm->vcpu[0]->entry = vm->ram_base.bits;
		vm->vcpu[0]->context = c->arg;
		vm->vcpu[0]->args[1] = vm->ram_size;
		vm->vcpu[0]->args[3] = c->vcpus;
	}
	atomic_store(&vm->vcpu[0]->state, VCPU_START);
	vcpu_kick(vm->vcpu[0]);
	return vm;
}
