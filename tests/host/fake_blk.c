/* Host fake of the host disk: see fake_blk.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <quire/disk.h>
#include "fake_blk.h"
#include "hostmem.h"

#define MAX_PENDING 1024

static u8 *disk;
static u64 disk_bytes;
static unsigned disk_depth, npending, guest_pending, fail_n[2];
static struct blk_req *pending[MAX_PENDING];
static bool broken, swap_set;
static u64 swap_first, swap_sectors;
bool fake_blk_instant, fake_blk_write_cache;
unsigned fake_blk_guest_max = ~0u;
u64 fake_blk_reads, fake_blk_writes, fake_blk_read_reqs, fake_blk_submits, fake_blk_guest_reqs, fake_blk_flushes;

const u8 *fake_blk_page(u64 n)
{
	return disk + n * PAGE_SIZE;
}

u8 *fake_blk_data(void)
{
	return disk;
}

void fake_blk_setup(u64 bytes, unsigned depth)
{
	fake_blk_teardown();
	disk = bytes ? malloc(bytes) : NULL;
	if (disk)
		memset(disk, 0xa5, bytes); /* whatever an old disk holds */
	disk_bytes = bytes;
	disk_depth = depth;
	fake_blk_reads = fake_blk_writes = fake_blk_read_reqs = fake_blk_submits = 0;
	fake_blk_guest_reqs = fake_blk_flushes = 0;
}

void fake_blk_teardown(void)
{
	free(disk);
	disk = NULL;
	disk_bytes = 0;
	npending = guest_pending = 0;
	fail_n[0] = fail_n[1] = 0;
	fake_blk_instant = false;
	fake_blk_write_cache = false;
	fake_blk_guest_max = ~0u;
	broken = false;
	swap_set = false;
	fake_blk_reads = fake_blk_writes = 0;
}

void fake_blk_fail(bool write, unsigned n)
{
	fail_n[write] = n;
}

void fake_blk_swap_area(u64 first, u64 sectors)
{
	swap_first = first;
	swap_sectors = sectors;
	swap_set = true;
}

bool blk_present(void)
{
	return disk != NULL && !broken;
}

/* The oldest waiting request, off the queue (its guest share given back). */
static struct blk_req *pop(void)
{
	struct blk_req *r = pending[0];

	memmove(pending, pending + 1, --npending * sizeof(*pending));
	guest_pending -= r->guest;
	return r;
}

void fake_blk_break(bool resets)
{
	broken = true;
	while (npending) {
		struct blk_req *r = pop();

		r->status = resets ? -EIO : BLK_LOST;
		r->done(r, 0);
	}
}

unsigned fake_blk_pending_pages(paddr_t *pa, unsigned max)
{
	unsigned n = 0;

	for (unsigned k = 0; k < npending; k++)
		for (u32 j = 0; j < pending[k]->npages && n < max; j++)
			pa[n++] = pending[k]->pa[j];
	return n;
}

u64 blk_bytes(void)
{
	return disk_bytes;
}

unsigned blk_depth(void)
{
	return disk_depth;
}

u32 blk_irq(void)
{
	return 0;
}

/* Bytes of page k of r the disk moves: all 4 KiB but for a last page of last_len. */
static u32 page_bytes(const struct blk_req *r, u32 k)
{
	return k + 1 == r->npages && r->last_len ? r->last_len : PAGE_SIZE;
}

static void transfer(struct blk_req *r)
{
	u64 off = r->sector << BLK_SECTOR_SHIFT;

	if (!r->flush && fail_n[r->write]) {
		fail_n[r->write]--;
		r->status = -EIO;
		return;
	}
	for (u32 k = 0; !r->flush && k < r->npages; k++, off += PAGE_SIZE) {
		if (r->write)
			memcpy(disk + off, hostmem_ptr(r->pa[k]), page_bytes(r, k));
		else
			memcpy(hostmem_ptr(r->pa[k]), disk + off, page_bytes(r, k));
	}
	if (!r->flush) {
		*(r->write ? &fake_blk_writes : &fake_blk_reads) += r->npages;
		fake_blk_read_reqs += !r->write;
	}
	r->status = 0;
}

/* The driver's own checks (drivers/virtio_blk.c req_check): 0 or -EINVAL. */
static int req_check(const struct blk_req *r)
{
	u64 bytes;

	if (r->flush)
		return fake_blk_write_cache && !r->npages ? 0 : -EINVAL;
	if (!r->npages || r->npages > BLK_MAX_PAGES || r->last_len > PAGE_SIZE ||
	    r->last_len % (1u << BLK_SECTOR_SHIFT))
		return -EINVAL;
	bytes = (u64)(r->npages - 1) * PAGE_SIZE + page_bytes(r, r->npages - 1);
	if (r->sector >= disk_bytes >> BLK_SECTOR_SHIFT || bytes > disk_bytes - (r->sector << BLK_SECTOR_SHIFT))
		return -EINVAL;
	for (u32 k = 0; k < r->npages; k++)
		if (r->pa[k] & (PAGE_SIZE - 1))
			return -EINVAL;
	return 0;
}

int blk_submit(struct blk_req *r)
{
	int rc;

	fake_blk_submits++;
	if (!blk_present())
		return -ENODEV;
	if ((rc = req_check(r)))
		return rc;
	if (npending >= disk_depth || npending == MAX_PENDING || (r->guest && guest_pending >= fake_blk_guest_max))
		return -EBUSY;
	fake_blk_guest_reqs += r->guest;
	fake_blk_flushes += r->flush;
	r->status = 0;
	if (fake_blk_instant) {
		transfer(r);
		r->done(r, 0);
		return 0;
	}
	guest_pending += r->guest;
	pending[npending++] = r;
	return 0;
}

unsigned fake_blk_pending(void)
{
	return npending;
}

unsigned fake_blk_complete(unsigned n, unsigned cpu)
{
	unsigned done = 0;

	while (done < n && npending) {
		struct blk_req *r = pop();

		transfer(r);
		r->done(r, cpu);
		done++;
	}
	return done;
}

unsigned fake_blk_complete_status(unsigned n, int status, unsigned cpu)
{
	unsigned done = 0;

	while (done < n && npending) {
		struct blk_req *r = pop();

		r->status = status;
		r->done(r, cpu);
		done++;
	}
	return done;
}

void blk_complete(unsigned cpu)
{
	fake_blk_complete(~0u, cpu);
}

bool blk_init(const struct machine *m, u64 min_bytes)
{
	(void)m;
	return blk_present() && disk_bytes >= min_bytes;
}

/* The disk layer (core/disk.c) as the swap core sees it: all of the fake disk is swap, unless a test says. */
u64 disk_swap_first(void)
{
	return swap_set ? swap_first : 0;
}

u64 disk_swap_sectors(void)
{
	return swap_set ? swap_sectors : disk_bytes >> BLK_SECTOR_SHIFT;
}

unsigned blk_guest_share(unsigned descs)
{
	(void)descs;
	return 0;
}

bool blk_can_flush(void)
{
	return blk_present() && fake_blk_write_cache;
}
