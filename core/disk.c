/*
 * The host disk's layout (include/quire/disk.h): its GUID partition table,
 * read once at boot with polled requests, before any interrupt is taken.
 * A table that is there but broken keeps swap off as well: the disk may
 * hold someone's data, and swap would write over it.
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/blk.h>
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/disk.h>
#include <quire/errno.h>
#include <quire/pool.h>

#define READ_TIMEOUT_US 5000000 /* a disk that does not answer a boot read in 5 s is taken as broken */

static struct {
	struct pool *pool;
	bool has_table;
	struct gpt table;
	u64 swap_first, swap_sectors;
} dk;

/* One polled read at a time; static, as a request that never completes keeps it for good. */
static struct {
	struct blk_req r;
	_Atomic bool done;
	paddr_t pa;
	unsigned cpu;
	bool lost; /* a read timed out or the disk would not stop: the page stays the device's */
} rd;

static void read_done(struct blk_req *r, unsigned cpu)
{
	(void)r;
	(void)cpu;
	atomic_store_explicit(&rd.done, true, memory_order_release);
}

static int read_sectors(void *ctx, u64 lba, void *buf, unsigned count)
{
	u64 t0 = clock_us();

	(void)ctx;
	if (rd.lost || !count || count > PAGE_SIZE >> BLK_SECTOR_SHIFT)
		return -EIO;
	rd.r = (struct blk_req){ .sector = lba, .npages = 1, .last_len = count << BLK_SECTOR_SHIFT,
				 .done = read_done };
	rd.r.pa[0] = rd.pa;
	atomic_store(&rd.done, false);
	if (blk_submit(&rd.r))
		return -EIO;
	while (!atomic_load_explicit(&rd.done, memory_order_acquire)) {
		blk_complete(rd.cpu);
		if (clock_us() - t0 > READ_TIMEOUT_US) {
			rd.lost = true;
			return -EIO;
		}
	}
	if (rd.r.status == BLK_LOST)
		rd.lost = true;
	if (rd.r.status)
		return -EIO;
	memcpy(buf, page_va(rd.pa), count << BLK_SECTOR_SHIFT);
	return 0;
}

static void log_part(const struct gpt_part *p, bool swap)
{
	u64 n = p->last - p->first + 1;

	printk("disk: partition %u '%s': %lu MiB (%lu sectors) at sector %lu: %s\n", p->index, p->name,
	       (unsigned long)(n >> 11), (unsigned long)n, (unsigned long)p->first,
	       swap ? "swap" : p->name[0] ? "a disk for VMs" : "unnamed, so no VM can have it");
}

/* The table as read: swap's partition (the first of Linux-swap type), the rest named for VMs. */
static void take_table(void)
{
	const struct gpt_part *swap = NULL;
	unsigned data = 0;

	for (unsigned k = 0; k < dk.table.nparts; k++) {
		const struct gpt_part *p = &dk.table.part[k];
		bool is_swap = !swap && gpt_is_linux_swap(p);

		if (is_swap)
			swap = p;
		else
			data++;
		log_part(p, is_swap);
	}
	if (swap) {
		dk.swap_first = swap->first;
		dk.swap_sectors = swap->last - swap->first + 1;
	} else {
		printk("disk: the partition table has no Linux swap partition; swap is off\n");
	}
	/* Guests' requests get their own share of the queue, so swap's never waits for theirs. */
	if (data)
		printk("disk: guests' disks may hold %u of the queue's descriptors\n", blk_guest_share(~0u));
}

void disk_init(struct pool *p, unsigned cpu)
{
	char err[160];
	pidx_t page, scratch;
	int rc;

	dk.pool = p;
	if (!blk_present())
		return;
	/* One page the disk reads into, one the parser works in. */
	page = pool_alloc(p, cpu);
	scratch = pool_alloc(p, cpu);
	if (page == PIDX_NONE || scratch == PIDX_NONE) {
		if (page != PIDX_NONE)
			pool_free(p, cpu, page, false);
		if (scratch != PIDX_NONE)
			pool_free(p, cpu, scratch, false);
		printk("disk: no memory to read the partition table; swap is off\n");
		return;
	}
	rd.pa = pool_pa(p, page);
	rd.cpu = cpu;
	rc = gpt_read(blk_bytes() >> BLK_SECTOR_SHIFT, read_sectors, NULL, page_va(pool_pa(p, scratch)), &dk.table,
		      err, sizeof(err));
	pool_free(p, cpu, scratch, false);
	if (rd.lost)
		printk("disk: a read of the partition table never finished; its page stays out of use\n");
	else
		pool_free(p, cpu, page, false);
	if (rc < 0) {
		printk("disk: partition table refused: %s; no VM gets a disk, and swap is off\n", err);
		return;
	}
	if (rc == 0) {
		/* All swap, past the first page: LBA 1, where a partition table would be, stays as it is. */
		dk.swap_first = PAGE_SIZE >> BLK_SECTOR_SHIFT;
		dk.swap_sectors = (blk_bytes() >> BLK_SECTOR_SHIFT) - dk.swap_first;
		printk("disk: no partition table: all of it is swap, but for its first 4 KiB\n");
		return;
	}
	dk.has_table = true;
	take_table();
}

u64 disk_swap_first(void)
{
	return dk.swap_first;
}

u64 disk_swap_sectors(void)
{
	return blk_present() ? dk.swap_sectors : 0;
}

const struct gpt *disk_table(void)
{
	return dk.has_table && blk_present() ? &dk.table : NULL;
}

struct pool *disk_pool(void)
{
	return dk.pool;
}
