/*
 * The sharing scanner's policy: when and how much. It runs on idle CPU time
 * only (a CPU with nothing to run, or whose lone vCPU waits in WFI), one CPU
 * at a time. Every slice, each VM that shares may have up to its
 * scan_pages pages hashed; a full scan walks its mapped pages once, in IPA
 * order, and the next one starts over.
 */
#include "share_priv.h"

static _Atomic bool scanning;
static u64 next_refill;
static unsigned first_vm;
static _Atomic u64 scan_ticks;

static bool scanning_vm(const struct vm *vm)
{
	return vm && vm->share.live && atomic_load_explicit(&vm->share.scan_pages, memory_order_relaxed);
}

unsigned share_scan(unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void))
{
	unsigned done = 0;

	if (!sh.pool || atomic_exchange_explicit(&scanning, true, memory_order_acquire))
		return 0;
	if (now >= next_refill) {
		for (unsigned id = 1; id <= MAX_VMS; id++) {
			struct vm *vm = vm_get(id);

			if (vm)
				vm->share.budget = scanning_vm(vm) ? atomic_load(&vm->share.scan_pages) : 0;
		}
		next_refill = now + slice_ticks;
	}
	/* VMs take turns at going first, so an interrupted round does not always favour one. */
	for (unsigned k = 0; k < MAX_VMS; k++) {
		struct vm *vm = vm_get(1 + (first_vm + k) % MAX_VMS);

		while (vm && vm->share.budget && !stop()) {
			int r = share_scan_next(vm, cpu);

			if (r == SCAN_NOT_LIVE)
				vm->share.budget = 0;
			else
				vm->share.budget--;
			done += r == SCAN_PAGE;
		}
	}
	first_vm++;
	atomic_store_explicit(&scanning, false, memory_order_release);
	return done;
}

u64 share_next_wake(u64 now, u64 slice_ticks)
{
	for (unsigned id = 1; id <= MAX_VMS; id++)
		if (scanning_vm(vm_get(id)))
			/* Past only while another CPU scans: look again a slice later, never spin on the timer. */
			return next_refill > now ? next_refill : now + slice_ticks;
	return ~0UL;
}

void share_add_ticks(u64 ticks)
{
	atomic_fetch_add_explicit(&scan_ticks, ticks, memory_order_relaxed);
}

int share_set_rate(struct vm *vm, u32 pages)
{
	if (vm->cfg.sharing == SHARE_OFF || pages > 65536)
		return -1;
	atomic_store(&vm->share.scan_pages, pages);
	return 0;
}

void share_stats(struct share_stats *st)
{
	bool any = false;

	*st = (struct share_stats){ .shared = share_shared_pages(), .scan_ticks = atomic_load(&scan_ticks) };
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);
		u64 scans;

		if (!vm)
			continue;
		st->sharing += atomic_load(&vm->pool.shared);
		st->zero += atomic_load(&vm->pool.zero);
		st->volatile_pages += atomic_load(&vm->share.volatile_pages);
		st->scanned += atomic_load(&vm->share.scanned);
		st->merged += atomic_load(&vm->share.merged);
		st->cow += atomic_load(&vm->share.cow);
		scans = atomic_load(&vm->share.scans);
		if (scanning_vm(vm)) {
			st->scans = any ? MIN(st->scans, scans) : scans;
			any = true;
		}
	}
	st->saved = st->sharing + st->zero - st->shared - (st->zero ? 1 : 0);
}
