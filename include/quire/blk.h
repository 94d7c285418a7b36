/*
 * Quire's host disk as its core sees it: a block device of 512-byte sectors
 * taking requests of whole sectors in up to 16 pages, and flushes, several
 * in flight, each completed by a callback from the device's interrupt
 * (drivers/virtio_blk.c on QEMU virt; a fake in the host tests). Swap and
 * the guests' disks (core/vdisk.c) share it: guest requests may hold only
 * the descriptors blk_guest_share gave them, so swap always has its depth.
 */
#ifndef QUIRE_BLK_H
#define QUIRE_BLK_H
#include <quire/errno.h>
#include <quire/machine.h>

#define BLK_SECTOR_SHIFT 9
#define BLK_MAX_PAGES 16 /* pages in one request: consecutive on the disk, anywhere in memory */
#define BLK_MIN_BYTES MiB(1) /* the smallest disk Quire swaps to */

struct pool;

/*
 * A request's status when the disk broke and would not reset (Status never
 * read back 0): the device may still read or write the request's pages at
 * any time, so they must never be used again. -EIO means the device no
 * longer touches them.
 */
#define BLK_LOST (-ENODEV)

struct blk_req {
	u64 sector;			/* first sector (512 bytes) on the disk */
	u32 npages;			/* 1..BLK_MAX_PAGES pages of 4 KiB; 0 for a flush */
	u32 last_len;			/* bytes of the last page moved, a multiple of 512; 0: all 4 KiB */
	bool write;
	bool flush;			/* a flush (VIRTIO_BLK_T_FLUSH): no pages; only if blk_can_flush() */
	bool guest;			/* a guest disk's: counted against the guests' share of the queue */
	paddr_t pa[BLK_MAX_PAGES];	/* machine address of each page */
	int status;			/* set before done(): 0, -EIO or BLK_LOST */
	/* Called once, with IRQs masked, on the CPU that took the completion. */
	void (*done)(struct blk_req *r, unsigned cpu);
	void *ctx;			/* the submitter's */
	u16 head;			/* driver's: the descriptor chain */
};

/* Where the driver takes the pages of its queue (the VMM pool); before blk_init. */
void blk_use_pool(struct pool *p);
/*
 * Find the disk among the host DT's virtio-mmio slots and set it up; logs
 * one line either way ("swap disk: ..." or why there is none). false if
 * there is no usable disk of at least min_bytes.
 */
bool blk_init(const struct machine *m, u64 min_bytes);
/*
 * Also false from the moment a disk that wrote nonsense into its queue is
 * reset and taken out of use (its requests in flight complete with -EIO,
 * or BLK_LOST if it would not reset).
 */
bool blk_present(void);
u64 blk_bytes(void);
/*
 * Requests the device can hold in flight at once, of any size: with fewer
 * in flight blk_submit never says -EBUSY. (A request of k pages takes k + 2
 * of the queue's descriptors, so more small ones may fit; -EBUSY says not.)
 */
unsigned blk_depth(void);
/*
 * Of the queue's descriptors, so many are the guests' disks' (taken from
 * swap's: blk_depth shrinks); before swap_init. Returns what was given.
 */
unsigned blk_guest_share(unsigned descs);
/* Does the disk keep a write cache that a flush empties (VIRTIO_BLK_F_FLUSH)? */
bool blk_can_flush(void);
/*
 * Queue r (lock-free for the caller's purposes: a short spinlock inside).
 * 0; -EBUSY if the queue (or, for a guest's request, the guests'
 * share) is full: retry after a completion; -ENODEV without a disk;
 * -EINVAL for a request outside the disk, with no pages or too many, a
 * last_len that is not whole sectors, a page address that is not
 * page-aligned, or a flush the disk does not take.
 */
int blk_submit(struct blk_req *r);
/* Take completed requests (the interrupt handler calls this; callers may poll too). */
void blk_complete(unsigned cpu);
/* The disk's interrupt (INTID), 0 without a disk. */
u32 blk_irq(void);
#endif
