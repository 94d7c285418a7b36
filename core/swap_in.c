/*
 * Swap-in: a fault on a swapped page reads it back, with the pages in the slots
 * after it; the completion maps them clean, the wanted one young and the rest
 * old and marked as read ahead.
 */
#include <quire/clock.h>
#include <quire/s2_entry.h>
#include "swap_priv.h"

/*
 * Read back: each page is mapped clean (read-only, its copy kept in its
 * slot), the one a vCPU faulted on young (writable at once after a write
 * fault), the rest old and marked as read ahead.
 */
static void read_done(struct blk_req *r, unsigned cpu)
{
	u64 t0 = clock_ticks();
	struct swap_io *io = r->ctx;
	struct vm *vm = io->vm;
	u32 n = r->npages, ahead = n - (io->fault_read ? 1u : 0u);

	if (r->status) {
		/* Nothing was read: each leaf is the swap entry again, each page goes (or stays out, BLK_LOST). */
		for (u32 k = 0; k < n; k++) {
			atomic_store_explicit(io->leaf[k].e, s2e_make(io->slot + k, false), memory_order_release);
			atomic_fetch_sub(&vm->pool.active, 1);
			if (r->status == BLK_LOST)
				swap_page_lost(vm, io->page[k]);
			else
				vmpool_give_back(&vm->pool, cpu, io->page[k], false);
		}
		swap_disk_failed(vm, io);
		swap_io_finished(io, cpu);
		atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
		return;
	}
	for (u32 k = 0; k < n; k++) {
		pidx_t i = io->page[k];
		paddr_t pa = pool_pa(sw.pool, i);
		struct mpage *d = swap_desc(i);
		bool wanted = io->fault_read && k == 0;
		unsigned prot = S2_R | S2_X;

		d->gpn = io->ipa[k] >> PAGE_SHIFT;
		atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
		if (wanted && io->fault_write) {
			atomic_store_explicit(&d->flags, MP_ACTIVE, memory_order_relaxed);
			swap_slot_free(vm, io->slot + k);
			prot |= S2_W;
		} else {
			atomic_store_explicit(&d->next, (u32)(io->slot + k), memory_order_relaxed);
			atomic_store_explicit(&d->flags, MP_ACTIVE | MP_SWAPCACHE, memory_order_relaxed);
		}
		if (!wanted)
			prot |= S2_OLD | S2_AHEAD;
		/*
		 * The guest may run with its caches off: what the disk wrote is
		 * cleaned and invalidated to PoC (and complete: the DSB inside)
		 * before the leaf maps it (if it is code, its first fetch faults:
		 * violation.c).
		 */
		page_sync_for_guest(pa);
		s2_install(vm, &io->leaf[k], pa, prot);
	}
	/* Counters, once per request: the pages are mapped already; readers of these only count. */
	atomic_fetch_sub(&vm->pool.swapped, n);
	atomic_fetch_add(&vm->swap.ins, n);
	atomic_fetch_add(&sw.ins, n);
	if (ahead)
		atomic_fetch_add(&sw.ahead, ahead);
	swap_io_finished(io, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
}

/*
 * Take the swapped leaf e (slot first + k of a run) into io as page k: a
 * page within the resident limit, the leaf in transit. false if it cannot
 * (limit, no page, or the leaf changed).
 */
bool swap_take_leaf(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u64 expect, ipa_t ipa,
		    unsigned cpu)
{
	int why;
	pidx_t i;

	if (!vmpool_activate(&vm->pool))
		return false;
	i = vmpool_take_for_copy(&vm->pool, cpu, &why);
	if (i == PIDX_NONE || !atomic_compare_exchange_strong(e, &expect, s2e_make(s2e_slot(expect), true))) {
		if (i != PIDX_NONE)
			vmpool_give_back(&vm->pool, cpu, i, false);
		atomic_fetch_sub(&vm->pool.active, 1);
		return false;
	}
	io->ipa[k] = ipa.bits;
	io->leaf[k].e = e;
	io->page[k] = i;
	return true;
}

/*
 * Pages after io's k pages in the same leaf table (e is the k-th leaf) that
 * are swapped in the slots right after, up to want pages in all: a run the
 * disk reads in one request.
 */
u32 swap_extend_run(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u32 want, unsigned cpu)
{
	u64 ipa = io->ipa[0] + (u64)k * PAGE_SIZE;

	for (; k < want && ipa % (PAGE_SIZE << 9); k++, e++, ipa += PAGE_SIZE) {
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		if (!s2e_swapped(v) || s2e_slot(v) != io->slot + k || !swap_take_leaf(vm, io, k, e, v, IPA(ipa), cpu))
			break;
	}
	return k;
}

void swap_read_run(struct swap_io *io, u32 n, unsigned cpu)
{
	if (swap_submit(io, n, false, read_done)) {
		io->r.status = -EIO;
		read_done(&io->r, cpu);
	}
}

enum vio_result swap_fault(struct vm *vm, ipa_t page, struct s2_slot *slot, bool write, unsigned cpu)
{
	u64 e = atomic_load_explicit(slot->e, memory_order_acquire);
	struct swap_io *io;
	u64 t0 = clock_ticks();
	u32 n;

	if (s2e_transit(e)) {
		atomic_fetch_add(&vm->swap.waits, 1);
		atomic_fetch_add(&sw.waits, 1);
		return VIO_WAIT;
	}
	if (!s2e_swapped(e))
		return VIO_RACED; /* mapped, or claimed for a moment */
	io = swap_io_get(vm);
	if (!io)
		return VIO_WAIT; /* every request is on the disk */
	if (!swap_take_leaf(vm, io, 0, slot->e, e, page, cpu)) {
		swap_io_unused(io);
		if (atomic_load(slot->e) != e)
			return VIO_RACED; /* another vCPU took it */
		return swap_make_room(vm, cpu);
	}
	/* Sequential: the last run read for a fault ended at this page. */
	if (atomic_load_explicit(&vm->swap.ra_next, memory_order_relaxed) == page.bits)
		swap_ra_grow(vm);
	else
		swap_ra_shrink(vm);
	io->slot = s2e_slot(e);
	io->fault_read = true;
	io->fault_write = write;
	n = swap_extend_run(vm, io, 1, slot->e + 1,
			    MIN(1 + atomic_load_explicit(&vm->swap.ra, memory_order_relaxed), (u32)BLK_MAX_PAGES), cpu);
	atomic_store_explicit(&vm->swap.ra_next, page.bits + (u64)n * PAGE_SIZE, memory_order_relaxed);
	atomic_store_explicit(&sw.ahead_end[vm->id], page.bits + (u64)n * PAGE_SIZE, memory_order_relaxed);
	atomic_fetch_add(&vm->swap.waits, 1);
	atomic_fetch_add(&sw.waits, 1);
	swap_read_run(io, n, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
	swap_ahead(vm, page, cpu);
	return VIO_WAIT;
}
