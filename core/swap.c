/*
 * Swap: pages out to the disk past a VM's resident limit, and back on the
 * next access. Eviction claims a cold page's leaf (break-before-make) and
 * marks it in transit, so the guest cannot change the page while the disk
 * reads it; the page goes back to the pool only when the write completed.
 * A vCPU touching a page in transit, or whose page is being read back,
 * waits (VIO_WAIT) while other vCPUs run. Completions come from the disk's
 * interrupt, on whichever CPU takes it.
 *
 * A page read back stays clean (read-only, its copy kept on the disk,
 * swap_priv.h) until written, so evicting it again costs no write. A fault
 * that follows another (sequential) reads the next pages too if their slots
 * follow its own; they are mapped with the access flag clear and marked, so
 * their first use is an access-flag fault that reads further ahead.
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
	unsigned prot;
};

static struct mpage *desc(pidx_t i)
{
	return pool_desc(sw.pool, i);
}

/* A clean page read back from swap: its copy is still in the slot in its descriptor. */
static bool has_copy(pidx_t i)
{
	return atomic_load_explicit(&desc(i)->flags, memory_order_relaxed) & MP_SWAPCACHE;
}

static u64 copy_slot(pidx_t i)
{
	return atomic_load_explicit(&desc(i)->next, memory_order_relaxed) & SWAPC_SLOT;
}

/* The page will differ from its copy, or goes: the slot is free again. The caller owns the page. */
static void drop_copy(struct vm *vm, pidx_t i)
{
	atomic_fetch_and(&desc(i)->flags, (u8)~MP_SWAPCACHE);
	swap_slot_free(vm, copy_slot(i));
}

/*
 * The read-ahead window: a fault where the last run ended doubles it, each
 * page read ahead and used adds one, a fault elsewhere or a page read for
 * nothing halves it.
 */
static void ra_grow(struct vm *vm)
{
	u32 r = atomic_load_explicit(&vm->swap.ra, memory_order_relaxed);

	atomic_store_explicit(&vm->swap.ra, MIN(MAX(2 * r, 4u), (u32)SWAP_RA_MAX), memory_order_relaxed);
}

static void ra_shrink(struct vm *vm)
{
	atomic_store_explicit(&vm->swap.ra, atomic_load_explicit(&vm->swap.ra, memory_order_relaxed) / 2,
			      memory_order_relaxed);
}

void swap_vm_init(struct vm *vm)
{
	struct vm_swap *s = &vm->swap;

	s->quota = MIN(vm->cfg.swap_limit / PAGE_SIZE, (u64)~0u);
	s->hand = vm->ram_base.bits;
	s->on = s->quota && swap_enabled();
	if (s->on) {
		vm->pool.data_limit = vm->cfg.resident_limit / PAGE_SIZE;
		/* Past resident-min the machine may run short: then it evicts below its limit. */
		vmpool_overcommit(&vm->pool, vm->pool.quota - vmconfig_overcommit_pages(&vm->cfg));
	} else if (s->quota)
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

void swap_wake(void)
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
	swap_wake();
}

/* A request taken but never sent. */
static void io_unused(struct swap_io *io)
{
	atomic_fetch_sub(&io->vm->swap.inflight, 1);
	swap_io_put(io);
}

/*
 * A page of a request the disk failed without stopping (BLK_LOST): the
 * device may still write into it, so it never goes back to the pool. The
 * VM is no longer charged for it; pinned, nothing takes it for anything.
 */
static void page_lost(struct vm *vm, pidx_t i)
{
	atomic_store_explicit(&desc(i)->flags, MP_PINNED, memory_order_relaxed);
	vmpool_uncharge(&vm->pool);
	atomic_fetch_add(&sw.lost, 1);
}

static void disk_failed(struct vm *vm, const struct swap_io *io)
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
	atomic_fetch_add(write ? &sw.out_reqs : &sw.in_reqs, 1);
	return blk_submit(&io->r);
}

/* --- out ---------------------------------------------------------------- */

static void write_done(struct blk_req *r, unsigned cpu)
{
	struct swap_io *io = r->ctx;
	struct vm *vm = io->vm;

	for (u32 k = 0; k < r->npages; k++) {
		if (r->status == BLK_LOST) {
			/* The VM stops; the leaf keeps the slot, which goes back with it, and the page is lost. */
			atomic_store_explicit(io->leaf[k].e, s2e_make(io->slot + k, false), memory_order_release);
			atomic_fetch_sub(&vm->pool.active, 1);
			page_lost(vm, io->page[k]);
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

/*
 * The page behind a leaf if the VM may evict it: its own private RAM,
 * writable or clean with its copy on the disk (not shared, zero or an image's).
 */
static pidx_t evictable(struct vm *vm, const struct s2_leaf *l)
{
	pidx_t i;

	if (l->prot & S2_DEVICE)
		return PIDX_NONE;
	i = pool_pidx_of(sw.pool, l->pa);
	if (i == PIDX_NONE || desc(i)->owner != vm->id)
		return PIDX_NONE;
	return (l->prot & S2_W) || has_copy(i) ? i : PIDX_NONE;
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
		if (old.pa != l.pa || evictable(vm, &old) != v[n].page) {
			s2_install(vm, &v[n].leaf, old.pa, old.prot); /* changed meanwhile */
			continue;
		}
		v[n].prot = old.prot;
		v[n++].ipa = ipa;
	}
	/* Accesses through TLB entries made before the flags were cleared must fault and show. */
	if (cleared)
		s2_flush_young(vm);
	return n;
}

/* A claimed victim leaves without the disk: its leaf becomes e (empty, or its clean copy's slot). */
static void let_go(struct vm *vm, struct victim *v, u64 e, unsigned cpu)
{
	atomic_store_explicit(v->leaf.e, e, memory_order_release);
	atomic_fetch_and(&desc(v->page)->flags, (u8)~MP_SWAPCACHE);
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
static void write_out(struct vm *vm, struct victim *v, unsigned n, unsigned cpu)
{
	unsigned k = 0, m = 0;

	for (unsigned j = 0; j < n; j++) {
		if (v[j].prot & S2_AHEAD)
			ra_shrink(vm); /* read ahead, and never used */
		if (has_copy(v[j].page)) {
			let_go(vm, &v[j], s2e_make(copy_slot(v[j].page), false), cpu);
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
				io_unused(io);
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
		s2_install(vm, &v[k].leaf, pool_pa(sw.pool, v[k].page), v[k].prot);
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
	u32 room = MIN((u32)(SWAP_BATCH + SWAP_RA_MAX), vm->pool.data_limit / 4);
	const struct pool *p = vm->pool.vmm;

	/*
	 * Keep the pages over a low mark (a batch and a read-ahead window below
	 * the limit) on their way out before the limit is reached, so faults
	 * rarely wait for the disk and there is room to read ahead; only pages
	 * already cold, never the one just mapped. A request's worth at a time,
	 * so the disk gets long requests.
	 */
	if (!vm->swap.on || !swap_enabled())
		return;
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

/* --- in ----------------------------------------------------------------- */

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

	for (u32 k = 0; k < r->npages; k++) {
		pidx_t i = io->page[k];
		struct mpage *d = desc(i);
		bool wanted = io->fault_read && k == 0;
		unsigned prot = S2_R | S2_X;

		if (r->status) {
			atomic_store_explicit(io->leaf[k].e, s2e_make(io->slot + k, false), memory_order_release);
			atomic_fetch_sub(&vm->pool.active, 1);
			if (r->status == BLK_LOST)
				page_lost(vm, i);
			else
				vmpool_give_back(&vm->pool, cpu, i, false);
			continue;
		}
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
		/* The guest may run with its caches off (if it is code, its first fetch faults: violation.c). */
		page_sync_for_guest(pool_pa(sw.pool, i));
		s2_install(vm, &io->leaf[k], pool_pa(sw.pool, i), prot);
		atomic_fetch_sub(&vm->pool.swapped, 1);
		atomic_fetch_add(&vm->swap.ins, 1);
		atomic_fetch_add(&sw.ins, 1);
	}
	if (r->status)
		disk_failed(vm, io);
	else if (r->npages > (io->fault_read ? 1u : 0u))
		atomic_fetch_add(&sw.ahead, r->npages - (io->fault_read ? 1u : 0u));
	io_finished(io, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
}

/*
 * Take the swapped leaf e (slot first + k of a run) into io as page k: a
 * page within the resident limit, the leaf in transit. false if it cannot
 * (limit, no page, or the leaf changed).
 */
static bool take_leaf(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u64 expect, ipa_t ipa,
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
static u32 extend_run(struct vm *vm, struct swap_io *io, u32 k, _Atomic u64 *e, u32 want, unsigned cpu)
{
	u64 ipa = io->ipa[0] + (u64)k * PAGE_SIZE;

	for (; k < want && ipa % (PAGE_SIZE << 9); k++, e++, ipa += PAGE_SIZE) {
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		if (!s2e_swapped(v) || s2e_slot(v) != io->slot + k || !take_leaf(vm, io, k, e, v, IPA(ipa), cpu))
			break;
	}
	return k;
}

static void read_run(struct swap_io *io, u32 n, unsigned cpu)
{
	if (submit(io, n, false, read_done)) {
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
	if (!take_leaf(vm, io, 0, slot->e, e, page, cpu)) {
		io_unused(io);
		if (atomic_load(slot->e) != e)
			return VIO_RACED; /* another vCPU took it */
		return swap_make_room(vm, cpu);
	}
	/* Sequential: the last run read for a fault ended at this page. */
	if (atomic_load_explicit(&vm->swap.ra_next, memory_order_relaxed) == page.bits)
		ra_grow(vm);
	else
		ra_shrink(vm);
	io->slot = s2e_slot(e);
	io->fault_read = true;
	io->fault_write = write;
	n = extend_run(vm, io, 1, slot->e + 1,
		       MIN(1 + atomic_load_explicit(&vm->swap.ra, memory_order_relaxed), (u32)BLK_MAX_PAGES), cpu);
	atomic_store_explicit(&vm->swap.ra_next, page.bits + (u64)n * PAGE_SIZE, memory_order_relaxed);
	atomic_fetch_add(&vm->swap.waits, 1);
	atomic_fetch_add(&sw.waits, 1);
	read_run(io, n, cpu);
	atomic_fetch_add(&sw.in_cpu_ticks, clock_ticks() - t0);
	swap_ahead(vm, page, cpu);
	return VIO_WAIT;
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
		if (!take_leaf(vm, io, 0, e, v, IPA(ipa), cpu)) {
			io_unused(io);
			return;
		}
		io->slot = s2e_slot(v);
		io->fault_read = io->fault_write = false;
		read_run(io, extend_run(vm, io, 1, e + 1, BLK_MAX_PAGES, cpu), cpu);
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

enum vio_result swap_write_fault(struct vm *vm, ipa_t page)
{
	struct s2_slot slot;
	struct s2_leaf l, old;
	pidx_t i;

	if (!s2_get(vm, page, &l) || (l.prot & (S2_W | S2_DEVICE)) || (i = evictable(vm, &l)) == PIDX_NONE)
		return VIO_UNHANDLED; /* not a clean page of its own: copy-on-write, if anything */
	if (s2_claim(vm, page, &slot, &old))
		return VIO_RACED;
	if (old.pa != l.pa || (old.prot & S2_W) || !has_copy(i)) {
		s2_install(vm, &slot, old.pa, old.prot); /* changed meanwhile */
		return VIO_RACED;
	}
	drop_copy(vm, i);
	s2_install(vm, &slot, old.pa, S2_RWX);
	return VIO_MAPPED;
}

void swap_page_release(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i = sw.pool ? pool_pidx_of(sw.pool, pa) : PIDX_NONE;

	if (i != PIDX_NONE && has_copy(i))
		drop_copy(vm, i);
	share_release(vm, ipa, pa, cpu);
}
