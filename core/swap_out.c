/*
 * Write-out: claimed victims that are clean or zero just go, the rest go to the
 * disk in runs of consecutive slots; the completion frees each written page.
 */
#include <quire/s2_entry.h>
#include <quire/share.h>
#include "swap_priv.h"

static void write_done(struct blk_req *r, unsigned cpu)
{
	struct swap_io *io = r->ctx;
	struct vm *vm = io->vm;

	for (u32 k = 0; k < r->npages; k++) {
		if (r->status == BLK_LOST) {
			/* The VM stops; the leaf keeps the slot, which goes back with it, and the page is lost. */
			atomic_store_explicit(io->leaf[k].e, s2e_make(io->slot + k, false), memory_order_release);
			atomic_fetch_sub(&vm->pool.active, 1);
			swap_page_lost(vm, io->page[k]);
			atomic_fetch_add(&vm->pool.swapped, 1);
			continue;
		}
		if (r->status) {
			/* The page is still here: map it again; its slot holds nothing. */
			s2_install(vm, &io->leaf[k], pool_pa(sw.pool, io->page[k]), S2_RWX);
			swap_slot_free(vm, io->slot + k);
			continue;
		}
		atomic_store_explicit(io->leaf[k].e, s2e_make(io->slot + k, false), memory_order_release);
		atomic_fetch_sub(&vm->pool.active, 1);
		vmpool_give_back(&vm->pool, cpu, io->page[k], false);
		atomic_fetch_add(&vm->pool.swapped, 1);
		atomic_fetch_add(&vm->swap.outs, 1);
		atomic_fetch_add(&sw.outs, 1);
	}
	atomic_fetch_sub(&vm->swap.writing, r->npages);
	if (r->status)
		swap_disk_failed(vm, io);
	swap_io_finished(io, cpu);
}

static bool page_is_zero(paddr_t pa)
{
	const u64 *w = page_va(pa);

	for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
		if (w[k])
			return false;
	return true;
}

/* A claimed victim leaves without the disk: its leaf becomes e (empty, or its clean copy's slot). */
static void let_go(struct vm *vm, struct victim *v, u64 e, unsigned cpu)
{
	atomic_store_explicit(v->leaf.e, e, memory_order_release);
	atomic_fetch_and(&swap_desc(v->page)->flags, (u8)~MP_SWAPCACHE);
	atomic_fetch_sub(&vm->pool.active, 1);
	vmpool_give_back(&vm->pool, cpu, v->page, false);
}

/* The slot after the one holding the page before v's in the VM, if it is swapped (else none). */
static u64 slot_after_previous(const struct victim *v)
{
	u64 e;

	if (!(v->ipa % (PAGE_SIZE << 9)))
		return ~0UL; /* the first leaf of its table */
	e = atomic_load_explicit(v->leaf.e - 1, memory_order_relaxed);
	return s2e_swapped(e) || s2e_transit(e) ? s2e_slot(e) + 1 : ~0UL;
}

/* Claimed victims: clean and zero ones just go; the rest to the disk in runs of consecutive slots. */
void swap_write_out(struct vm *vm, struct victim *v, unsigned n, unsigned cpu)
{
	unsigned k = 0, m = 0;

	for (unsigned j = 0; j < n; j++) {
		if (v[j].prot & S2_AHEAD)
			swap_ra_shrink(vm); /* read ahead, and never used */
		if (swap_has_copy(v[j].page)) {
			let_go(vm, &v[j], s2e_make(swap_copy_slot(v[j].page), false), cpu);
			atomic_fetch_add(&vm->pool.swapped, 1);
			atomic_fetch_add(&sw.clean, 1);
			continue;
		}
		share_forget(v[j].page);
		page_sync_for_quire(pool_pa(sw.pool, v[j].page));
		if (!page_is_zero(pool_pa(sw.pool, v[j].page))) {
			v[m++] = v[j];
			continue;
		}
		/* The next access fills a zeroed page: the same contents, no disk. */
		let_go(vm, &v[j], 0, cpu);
		atomic_fetch_add(&vm->swap.zero, 1);
		atomic_fetch_add(&sw.zero, 1);
	}
	while (k < m) {
		struct swap_io *io = swap_io_get(vm);
		u32 run = 1, len = 0;
		u64 first = 0;

		/* Pages next to each other in the VM go to slots next to each other: read back in one request. */
		while (k + run < m && run < BLK_MAX_PAGES && v[k + run].ipa == v[k + run - 1].ipa + PAGE_SIZE)
			run++;
		if (io)
			len = swap_slots_take(vm, run, slot_after_previous(&v[k]), &first);

		if (!len) {
			if (io)
				swap_io_unused(io);
			break;
		}
		io->slot = first;
		for (u32 j = 0; j < len; j++) {
			io->ipa[j] = v[k + j].ipa;
			io->leaf[j] = v[k + j].leaf;
			io->page[j] = v[k + j].page;
			atomic_store_explicit(io->leaf[j].e, s2e_make(first + j, true), memory_order_release);
		}
		atomic_fetch_add(&vm->swap.writing, len);
		k += len;
		if (swap_submit(io, len, true, write_done)) {
			io->r.status = -EIO;
			write_done(&io->r, cpu);
		}
	}
	/* No slot or request for the rest: they stay. */
	for (; k < m; k++)
		s2_install(vm, &v[k].leaf, pool_pa(sw.pool, v[k].page), v[k].prot);
}
