/*
 * Host fake of the disk layer (core/disk.c) for the guest disk tests: the
 * pool of bounce pages and the partition table are the test's. (Swap's
 * sectors are fake_blk.c's: fake_blk_swap_area.)
 */
#ifndef FAKE_DISK_H
#define FAKE_DISK_H
#include <quire/disk.h>

/* disk_pool() and disk_table() answer these from now on (NULL: none). */
void fake_disk_set(struct pool *bounce, const struct gpt *table);
#endif
