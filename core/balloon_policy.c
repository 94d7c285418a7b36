/*
 * When Quire inflates balloons by itself (docs/memory.md, "The balloon's
 * policy"): share, balloon, then swap, as ESX orders them. The balloon's
 * mark sits a margin above the one at which VMs past their resident-min
 * start swapping (promised + low_water, core/swap_evict.c), so a machine
 * running short asks guests for their free memory before it writes any of
 * it to disk. Below the mark, the VM holding the most above its guarantee
 * is asked to inflate; once free memory is a margin above the mark again,
 * the balloon the policy filled most is let down. An operator's own target
 * (the monitor's balloon) is never undone, only added to.
 */
#include <quire/balloon.h>
#include <quire/clock.h>
#include <quire/pool.h>
#include <quire/vm.h>

struct balloon_plan balloon_plan(u64 free, u64 mark, u64 margin, const struct balloon_view *v, unsigned n)
{
	struct balloon_plan p = { .vm = -1 };
	u64 pending = 0, best = 0;

	for (unsigned k = 0; k < n; k++)
		pending += v[k].pending;
	if (free < mark) {
		/* Up to the middle of the band, less what guests were asked for and have not given yet. */
		u64 want = mark + margin - free;

		if (want <= pending)
			return p;
		want -= pending;
		for (unsigned k = 0; k < n; k++)
			if (v[k].live && v[k].excess > v[k].pending && v[k].excess - v[k].pending > best) {
				best = v[k].excess - v[k].pending;
				p.vm = (int)k;
			}
		p.delta = (s64)MIN(want, best);
	} else if (free > mark + 2 * margin) {
		/* Plenty: the surplus over the band's middle back to the balloon the policy filled most. */
		u64 surplus = free - (mark + margin);

		for (unsigned k = 0; k < n; k++)
			if (v[k].policy > best) {
				best = v[k].policy;
				p.vm = (int)k;
			}
		p.delta = -(s64)MIN(surplus, best);
	}
	if (!p.delta)
		p.vm = -1;
	return p;
}

/* The next time the policy may look (counter ticks), so that many CPUs' fills do not all look. */
static _Atomic u64 next_look;

void balloon_policy(unsigned cpu)
{
	struct balloon_view v[MAX_VMS];
	struct vm *vms[MAX_VMS];
	const struct pool *p = NULL;
	struct balloon_plan plan;
	u64 now = clock_ticks(), t = atomic_load(&next_look), margin;
	unsigned n = 0;

	if (now < t || !atomic_compare_exchange_strong(&next_look, &t,
						       now + clock_freq() / 1000 * BALLOON_POLICY_MS))
		return;
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);

		if (!vm || vm_state(vm) != VM_RUNNING || !balloon_view(vm, &v[n]))
			continue;
		p = vm->pool.vmm;
		vms[n++] = vm;
	}
	if (!n)
		return;
	margin = MAX((u64)p->ndesc / BALLOON_MARGIN_DIV, (u64)BALLOON_MARGIN_MIN);
	plan = balloon_plan(pool_free_pages(p), (u64)atomic_load(&p->promised) + p->low_water + margin, margin, v,
			    n);
	if (plan.vm >= 0)
		balloon_policy_move(vms[plan.vm], plan.delta, cpu);
}
