/*
 * The access-violation handler: a stage-2 abort taken from a guest.
 *
 * A translation fault in guest RAM is the normal case: the VM's pool gives a
 * zeroed page and it is mapped. Two vCPUs may fault on the same page at once;
 * both take a page, one installs it, the other gives its page back.
 */
#include <quire/errno.h>
#include <quire/vm.h>

enum vio_result violation_handle(struct vm *vm, const struct s2_fault *f, unsigned cpu)
{
	ipa_t page = IPA(ALIGN_DOWN(f->ipa.bits, PAGE_SIZE));
	struct pool *p = vm->pool.vmm;
	struct mpage *d;
	pidx_t i;
	int why = 0, rc;

	if (!vm_in_ram(vm, f->ipa))
		return VIO_SEA_OUTSIDE;
	if (f->cls != FAULT_TRANSLATION)
		return VIO_UNHANDLED;

	i = vmpool_take(&vm->pool, cpu, &why);
	if (i == PIDX_NONE)
		goto refused;
	d = pool_desc(p, i);
	d->gpn = page.bits >> PAGE_SHIFT;
	atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
	atomic_store_explicit(&d->flags, MP_ACTIVE | MP_ZEROED, memory_order_relaxed);
	rc = s2_map_page(vm, page, pool_pa(p, i), S2_RWX, cpu);
	if (rc) {
		vmpool_give_back(&vm->pool, cpu, i, true);
		if (rc == -EEXIST)
			return VIO_RACED;
		why = rc == -EDQUOT ? 1 : 2;
		goto refused;
	}
	atomic_fetch_add_explicit(&vm->pool.active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->pool.fills, 1, memory_order_relaxed);
	return VIO_MAPPED;

refused:
	if (why == 1) {
		atomic_fetch_add_explicit(&vm->pool.quota_hits, 1, memory_order_relaxed);
		return VIO_SEA_QUOTA;
	}
	return VIO_SEA_NOMEM;
}

const char *vio_result_name(enum vio_result r)
{
	switch (r) {
	case VIO_MAPPED:
		return "mapped";
	case VIO_RACED:
		return "raced";
	case VIO_SEA_OUTSIDE:
		return "outside RAM and devices";
	case VIO_SEA_QUOTA:
		return "page quota exhausted";
	case VIO_SEA_NOMEM:
		return "machine out of pages";
	case VIO_UNHANDLED:
		return "unhandled fault class";
	}
	return "?";
}
