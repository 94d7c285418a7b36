/*
 * Read-ahead: the window that grows while a VM reads sequentially and shrinks
 * when it does not, and the read further ahead on the first use of a page read
 * ahead.
 */
#include <quire/clock.h>
#include <quire/s2_entry.h>
#include "swap_priv.h"

/*
 * The read-ahead window: a fault where the last run ended doubles it, each
 * page read ahead and used adds one, a fault elsewhere or a page read for
 * nothing halves it.
 */
void swap_ra_grow(struct vm *vm)
{
	u32 r = atomic_load_explicit(&vm->swap.ra, memory_order_relaxed);

	atomic_store_explicit(&vm->swap.ra, MIN(MAX(2 * r, 4u), (u32)SWAP_RA_MAX), memory_order_relaxed);
}

void swap_ra_shrink(struct vm *vm)
{
	atomic_store_explicit(&vm->swap.ra, atomic_load_explicit(&vm->swap.ra, memory_order_relaxed) / 2,
			      memory_order_relaxed);
}

/*
 * The first use of a page read ahead (an access-flag fault): the reader is
 * where it was expected, so read on, the first swapped run within the
 * window after it. No vCPU waits for that read.
 */
static void read_further(struct vm *vm, ipa_t page, unsigned cpu)
{
	u32 ra = MIN(atomic_load_explicit(&vm->swap.ra, memory_order_relaxed), (u32)SWAP_RA_MAX);
	u64 ipa = page.bits + PAGE_SIZE;
	struct s2_slot slot;
	struct swap_io *io;
	_Atomic u64 *e;

	atomic_fetch_add(&sw.ahead_used, 1);
	atomic_store_explicit(&vm->swap.ra, MIN(ra + 1, (u32)SWAP_RA_MAX), memory_order_relaxed);
	if (!vm->swap.on || !swap_enabled() || s2_prepare(vm, page, cpu, &slot) != -EEXIST)
		return;
	for (e = slot.e + 1; ra-- && ipa % (PAGE_SIZE << 9); e++, ipa += PAGE_SIZE) {
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		if (!s2e_swapped(v))
			continue;
		io = swap_io_get(vm);
		if (!io)
			return;
		if (!swap_take_leaf(vm, io, 0, e, v, IPA(ipa), cpu)) {
			swap_io_unused(io);
			return;
		}
		io->slot = s2e_slot(v);
		io->fault_read = io->fault_write = false;
		swap_read_run(io, swap_extend_run(vm, io, 1, e + 1, BLK_MAX_PAGES, cpu), cpu);
		swap_ahead(vm, page, cpu);
		return;
	}
}

void swap_ahead_used(struct vm *vm, ipa_t page, unsigned cpu)
{
	u64 t0 = clock_ticks();

	read_further(vm, page, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
}
