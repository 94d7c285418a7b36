/*
 * The host disk (swap, and the guests' disks: core/disk.c): virtio-blk over
 * the virtio-mmio transport, version 2 (virtio 1.x) only. One split
 * virtqueue of up to 256 descriptors in pages from the VMM pool, with the
 * request headers and status bytes. A request is a chain: header, one
 * descriptor per page, status byte (a flush: header and status byte); the
 * free descriptors are a list, so requests of any size are in flight
 * together. Submissions from any CPU take a short spinlock; completions
 * come by the device's interrupt (blk_complete), their callbacks run
 * outside the lock. Nothing the device writes is trusted: a used entry that
 * names no request in flight takes the disk out of use, it never crashes
 * Quire.
 */
#include <stdatomic.h>
#include <quire/blk.h>
#include <quire/console.h>
#include <quire/pool.h>
#include <quire/printf.h>
#include <quire/spinlock.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/sysreg.h>
#include "virtio_mmio.h"

/* virtio-blk (virtio 1.x, section 5.2). */
#define VIRTIO_BLK_F_SEG_MAX 2 /* seg_max says how many data descriptors a request may have */
#define VIRTIO_BLK_F_RO 5      /* read-only: no use for swap */
#define VIRTIO_BLK_F_FLUSH 9   /* a write cache, and VIRTIO_BLK_T_FLUSH to empty it */
#define VIRTIO_BLK_CFG_CAPACITY 0x00 /* le64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SEG_MAX 0x0c  /* le32 */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_S_OK 0

struct virtio_blk_outhdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

#define QUEUE_MAX 256			     /* descriptors; a power of two (split virtqueue) */
#define QUEUE_MIN 32			     /* the power of two that holds one largest request */
#define DESC_PER_REQ(pages) ((pages) + 2u)   /* header, the pages, status */
#define INFLIGHT_MAX (QUEUE_MAX / DESC_PER_REQ(1))
#define STATUS_NONE 0xff		     /* what a status byte holds until the device writes it */

/*
 * Three pages: the descriptor table; the available ring, the used ring
 * (4-byte aligned) and a status byte per descriptor; a request header per
 * descriptor. Headers and status bytes are used by chain heads only.
 */
#define USED_OFF ALIGN_UP(VIRTQ_AVAIL_BYTES(QUEUE_MAX), 4)
#define STATUS_OFF ALIGN_UP(USED_OFF + VIRTQ_USED_BYTES(QUEUE_MAX), 8)
_Static_assert(VIRTQ_DESC_BYTES(QUEUE_MAX) <= PAGE_SIZE, "descriptor table fits a page");
_Static_assert(STATUS_OFF + QUEUE_MAX <= PAGE_SIZE, "rings and status bytes fit a page");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_outhdr is 16 bytes");
_Static_assert(sizeof(struct virtio_blk_outhdr) * QUEUE_MAX <= PAGE_SIZE, "headers fit a page");

static struct {
	volatile u8 *regs;
	paddr_t base;
	u32 irq;
	u64 sectors;
	unsigned qsize;
	struct pool *pool;
	pidx_t pages[3];
	unsigned npages;

	struct virtq_desc *desc;
	struct virtq_avail *avail;
	volatile struct virtq_used *used;
	struct virtio_blk_outhdr *hdr;
	volatile u8 *status;
	paddr_t hdr_pa, status_pa;

	spinlock_t lock; /* everything below, and the rings */
	u16 free_head, nfree;
	u16 avail_idx, last_used;
	u16 link[QUEUE_MAX];		     /* next descriptor: on the free list, and in each chain */
	u8 chain_len[QUEUE_MAX];	     /* descriptors in the chain headed here */
	struct blk_req *inflight[QUEUE_MAX]; /* by chain head */
	unsigned ninflight;
	bool chain_guest[QUEUE_MAX];	     /* the chain headed here is a guest disk's */
	unsigned guest_max, guest_used;	     /* descriptors the guests' requests may hold, and hold */
	bool flush;			     /* VIRTIO_BLK_F_FLUSH negotiated */
} vb;

static _Atomic bool present;

static inline u32 rd(unsigned off)
{
	return *(volatile u32 *)(vb.regs + off);
}

static inline void wr(unsigned off, u32 v)
{
	*(volatile u32 *)(vb.regs + off) = v;
}

void blk_use_pool(struct pool *p)
{
	vb.pool = p;
}

bool blk_present(void)
{
	return atomic_load_explicit(&present, memory_order_acquire);
}

u64 blk_bytes(void)
{
	return blk_present() ? vb.sectors << BLK_SECTOR_SHIFT : 0;
}

/* Requests of any size: so many always fit, whatever else (the guests' share too) is in flight. */
unsigned blk_depth(void)
{
	return blk_present() ? (vb.qsize - vb.guest_max) / DESC_PER_REQ(BLK_MAX_PAGES) : 0;
}

unsigned blk_guest_share(unsigned descs)
{
	if (!blk_present())
		return 0;
	spin_lock(&vb.lock);
	/* Half the queue at most: swap keeps room for requests of every size. */
	vb.guest_max = MIN(descs, vb.qsize / 2);
	spin_unlock(&vb.lock);
	return vb.guest_max;
}

bool blk_can_flush(void)
{
	return blk_present() && vb.flush;
}

u32 blk_irq(void)
{
	return blk_present() ? vb.irq : 0;
}

/* Writing 0 resets the device; it is done when Status reads 0 again (section 4.2.3.1). */
static bool device_reset(void)
{
	wr(VIRTIO_MMIO_STATUS, 0);
	for (unsigned i = 0; i < 1000000; i++)
		if (!rd(VIRTIO_MMIO_STATUS))
			return true;
	return false;
}

static void status_set(u32 bits)
{
	wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | bits);
}

static u64 features_read(void)
{
	u64 f;

	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f = (u64)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return f | rd(VIRTIO_MMIO_DEVICE_FEATURES);
}

static void features_write(u64 f)
{
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (u32)(f >> 32));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (u32)f);
}

/* A 64-bit configuration field: two 32-bit reads the generation counter says belong together. */
static u64 config_read64(unsigned off)
{
	u32 gen, lo, hi;

	do {
		gen = rd(VIRTIO_MMIO_CONFIG_GENERATION);
		lo = rd(VIRTIO_MMIO_CONFIG + off);
		hi = rd(VIRTIO_MMIO_CONFIG + off + 4);
	} while (gen != rd(VIRTIO_MMIO_CONFIG_GENERATION));
	return (u64)hi << 32 | lo;
}

static bool page_take(paddr_t *pa)
{
	pidx_t i = pool_alloc(vb.pool, cpu_id());

	if (i == PIDX_NONE)
		return false;
	vb.pages[vb.npages++] = i;
	*pa = pool_pa(vb.pool, i);
	page_zero(*pa);
	return true;
}

static void pages_give_back(void)
{
	while (vb.npages)
		pool_free(vb.pool, cpu_id(), vb.pages[--vb.npages], false);
}

static void addr_write(unsigned low, paddr_t pa)
{
	wr(low, (u32)pa);
	wr(low + 4, (u32)(pa >> 32));
}

/* Queue 0 in pages from the pool (section 4.2.3.2); NULL or why not. */
static const char *queue_setup(void)
{
	paddr_t table, rings, hdr;
	u32 max;

	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	if (rd(VIRTIO_MMIO_QUEUE_READY))
		return "its queue 0 is already in use after a reset";
	max = rd(VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < QUEUE_MIN)
		return "its queue 0 is missing or shorter than 32 descriptors";
	/* The largest power of two both allow: split virtqueues are a power of two long. */
	for (vb.qsize = QUEUE_MAX; vb.qsize > max; vb.qsize /= 2)
		;
	if (!vb.pool || !page_take(&table) || !page_take(&rings) || !page_take(&hdr))
		return "no memory for its queue";
	vb.desc = page_va(table);
	vb.avail = page_va(rings);
	vb.used = (struct virtq_used *)((u8 *)vb.avail + USED_OFF);
	vb.status = (u8 *)vb.avail + STATUS_OFF;
	vb.status_pa = rings + STATUS_OFF;
	vb.hdr = page_va(hdr);
	vb.hdr_pa = hdr;
	for (unsigned i = 0; i < vb.qsize; i++)
		vb.link[i] = (u16)(i + 1);
	vb.free_head = 0;
	vb.nfree = (u16)vb.qsize;
	vb.avail_idx = vb.last_used = 0;
	vb.ninflight = 0;
	/* page_zero cleaned the zeroes to PoC; the device sees them before it sees the queue. */
	dsb(sy);
	wr(VIRTIO_MMIO_QUEUE_NUM, vb.qsize);
	addr_write(VIRTIO_MMIO_QUEUE_DESC_LOW, table);
	addr_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, rings);
	addr_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, rings + USED_OFF);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	return NULL;
}

/*
 * The initialisation of section 3.1.1 on a version 2 device. NULL when the
 * device is live (DRIVER_OK), else why not; the device is left FAILED or,
 * for a disk too small, reset.
 */
static const char *device_init(u64 min_bytes, u64 *small)
{
	u64 offered, wanted = BIT(VIRTIO_F_VERSION_1);
	const char *why;

	if (!device_reset())
		return "it does not come out of reset";
	status_set(VIRTIO_CONFIG_S_ACKNOWLEDGE);
	status_set(VIRTIO_CONFIG_S_DRIVER);
	offered = features_read();
	if (!(offered & BIT(VIRTIO_F_VERSION_1)))
		return "it does not offer VIRTIO_F_VERSION_1";
	if (offered & BIT(VIRTIO_BLK_F_RO))
		return "it is read-only";
	/* Taken only to check it: a device with a lower limit than our largest request is refused. */
	if (offered & BIT(VIRTIO_BLK_F_SEG_MAX))
		wanted |= BIT(VIRTIO_BLK_F_SEG_MAX);
	/* A guest's flush reaches the disk's cache; without the feature the disk has none to empty. */
	vb.flush = offered & BIT(VIRTIO_BLK_F_FLUSH);
	if (vb.flush)
		wanted |= BIT(VIRTIO_BLK_F_FLUSH);
	features_write(wanted);
	status_set(VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return "it refused the features Quire chose (FEATURES_OK did not stick)";
	if ((wanted & BIT(VIRTIO_BLK_F_SEG_MAX)) &&
	    rd(VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SEG_MAX) < BLK_MAX_PAGES)
		return "it takes fewer segments per request (seg_max) than Quire's 16";
	vb.sectors = config_read64(VIRTIO_BLK_CFG_CAPACITY);
	if (vb.sectors >> 54)
		return "it reports an impossible capacity";
	if (vb.sectors << BLK_SECTOR_SHIFT < min_bytes) {
		*small = min_bytes;
		return "";
	}
	why = queue_setup();
	if (why)
		return why;
	status_set(VIRTIO_CONFIG_S_DRIVER_OK);
	if (rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
		return "it needs a reset right after DRIVER_OK";
	return NULL;
}

/* "256 MiB", or "512 KiB" below a MiB. */
static const char *size_str(char *buf, size_t len, u64 bytes)
{
	if (bytes >= MiB(1))
		q_snprintf(buf, len, "%lu MiB", (unsigned long)(bytes >> 20));
	else
		q_snprintf(buf, len, "%lu KiB", (unsigned long)(bytes >> 10));
	return buf;
}

bool blk_init(const struct machine *m, u64 min_bytes)
{
	const char *why;
	char sz[24], need[24];
	unsigned slot;
	u64 small = 0;
	u32 version;

	for (slot = 0; slot < m->nvirtio; slot++) {
		vb.regs = (volatile u8 *)(uintptr_t)m->virtio[slot].r.base;
		if (m->virtio[slot].r.size >= VIRTIO_MMIO_CONFIG + 0x10 &&
		    rd(VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC &&
		    rd(VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_BLOCK)
			break;
	}
	if (slot == m->nvirtio) {
		printk("swap disk: none (no virtio-blk device in the %u virtio-mmio slot%s of the device "
		       "tree); swap is off\n", m->nvirtio, m->nvirtio == 1 ? "" : "s");
		return false;
	}
	vb.base = m->virtio[slot].r.base;
	vb.irq = m->virtio[slot].irq;
	version = rd(VIRTIO_MMIO_VERSION);
	if (version == 1) {
		printk("swap disk: virtio-blk at 0x%08lx is a legacy virtio-mmio device (Version 1), which "
		       "Quire does not drive; start QEMU with -global virtio-mmio.force-legacy=false; swap "
		       "is off\n", vb.base);
		return false;
	}
	if (version != 2) {
		printk("swap disk: virtio-blk at 0x%08lx has virtio-mmio Version %u, not 2; swap is off\n",
		       vb.base, version);
		return false;
	}
	if (vb.irq < 32 || !m->gic.found) {
		printk("swap disk: virtio-blk at 0x%08lx has no interrupt Quire can take (INTID %u%s); "
		       "swap is off\n", vb.base, vb.irq, m->gic.found ? "" : ", no GIC");
		return false;
	}
	why = device_init(min_bytes, &small);
	if (small) {
		device_reset();
		printk("swap disk: virtio-blk at 0x%08lx (INTID %u) has %s (%lu sectors), less than the "
		       "%s Quire needs to swap; swap is off\n", vb.base, vb.irq,
		       size_str(sz, sizeof(sz), vb.sectors << BLK_SECTOR_SHIFT), (unsigned long)vb.sectors,
		       size_str(need, sizeof(need), small));
		return false;
	}
	if (why) {
		/* The queue was live: its pages go back only if the device stopped (it may write into them). */
		if (vb.npages && device_reset())
			pages_give_back();
		else if (vb.npages)
			printk("swap disk: virtio-blk at 0x%08lx does not come out of reset: the %u pages of its "
			       "queue stay out of use for good\n", vb.base, vb.npages);
		status_set(VIRTIO_CONFIG_S_FAILED);
		printk("swap disk: virtio-blk at 0x%08lx (INTID %u) is not usable: %s; swap is off\n",
		       vb.base, vb.irq, why);
		return false;
	}
	gic_enable_spi(vb.irq, cpu_id());
	atomic_store_explicit(&present, true, memory_order_release);
	printk("swap disk: virtio-blk at 0x%08lx (INTID %u), %s (%lu sectors), %u descriptors, up to %u "
	       "requests in flight (%u of one page)%s\n", vb.base, vb.irq,
	       size_str(sz, sizeof(sz), vb.sectors << BLK_SECTOR_SHIFT), (unsigned long)vb.sectors,
	       vb.qsize, blk_depth(), vb.qsize / DESC_PER_REQ(1), vb.flush ? ", write cache (flush)" : "");
	return true;
}

static void desc_set(u16 d, paddr_t addr, u32 len, u16 flags, u16 next)
{
	vb.desc[d] = (struct virtq_desc){ addr, len, flags, next };
}

/* The request's own checks: 0 or -EINVAL. */
static int req_check(const struct blk_req *r)
{
	u64 nsec;

	if (r->flush)
		return vb.flush && !r->npages ? 0 : -EINVAL;
	if (!r->npages || r->npages > BLK_MAX_PAGES || r->last_len > PAGE_SIZE ||
	    r->last_len % (1u << BLK_SECTOR_SHIFT))
		return -EINVAL;
	nsec = ((u64)(r->npages - 1) << (PAGE_SHIFT - BLK_SECTOR_SHIFT)) +
	       ((r->last_len ? r->last_len : PAGE_SIZE) >> BLK_SECTOR_SHIFT);
	if (r->sector >= vb.sectors || nsec > vb.sectors - r->sector)
		return -EINVAL;
	for (unsigned i = 0; i < r->npages; i++)
		if (r->pa[i] & (PAGE_SIZE - 1))
			return -EINVAL;
	return 0;
}

int blk_submit(struct blk_req *r)
{
	u16 n = (u16)DESC_PER_REQ(r->npages), head, d;
	u32 type = r->flush ? VIRTIO_BLK_T_FLUSH : r->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	int rc;

	if (!blk_present())
		return -ENODEV;
	if ((rc = req_check(r)))
		return rc;

	spin_lock(&vb.lock);
	if (!blk_present() || vb.nfree < n || (r->guest && vb.guest_used + n > vb.guest_max)) {
		spin_unlock(&vb.lock);
		return blk_present() ? -EBUSY : -ENODEV;
	}
	head = d = vb.free_head;
	vb.hdr[head] = (struct virtio_blk_outhdr){ type, 0, r->flush ? 0 : r->sector };
	vb.status[head] = STATUS_NONE;
	desc_set(d, vb.hdr_pa + head * sizeof(struct virtio_blk_outhdr), sizeof(struct virtio_blk_outhdr),
		 VIRTQ_DESC_F_NEXT, vb.link[d]);
	for (unsigned i = 0; i < r->npages; i++) {
		u32 len = i + 1 == r->npages && r->last_len ? r->last_len : PAGE_SIZE;

		d = vb.link[d];
		desc_set(d, r->pa[i], len, VIRTQ_DESC_F_NEXT | (r->write ? 0 : VIRTQ_DESC_F_WRITE), vb.link[d]);
	}
	d = vb.link[d];
	desc_set(d, vb.status_pa + head, 1, VIRTQ_DESC_F_WRITE, 0);
	vb.free_head = vb.link[d];
	vb.nfree -= n;
	vb.chain_len[head] = (u8)n;
	vb.chain_guest[head] = r->guest;
	vb.guest_used += r->guest ? n : 0;
	vb.inflight[head] = r;
	vb.ninflight++;
	r->head = head;
	r->status = 0;

	vb.avail->ring[vb.avail_idx % vb.qsize] = head;
	/* The chain and the ring entry reach the device before the index that publishes them ... */
	dmb(oshst);
	*(volatile u16 *)&vb.avail->idx = ++vb.avail_idx;
	/* ... and the index before the notification, and before we look whether it wants one. */
	dsb(sy);
	if (!(vb.used->flags & VIRTQ_USED_F_NO_NOTIFY))
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	spin_unlock(&vb.lock);
	return 0;
}

/* Lock held: give a chain's descriptors back to the free list. */
static void chain_free(u16 head)
{
	u16 tail = head;

	for (unsigned k = 1; k < vb.chain_len[head]; k++)
		tail = vb.link[tail];
	vb.link[tail] = vb.free_head;
	vb.free_head = head;
	vb.nfree += vb.chain_len[head];
	vb.guest_used -= vb.chain_guest[head] ? vb.chain_len[head] : 0;
}

/*
 * Lock held: the device wrote something impossible. Reset it, so it touches
 * none of the requests' pages again, and fail every request in flight. A
 * device that does not come out of reset may still write into them: its
 * requests fail with BLK_LOST, and their owners never use those pages again
 * (nor are the queue's pages ever given back).
 */
static unsigned device_broken(const char *what, u32 val, struct blk_req **done, unsigned n)
{
	unsigned failed = vb.ninflight;
	bool stopped;

	atomic_store_explicit(&present, false, memory_order_release);
	stopped = device_reset();
	status_set(VIRTIO_CONFIG_S_FAILED);
	for (unsigned h = 0; h < vb.qsize; h++) {
		if (!vb.inflight[h])
			continue;
		vb.inflight[h]->status = stopped ? -EIO : BLK_LOST;
		done[n++] = vb.inflight[h];
		vb.inflight[h] = NULL;
	}
	vb.ninflight = 0;
	vb.guest_used = 0;
	if (stopped)
		printk("swap disk: the device wrote %s %u; it is reset and out of use, %u request%s failed; "
		       "swap is off\n", what, val, failed, failed == 1 ? "" : "s");
	else
		printk("swap disk: the device wrote %s %u and does not come out of reset; it is out of use, "
		       "%u request%s failed, and their pages and the queue's stay out of use for good (the "
		       "device may still write into them); swap is off\n", what, val, failed,
		       failed == 1 ? "" : "s");
	return n;
}

void blk_complete(unsigned cpu)
{
	struct blk_req *done[INFLIGHT_MAX];
	unsigned n;

	do {
		u32 isr;
		u16 idx;

		n = 0;
		if (!blk_present())
			return;
		spin_lock(&vb.lock);
		if (!blk_present()) {
			spin_unlock(&vb.lock);
			return;
		}
		/* Acknowledge first: a completion after the ack raises the interrupt again. */
		isr = rd(VIRTIO_MMIO_INTERRUPT_STATUS);
		if (isr) {
			wr(VIRTIO_MMIO_INTERRUPT_ACK, isr);
			dsb(sy);
		}
		idx = atomic_load_explicit((_Atomic u16 *)&vb.used->idx, memory_order_acquire);
		if ((u16)(idx - vb.last_used) > vb.ninflight)
			n = device_broken("a used index", idx, done, n);
		for (; blk_present() && vb.last_used != idx; vb.last_used++) {
			u32 id = vb.used->ring[vb.last_used % vb.qsize].id;
			struct blk_req *r = id < vb.qsize ? vb.inflight[id] : NULL;

			if (!r) {
				n = device_broken("a used entry for descriptor", id, done, n);
				break;
			}
			vb.inflight[id] = NULL;
			vb.ninflight--;
			r->status = vb.status[id] == VIRTIO_BLK_S_OK ? 0 : -EIO;
			chain_free((u16)id);
			done[n++] = r;
		}
		spin_unlock(&vb.lock);
		for (unsigned k = 0; k < n; k++)
			done[k]->done(done[k], cpu);
	} while (n);
}
