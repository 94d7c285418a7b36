/* Host fake of the swap disk: see fake_blk.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <quire/disk.h>
#include "fake_blk.h"
#include "hostmem.h"

#define MAX_PENDING 1024

static u8 *disk;
static u64 disk_bytes;
static unsigned disk_depth, npending, fail_n[2];
static struct blk_req *pending[MAX_PENDING];
static bool broken;
bool fake_blk_instant;
u64 fake_blk_reads, fake_blk_writes, fake_blk_read_reqs, fake_blk_submits;

const u8 *fake_blk_page(u64 n)
{
	return disk + n * PAGE_SIZE;
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
}

void fake_blk_teardown(void)
{
	free(disk);
	disk = NULL;
	disk_bytes = 0;
	npending = 0;
	fail_n[0] = fail_n[1] = 0;
	fake_blk_instant = false;
	broken = false;
	fake_blk_reads = fake_blk_writes = 0;
}

void fake_blk_fail(bool write, unsigned n)
{
	fail_n[write] = n;
}

bool blk_present(void)
{
	return disk != NULL && !broken;
}

void fake_blk_break(bool resets)
{
	broken = true;
	while (npending) {
		struct blk_req *r = pending[0];

		memmove(pending, pending + 1, --npending * sizeof(*pending));
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

static void transfer(struct blk_req *r)
{
	u64 off = r->sector << BLK_SECTOR_SHIFT;

	if (fail_n[r->write]) {
		fail_n[r->write]--;
		r->status = -EIO;
		return;
	}
	for (u32 k = 0; k < r->npages; k++, off += PAGE_SIZE) {
		if (r->write)
			memcpy(disk + off, hostmem_ptr(r->pa[k]), PAGE_SIZE);
		else
			memcpy(hostmem_ptr(r->pa[k]), disk + off, PAGE_SIZE);
	}
	*(r->write ? &fake_blk_writes : &fake_blk_reads) += r->npages;
	fake_blk_read_reqs += !r->write;
	r->status = 0;
}

int blk_submit(struct blk_req *r)
{
	fake_blk_submits++;
	if (!blk_present())
		return -ENODEV;
	if (!r->npages || r->npages > BLK_MAX_PAGES ||
	    (r->sector << BLK_SECTOR_SHIFT) + (u64)r->npages * PAGE_SIZE > disk_bytes)
		return -EINVAL;
	if (npending >= disk_depth || npending == MAX_PENDING)
		return -EBUSY;
	if (fake_blk_instant) {
		transfer(r);
		r->done(r, 0);
		return 0;
	}
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
		struct blk_req *r = pending[0];

		memmove(pending, pending + 1, --npending * sizeof(*pending));
		transfer(r);
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

/* The disk layer (core/disk.c) as the swap core sees it: all of the fake disk is swap. */
u64 disk_swap_first(void)
{
	return 0;
}

u64 disk_swap_sectors(void)
{
	return disk_bytes >> BLK_SECTOR_SHIFT;
}

unsigned blk_guest_share(unsigned descs)
{
	(void)descs;
	return 0;
}

bool blk_can_flush(void)
{
	return false;
}
