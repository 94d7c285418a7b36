/*
 * Clean pages read back from swap keep their copy in their slot until written:
 * the first write makes the page writable and frees the slot, and so does the
 * page's release as its VM goes.
 */
#include <quire/share.h>
#include "swap_priv.h"

/* The page will differ from its copy, or goes: the slot is free again. The caller owns the page. */
static void drop_copy(struct vm *vm, pidx_t i)
{
	atomic_fetch_and(&swap_desc(i)->flags, (u8)~MP_SWAPCACHE);
	swap_slot_free(vm, swap_copy_slot(i));
}

enum vio_result swap_write_fault(struct vm *vm, ipa_t page)
{
	struct s2_slot slot;
	struct s2_leaf l, old;
	pidx_t i;

	if (!s2_get(vm, page, &l) || (l.prot & (S2_W | S2_DEVICE)) || (i = swap_evictable(vm, &l)) == PIDX_NONE)
		return VIO_UNHANDLED; /* not a clean page of its own: copy-on-write, if anything */
	if (s2_claim(vm, page, &slot, &old))
		return VIO_RACED;
	if (old.pa != l.pa || (old.prot & S2_W) || !swap_has_copy(i)) {
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

	if (i != PIDX_NONE && swap_has_copy(i))
		drop_copy(vm, i);
	share_release(vm, ipa, pa, cpu);
}
