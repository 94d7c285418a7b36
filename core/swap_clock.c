/*
 * The clock over a VM's pages that picks what to evict: the stage-2 access
 * flag says what was used since the last sweep; cold private pages are claimed.
 */
#include "swap_priv.h"

/*
 * The page behind a leaf if the VM may evict it: its own private RAM,
 * writable or clean with its copy on the disk (not shared, zero or an image's).
 */
pidx_t swap_evictable(struct vm *vm, const struct s2_leaf *l)
{
	pidx_t i;

	if (l->prot & S2_DEVICE)
		return PIDX_NONE;
	i = pool_pidx_of(sw.pool, l->pa);
	if (i == PIDX_NONE || swap_desc(i)->owner != vm->id)
		return PIDX_NONE;
	return (l->prot & S2_W) || swap_has_copy(i) ? i : PIDX_NONE;
}

/*
 * The clock: from the hand on, a page used since the last sweep (access
 * flag set) loses its flag and stays; one not used is claimed. With two
 * sweeps the second finds every page whose flag the first cleared; one
 * sweep (writing ahead) takes only pages already cold, and looks at no
 * more than a few pages per page wanted. Never keep, the page the caller
 * has just mapped.
 */
unsigned swap_clock_pick(struct vm *vm, struct victim *v, unsigned want, unsigned sweeps, u64 keep)
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
		if (ipa == keep || !s2_get(vm, IPA(ipa), &l) || (v[n].page = swap_evictable(vm, &l)) == PIDX_NONE)
			continue;
		if (s2_test_clear_young(vm, IPA(ipa))) {
			cleared = true;
			continue;
		}
		if (s2_claim(vm, IPA(ipa), &v[n].leaf, &old))
			continue;
		if (old.pa != l.pa || swap_evictable(vm, &old) != v[n].page) {
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
