/*
 * When a VM evicts: at its resident limit (swap_make_room: evict, wait, or stop
 * when the swap space is full) and ahead of it (swap_ahead: a low mark below
 * the limit, and the machine's low watermark past resident-min).
 */
#include "swap_priv.h"

static void reclaim(struct vm *vm, unsigned want, unsigned sweeps, u64 keep, unsigned cpu)
{
	struct victim v[SWAP_BATCH];
	unsigned n;

	if (!spin_trylock(&vm->swap.lock))
		return; /* another vCPU of this VM is at it */
	n = swap_clock_pick(vm, v, MIN(want, (unsigned)SWAP_BATCH), sweeps, keep);
	spin_unlock(&vm->swap.lock);
	swap_write_out(vm, v, n, cpu);
}

void swap_ahead(struct vm *vm, ipa_t keep, unsigned cpu)
{
	u32 active, writing, room;
	const struct pool *p = vm->pool.vmm;

	/* First: every fill comes here, and most VMs do not swap. */
	if (!vm->swap.on || !swap_enabled())
		return;
	active = atomic_load(&vm->pool.active);
	writing = atomic_load(&vm->swap.writing);
	room = MIN((u32)(SWAP_BATCH + SWAP_RA_MAX), vm->pool.data_limit / 4);
	/*
	 * Keep the pages over a low mark (a batch and a read-ahead window below
	 * the limit) on their way out before the limit is reached, so faults
	 * rarely wait for the disk and there is room to read ahead; only pages
	 * already cold, never the one just mapped. A request's worth at a time,
	 * so the disk gets long requests.
	 */
	if (active + room >= vm->pool.data_limit + writing + BLK_MAX_PAGES)
		reclaim(vm, active + room - vm->pool.data_limit - writing, 0, keep.bits, cpu);
	/*
	 * The machine's low watermark: past its resident-min, with free pages
	 * near what is promised to VMs, it writes out below its limit too.
	 */
	else if (writing < room && atomic_load(&vm->pool.charged) >= vm->pool.guaranteed &&
		 pool_free_pages(p) < (u64)atomic_load(&p->promised) + p->low_water + room) {
		atomic_fetch_add(&vm->swap.squeezed, 1);
		reclaim(vm, BLK_MAX_PAGES, 0, keep.bits, cpu);
	}
}

enum vio_result swap_make_room(struct vm *vm, unsigned cpu)
{
	if (!vm->swap.on)
		return VIO_SEA_QUOTA;
	if (!swap_enabled()) {
		/* The disk broke and is out of use: as without one, the resident limit is a hard limit. */
		vm_log_once(vm, VM_LOG_SWAP_FULL, "quire: %s: the swap disk is out of use: its resident limit "
			    "(%u pages) is a hard limit now\n", vm->name, vm->pool.data_limit);
		return VIO_SEA_QUOTA;
	}
	if (atomic_load(&vm->pool.active) < vm->pool.data_limit)
		atomic_fetch_add(&vm->swap.squeezed, 1); /* below its limit: the machine is short */
	if (atomic_load(&vm->swap.writing) < SWAP_BATCH)
		reclaim(vm, SWAP_BATCH, 2, ~0UL, cpu);
	if (atomic_load(&vm->pool.active) < vm->pool.data_limit && !vmpool_short(&vm->pool))
		return VIO_RACED; /* zero or clean pages made room at once */
	/* Its own pages on their way out, or every request busy with other VMs': a completion comes. */
	if (atomic_load(&vm->swap.inflight) || (swap_slot_left(vm) && swap_disk_busy())) {
		atomic_fetch_add(&vm->swap.waits, 1);
		atomic_fetch_add(&sw.waits, 1);
		return VIO_WAIT;
	}
	if (swap_slot_left(vm))
		return VIO_RACED; /* the clock found nothing cold this time; it will */
	if (vm->cfg.swap_full == SWAP_FULL_WAIT) {
		/* Until a slot comes free: its own pages read back and written, or another VM's going. */
		atomic_store(&sw.space_wanted, true);
		if (swap_slot_left(vm))
			return VIO_RACED; /* one came free just now */
		vm_log_once(vm, VM_LOG_SWAP_FULL,
			    "quire: %s: at its resident limit (%u pages) with no swap space left (%u of %u slots "
			    "of its own; %lu of %lu on the disk in use); waiting for space (swap-full = \"wait\")\n",
			    vm->name, vm->pool.data_limit, atomic_load(&vm->swap.slots), vm->swap.quota, sw.used,
			    sw.nslots);
		atomic_fetch_add(&vm->swap.waits, 1);
		atomic_fetch_add(&sw.waits, 1);
		return VIO_WAIT;
	}
	vm_log_once(vm, VM_LOG_SWAP_FULL,
		    "quire: %s: at its resident limit (%u pages) with no swap space left (%u of %u slots "
		    "of its own; %lu of %lu on the disk in use); stopping the VM\n", vm->name, vm->pool.data_limit,
		    atomic_load(&vm->swap.slots), vm->swap.quota, sw.used, sw.nslots);
	vm_power_off(vm, "stopped");
	return VIO_STOP;
}
