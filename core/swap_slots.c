/*
 * The swap disk's slots (4 KiB each) and the requests in flight to it.
 * One bit per slot, in pages taken from the pool at boot: 32 KiB per GiB of
 * disk. A swapped page's slot number lives in its invalid stage-2 leaf, so
 * nothing else is kept per swapped page.
 */
#include <quire/blk.h>
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/disk.h>
#include "swap_priv.h"

struct swap_ctx sw;

void swap_init(struct pool *p, unsigned cpu)
{
	u64 n = MIN(disk_swap_sectors() / (PAGE_SIZE >> BLK_SECTOR_SHIFT), (u64)SWAP_MAP_PAGES * SWAP_MAP_BITS);
	unsigned ios = MIN(blk_depth(), (unsigned)SWAP_IOS);

	sw.pool = p;
	if (!blk_present() || !n || !ios)
		return;
	for (u64 k = 0; k < ALIGN_UP(n, SWAP_MAP_BITS) / SWAP_MAP_BITS; k++) {
		pidx_t i = pool_alloc(p, cpu);

		if (i == PIDX_NONE) {
			printk("swap: no memory for the slot map; swap off\n");
			return;
		}
		atomic_store(&pool_desc(p, i)->flags, MP_PINNED);
		page_zero(pool_pa(p, i));
		sw.map[k] = page_va(pool_pa(p, i));
	}
	for (unsigned k = 0; k < ios; k++) {
		sw.io[k].next = sw.free;
		sw.free = &sw.io[k];
	}
	sw.nslots = n;
	/* VMs past their resident-min start writing out when free pages come this near the promises. */
	p->low_water = pool_free_pages(p) / 128 + 16 * MAX_CPUS;
	printk("swap: %lu slots of 4 KiB (%lu MiB); slot map %lu KiB (1 bit per slot); a swapped page's "
	       "slot is kept in its invalid stage-2 leaf, no other memory; %u requests in flight at most\n",
	       n, n >> 8, ALIGN_UP(n, SWAP_MAP_BITS) / SWAP_MAP_BITS * 4, ios);
}

bool swap_enabled(void)
{
	return sw.nslots != 0 && blk_present();
}

static bool slot_used(u64 s)
{
	return sw.map[s / SWAP_MAP_BITS][s % SWAP_MAP_BITS / 64] >> (s % 64) & 1;
}

static void slot_mark(u64 s, bool used)
{
	u64 *w = &sw.map[s / SWAP_MAP_BITS][s % SWAP_MAP_BITS / 64];

	*w = used ? *w | 1UL << (s % 64) : *w & ~(1UL << (s % 64));
}

u32 swap_slots_take(struct vm *vm, u32 n, u64 prefer, u64 *first)
{
	u32 len = 0;

	spin_lock(&sw.lock);
	/* Under the lock: two vCPUs of one VM cannot both take its last slots. */
	n = MIN(n, vm->swap.quota - MIN(vm->swap.quota, atomic_load(&vm->swap.slots)));
	/*
	 * The preferred slot first (k = 0), then next fit over every slot from
	 * where the last run ended (k = 1 is the hint itself): runs of
	 * consecutive slots make long requests.
	 */
	for (u64 k = prefer < sw.nslots ? 0 : 1; n && k <= sw.nslots && !len; k++) {
		u64 s = k ? (sw.hint + k - 1) % sw.nslots : prefer;

		/* A full word of the map skipped whole; never from the preferred slot, which is off the walk. */
		if (k && !(s % 64) && sw.map[s / SWAP_MAP_BITS][s % SWAP_MAP_BITS / 64] == ~0UL) {
			k += 63;
			continue;
		}
		if (slot_used(s))
			continue;
		while (len < n && s + len < sw.nslots && !slot_used(s + len))
			slot_mark(s + len++, true);
		*first = s;
		sw.used += len;
		sw.hint = s + len;
	}
	atomic_fetch_add(&vm->swap.slots, len);
	spin_unlock(&sw.lock);
	return len;
}

void swap_slot_free(struct vm *vm, u64 s)
{
	spin_lock(&sw.lock);
	if (s < sw.nslots && slot_used(s)) {
		slot_mark(s, false);
		sw.used--;
	}
	spin_unlock(&sw.lock);
	atomic_fetch_sub(&vm->swap.slots, 1);
	if (atomic_exchange(&sw.space_wanted, false))
		swap_wake(); /* a VM waits for swap space (swap-full = "wait") */
}

void swap_release(struct vm *vm, u64 slot, unsigned cpu)
{
	(void)cpu;
	swap_slot_free(vm, slot);
	atomic_fetch_sub(&vm->pool.swapped, 1);
}

struct swap_io *swap_io_get(struct vm *vm)
{
	struct swap_io *io;

	spin_lock(&sw.lock);
	io = sw.free;
	if (io) {
		sw.free = io->next;
		sw.busy++;
	}
	spin_unlock(&sw.lock);
	if (io) {
		io->vm = vm;
		atomic_fetch_add(&vm->swap.inflight, 1);
	}
	return io;
}

void swap_io_put(struct swap_io *io)
{
	spin_lock(&sw.lock);
	io->next = sw.free;
	sw.free = io;
	sw.busy--;
	spin_unlock(&sw.lock);
}

bool swap_slot_left(struct vm *vm)
{
	return atomic_load(&vm->swap.slots) < vm->swap.quota && *(volatile u64 *)&sw.used < sw.nslots;
}

bool swap_disk_busy(void)
{
	return *(volatile unsigned *)&sw.busy != 0;
}

void swap_stats(struct swap_stats *st)
{
	spin_lock(&sw.lock);
	*st = (struct swap_stats){ .slots = sw.nslots, .used = sw.used };
	spin_unlock(&sw.lock);
	st->outs = atomic_load(&sw.outs);
	st->ins = atomic_load(&sw.ins);
	st->zero = atomic_load(&sw.zero);
	st->waits = atomic_load(&sw.waits);
	st->out_us = clock_ticks_us(atomic_load(&sw.out_ticks));
	st->in_us = clock_ticks_us(atomic_load(&sw.in_ticks));
	st->in_cpu_ticks = atomic_load(&sw.in_cpu_ticks);
	st->errors = atomic_load(&sw.errors);
	st->lost = atomic_load(&sw.lost);
	st->clean = atomic_load(&sw.clean);
	st->out_reqs = atomic_load(&sw.out_reqs);
	st->in_reqs = atomic_load(&sw.in_reqs);
	st->ahead = atomic_load(&sw.ahead);
	st->ahead_used = atomic_load(&sw.ahead_used);
}
