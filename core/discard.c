/*
 * Pages a running VM gives back (include/quire/discard.h): what the VM's
 * teardown does for every page, for one page, with the VM running. The
 * leaf is claimed first, so the scanner, the swap clock and the vCPUs keep
 * off it while it goes, as the swap clock's eviction does.
 */
#include <quire/discard.h>
#include <quire/errno.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>

int vm_discard_page(struct vm *vm, u64 ipa, unsigned cpu)
{
	struct s2_slot slot;
	struct s2_leaf old;
	u64 swap_slot;
	pidx_t i;
	int rc;

	if (s2_claim(vm, IPA(ipa), &slot, &old) == 0) {
		i = pool_pidx_of(vm->pool.vmm, old.pa);
		/*
		 * A private page may be a sharing candidate: out of the table under
		 * the scanner's lock first (the claim keeps the scanner from putting
		 * it back). A shared one keeps its place until its last mapping goes.
		 */
		if (i != PIDX_NONE && !(atomic_load(&pool_desc(vm->pool.vmm, i)->flags) & MP_SHARED))
			share_forget(i);
		s2_clear(vm, &slot);
		/* Its clean copy in swap, if any, goes too; then the page, or this VM's reference to it. */
		swap_page_release(vm, IPA(ipa), old.pa, cpu);
		return 1;
	}
	rc = s2_take_swapped(vm, IPA(ipa), &swap_slot);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	swap_release(vm, swap_slot, cpu);
	return 1;
}
