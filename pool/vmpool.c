/*
 * A VM's pool: its quota, its idle set (pages reserved for it and already
 * zeroed, so a fault can map one without zeroing) and its counters. Pages
 * beyond the idle set come from the VMM pool: pre-zeroed if idle CPUs
 * zeroed some, else zeroed on the way.
 */
#include <quire/pool.h>

void vmpool_init(struct vm_pool *vp, struct pool *vmm, u8 vm_id, u32 quota)
{
	vp->vmm = vmm;
	vp->vm_id = vm_id;
	vp->quota = quota;
	vp->guaranteed = quota;
	atomic_fetch_add_explicit(&vmm->promised, quota, memory_order_relaxed);
	atomic_init(&vp->charged, 0);
	atomic_init(&vp->active, 0);
	vp->data_limit = ~0u;
	atomic_init(&vp->pgtables, 0);
	atomic_init(&vp->fills, 0);
	atomic_init(&vp->quota_hits, 0);
	atomic_init(&vp->zero, 0);
	atomic_init(&vp->shared, 0);
	atomic_init(&vp->swapped, 0);
	lfstack_init(&vp->idle);
}

void vmpool_fini(struct vm_pool *vp)
{
	u32 c = atomic_load_explicit(&vp->charged, memory_order_relaxed);

	if (c < vp->guaranteed)
		atomic_fetch_sub_explicit(&vp->vmm->promised, vp->guaranteed - c, memory_order_relaxed);
	vp->guaranteed = 0;
}

void vmpool_overcommit(struct vm_pool *vp, u32 g)
{
	u32 c = atomic_load_explicit(&vp->charged, memory_order_relaxed);

	g = MIN(g, vp->guaranteed);
	/* Of the pages it no longer is guaranteed, those not taken yet were promised. */
	if (c < vp->guaranteed)
		atomic_fetch_sub_explicit(&vp->vmm->promised, vp->guaranteed - MAX(c, g), memory_order_relaxed);
	vp->guaranteed = g;
}

static bool owned(const struct vm_pool *vp, pidx_t i, const char *what);

static bool machine_short(const struct pool *p)
{
	return pool_free_pages(p) <= (u64)atomic_load_explicit(&p->promised, memory_order_relaxed) + p->low_water;
}

bool vmpool_short(const struct vm_pool *vp)
{
	return atomic_load_explicit(&vp->charged, memory_order_relaxed) >= vp->guaranteed && machine_short(vp->vmm);
}

/* Charge one page against the quota: 0, or why not (vmpool_take's *why). The fault path's: kept apart from charge_n. */
static int charge(struct vm_pool *vp)
{
	u32 c = atomic_load_explicit(&vp->charged, memory_order_relaxed);

	do {
		if (c >= vp->quota)
			return VMPOOL_QUOTA;
		if (c >= vp->guaranteed && machine_short(vp->vmm))
			return VMPOOL_SHORT;
	} while (!atomic_compare_exchange_weak_explicit(&vp->charged, &c, c + 1, memory_order_relaxed,
							  memory_order_relaxed));
	/* A page it was promised: the promise is kept. */
	if (c < vp->guaranteed)
		atomic_fetch_sub_explicit(&vp->vmm->promised, 1, memory_order_relaxed);
	return 0;
}

/* The same for n pages at once (a block's run), or none. */
static int charge_n(struct vm_pool *vp, u32 n)
{
	u32 c = atomic_load_explicit(&vp->charged, memory_order_relaxed);

	do {
		if (c + n > vp->quota || c + n < c)
			return VMPOOL_QUOTA;
		if (c + n > vp->guaranteed && machine_short(vp->vmm))
			return VMPOOL_SHORT;
	} while (!atomic_compare_exchange_weak_explicit(&vp->charged, &c, c + n, memory_order_relaxed,
							  memory_order_relaxed));
	if (c < vp->guaranteed)
		atomic_fetch_sub_explicit(&vp->vmm->promised, MIN(n, vp->guaranteed - c), memory_order_relaxed);
	return 0;
}

static void uncharge_n(struct vm_pool *vp, u32 n)
{
	u32 c = atomic_fetch_sub_explicit(&vp->charged, n, memory_order_relaxed) - n;

	/* Those of them below its guarantee are promised again. */
	if (c < vp->guaranteed)
		atomic_fetch_add_explicit(&vp->vmm->promised, MIN(n, vp->guaranteed - c), memory_order_relaxed);
}

void vmpool_uncharge(struct vm_pool *vp)
{
	u32 c = atomic_fetch_sub_explicit(&vp->charged, 1, memory_order_relaxed);

	if (c - 1 < vp->guaranteed)
		atomic_fetch_add_explicit(&vp->vmm->promised, 1, memory_order_relaxed);
}

/*
 * A charged page from the VMM pool, owned by this VM, zeroed unless the
 * caller will overwrite it all. A page to zero comes pre-zeroed if one is
 * (no DC ZVA on the fault path); one to overwrite comes dirty if one is.
 */
static pidx_t take_new(struct vm_pool *vp, unsigned cpu, int *why, bool zero)
{
	struct pool *p = vp->vmm;
	int rc = charge(vp);
	bool zeroed;
	pidx_t i;

	if (rc) {
		*why = rc;
		return PIDX_NONE;
	}
	if (zero) {
		i = pool_alloc_zeroed(p, cpu);
		if (i == PIDX_NONE)
			i = pool_alloc_to_zero(p, cpu);
	} else {
		i = pool_alloc(p, cpu);
	}
	if (i == PIDX_NONE) {
		vmpool_uncharge(vp);
		*why = VMPOOL_NOMEM;
		return PIDX_NONE;
	}
	/* MP_ZEROED only off the pre-zeroed stack. */
	zeroed = atomic_load_explicit(&p->desc[i].flags, memory_order_relaxed) & MP_ZEROED;
	if (zero && !zeroed)
		page_zero(pool_pa(p, i));
	p->desc[i].owner = vp->vm_id;
	/* Zeroed only if it is: a page for a copy may hold anyone's old data until overwritten. */
	atomic_store_explicit(&p->desc[i].flags, zero || zeroed ? MP_ZEROED : 0, memory_order_relaxed);
	return i;
}

pidx_t vmpool_take(struct vm_pool *vp, unsigned cpu, int *why)
{
	pidx_t i = lfstack_pop(&vp->idle, vp->vmm->desc);

	if (i != PIDX_NONE) {
		/* Already charged and zeroed when it was reserved. */
		atomic_store_explicit(&vp->vmm->desc[i].flags, MP_ZEROED, memory_order_relaxed);
		return i;
	}
	return take_new(vp, cpu, why, true);
}

pidx_t vmpool_take_for_copy(struct vm_pool *vp, unsigned cpu, int *why)
{
	return take_new(vp, cpu, why, false);
}

bool vmpool_activate(struct vm_pool *vp)
{
	u32 a = atomic_load_explicit(&vp->active, memory_order_relaxed);

	do {
		if (a >= vp->data_limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&vp->active, &a, a + 1, memory_order_relaxed,
							  memory_order_relaxed));
	return true;
}

/* n data pages more at once (a block's), within data_limit, or none. */
static bool activate_n(struct vm_pool *vp, u32 n)
{
	u32 a = atomic_load_explicit(&vp->active, memory_order_relaxed);

	do {
		if (a + n > vp->data_limit || a + n < a)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&vp->active, &a, a + n, memory_order_relaxed,
							  memory_order_relaxed));
	return true;
}

pidx_t vmpool_take_run(struct vm_pool *vp, unsigned cpu, u32 *zeroed)
{
	struct pool *p = vp->vmm;
	pidx_t r;

	if (!activate_n(vp, RUN_PAGES))
		return PIDX_NONE;
	if (charge_n(vp, RUN_PAGES)) {
		atomic_fetch_sub_explicit(&vp->active, RUN_PAGES, memory_order_relaxed);
		return PIDX_NONE;
	}
	r = pool_alloc_run(p, cpu, zeroed);
	if (r == PIDX_NONE) {
		uncharge_n(vp, RUN_PAGES);
		atomic_fetch_sub_explicit(&vp->active, RUN_PAGES, memory_order_relaxed);
		return PIDX_NONE;
	}
	for (u32 k = 0; k < RUN_PAGES; k++) {
		p->desc[r + k].owner = vp->vm_id;
		atomic_store_explicit(&p->desc[r + k].flags, MP_ACTIVE, memory_order_relaxed);
	}
	return r;
}

void vmpool_give_back_run(struct vm_pool *vp, unsigned cpu, pidx_t first)
{
	u32 n;

	if (!owned(vp, first, "given back as a run"))
		return;
	n = pool_free_run(vp->vmm, cpu, first);
	uncharge_n(vp, n);
	atomic_fetch_sub_explicit(&vp->active, n, memory_order_relaxed);
}

pidx_t vmpool_take_mapped(struct vm_pool *vp, unsigned cpu, bool zero, int *why)
{
	pidx_t i;

	if (!vmpool_activate(vp)) {
		*why = VMPOOL_LIMIT;
		return PIDX_NONE;
	}
	i = zero ? vmpool_take(vp, cpu, why) : take_new(vp, cpu, why, false);
	if (i == PIDX_NONE)
		atomic_fetch_sub_explicit(&vp->active, 1, memory_order_relaxed);
	return i;
}

int vmpool_adopt(struct vm_pool *vp)
{
	int rc = charge(vp);

	if (rc)
		return rc;
	if (!vmpool_activate(vp)) {
		vmpool_uncharge(vp);
		return VMPOOL_LIMIT;
	}
	return 0;
}

/* Is page i this VM's to give back? Logs the refusal if not. */
static bool owned(const struct vm_pool *vp, pidx_t i, const char *what)
{
	const struct mpage *d;

	if (!pool_index_ok(vp->vmm, i, what))
		return false;
	d = pool_desc(vp->vmm, i);
	if (d->owner == vp->vm_id)
		return true;
	pool_refuse(vp->vmm, i, what, "not this VM's");
	return false;
}

/* A refused page stays charged: uncharging a page given back twice would break the quota. */
void vmpool_give_back(struct vm_pool *vp, unsigned cpu, pidx_t i, bool zeroed)
{
	if (owned(vp, i, "given back") && pool_free(vp->vmm, cpu, i, zeroed))
		vmpool_uncharge(vp);
}

void vmpool_give_back_table(struct vm_pool *vp, unsigned cpu, pidx_t i)
{
	if (owned(vp, i, "given back as a table") && pool_free_table(vp->vmm, cpu, i))
		vmpool_uncharge(vp);
}

u32 vmpool_reserve_idle(struct vm_pool *vp, unsigned cpu, u32 n)
{
	u32 done = 0;
	int why;

	for (; done < n; done++) {
		pidx_t i = take_new(vp, cpu, &why, true);

		if (i == PIDX_NONE)
			break;
		atomic_store_explicit(&vp->vmm->desc[i].flags, MP_IDLE | MP_ZEROED, memory_order_relaxed);
		lfstack_push(&vp->idle, vp->vmm->desc, i);
	}
	return done;
}
