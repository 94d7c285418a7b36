/*
 * Loading a guest image into a VM before it runs: its pages charged and
 * counted as a fault's are (the quota CAS, the resident limit), or shared
 * with quire.bin's own copy of the image.
 */
#include <string.h>
#include <quire/errno.h>
#include <quire/fault.h>
#include <quire/share.h>
#include <quire/vm.h>

/*
 * Put len bytes at guest-physical at (page aligned) before the guest runs:
 * whole pages of an image quire.bin carries are mapped read-only, shared by
 * every VM that boots it (copy-on-write), unless the VM's sharing is off;
 * the rest is copied into pages of its own.
 */
int vm_copy_in(struct vm *vm, u64 at, const u8 *data, u64 len, unsigned cpu)
{
	struct pool *p = vm->pool.vmm;

	for (u64 off = 0; off < len; off += PAGE_SIZE) {
		int why = 0, rc;
		bool whole = len - off >= PAGE_SIZE;
		paddr_t src = (paddr_t)(uintptr_t)(data + off);
		ipa_t ipa = IPA(at + off);
		pidx_t i;

		if (whole && vm->cfg.sharing != SHARE_OFF && share_is_image(src)) {
			rc = share_map_image(vm, ipa, src, cpu);
			if (rc)
				return rc;
			continue;
		}
		/* As a fault's page: the quota CAS and the resident limit; only a partial page needs zeroes. */
		i = vmpool_take_mapped(&vm->pool, cpu, !whole, &why);
		if (i == PIDX_NONE)
			return why == VMPOOL_QUOTA || why == VMPOOL_LIMIT ? -EDQUOT : -ENOMEM;
		memcpy(page_va(pool_pa(p, i)), data + off, MIN(PAGE_SIZE, len - off));
		page_sync_for_guest(pool_pa(p, i));
		/* Mapped executable at once (most of an image is code): no older instructions may run. */
		page_sync_icache(pool_pa(p, i));
		pool_desc(p, i)->gpn = ipa.bits >> PAGE_SHIFT;
		atomic_store(&pool_desc(p, i)->refcount, 1);
		atomic_store(&pool_desc(p, i)->flags, MP_ACTIVE);
		rc = s2_map_page(vm, ipa, pool_pa(p, i), S2_RWX, cpu);
		if (rc) {
			/* Not mapped, so not found by the teardown: back now, or it stays charged for ever. */
			atomic_fetch_sub(&vm->pool.active, 1);
			atomic_store(&pool_desc(p, i)->refcount, 0);
			vmpool_give_back(&vm->pool, cpu, i, false);
			return rc;
		}
	}
	return 0;
}
