/*
 * Host fake of the host disk (quire/blk.h), for swap and the guests' disks:
 * host memory for sectors, requests held until the test completes them,
 * errors on demand; whole sectors moved as last_len says, flushes only with
 * a write cache, the guests' requests counted and limited on their own.
 */
#ifndef FAKE_BLK_H
#define FAKE_BLK_H
#include <quire/blk.h>

/* A disk of bytes (0: none) taking depth requests at once. */
void fake_blk_setup(u64 bytes, unsigned depth);
void fake_blk_teardown(void);
/* Requests waiting for completion now. */
unsigned fake_blk_pending(void);
/* Complete up to n waiting requests, oldest first (their callbacks run); returns how many. */
unsigned fake_blk_complete(unsigned n, unsigned cpu);
/* Complete each request inside blk_submit, as an instant disk would. */
extern bool fake_blk_instant;
/* The next n requests of this direction fail with -EIO (nothing is transferred). */
void fake_blk_fail(bool write, unsigned n);
/* Pages the disk read and wrote. */
extern u64 fake_blk_reads, fake_blk_writes;
/* Read requests done. */
extern u64 fake_blk_read_reqs;
/*
 * The device breaks, as the driver sees it: it is taken out of use
 * (blk_present false, blk_submit -ENODEV) and every waiting request
 * completes with -EIO, or with BLK_LOST if it would not reset.
 */
void fake_blk_break(bool resets);
/* Every blk_submit call, refused ones too. */
extern u64 fake_blk_submits;
/* The page addresses of the waiting requests (up to max); how many. */
unsigned fake_blk_pending_pages(paddr_t *pa, unsigned max);
/* The disk's 4 KiB page n (a swap slot). */
const u8 *fake_blk_page(u64 n);
/* The disk's bytes (a test may write them too), blk_bytes() of them. */
u8 *fake_blk_data(void);
/*
 * The disk keeps a write cache: blk_can_flush() says so and flushes are
 * taken (without it a flush is -EINVAL, as the driver refuses it).
 */
extern bool fake_blk_write_cache;
/* Guests' requests (r->guest) waiting at once before blk_submit says -EBUSY for theirs (~0u: no limit). */
extern unsigned fake_blk_guest_max;
/* Requests taken: guests' ones, flushes (any). */
extern u64 fake_blk_guest_reqs, fake_blk_flushes;
/* Complete up to n waiting requests, oldest first, with status (-EIO, BLK_LOST): nothing moved. */
unsigned fake_blk_complete_status(unsigned n, int status, unsigned cpu);
/* Swap's sectors (disk_swap_first, disk_swap_sectors); by default all of the disk. */
void fake_blk_swap_area(u64 first, u64 sectors);
#endif
