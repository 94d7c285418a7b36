/*
 * Host fake of the swap disk (quire/blk.h): host memory for sectors,
 * requests held until the test completes them, errors on demand.
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
#endif
