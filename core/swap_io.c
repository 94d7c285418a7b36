/*
 * A disk request's start and end, shared by write-out and swap-in: sending it,
 * and finishing it (the last of a stopping VM reaps it; a failed disk stops the
 * VM, and a disk that would not stop keeps the request's pages for good).
 */
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/disk.h>
#include "swap_priv.h"

/* A request of vm's is off the disk; the last one of a stopped VM lets its memory go. */
void swap_io_finished(struct swap_io *io, unsigned cpu)
{
	struct vm *vm = io->vm;

	/* Counter ticks, no division here: swap_stats turns the sums into microseconds. */
	atomic_fetch_add(io->r.write ? &sw.out_ticks : &sw.in_ticks, clock_ticks() - io->t0);
	swap_io_put(io);
	if (atomic_fetch_sub(&vm->swap.inflight, 1) == 1 && atomic_load(&vm->off))
		vm_reap(vm, cpu);
	swap_wake();
}

/* A request taken but never sent. */
void swap_io_unused(struct swap_io *io)
{
	atomic_fetch_sub(&io->vm->swap.inflight, 1);
	swap_io_put(io);
}

/*
 * A page of a request the disk failed without stopping (BLK_LOST): the
 * device may still write into it, so it never goes back to the pool. The
 * VM is no longer charged for it; pinned, nothing takes it for anything.
 */
void swap_page_lost(struct vm *vm, pidx_t i)
{
	atomic_store_explicit(&swap_desc(i)->flags, MP_PINNED, memory_order_relaxed);
	vmpool_uncharge(&vm->pool);
	atomic_fetch_add(&sw.lost, 1);
}

void swap_disk_failed(struct vm *vm, const struct swap_io *io)
{
	atomic_fetch_add(&sw.errors, 1);
	if (io->r.status == BLK_LOST)
		printk("quire: %s: the swap disk would not stop: the %u pages of its %s request at sector %lu "
		       "stay out of the pool for good (%lu pages so far)\n", vm->name, io->r.npages,
		       io->r.write ? "write" : "read", io->r.sector, atomic_load(&sw.lost));
	vm_log_once(vm, VM_LOG_SWAP_IO,
		    "quire: %s: swap disk %s error at sector %lu (%u pages); stopping the VM, other VMs "
		    "keep running\n", vm->name, io->r.write ? "write" : "read", io->r.sector, io->r.npages);
	vm_power_off(vm, "stopped");
}

int swap_submit(struct swap_io *io, u32 n, bool write, void (*done)(struct blk_req *, unsigned))
{
	io->r.sector = disk_swap_first() + io->slot * (PAGE_SIZE >> BLK_SECTOR_SHIFT);
	io->r.npages = n;
	io->r.write = write;
	io->r.done = done;
	io->r.ctx = io;
	for (u32 k = 0; k < n; k++)
		io->r.pa[k] = pool_pa(sw.pool, io->page[k]);
	io->t0 = clock_ticks();
	atomic_fetch_add(write ? &sw.out_reqs : &sw.in_reqs, 1);
	return blk_submit(&io->r);
}
