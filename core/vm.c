/*
 * Creating VMs: the pool and stage-2 tables, the guest image copied into
 * pages mapped before the first instruction, and the vCPUs.
 */
#include <string.h>
#include <quire/console.h>
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

static int load_image(struct vm *vm, const struct guest_image *g, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;

	for (u64 off = 0; off < g->size; off += PAGE_SIZE) {
		int why = 0, rc;
		pidx_t i = vmpool_take(&vm->pool, cpu, &why);
		ipa_t ipa = IPA(vm->ram_base.bits + off);

		if (i == PIDX_NONE)
			return why == 1 ? -EDQUOT : -ENOMEM;
		memcpy((void *)(uintptr_t)pool_pa(p, i), g->data + off, MIN(PAGE_SIZE, g->size - off));
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

struct vm *vm_create(const struct vm_config *c, unsigned id, struct pool *pool, unsigned ipa_bits,
		     unsigned cpu, char *err, size_t errlen)
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
	rc = s2_init(vm, cpu);
	if (!rc)
		rc = load_image(vm, g, cpu);
	if (rc) {
		q_snprintf(err, errlen, "cannot load guest '%s': %s", g->name,
			   rc == -EDQUOT ? "its page quota is too small" : "out of machine pages");
		return NULL;
	}
	vm->nvcpus = c->vcpus;
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct vcpu *v = &vcpus[id - 1][i];

		memset(v, 0, sizeof(*v));
		v->vm = vm;
		v->index = i;
		atomic_init(&v->state, VCPU_OFF);
		vm->vcpu[i] = v;
	}
	/* vCPU 0 starts at the image's first byte; x0 = arg, x1 = RAM size, x2 = index, x3 = vCPUs. */
	vm->vcpu[0]->entry = vm->ram_base.bits;
	vm->vcpu[0]->context = c->arg;
	vm->vcpu[0]->args[1] = vm->ram_size;
	vm->vcpu[0]->args[3] = c->vcpus;
	atomic_store(&vm->vcpu[0]->state, VCPU_START);
	return vm;
}
