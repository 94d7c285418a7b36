/*
 * Swap: pages out to the disk past a VM's resident limit, and back on the
 * next access. Eviction claims a cold page's leaf (break-before-make) and
 * marks it in transit, so the guest cannot change the page while the disk
 * reads it; the page goes back to the pool only when the write completed.
 * A vCPU touching a page in transit, or whose page is being read back,
 * waits (VIO_WAIT) while other vCPUs run. Completions come from the disk's
 * interrupt, on whichever CPU takes it.
 */
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/s2_entry.h>
#include <quire/share.h>
#include <quire/vcpu.h>
#include "swap_priv.h"

struct victim {
	u64 ipa;
	struct s2_slot leaf;
	pidx_t page;
};

void swap_vm_init(struct vm *vm)
{
	struct vm_swap *s = &vm->swap;

	s->quota = MIN(vm->cfg.swap_limit / PAGE_SIZE, (u64)~0u);
	s->hand = vm->ram_base.bits;
	s->on = s->quota && swap_enabled();
	if (s->on)
		vm->pool.data_limit = vm->cfg.resident_limit / PAGE_SIZE;
	else if (s->quota)
		printk("quire: %s: swap-mib is set but there is no swap disk: its resident limit is a hard "
		       "limit\n", vm->name);
}

bool swap_vm_idle(struct vm *vm)
{
	return !atomic_load(&vm->swap.inflight);
}

u64 swap_gen(void)
{
	return atomic_load(&sw.gen);
}

/* Something a waiting vCPU may be waiting for happened: they all look again. */
static void wake_waiters(void)
{
	atomic_fetch_add(&sw.gen, 1);
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);

		for (unsigned k = 0; vm && k < vm->nvcpus; k++)
			if (vm->vcpu[k] && atomic_load(&vm->vcpu[k]->io_wait))
				vcpu_kick(vm->vcpu[k]);
	}
}

/* A request of vm's is off the disk; the last one of a stopped VM lets its memory go. */
static void io_finished(struct swap_io *io, unsigned cpu)
{
	struct vm *vm = io->vm;

	atomic_fetch_add(io->r.write ? &sw.out_us : &sw.in_us, clock_us() - io->t0);
	swap_io_put(io);
	if (atomic_fetch_sub(&vm->swap.inflight, 1) == 1 && atomic_load(&vm->off))
		vm_reap(vm, cpu);
	wake_waiters();
}

static void disk_failed(struct vm *vm, const struct swap_io *io)
{
	atomic_fetch_add(&sw.errors, 1);
	vm_log_once(vm, VM_LOG_SWAP_IO,
		    "quire: %s: swap disk %s error at sector %lu (%u pages); stopping the VM, other VMs "
		    "keep running\n", vm->name, io->r.write ? "write" : "read", io->r.sector, io->r.npages);
	vm_power_off(vm, "stopped");
}

static int submit(struct swap_io *io, u32 n, bool write, void (*done)(struct blk_req *, unsigned))
{
	io->r.sector = io->slot * (PAGE_SIZE >> BLK_SECTOR_SHIFT);
	io->r.npages = n;
	io->r.write = write;
	io->r.done = done;
	io->r.ctx = io;
	for (u32 k = 0; k < n; k++)
		io->r.pa[k] = pool_pa(sw.pool, io->page[k]);
	io->t0 = clock_us();
	return blk_submit(&io->r);
}

/* --- out ---------------------------------------------------------------- */

static void write_done(struct blk_req *r, unsigned cpu)
{
	struct swap_io *io = r->ctx;
	struct vm *vm = io->vm;

	for (u32 k = 0; k < r->npages; k++) {
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
		disk_failed(vm, io);
	io_finished(io, cpu);
}

static bool page_is_zero(paddr_t pa)
{
	const u64 *w = page_va(pa);

	for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
		if (w[k])
			return false;
	return true;
}

/* The page behind a leaf if the VM may write it out: its own private RAM (not shared, zero or an image's). */
static pidx_t evictable(struct vm *vm, const struct s2_leaf *l)
{
	pidx_t i;

	if (!(l->prot & S2_W) || (l->prot & S2_DEVICE))
		return PIDX_NONE;
	i = pool_pidx_of(sw.pool, l->pa);
	return i != PIDX_NONE && pool_desc(sw.pool, i)->owner == vm->id ? i : PIDX_NONE;
}

/*
 * The clock: from the hand on, a page used since the last sweep (access
 * flag set) loses its flag and stays; one not used is claimed. With two
 * sweeps the second finds every page whose flag the first cleared; one
 * sweep (writing ahead) takes only pages already cold, and looks at no
 * more than a few pages per page wanted. Never keep, the page the caller
 * has just mapped.
 */
static unsigned clock_pick(struct vm *vm, struct victim *v, unsigned want, unsigned sweeps, u64 keep)
{
	u64 end = vm->ram_base.bits + vm->ram_size, visits = sweeps ? ~0UL : 8UL * want;
	unsigned n = 0, wraps = 0;
	bool cleared = false;

	while (n < want && wraps <= sweeps && visits--) {
		u64 ipa = s2_next_leaf(vm, vm->swap.hand, end);
		struct s2_leaf l, old;

		if (ipa >= end) {
			vm->swap.hand = vm->ram_base.bits;
			wraps++;
			continue;
		}
		vm->swap.hand = ipa + PAGE_SIZE;
		if (ipa == keep || !s2_get(vm, IPA(ipa), &l) || (v[n].page = evictable(vm, &l)) == PIDX_NONE)
			continue;
		if (s2_test_clear_young(vm, IPA(ipa))) {
			cleared = true;
			continue;
		}
		if (s2_claim(vm, IPA(ipa), &v[n].leaf, &old))
			continue;
		if (old.pa != l.pa || !(old.prot & S2_W)) {
			s2_install(vm, &v[n].leaf, old.pa, old.prot); /* changed meanwhile */
			continue;
		}
		v[n++].ipa = ipa;
	}
	/* Accesses through TLB entries made before the flags were cleared must fault and show. */
	if (cleared)
		s2_flush_young(vm);
	return n;
}

/* Claimed victims: zero ones just go; the rest to the disk in runs of consecutive slots. */
static void write_out(struct vm *vm, struct victim *v, unsigned n, unsigned cpu)
{
	unsigned k = 0, m = 0;

	for (unsigned j = 0; j < n; j++) {
		share_forget(v[j].page);
		page_sync_for_quire(pool_pa(sw.pool, v[j].page));
		if (!page_is_zero(pool_pa(sw.pool, v[j].page))) {
			v[m++] = v[j];
			continue;
		}
		/* The next access fills a zeroed page: the same contents, no disk. */
		atomic_store_explicit(v[j].leaf.e, 0, memory_order_release);
		atomic_fetch_sub(&vm->pool.active, 1);
		vmpool_give_back(&vm->pool, cpu, v[j].page, false);
		atomic_fetch_add(&vm->swap.zero, 1);
		atomic_fetch_add(&sw.zero, 1);
	}
	while (k < m) {
		struct swap_io *io = swap_io_get(vm);
		u64 first = 0;
		u32 len = io ? swap_slots_take(vm, MIN(m - k, (unsigned)BLK_MAX_PAGES), &first) : 0;

		if (!len) {
			if (io) {
				swap_io_put(io);
				atomic_fetch_sub(&vm->swap.inflight, 1);
			}
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
		if (submit(io, len, true, write_done)) {
			io->r.status = -EIO;
			write_done(&io->r, cpu);
		}
	}
	/* No slot or request for the rest: they stay. */
	for (; k < m; k++)
		s2_install(vm, &v[k].leaf, pool_pa(sw.pool, v[k].page), S2_RWX);
}

static void reclaim(struct vm *vm, unsigned want, unsigned sweeps, u64 keep, unsigned cpu)
{
	struct victim v[SWAP_BATCH];
	unsigned n;

	if (!spin_trylock(&vm->swap.lock))
		return; /* another vCPU of this VM is at it */
	n = clock_pick(vm, v, MIN(want, (unsigned)SWAP_BATCH), sweeps, keep);
	spin_unlock(&vm->swap.lock);
	write_out(vm, v, n, cpu);
}

void swap_ahead(struct vm *vm, ipa_t keep, unsigned cpu)
{
	u32 active = atomic_load(&vm->pool.active), writing = atomic_load(&vm->swap.writing);
	u32 room = MIN((u32)SWAP_BATCH, vm->pool.data_limit / 4);

	/*
	 * Keep the pages over a low mark (a batch below the limit) on their way
	 * out before the limit is reached, so faults rarely wait for the disk;
	 * only pages already cold, never the one just mapped.
	 */
	if (vm->swap.on && active + room > vm->pool.data_limit + writing)
		reclaim(vm, active + room - vm->pool.data_limit - writing, 0, keep.bits, cpu);
}

enum vio_result swap_make_room(struct vm *vm, unsigned cpu)
{
	if (!vm->swap.on)
		return VIO_SEA_QUOTA;
	if (atomic_load(&vm->swap.writing) < SWAP_BATCH)
		reclaim(vm, SWAP_BATCH, 2, ~0UL, cpu);
	if (atomic_load(&vm->pool.active) < vm->pool.data_limit)
		return VIO_RACED; /* zero pages made room at once */
	/* Its own pages on their way out, or every request busy with other VMs': a completion comes. */
	if (atomic_load(&vm->swap.inflight) || (swap_slot_left(vm) && swap_disk_busy())) {
		atomic_fetch_add(&vm->swap.waits, 1);
		atomic_fetch_add(&sw.waits, 1);
		return VIO_WAIT;
	}
	if (swap_slot_left(vm))
		return VIO_RACED; /* the clock found nothing cold this time; it will */
	vm_log_once(vm, VM_LOG_SWAP_FULL,
		    "quire: %s: at its resident limit (%u pages) with no swap space left (%u of %u slots "
		    "of its own; %lu of %lu on the disk in use); stopping the VM\n", vm->name, vm->pool.data_limit,
		    atomic_load(&vm->swap.slots), vm->swap.quota, sw.used, sw.nslots);
	vm_power_off(vm, "stopped");
	return VIO_STOP;
}

/* --- in ----------------------------------------------------------------- */

static void read_done(struct blk_req *r, unsigned cpu)
{
	u64 t0 = clock_ticks();
	struct swap_io *io = r->ctx;
	struct vm *vm = io->vm;
	pidx_t i = io->page[0];
	struct mpage *d = pool_desc(sw.pool, i);

	if (r->status) {
		atomic_store_explicit(io->leaf[0].e, s2e_make(io->slot, false), memory_order_release);
		atomic_fetch_sub(&vm->pool.active, 1);
		vmpool_give_back(&vm->pool, cpu, i, false);
		disk_failed(vm, io);
	} else {
		d->gpn = io->ipa[0] >> PAGE_SHIFT;
		atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
		atomic_store_explicit(&d->flags, MP_ACTIVE, memory_order_relaxed);
		/* It may be code, and the guest may run with its caches off. */
		page_sync_for_guest(pool_pa(sw.pool, i));
		s2_install(vm, &io->leaf[0], pool_pa(sw.pool, i), S2_RWX);
		swap_slot_free(vm, io->slot);
		atomic_fetch_sub(&vm->pool.swapped, 1);
		atomic_fetch_add(&vm->swap.ins, 1);
		atomic_fetch_add(&sw.ins, 1);
	}
	io_finished(io, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
}

enum vio_result swap_fault(struct vm *vm, ipa_t page, struct s2_slot *slot, unsigned cpu)
{
	u64 e = atomic_load_explicit(slot->e, memory_order_acquire);
	struct swap_io *io;
	u64 t0 = clock_ticks();
	int why = 0;
	pidx_t i;

	if (s2e_transit(e)) {
		atomic_fetch_add(&vm->swap.waits, 1);
		atomic_fetch_add(&sw.waits, 1);
		return VIO_WAIT;
	}
	if (!s2e_swapped(e))
		return VIO_RACED; /* mapped, or claimed for a moment */
	if (!vmpool_activate(&vm->pool))
		return swap_make_room(vm, cpu);
	i = vmpool_take_for_copy(&vm->pool, cpu, &why);
	io = i == PIDX_NONE ? NULL : swap_io_get(vm);
	if (!io || !atomic_compare_exchange_strong(slot->e, &e, s2e_make(s2e_slot(e), true))) {
		if (io) {
			swap_io_put(io);
			atomic_fetch_sub(&vm->swap.inflight, 1);
		}
		if (i != PIDX_NONE)
			vmpool_give_back(&vm->pool, cpu, i, false);
		atomic_fetch_sub(&vm->pool.active, 1);
		if (i == PIDX_NONE)
			return swap_make_room(vm, cpu);
		return io ? VIO_RACED : VIO_WAIT; /* another vCPU took it; or every request is on the disk */
	}
	io->slot = s2e_slot(e);
	io->ipa[0] = page.bits;
	io->leaf[0] = *slot;
	io->page[0] = i;
	atomic_fetch_add(&vm->swap.waits, 1);
	atomic_fetch_add(&sw.waits, 1);
	if (submit(io, 1, false, read_done)) {
		io->r.status = -EIO;
		read_done(&io->r, cpu);
	}
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
	swap_ahead(vm, page, cpu);
	return VIO_WAIT;
}
