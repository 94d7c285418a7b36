/*
 * The access-violation handler: a stage-2 abort taken from a guest.
 *
 * A translation fault in guest RAM is the normal case: the VM's pool gives a
 * zeroed page and it is mapped. Two vCPUs may fault on the same page at once:
 * the second finds it mapped and just retries, or, if both got as far as
 * taking a page, one installs it and the other keeps its page (still charged,
 * still zero) in the VM's idle set for the next fault. A write to a page
 * mapped read-only for sharing is a permission fault: share_cow(). Past
 * the resident limit of a VM with swap, and on a page swapped out, the
 * swap code answers (core/swap*.c).
 *
 * A page filled for a data access is mapped execute-never; the first
 * instruction fetch from it is a permission fault that invalidates the
 * page's instruction-cache lines and then lets the guest execute it (KVM
 * does the same). So the fill path pays nothing for the instruction caches,
 * and no guest can fetch instructions a page's previous owner left there.
 */
#include <quire/balloon.h>
#include <quire/errno.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>

/* Out of pages for this VM: with swap, make room on the disk; without, the guest gets an abort. */
static enum vio_result no_room(struct vm *vm, enum vio_result r, unsigned cpu)
{
	if (r == VIO_SEA_QUOTA)
		atomic_fetch_add_explicit(&vm->pool.quota_hits, 1, memory_order_relaxed);
	return vm->swap.on ? swap_make_room(vm, cpu) : r;
}

/* An instruction fetch from a page mapped execute-never: forget stale instructions, then allow it. */
static enum vio_result exec_fault(struct vm *vm, ipa_t page)
{
	struct s2_leaf l;

	if (!s2_get(vm, page, &l))
		return VIO_RACED; /* unmapped or being changed meanwhile: the retry faults again */
	/* Executable already: only this CPU's TLB entry is stale; s2_grant_exec drops it. */
	if (!(l.prot & S2_X))
		page_sync_icache(l.pa);
	return s2_grant_exec(vm, page, l.pa) == 1 ? VIO_MAPPED : VIO_RACED;
}

/* Every fault but a translation fault: a TLB conflict, the access flag, a permission. */
static enum vio_result other_fault(struct vm *vm, enum fault_class cls, bool write, ipa_t ipa, ipa_t page, bool exec,
				   unsigned cpu)
{
	enum vio_result r;

	/*
	 * A TLB conflict abort: this CPU's TLB holds overlapping entries of the
	 * VM's (HPFAR_EL2 is not valid for it). Forget them here and retry.
	 */
	if (cls == FAULT_TLB_CONFLICT) {
		s2_flush_tlb_local(vm);
		return VIO_RACED;
	}
	if (!vm_in_ram(vm, ipa))
		return VIO_SEA_OUTSIDE;
	/* The CPU does not set the access flag itself (no FEAT_HAFDBS): the swap clock cleared it. */
	if (cls == FAULT_ACCESS_FLAG) {
		if (s2_set_young(vm, page) == 2)
			swap_ahead_used(vm, page, cpu);
		return VIO_RACED;
	}
	/* A write to a read-only page: one read back from swap, shared, the zero page or an image's. */
	if (cls == FAULT_PERMISSION && write) {
		if (vm->swap.on && (r = swap_write_fault(vm, page)) != VIO_UNHANDLED)
			return r;
		r = share_cow(vm, page, cpu);
		return r == VIO_SEA_QUOTA || r == VIO_SEA_NOMEM ? no_room(vm, r, cpu) : r;
	}
	if (cls == FAULT_PERMISSION && exec)
		return exec_fault(vm, page);
	return VIO_UNHANDLED;
}

/*
 * Fill-ahead: a fault on the first page of a 2 MiB block of RAM, right after
 * a fill of the page before it, is a guest walking its memory in order: map
 * the whole block at once (s2_fill_block), if the VM has room for its 512
 * pages and the pool a free run. Not for an instruction fetch (a block is
 * execute-never). Out of line: the 4 KiB fill pays only the compare.
 */
static __attribute__((noinline)) bool fill_ahead(struct vm *vm, ipa_t page, unsigned cpu)
{
	if (!vm->s2.blocks_on || !vm_in_ram(vm, IPA(page.bits + S2_BLOCK_SIZE - 1)) ||
	    s2_fill_block(vm, page, cpu))
		return false;
	atomic_store_explicit(&vm->s2.seq_next, page.bits + S2_BLOCK_SIZE, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->pool.fills, 1, memory_order_relaxed);
	return true;
}

/*
 * Inlined into each of its callers (LTO): the exit path's (exit_abort), which
 * keeps the decoded fault in registers and folds the result, and gmem's.
 * Called out of line (gmem_copy made it a second caller), a fill paid 26 more
 * instructions: the fault written to the stack and read back, a prologue and
 * epilogue, the result tested again.
 */
__attribute__((always_inline)) inline enum vio_result violation_handle(struct vm *vm, const struct s2_fault *f,
								      unsigned cpu)
{
	ipa_t page = IPA(ALIGN_DOWN(f->ipa.bits, PAGE_SIZE));
	struct pool *p = vm->pool.vmm;
	struct s2_slot slot;
	struct mpage *d;
	pidx_t i;
	int why = 0, rc;
	/* A fetch of an instruction, not a walk of a stage-1 table for one (S1PTW: a data access). */
	bool exec = f->instr && !f->s1ptw;

	/* The first touch of a page, the common case, first. */
	if (f->cls != FAULT_TRANSLATION)
		return other_fault(vm, f->cls, f->write, f->ipa, page, exec, cpu);
	if (!vm_in_ram(vm, f->ipa))
		return VIO_SEA_OUTSIDE;
	/* A block boundary first: one test for the 511 faults in 512 that are not on one. */
	if (__builtin_expect(!(page.bits & (S2_BLOCK_SIZE - 1)), 0) &&
	    page.bits == atomic_load_explicit(&vm->s2.seq_next, memory_order_relaxed) && !exec &&
	    fill_ahead(vm, page, cpu))
		return VIO_MAPPED;
	rc = s2_prepare(vm, page, cpu, &slot);
	if (rc == -EEXIST)
		/* Swapped out or on its way; else mapped meanwhile by another vCPU, or a stale TLB entry. */
		return vm->swap.on ? swap_fault(vm, page, &slot, f->write, cpu) : VIO_RACED;
	if (rc == -EAGAIN)
		return VIO_RACED; /* a block maps it since */
	if (rc)
		return no_room(vm, rc == -EDQUOT ? VIO_SEA_QUOTA : VIO_SEA_NOMEM, cpu);
	if (!vmpool_activate(&vm->pool))
		return no_room(vm, VIO_SEA_QUOTA, cpu);
	i = vmpool_take(&vm->pool, cpu, &why);
	if (i == PIDX_NONE) {
		atomic_fetch_sub_explicit(&vm->pool.active, 1, memory_order_relaxed);
		if (s2_lookup(vm, page))
			return VIO_RACED;
		return no_room(vm, why == 2 ? VIO_SEA_NOMEM : VIO_SEA_QUOTA, cpu);
	}
	d = pool_desc(p, i);
	d->gpn = page.bits >> PAGE_SHIFT;
	atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
	atomic_store_explicit(&d->flags, MP_ACTIVE | MP_ZEROED, memory_order_relaxed);
	/*
	 * A fetch needs the page executable now: its instruction-cache lines go
	 * first. Two calls with constant permissions, so each leaf folds (the
	 * variable one cost the data path 24 instructions).
	 */
	if (exec) {
		page_sync_icache(pool_pa(p, i));
		rc = s2_fill(vm, &slot, pool_pa(p, i), S2_RWX);
	} else {
		rc = s2_fill(vm, &slot, pool_pa(p, i), S2_R | S2_W);
	}
	if (rc == -EEXIST) {
		d->gpn = 0;
		atomic_store_explicit(&d->refcount, 0, memory_order_relaxed);
		atomic_store_explicit(&d->flags, MP_IDLE | MP_ZEROED, memory_order_relaxed);
		lfstack_push(&vm->pool.idle, p->desc, i);
		atomic_fetch_sub_explicit(&vm->pool.active, 1, memory_order_relaxed);
		return VIO_RACED;
	}
	atomic_store_explicit(&vm->s2.seq_next, page.bits + PAGE_SIZE, memory_order_relaxed);
	/* Every 256th fill of a VM: is the machine short enough to ask balloons first? */
	if (!(atomic_fetch_add_explicit(&vm->pool.fills, 1, memory_order_relaxed) & 255))
		balloon_policy(cpu);
	swap_ahead(vm, page, cpu);
	return VIO_MAPPED;
}

const char *fault_class_name(enum fault_class c)
{
	static const char *const names[] = {
		[FAULT_ADDR_SIZE] = "address size fault",	[FAULT_TRANSLATION] = "translation fault",
		[FAULT_ACCESS_FLAG] = "access flag fault",	[FAULT_PERMISSION] = "permission fault",
		[FAULT_EXTERNAL] = "synchronous external abort", [FAULT_ALIGNMENT] = "alignment fault",
		[FAULT_TLB_CONFLICT] = "TLB conflict abort",	[FAULT_OTHER] = "other fault",
	};

	return (unsigned)c < ARRAY_SIZE(names) ? names[c] : "invalid fault class";
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
	case VIO_WAIT:
		return "waiting for the swap disk";
	case VIO_STOP:
		return "VM stopped";
	}
	return "?";
}
