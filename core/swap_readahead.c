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
	/* A page behind the frontier may be swapped again (evicted unused), or the reader is elsewhere: look from it. */
	atomic_store_explicit(&sw.ahead_end[vm->id], 0, memory_order_relaxed);
}

/*
 * The first use of a page read ahead (an access-flag fault): the reader is
 * where it was expected, so read on, the first swapped run within the
 * window after it. No vCPU waits for that read. The walk starts at the
 * frontier (sw.ahead_end) when it lies in the window: every leaf before it
 * was found taken by an earlier look, so a sequential reader, which uses
 * the window's pages one by one, walks each leaf about once rather than
 * the whole window (up to 64 leaves) on each use. true if it read.
 */
static bool read_further(struct vm *vm, ipa_t page, unsigned cpu)
{
	u32 ra = MIN(atomic_load_explicit(&vm->swap.ra, memory_order_relaxed), (u32)SWAP_RA_MAX);
	u64 ipa = page.bits + PAGE_SIZE, end = ipa + (u64)ra * PAGE_SIZE;
	u64 from = atomic_load_explicit(&sw.ahead_end[vm->id], memory_order_relaxed);
	u64 table_end = ALIGN_DOWN(page.bits, PAGE_SIZE << 9) + (PAGE_SIZE << 9);
	struct s2_slot slot;
	struct swap_io *io;
	_Atomic u64 *e;

	atomic_fetch_add(&sw.ahead_used, 1);
	atomic_store_explicit(&vm->swap.ra, MIN(ra + 1, (u32)SWAP_RA_MAX), memory_order_relaxed);
	end = MIN(end, table_end); /* the leaves of page's table only */
	if (from > ipa && from <= end)
		ipa = from;
	if (ipa == end || !vm->swap.on || !swap_enabled() || s2_prepare(vm, page, cpu, &slot) != -EEXIST)
		return false;
	for (e = slot.e + (ipa - page.bits) / PAGE_SIZE; ipa < end; e++, ipa += PAGE_SIZE) {
		u64 v = atomic_load_explicit(e, memory_order_acquire);
		u32 n;

		if (!s2e_swapped(v))
			continue;
		io = swap_io_get(vm);
		if (!io)
			return false;
		if (!swap_take_leaf(vm, io, 0, e, v, IPA(ipa), cpu)) {
			swap_io_unused(io);
			return false;
		}
		io->slot = s2e_slot(v);
		io->fault_read = io->fault_write = false;
		n = swap_extend_run(vm, io, 1, e + 1, BLK_MAX_PAGES, cpu);
		atomic_store_explicit(&sw.ahead_end[vm->id], ipa + (u64)n * PAGE_SIZE, memory_order_relaxed);
		swap_read_run(io, n, cpu);
		return true;
	}
	atomic_store_explicit(&sw.ahead_end[vm->id], end, memory_order_relaxed);
	return false;
}

void swap_ahead_used(struct vm *vm, ipa_t page, unsigned cpu)
{
	u64 t0 = clock_ticks();
	bool read = read_further(vm, page, cpu);

	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
	/*
	 * Pages were taken: keep the low mark below the limit. That is
	 * write-out (the clock, zero checks, writes), not swap-in, so it is
	 * outside in_cpu_ticks, as it is after swap_fault.
	 */
	if (read)
		swap_ahead(vm, page, cpu);
}
