/*
 * The host disk's layout (core/disk.c): which sectors are swap's and which
 * are the partitions Quire gives to VMs as their disks (core/vdisk.c). A
 * disk with a GUID partition table uses its Linux-swap partition for swap
 * and names the others; a disk without one is all swap, but for its first
 * page, so no guest's page ever lands where a partition table is read.
 */
#ifndef QUIRE_DISK_H
#define QUIRE_DISK_H
#include <quire/gpt.h>

struct pool;

/* After blk_init, before swap_init: read the partition table (its pages from p); logs what it found. */
void disk_init(struct pool *p, unsigned cpu);
/* Swap's sectors on the disk: the first, and how many (0: no swap). */
u64 disk_swap_first(void);
u64 disk_swap_sectors(void);
/* The partition table, or NULL if the disk has none (or there is no disk). */
const struct gpt *disk_table(void);
/* The pool the guests' disks take their bounce pages from. */
struct pool *disk_pool(void);
#endif
