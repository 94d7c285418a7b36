/*
 * Merging identical pages and breaking the sharing again (see quire/share.h).
 *
 * One lock (sh.lock) guards the table, the reverse map, shared pages'
 * reference counts and every VM's 'live'. A guest page's leaf is guarded by
 * the stage-2 claim instead: whoever claims it (the scanner merging, a vCPU
 * breaking COW) owns it until it installs the new one, and a vCPU touching it
 * meanwhile just faults again. So the 4 KiB copy of a COW break runs outside
 * the lock.
 *
 * A shared page is charged to no VM (its duplicates were uncharged as they
 * went); its descriptor's owner is the group it belongs to and refcount the
 * number of (VM, guest page) pairs mapping it, each one in its reverse map.
 * The zero page and image pages are never freed, so they need neither.
 */
#include <string.h>
#include <quire/console.h>
#include <quire/spinlock.h>
#include "share_priv.h"

_Static_assert(MAX_VMS < 16 && VMCFG_IPA_BITS - PAGE_SHIFT <= RMAP_VM_SHIFT, "rmap entry fields");

struct share_ctx sh = { .lock = SPINLOCK_INIT, .zero_pidx = PIDX_NONE };
static struct region image[8];
static unsigned nimage;
static u64 salt[2 * MAX_VMS + 1];
static char domains[MAX_VMS][VMCFG_NAME_MAX];

u64 (*share_hash)(const void *page) = page_hash_mul;

static u32 rmap_entries(u32 npages)
{
	return npages; /* slots; merging pauses (logged) when 7/8 of them are in use */
}

static u32 buckets_for(u32 npages)
{
	u32 n = 1;

	while (n < npages / 2)
		n <<= 1;
	return n;
}

u64 share_meta_bytes(u32 npages)
{
	return ALIGN_UP((u64)npages * sizeof(struct share_meta) + (u64)buckets_for(npages) * sizeof(pidx_t) +
				(u64)rmap_entries(npages) * sizeof(struct rmap_entry),
			PAGE_SIZE);
}

/* A 64-bit finaliser (MurmurHash3's): every input bit moves every output bit. */
static u64 mix64(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53UL;
	x ^= x >> 33;
	return x;
}

void share_init(struct pool *p, void *mem, const struct region *images, unsigned nimages, u64 salt_seed)
{
	u32 n = p->ndesc;
	u8 *at = mem;

	sh.pool = p;
	sh.meta = (struct share_meta *)at;
	at += (u64)n * sizeof(*sh.meta);
	sh.bucket = (pidx_t *)at;
	sh.bucket_mask = buckets_for(n) - 1;
	at += (u64)(sh.bucket_mask + 1) * sizeof(pidx_t);
	sh.rmap = (struct rmap_entry *)at;
	sh.rmap_cap = rmap_entries(n);
	memset(sh.meta, 0, (u64)n * sizeof(*sh.meta));
	memset(domains, 0, sizeof(domains));
	memset(sh.bucket, 0xff, (u64)(sh.bucket_mask + 1) * sizeof(pidx_t));
	memset(sh.rmap, 0, (u64)sh.rmap_cap * sizeof(*sh.rmap));
	sh.rmap_used = 0;
	sh.rmap_limit = sh.rmap_cap - sh.rmap_cap / 8;
	nimage = MIN(nimages, (unsigned)ARRAY_SIZE(image));
	memcpy(image, images, nimage * sizeof(*images));
	for (unsigned g = 0; g < ARRAY_SIZE(salt); g++)
		salt[g] = mix64(salt_seed + (g + 1) * 0x9e3779b97f4a7c15UL);
	sh.zero_pidx = pool_alloc(p, 0);
	if (sh.zero_pidx != PIDX_NONE) {
		struct mpage *d = pool_desc(p, sh.zero_pidx);

		sh.zero_pa = pool_pa(p, sh.zero_pidx);
		page_zero(sh.zero_pa);
		atomic_store(&d->flags, MP_SHARED | MP_PINNED | MP_ZEROED);
		sh.zero_hash = share_hash(page_va(sh.zero_pa));
	}
	atomic_store(&sh.shared_pages, 0);
}

/* --- groups ----------------------------------------------------------- */

void share_vm_init(struct vm *vm)
{
	struct vm_share *s = &vm->share;
	unsigned d;

	memset(s, 0, sizeof(*s));
	s->cursor = vm->ram_base.bits;
	atomic_store(&s->scan_pages, vm->cfg.sharing == SHARE_OFF ? 0 : vm->cfg.scan_pages);
	spin_lock(&sh.lock);
	switch (vm->cfg.sharing) {
	case SHARE_SELF:
		s->group = MAX_VMS + vm->id;
		break;
	case SHARE_DOMAIN:
		for (d = 0; d < MAX_VMS && domains[d][0] && strcmp(domains[d], vm->cfg.share_domain); d++)
			;
		/* Configs name at most MAX_VMS VMs, hence domains; a full table would share zero pages only. */
		if (d < MAX_VMS) {
			memcpy(domains[d], vm->cfg.share_domain, sizeof(domains[d]));
			s->group = d + 1;
		}
		break;
	default:
		s->group = 0;
	}
	s->live = vm->cfg.sharing != SHARE_OFF;
	spin_unlock(&sh.lock);
}

void share_vm_stop(struct vm *vm)
{
	spin_lock(&sh.lock);
	vm->share.live = false;
	spin_unlock(&sh.lock);
}

/* --- the table: buckets chained through share_meta.hnext --------------- */

u64 share_salted(u64 h, u8 group)
{
	return mix64(h ^ salt[group]) | 1; /* never 0: that means "not hashed" */
}

void share_table_insert(pidx_t i, u64 key)
{
	pidx_t *b = &sh.bucket[key & sh.bucket_mask];

	sh.meta[i].key = key;
	sh.meta[i].hnext = *b;
	*b = i;
}

void share_table_remove(pidx_t i)
{
	pidx_t *at = &sh.bucket[sh.meta[i].key & sh.bucket_mask];

	while (*at != PIDX_NONE && *at != i)
		at = &sh.meta[*at].hnext;
	if (*at == i)
		*at = sh.meta[i].hnext;
	sh.meta[i].hnext = PIDX_NONE;
}

/* --- reverse map --------------------------------------------------------- */

static u32 rmap_next(u32 e)
{
	return e + 1 == sh.rmap_cap ? 0 : e + 1;
}

bool share_rmap_add(pidx_t s, const struct vm *vm, u64 gpn)
{
	u32 key = (u32)vm->id << RMAP_VM_SHIFT | (u32)gpn, e;

	if (sh.rmap_used >= sh.rmap_limit)
		return false;
	/* The limit keeps a free slot, so this ends. */
	for (e = share_rmap_home(key); sh.rmap[e].vm_gpn; e = rmap_next(e))
		;
	sh.rmap[e].vm_gpn = key;
	sh.rmap[e].page = s;
	sh.rmap_used++;
	return true;
}

static void rmap_del(pidx_t s, const struct vm *vm, u64 gpn)
{
	u32 key = (u32)vm->id << RMAP_VM_SHIFT | (u32)gpn, e, j;

	if (!sh.rmap_cap)
		return;
	/* A run of used slots from the key's home holds it, if anything does. */
	for (e = share_rmap_home(key); sh.rmap[e].vm_gpn != key; e = rmap_next(e))
		if (!sh.rmap[e].vm_gpn)
			return;
	if (sh.rmap[e].page != s)
		return;
	sh.rmap_used--;
	/*
	 * Close the hole at e: a later entry of the run moves into it unless its
	 * home lies (cyclically) in (e, j], where a probe for it starts past the
	 * hole. Every entry stays reachable from its home without a free slot
	 * on the way.
	 */
	for (j = rmap_next(e); sh.rmap[j].vm_gpn; j = rmap_next(j)) {
		u32 h = share_rmap_home(sh.rmap[j].vm_gpn);

		if (e <= j ? e < h && h <= j : e < h || h <= j)
			continue;
		sh.rmap[e] = sh.rmap[j];
		e = j;
	}
	sh.rmap[e].vm_gpn = 0;
	sh.rmap[e].page = 0;
}

/* --- pages changing hands ---------------------------------------------- */

/* A private page leaves its VM (merged away or the VM going): out of the table, back to the pool. */
void share_drop_private(struct vm *vm, pidx_t i, unsigned cpu, bool zeroed)
{
	if (share_flags(i) & MP_UNSTABLE)
		share_table_remove(i);
	sh.meta[i].key = 0;
	atomic_fetch_sub_explicit(&vm->pool.active, 1, memory_order_relaxed);
	vmpool_give_back(&vm->pool, cpu, i, zeroed);
}

void share_forget(pidx_t i)
{
	if (!sh.pool)
		return;
	spin_lock(&sh.lock);
	if (share_flags(i) & MP_UNSTABLE) {
		share_table_remove(i);
		share_set_flags(i, share_flags(i) & ~MP_UNSTABLE);
	}
	sh.meta[i].key = 0;
	spin_unlock(&sh.lock);
}

/* One mapping of shared page s goes; the last one frees it. Lock held. */
void share_drop_ref(pidx_t s, const struct vm *vm, u64 gpn, unsigned cpu)
{
	struct mpage *d = pool_desc(sh.pool, s);

	rmap_del(s, vm, gpn);
	if (atomic_fetch_sub_explicit(&d->refcount, 1, memory_order_relaxed) != 1)
		return;
	share_table_remove(s);
	sh.meta[s].key = 0;
	atomic_fetch_sub(&sh.shared_pages, 1);
	pool_free(sh.pool, cpu, s, false);
}

static void set_private(pidx_t i, const struct vm *vm, u64 gpn)
{
	struct mpage *d = pool_desc(sh.pool, i);

	d->owner = vm->id;
	d->gpn = gpn;
	atomic_store_explicit(&d->refcount, 1, memory_order_relaxed);
	share_set_flags(i, MP_ACTIVE);
	sh.meta[i].key = 0;
}

bool share_is_image(paddr_t pa)
{
	for (unsigned k = 0; k < nimage; k++)
		if (pa >= image[k].base && pa - image[k].base < image[k].size)
			return true;
	return false;
}

int share_map_image(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	int rc = s2_map_page(vm, ipa, pa, S2_R | S2_X, cpu);

	if (!rc)
		atomic_fetch_add_explicit(&vm->pool.shared, 1, memory_order_relaxed);
	return rc;
}

void share_release(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu)
{
	pidx_t i;

	if (pa == sh.zero_pa) {
		atomic_fetch_sub_explicit(&vm->pool.zero, 1, memory_order_relaxed);
		return;
	}
	i = pool_pidx_of(sh.pool, pa);
	if (i == PIDX_NONE) {
		if (share_is_image(pa))
			atomic_fetch_sub_explicit(&vm->pool.shared, 1, memory_order_relaxed);
		return; /* else a device frame (the GIC CPU interface) */
	}
	if (share_flags(i) & MP_SHARED) {
		spin_lock(&sh.lock);
		share_drop_ref(i, vm, ipa.bits >> PAGE_SHIFT, cpu);
		spin_unlock(&sh.lock);
		atomic_fetch_sub_explicit(&vm->pool.shared, 1, memory_order_relaxed);
		return;
	}
	/* The scanner let go of this VM (share_vm_stop), so the table is ours to change. */
	if (share_flags(i) & MP_UNSTABLE) {
		spin_lock(&sh.lock);
		share_drop_private(vm, i, cpu, false);
		spin_unlock(&sh.lock);
	} else {
		share_drop_private(vm, i, cpu, false);
	}
}

/* --- copy-on-write ------------------------------------------------------ */

/* A page refused for a reason of vmpool_take_mapped's or vmpool_adopt's: as a fill would be. */
static enum vio_result refused(int why)
{
	return why == VMPOOL_NOMEM ? VIO_SEA_NOMEM : VIO_SEA_QUOTA;
}

/* The writer's own copy of src (0: a zeroed page) in a new page; PIDX_NONE with *r set if none can be had. */
static pidx_t copy_of(struct vm *vm, paddr_t src, u64 gpn, unsigned cpu, enum vio_result *r)
{
	int why = 0;
	pidx_t i = vmpool_take_mapped(&vm->pool, cpu, !src, &why);

	if (i == PIDX_NONE) {
		*r = refused(why);
		return PIDX_NONE;
	}
	if (src) {
		page_copy_for_guest(pool_pa(sh.pool, i), src);
	}
	set_private(i, vm, gpn);
	return i;
}

enum vio_result share_cow(struct vm *vm, ipa_t page, unsigned cpu)
{
	u64 gpn = page.bits >> PAGE_SHIFT;
	enum vio_result r = VIO_UNHANDLED;
	struct s2_slot slot;
	struct s2_leaf old;
	pidx_t s, i;

	if (s2_claim(vm, page, &slot, &old))
		return VIO_RACED; /* being changed by someone else, or gone */
	if (old.prot & S2_W) {
		r = VIO_RACED; /* another vCPU broke it first; the fault was a stale TLB entry */
		goto undo;
	}
	if (old.prot & S2_DEVICE)
		goto undo;
	if (old.pa == sh.zero_pa) {
		i = copy_of(vm, 0, gpn, cpu, &r);
		if (i == PIDX_NONE)
			goto undo;
		atomic_fetch_sub_explicit(&vm->pool.zero, 1, memory_order_relaxed);
		goto mapped;
	}
	s = pool_pidx_of(sh.pool, old.pa);
	if (s == PIDX_NONE) {
		if (!share_is_image(old.pa))
			goto undo;
		i = copy_of(vm, old.pa, gpn, cpu, &r);
		if (i == PIDX_NONE)
			goto undo;
		atomic_fetch_sub_explicit(&vm->pool.shared, 1, memory_order_relaxed);
		goto mapped;
	}
	if (!(share_flags(s) & MP_SHARED))
		goto undo;
	spin_lock(&sh.lock);
	if (atomic_load_explicit(&pool_desc(sh.pool, s)->refcount, memory_order_relaxed) == 1) {
		/*
		 * The last user: the page is its own again, no copy. But it is one
		 * more page charged and resident, admitted as a fill's page is: at
		 * its quota or resident limit it is refused like one (swap makes
		 * room, or the guest gets an abort) and stays shared meanwhile.
		 */
		int why = vmpool_adopt(&vm->pool);

		if (why) {
			spin_unlock(&sh.lock);
			r = refused(why);
			goto undo;
		}
		rmap_del(s, vm, gpn);
		share_table_remove(s);
		set_private(s, vm, gpn);
		atomic_fetch_sub(&sh.shared_pages, 1);
		spin_unlock(&sh.lock);
		i = s;
	} else {
		spin_unlock(&sh.lock);
		/* Our mapping holds a reference, so s stays until we drop it below. */
		i = copy_of(vm, old.pa, gpn, cpu, &r);
		if (i == PIDX_NONE)
			goto undo;
		spin_lock(&sh.lock);
		share_drop_ref(s, vm, gpn, cpu);
		spin_unlock(&sh.lock);
	}
	atomic_fetch_sub_explicit(&vm->pool.shared, 1, memory_order_relaxed);
mapped:
	atomic_fetch_add_explicit(&vm->share.cow, 1, memory_order_relaxed);
	s2_install(vm, &slot, pool_pa(sh.pool, i), S2_RWX);
	return VIO_MAPPED;
undo:
	s2_install(vm, &slot, old.pa, old.prot);
	return r;
}
