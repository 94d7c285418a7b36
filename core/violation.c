/*
 * The access-violation handler: a stage-2 abort taken from a guest.
 *
 * A translation fault in guest RAM is the normal case: the VM's pool gives a
 * zeroed page and it is mapped. Two vCPUs may fault on the same page at once:
 * the second finds it mapped and just retries, or, if both got as far as
 * taking a page, one installs it and the other keeps its page (still charged,
 * still zero) in the VM's idle set for the next fault. A write to a page
 * mapped read-only for sharing is a permission fault: share_cow().
 */
#include <quire/errno.h>
#include <quire/share.h>
#include <quire/vm.h>

enum vio_result violation_handle(struct vm *vm, const struct s2_fault *f, unsigned cpu)
{
	ipa_t page = IPA(ALIGN_DOWN(f->ipa.bits, PAGE_SIZE));
	struct pool *p = vm->pool.vmm;
	struct s2_slot slot;
	struct mpage *d;
	pidx_t i;
	int why = 0, rc;

	if (!vm_in_ram(vm, f->ipa))
		return VIO_SEA_OUTSIDE;
	/* A write to a read-only page: one shared, the zero page or an image's (copy-on-write). */
	if (f->cls == FAULT_PERMISSION && f->write)
		return share_cow(vm, page, cpu);
	if (f->cls != FAULT_TRANSLATION)
		return VIO_UNHANDLED;

	rc = s2_prepare(vm, page, cpu, &slot);
	if (rc == -EEXIST)
		return VIO_RACED; /* mapped meanwhile by another vCPU, or a stale TLB entry */
	if (rc) {
		why = rc == -EDQUOT ? 1 : 2;
		goto refused;
	}
	i = vmpool_take(&vm->pool, cpu, &why);
	if (i == PIDX_NONE) {
		if (s2_lookup(vm, page))
			return VIO_RACED;
		goto refused;
	}
	d = pool_desc(p, i);
	d->gpn = page.bits >> PAGE_SHIFT;
	atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
	atomic_store_explicit(&d->flags, MP_ACTIVE | MP_ZEROED, memory_order_relaxed);
	rc = s2_fill(vm, &slot, pool_pa(p, i), S2_RWX);
	if (rc == -EEXIST) {
		d->gpn = 0;
		atomic_store_explicit(&d->refcount, 0, memory_order_relaxed);
		atomic_store_explicit(&d->flags, MP_IDLE | MP_ZEROED, memory_order_relaxed);
		lfstack_push(&vm->pool.idle, p->desc, i);
		return VIO_RACED;
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
