/*
 * virtio-balloon (virtio 1.x, 5.5) as a device model on Quire's
 * virtio-mmio transport (include/quire/balloon.h). Offered: the stats
 * queue, deflate on OOM and free page reporting. Every page the guest
 * inflates or reports leaves the VM at once (vm_discard_page); deflating
 * needs nothing from Quire (MUST_TELL_HOST is not offered): the guest's
 * next touch fills a zeroed page.
 */
#include <quire/balloon.h>
#include <quire/console.h>
#include <quire/discard.h>
#include <quire/errno.h>
#include <quire/virtio.h>
#include <quire/vm.h>

#define VIRTIO_ID_BALLOON 5
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define F_PAGE_REPORTING 5

/* The queues as Linux sets them up: a queue not negotiated takes no index (virtio_find_vqs). */
enum { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORTING, Q_NR };

#define CFG_NUM_PAGES 0
#define CFG_ACTUAL 4

/* PFNs read from a chain at a time. */
#define PFN_BATCH 64

struct balloon {
	struct virtio_dev dev;
	u32 target, actual;
	u32 asked, policy;	/* target = asked (the operator's) + policy (core/balloon_policy.c), capped at RAM */
	u64 inflated, deflated, reported, discarded, oom_deflated;
	u64 policy_inflates;	/* times the policy asked for more */
	bool stats_held;	/* the driver's stats buffer, kept until Quire wants fresh figures */
	u16 stats_head;
	bool stats_valid;
	u64 stats[BALLOON_S_NR];
};

static struct balloon balloons[MAX_VMS];

static struct balloon *of(struct virtio_dev *d)
{
	return (struct balloon *)d;
}

static void put32(u8 *p, u32 v)
{
	for (unsigned k = 0; k < 4; k++)
		p[k] = (u8)(v >> (8 * k));
}

/* The queue the driver's index q is, given what it negotiated (no index for a queue it has not). */
static int queue_of(const struct virtio_dev *d, unsigned q)
{
	bool stats = d->driver_features & 1UL << F_STATS_VQ;

	if (q == 2 && !stats)
		return d->driver_features & 1UL << F_PAGE_REPORTING ? Q_REPORTING : -1;
	if (q == 3 && !(stats && (d->driver_features & 1UL << F_PAGE_REPORTING)))
		return -1;
	return (int)q;
}

/*
 * One page the guest gave back: it leaves the VM. -EAGAIN if it is on its
 * way to or from the disk, -EBUSY if it is claimed for a moment: the
 * request is taken again (the guest's notify runs again, after the disk
 * for -EAGAIN), and the pages before it are gone already, so that repeats
 * nothing.
 */
static int give_back(struct balloon *b, u64 pfn, unsigned cpu)
{
	int rc = vm_discard_page(b->dev.vm, pfn << PAGE_SHIFT, cpu);

	if (rc == 1)
		b->discarded++;
	return rc < 0 ? rc : 0;
}

/* An inflate (or deflate) request: its readable part is an array of 32-bit page frame numbers. */
static int pfns(struct balloon *b, struct virtq_chain *c, bool inflate, unsigned cpu)
{
	struct vm *vm = b->dev.vm;
	u32 pfn[PFN_BATCH];
	u64 n = c->out_len / 4;
	int rc;

	if (c->out_len % 4) {
		virtio_broken(&b->dev, "an inflate or deflate buffer that is not whole page numbers");
		return -EPROTO;
	}
	for (u64 k = 0; k < n; k += PFN_BATCH) {
		unsigned m = MIN(PFN_BATCH, n - k);

		if ((rc = virtq_read(vm, c, 4 * k, pfn, 4 * m, cpu)))
			return rc;
		for (unsigned j = 0; j < m; j++) {
			if (!vm_in_ram(vm, IPA((u64)pfn[j] << PAGE_SHIFT))) {
				virtio_broken(&b->dev, "a page number outside the VM's RAM");
				return -EPROTO;
			}
			if (inflate && (rc = give_back(b, pfn[j], cpu)))
				return rc;
		}
	}
	if (inflate)
		b->inflated += n;
	else
		b->deflated += n;
	return 0;
}

/* A free page report: each writable segment is a free block of the guest's, page aligned. */
static int report(struct balloon *b, struct virtq_chain *c, unsigned cpu)
{
	u64 pages = 0;
	int rc;

	for (unsigned k = c->nout; k < c->nout + c->nin; k++) {
		const struct virtq_seg *s = &c->seg[k];

		if ((s->addr | s->len) & (PAGE_SIZE - 1)) {
			virtio_broken(&b->dev, "a reported block that is not whole pages");
			return -EPROTO;
		}
		for (u64 a = s->addr; a < s->addr + s->len; a += PAGE_SIZE)
			if ((rc = give_back(b, a >> PAGE_SHIFT, cpu)))
				return rc;
		pages += s->len >> PAGE_SHIFT;
	}
	/* Counted once the whole report is done: a report taken again is not counted twice. */
	b->reported += pages;
	return 0;
}

/* The stats buffer: tag (16 bits) and value (64 bits) pairs, packed (5.5.6.3). */
static int stats_in(struct balloon *b, struct virtq_chain *c, unsigned cpu)
{
	u8 e[10];
	int rc;

	for (u64 off = 0; off + sizeof(e) <= c->out_len; off += sizeof(e)) {
		u16 tag;
		u64 val = 0;

		if ((rc = virtq_read(b->dev.vm, c, off, e, sizeof(e), cpu)))
			return rc;
		tag = (u16)(e[0] | e[1] << 8);
		for (unsigned k = 0; k < 8; k++)
			val |= (u64)e[2 + k] << (8 * k);
		if (tag < BALLOON_S_NR)
			b->stats[tag] = val; /* tags Quire does not know are skipped, as the spec allows */
	}
	b->stats_valid = true;
	/* Kept, not used: giving it back is how Quire asks for the next figures. */
	b->stats_held = true;
	b->stats_head = c->head;
	return 0;
}

static int notify(struct virtio_dev *d, unsigned q, unsigned cpu)
{
	struct balloon *b = of(d);
	struct virtq *vq = &d->q[q];
	int which = queue_of(d, q), rc, n;
	struct virtq_chain c;
	const char *why = "";
	bool used = false;

	if (which < 0)
		return 0;
	while ((n = virtq_pop(d->vm, vq, &c, &why, cpu)) == 1) {
		switch (which) {
		case Q_INFLATE:
		case Q_DEFLATE:
			rc = pfns(b, &c, which == Q_INFLATE, cpu);
			break;
		case Q_REPORTING:
			rc = report(b, &c, cpu);
			break;
		default:
			rc = stats_in(b, &c, cpu);
			break;
		}
		if (rc == -EAGAIN || rc == -EBUSY) {
			vq->last_avail--; /* taken again when the guest's store runs again: every step repeats harmlessly */
			return rc;
		}
		if (rc)
			return 0; /* the driver broke a rule (virtio_broken), or its memory is gone: no more */
		if (which == Q_STATS)
			continue;
		if (virtq_push(d->vm, vq, c.head, 0, cpu))
			return 0;
		used = true;
	}
	if (n == -EPROTO)
		virtio_broken(d, why);
	if (used)
		virtio_used(d, q, cpu);
	return n == -EAGAIN || n == -EBUSY ? n : 0;
}

/* A new target: the guest hears of it by a configuration change interrupt. */
static void set_target(struct balloon *b)
{
	/* The policy's share never past the VM's RAM; the operator's word as given (the monitor checks it). */
	u32 t = (u32)MIN((u64)b->asked + b->policy, MAX((u64)b->asked, b->dev.vm->ram_size >> PAGE_SHIFT));

	if (b->target != t) {
		b->target = t;
		put32(&b->dev.config[CFG_NUM_PAGES], t);
		virtio_config_changed(&b->dev);
	}
}

static void config_write(struct virtio_dev *d, u32 off, unsigned size, u32 val)
{
	struct balloon *b = of(d);

	/* Only actual is the driver's to write (5.5.4). */
	if (off != CFG_ACTUAL || size != 4)
		return;
	/* A balloon holds no more than the VM's RAM, whatever a driver writes: the counters stay honest. */
	val = (u32)MIN((u64)val, d->vm->ram_size >> PAGE_SHIFT);
	/*
	 * Going down and past the target, with deflate on OOM negotiated: the
	 * guest took pages back by itself. Asking for them again would only
	 * push it back into its OOM path, so the target follows it down: the
	 * policy's share first, then the operator's.
	 */
	if (val < b->actual && val < b->target && (d->driver_features & 1UL << F_DEFLATE_ON_OOM)) {
		u32 gone = b->target - val, p = MIN(gone, b->policy);

		b->oom_deflated += b->actual - val;
		b->policy -= p;
		b->asked -= MIN(gone - p, b->asked);
		vm_log_once(d->vm, VM_LOG_BALLOON_OOM, "quire: %s: its guest took pages back from its balloon by "
			    "itself (deflate on OOM); the target follows it down (logged once)\n", d->vm->name);
		b->target = val;
		put32(&d->config[CFG_NUM_PAGES], val);
	}
	b->actual = val;
	put32(&d->config[CFG_ACTUAL], val);
}

static void reset(struct virtio_dev *d)
{
	struct balloon *b = of(d);

	/* The driver starts again: its balloon is empty; Quire's wish stays. */
	b->actual = 0;
	b->stats_held = false;
	put32(&d->config[CFG_NUM_PAGES], b->target);
	put32(&d->config[CFG_ACTUAL], 0);
}

static const struct virtio_ops balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.features = 1UL << F_STATS_VQ | 1UL << F_DEFLATE_ON_OOM | 1UL << F_PAGE_REPORTING,
	.nqueues = Q_NR,
	.config_size = 8,
	.config_write = config_write,
	.notify = notify,
	.reset = reset,
};

static struct balloon *balloon_of(struct vm *vm)
{
	struct balloon *b = &balloons[vm->id - 1];

	/* The VM's own slot says: a VM made again in the same place without a balloon has none. */
	return vm->virtio[VMCFG_BALLOON_SLOT] == &b->dev ? b : NULL;
}

void balloon_attach(struct vm *vm, unsigned slot, bool deflate_on_oom)
{
	struct balloon *b = &balloons[vm->id - 1];

	/*
	 * Under its lock: the monitor may still be reading the balloon of the
	 * VM that held this place before (its slot still points here).
	 */
	spin_lock(&b->dev.lock);
	b->target = b->actual = b->asked = b->policy = 0;
	b->inflated = b->deflated = b->reported = b->discarded = b->oom_deflated = b->policy_inflates = 0;
	b->stats_held = b->stats_valid = false;
	for (unsigned k = 0; k < BALLOON_S_NR; k++)
		b->stats[k] = 0;
	b->dev.ops = &balloon_ops;
	b->dev.withheld = deflate_on_oom ? 0 : 1UL << F_DEFLATE_ON_OOM;
	spin_unlock(&b->dev.lock);
	virtio_attach(vm, slot, &b->dev);
}

int balloon_set_target(struct vm *vm, u32 pages)
{
	struct balloon *b = balloon_of(vm);

	if (!b)
		return -ENODEV;
	spin_lock(&b->dev.lock);
	/* The operator's word: what the policy added is dropped. */
	b->asked = pages;
	b->policy = 0;
	set_target(b);
	spin_unlock(&b->dev.lock);
	return 0;
}

bool balloon_view(struct vm *vm, struct balloon_view *out)
{
	struct balloon *b = balloon_of(vm);
	u32 charged = atomic_load(&vm->pool.charged), room;

	/* Only a try: the policy may run inside this balloon's own notify (a fill its copy made). */
	if (!b || !spin_trylock(&b->dev.lock))
		return false;
	room = (u32)(vm->ram_size >> PAGE_SHIFT) - MIN(b->target, (u32)(vm->ram_size >> PAGE_SHIFT));
	*out = (struct balloon_view){
		.excess = MIN(charged > vm->pool.guaranteed ? charged - vm->pool.guaranteed : 0, room),
		.pending = b->target > b->actual ? b->target - b->actual : 0,
		.policy = b->policy,
		.live = virtio_live(&b->dev),
	};
	spin_unlock(&b->dev.lock);
	return true;
}

void balloon_policy_move(struct vm *vm, s64 delta, unsigned cpu)
{
	struct balloon *b = balloon_of(vm);

	(void)cpu;
	if (!b || !spin_trylock(&b->dev.lock))
		return;
	b->policy = (u32)MIN(MAX((s64)b->policy + delta, 0), (s64)(vm->ram_size >> PAGE_SHIFT));
	if (delta > 0)
		b->policy_inflates++;
	set_target(b);
	spin_unlock(&b->dev.lock);
}

void balloon_info(struct vm *vm, struct balloon_info *out, unsigned cpu)
{
	struct balloon *b = balloon_of(vm);

	*out = (struct balloon_info){ 0 };
	if (!b)
		return;
	spin_lock(&b->dev.lock);
	*out = (struct balloon_info){
		.present = true, .driver = virtio_live(&b->dev), .target = b->target, .policy = b->policy,
		.actual = b->actual, .inflated = b->inflated, .deflated = b->deflated, .reported = b->reported,
		.discarded = b->discarded, .oom_deflated = b->oom_deflated, .policy_inflates = b->policy_inflates,
		.stats_valid = b->stats_valid,
	};
	for (unsigned k = 0; k < BALLOON_S_NR; k++)
		out->stats[k] = b->stats[k];
	/* The stats buffer back to the driver: it fills it again and notifies (5.5.6.3). */
	if (b->stats_held && virtio_live(&b->dev) &&
	    !virtq_push(vm, &b->dev.q[Q_STATS], b->stats_head, 0, cpu)) {
		b->stats_held = false;
		virtio_used(&b->dev, Q_STATS, cpu);
	}
	spin_unlock(&b->dev.lock);
}
