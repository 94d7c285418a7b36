/*
 * virtio-blk for guests (include/quire/vdisk.h). Each chain the driver
 * makes available takes one of the disk's VDISK_DEPTH request slots, from
 * when it is popped until its used entry is written, so a request that
 * cannot move on now (the host disk's queue is full, a guest page is on
 * its way back from swap) waits in its slot and is moved on later by
 * vdisk_kick. A slot's life:
 *
 *   FREE -> DISK (on the host disk) -> DONE (answer the guest) -> FREE
 *   FREE -> SUBMIT (host queue full) -> DISK ...
 *   FREE -> DONE (answered without the disk: flush without a cache, ID, errors)
 *
 * The host disk's completion only marks its slot DONE: the guest's memory
 * is reached later, under the device's lock, from a clean context. A reset
 * (the driver's, or the VM stopping) starts a new epoch: a request of an
 * older one never touches guest memory again, and its bounce pages go back
 * once the host disk is done with them.
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/blk.h>
#include <quire/console.h>
#include <quire/disk.h>
#include <quire/errno.h>
#include <quire/printf.h>
#include <quire/vdisk.h>
#include <quire/virtio.h>
#include <quire/vm.h>

#define VIRTIO_ID_BLOCK 2
#define F_SIZE_MAX 1
#define F_SEG_MAX 2
#define F_RO 5
#define F_FLUSH 9

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define HDR_LEN 16 /* type, reserved, sector */
#define ID_LEN 20
/* struct virtio_blk_config up to blk_size: capacity, size_max, seg_max, geometry, blk_size. */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12
#define CFG_SIZE 24
#define MAX_BYTES (VDISK_SEG_MAX * PAGE_SIZE)

_Static_assert(VDISK_SEG_MAX <= BLK_MAX_PAGES, "a guest request fits one host request");
_Static_assert(MAX_VMS <= 32, "a pending bit per VM");

enum { RQ_FREE, RQ_DISK, RQ_SUBMIT, RQ_DONE };

struct vdisk;

struct vreq {
	struct blk_req r;
	struct vdisk *k;
	_Atomic u8 state;
	u8 status;	/* VIRTIO_BLK_S_* for the guest, unless the host disk fails it */
	u32 type;	/* VIRTIO_BLK_T_* as the guest wrote it */
	u32 epoch;
	u32 len;	/* data bytes (IN, OUT) */
	u64 sector;	/* the guest's */
	unsigned npages;
	pidx_t page[BLK_MAX_PAGES];
	struct virtq_chain c;
};

struct vdisk {
	struct virtio_dev dev;
	u64 first, sectors;
	bool ro;
	char part[GPT_NAME_MAX + 1];
	char id[ID_LEN];
	u32 epoch;
	bool range_logged, size_logged, io_logged;
	u64 reads, writes, flushes, ids, read_bytes, written_bytes, errors;
	struct vreq rq[VDISK_DEPTH];
};

static struct vdisk disks[MAX_VMS];
static _Atomic u32 pending; /* bit i: disks[i] has a slot to move on, or chains it could not take */

static struct vdisk *of(struct virtio_dev *d)
{
	return (struct vdisk *)d;
}

static void mark(struct vdisk *k)
{
	atomic_fetch_or(&pending, 1u << (k - disks));
}

static void put_le(u8 *p, u64 v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (u8)(v >> (8 * i));
}

static void pages_put(struct vreq *q, unsigned cpu)
{
	/* A request the host disk would not stop for: it may still write its pages, so they stay its. */
	if (q->r.status == BLK_LOST)
		q->npages = 0;
	while (q->npages)
		pool_free(disk_pool(), cpu, q->page[--q->npages], false);
}

static bool pages_get(struct vreq *q, unsigned cpu)
{
	unsigned n = (unsigned)ALIGN_UP(q->len, PAGE_SIZE) / PAGE_SIZE;

	q->r.status = 0;
	while (q->npages < n) {
		pidx_t i = pool_alloc(disk_pool(), cpu);

		if (i == PIDX_NONE) {
			pages_put(q, cpu);
			return false;
		}
		q->page[q->npages++] = i;
	}
	return true;
}

/* Copy between the bounce pages and the chain's data (OUT: after the header; IN: the writable part). */
static int data_copy(struct vreq *q, bool to_guest, unsigned cpu)
{
	struct vm *vm = q->k->dev.vm;
	int rc = 0;

	for (unsigned i = 0; i < q->npages && !rc; i++) {
		u32 n = MIN(q->len - i * PAGE_SIZE, (u32)PAGE_SIZE);
		void *p = page_va(pool_pa(disk_pool(), q->page[i]));

		rc = to_guest ? virtq_write(vm, &q->c, (u64)i * PAGE_SIZE, p, n, cpu)
			      : virtq_read(vm, &q->c, HDR_LEN + (u64)i * PAGE_SIZE, p, n, cpu);
	}
	return rc;
}

static void io_done(struct blk_req *r, unsigned cpu)
{
	struct vreq *q = r->ctx;

	(void)cpu;
	/* Interrupt context: only say so; vdisk_kick answers the guest (irq_handle calls it next). */
	atomic_store_explicit(&q->state, RQ_DONE, memory_order_release);
	mark(q->k);
}

/* Lock held: hand q to the host disk, or leave it waiting for room (SUBMIT). */
static void submit(struct vreq *q)
{
	int rc;

	/* DISK before the request is out: its completion may come at once, on another CPU. */
	atomic_store(&q->state, RQ_DISK);
	rc = blk_submit(&q->r);
	if (!rc)
		return;
	if (rc == -EBUSY) {
		atomic_store(&q->state, RQ_SUBMIT);
		mark(q->k);
		return;
	}
	q->status = S_IOERR; /* the host disk is gone */
	atomic_store(&q->state, RQ_DONE);
}

/* Lock held: a read, write or flush goes to the host disk; false: not now (no memory, or -EAGAIN in *err). */
static bool io_start(struct vreq *q, unsigned cpu, int *err)
{
	struct vdisk *k = q->k;
	int rc;

	if (!pages_get(q, cpu)) {
		*err = -ENOMEM;
		return false;
	}
	if (q->type == T_OUT && (rc = data_copy(q, false, cpu))) {
		pages_put(q, cpu);
		if (rc != -EFAULT) {
			*err = rc;
			return false;
		}
		q->status = S_IOERR; /* its buffer cannot be had (the VM's quota): that request fails */
		atomic_store(&q->state, RQ_DONE);
		return true;
	}
	q->r = (struct blk_req){ .sector = k->first + q->sector, .npages = q->npages,
				 .last_len = q->len % PAGE_SIZE, .write = q->type == T_OUT,
				 .flush = q->type == T_FLUSH, .guest = true, .done = io_done, .ctx = q };
	for (unsigned i = 0; i < q->npages; i++)
		q->r.pa[i] = pool_pa(disk_pool(), q->page[i]);
	submit(q);
	return true;
}

/* Lock held: the request's checks; S_OK if it goes to the host disk. */
static u8 check(struct vreq *q)
{
	struct vdisk *k = q->k;
	const char *name = k->dev.vm->name;

	if (q->type != T_IN && q->type != T_OUT)
		return S_OK;
	if (q->type == T_OUT && k->ro)
		return S_IOERR;
	if (!q->len || q->len % 512 || q->len > MAX_BYTES) {
		if (!k->size_logged)
			printk("quire: %s: disk '%s': a request of %u bytes (not 512 to %lu in whole sectors): I/O "
			       "error (logged once)\n", name, k->part, q->len, (unsigned long)MAX_BYTES);
		k->size_logged = true;
		return S_IOERR;
	}
	if (q->sector >= k->sectors || q->len / 512 > k->sectors - q->sector) {
		if (!k->range_logged)
			printk("quire: %s: disk '%s': a request for %u sectors at sector %lu, past its end (%lu "
			       "sectors): I/O error (logged once)\n", name, k->part, q->len / 512,
			       (unsigned long)q->sector, (unsigned long)k->sectors);
		k->range_logged = true;
		return S_IOERR;
	}
	return S_OK;
}

/*
 * Lock held: take the next chain into free slot q and start it. 1 taken;
 * 0 nothing to take; else why it stopped (-EAGAIN, -EBUSY: guest memory;
 * -ENOMEM: bounce pages; -EPROTO: the driver broke a rule).
 */
static int take(struct vdisk *k, struct vreq *q, unsigned cpu)
{
	struct virtq *vq = &k->dev.q[0];
	const char *why = "";
	u8 hdr[HDR_LEN];
	int n, rc;

	n = virtq_pop(k->dev.vm, vq, &q->c, &why, cpu);
	/* -EFAULT: a ring page the VM never touched and cannot be given now (its limit): no driver does that. */
	if (n == -EFAULT)
		why = "a ring in memory the VM cannot be given (past its resident limit)";
	if (n == -EPROTO || n == -EFAULT)
		virtio_broken(&k->dev, why);
	if (n <= 0)
		return n == -EFAULT ? -EPROTO : n;
	if (q->c.out_len < HDR_LEN || !q->c.in_len) {
		virtio_broken(&k->dev, "a request without its 16-byte header or its status byte");
		return -EPROTO;
	}
	if ((rc = virtq_read(k->dev.vm, &q->c, 0, hdr, HDR_LEN, cpu))) {
		vq->last_avail--; /* taken again later: nothing was done for it */
		return rc;
	}
	q->type = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (u32)hdr[3] << 24;
	q->sector = 0;
	for (unsigned i = 0; i < 8; i++)
		q->sector |= (u64)hdr[8 + i] << (8 * i);
	q->len = q->type == T_IN ? (u32)MIN(q->c.in_len - 1, (u64)~0u) : (u32)MIN(q->c.out_len - HDR_LEN, (u64)~0u);
	q->epoch = k->epoch;
	q->npages = 0;
	q->r.status = 0;
	q->status = check(q);
	switch (q->type) {
	case T_IN:
	case T_OUT:
		if (q->status == S_OK && !io_start(q, cpu, &rc)) {
			vq->last_avail--;
			return rc;
		}
		break;
	case T_FLUSH:
		q->len = 0;
		if (blk_can_flush() && !io_start(q, cpu, &rc)) {
			vq->last_avail--;
			return rc;
		}
		break;
	case T_GET_ID:
		break;
	default:
		q->status = S_UNSUPP;
		break;
	}
	if (atomic_load(&q->state) == RQ_FREE)
		atomic_store(&q->state, RQ_DONE); /* answered without the host disk */
	return 1;
}

/*
 * Lock held: answer a DONE request: its data (IN), its ID, its status byte,
 * its used entry. 0 answered (or dropped: an older epoch's, or its memory
 * is gone); -EAGAIN or -EBUSY to try again later.
 */
static int answer(struct vdisk *k, struct vreq *q, unsigned cpu)
{
	struct vm *vm = k->dev.vm;
	u32 written = 0;
	int rc = 0;

	if (q->epoch != k->epoch)
		goto done;
	if (q->r.status && (q->type == T_IN || q->type == T_OUT || q->type == T_FLUSH)) {
		if (!k->io_logged)
			printk("quire: %s: disk '%s': the host disk failed a %s at sector %lu: I/O error for the "
			       "guest, which runs on (logged once)\n", vm->name, k->part,
			       q->type == T_FLUSH ? "flush" : q->type == T_IN ? "read" : "write",
			       (unsigned long)q->r.sector);
		k->io_logged = true;
		q->status = S_IOERR;
	}
	if (q->status == S_OK && q->type == T_IN) {
		rc = data_copy(q, true, cpu);
		written = q->len;
	} else if (q->status == S_OK && q->type == T_GET_ID) {
		written = (u32)MIN(q->c.in_len - 1, (u64)ID_LEN);
		rc = virtq_write(vm, &q->c, 0, k->id, written, cpu);
	}
	if (rc == -EFAULT) {
		q->status = S_IOERR;
		written = 0;
		rc = 0;
	}
	if (!rc)
		rc = virtq_write(vm, &q->c, q->c.in_len - 1, &q->status, 1, cpu);
	if (!rc)
		rc = virtq_push(vm, &k->dev.q[0], q->c.head, written + 1, cpu);
	if (rc == -EAGAIN || rc == -EBUSY)
		return rc;
	if (!rc) {
		k->errors += q->status != S_OK;
		if (q->status == S_OK) {
			k->reads += q->type == T_IN;
			k->writes += q->type == T_OUT;
			k->flushes += q->type == T_FLUSH;
			k->ids += q->type == T_GET_ID;
			k->read_bytes += q->type == T_IN ? q->len : 0;
			k->written_bytes += q->type == T_OUT ? q->len : 0;
		}
	}
done:
	pages_put(q, cpu);
	atomic_store(&q->state, RQ_FREE);
	return 0;
}

/*
 * Lock held: move every slot on, then take new chains while slots are free.
 * 0, or what stopped the taking (-EAGAIN, -EBUSY) for a vCPU's notify to wait on.
 */
static int process(struct vdisk *k, unsigned cpu)
{
	bool used = false, again = false;
	int rc = 0;

	for (unsigned i = 0; i < VDISK_DEPTH; i++) {
		struct vreq *q = &k->rq[i];
		u8 st = atomic_load_explicit(&q->state, memory_order_acquire);

		if (st == RQ_SUBMIT && q->epoch != k->epoch)
			st = RQ_DONE; /* never sent: just dropped */
		else if (st == RQ_SUBMIT)
			submit(q);
		if (st == RQ_DONE || atomic_load(&q->state) == RQ_DONE) {
			bool live = q->epoch == k->epoch;
			int a = answer(k, q, cpu);

			again |= a != 0;
			used |= !a && live;
		}
	}
	/*
	 * A slot answered at once is free again for the next chain: else the
	 * chains behind VDISK_DEPTH such requests would wait for a notify the
	 * driver has no reason to send. At most a queue's worth of them per
	 * call, so a driver adding more as fast as they go cannot hold this
	 * CPU: the rest at the next kick.
	 */
	for (unsigned i = 0, quick = 0; i < VDISK_DEPTH && virtio_live(&k->dev) && k->dev.q[0].ready;) {
		struct vreq *q = &k->rq[i];
		int n;

		if (atomic_load(&q->state) != RQ_FREE) {
			i++;
			continue;
		}
		if (quick == k->dev.q[0].num) {
			again = true;
			break;
		}
		n = take(k, q, cpu);
		if (n <= 0) {
			if (n == -EAGAIN || n == -EBUSY || n == -ENOMEM)
				again = true;
			if (n == -EAGAIN || n == -EBUSY)
				rc = n;
			break;
		}
		/* Answered at once (ID, errors, flush without a cache): no need to wait for a kick. */
		if (atomic_load(&q->state) == RQ_DONE) {
			int a = answer(k, q, cpu);

			again |= a != 0;
			used |= !a;
			quick++;
		}
	}
	if (used)
		virtio_used(&k->dev, 0, cpu);
	if (again)
		mark(k);
	return rc;
}

static int notify(struct virtio_dev *d, unsigned q, unsigned cpu)
{
	(void)q;
	return process(of(d), cpu);
}

/* The driver reset it, or the VM restarts or stops: what is in flight is of the old epoch. */
static void reset(struct virtio_dev *d)
{
	struct vdisk *k = of(d);

	k->epoch++;
	mark(k); /* slots not on the host disk give their pages back at the next kick */
}

static const struct virtio_ops vdisk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = 1UL << F_SIZE_MAX | 1UL << F_SEG_MAX | 1UL << F_FLUSH | 1UL << F_RO,
	.nqueues = 1,
	.config_size = CFG_SIZE,
	.notify = notify,
	.reset = reset,
};

void vdisk_attach(struct vm *vm, unsigned slot, const struct gpt_part *p, bool ro)
{
	struct vdisk *k = &disks[vm->id - 1];

	/* Under its lock: requests of the VM that had this place before may still be on the host disk. */
	spin_lock(&k->dev.lock);
	k->first = p->first;
	k->sectors = p->last - p->first + 1;
	k->ro = ro;
	q_snprintf(k->part, sizeof(k->part), "%s", p->name);
	memset(k->id, 0, sizeof(k->id));
	memcpy(k->id, k->part, MIN(strlen(k->part), (size_t)ID_LEN));
	k->range_logged = k->size_logged = k->io_logged = false;
	k->reads = k->writes = k->flushes = k->ids = k->read_bytes = k->written_bytes = k->errors = 0;
	for (unsigned i = 0; i < VDISK_DEPTH; i++)
		k->rq[i].k = k;
	k->dev.ops = &vdisk_ops;
	k->dev.withheld = ro ? 0 : 1UL << F_RO;
	memset(k->dev.config, 0, sizeof(k->dev.config));
	put_le(&k->dev.config[CFG_CAPACITY], k->sectors, 8);
	put_le(&k->dev.config[CFG_SIZE_MAX], PAGE_SIZE, 4);
	put_le(&k->dev.config[CFG_SEG_MAX], VDISK_SEG_MAX, 4);
	spin_unlock(&k->dev.lock);
	virtio_attach(vm, slot, &k->dev);
}

void vdisk_kick(unsigned cpu)
{
	u32 m;

	if (!atomic_load_explicit(&pending, memory_order_relaxed))
		return;
	m = atomic_exchange(&pending, 0);
	for (unsigned i = 0; m; i++, m >>= 1) {
		struct vdisk *k = &disks[i];

		if (!(m & 1))
			continue;
		/*
		 * Only a try: the holder is at work on this device (a vCPU's notify,
		 * another CPU's kick) and may be waiting on this CPU meanwhile (a TLB
		 * invalidation's broadcast); the next kick looks again.
		 */
		if (!spin_trylock(&k->dev.lock)) {
			mark(k);
			continue;
		}
		if (k->dev.ops)
			process(k, cpu);
		spin_unlock(&k->dev.lock);
	}
}

void vdisk_info(struct vm *vm, struct vdisk_info *out)
{
	struct vdisk *k = &disks[vm->id - 1];

	*out = (struct vdisk_info){ 0 };
	if (vm->virtio[VMCFG_DISK_SLOT] != &k->dev)
		return;
	spin_lock(&k->dev.lock);
	*out = (struct vdisk_info){
		.present = true, .ro = k->ro, .driver = virtio_live(&k->dev), .sectors = k->sectors,
		.reads = k->reads, .writes = k->writes, .flushes = k->flushes, .ids = k->ids,
		.read_bytes = k->read_bytes, .written_bytes = k->written_bytes, .errors = k->errors,
	};
	memcpy(out->part, k->part, sizeof(out->part));
	for (unsigned i = 0; i < VDISK_DEPTH; i++)
		out->inflight += atomic_load(&k->rq[i].state) == RQ_DISK;
	spin_unlock(&k->dev.lock);
}
