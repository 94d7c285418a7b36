/*
 * A GUID Partition Table reader (UEFI 2.x, 5.3) for the partitions of a host
 * disk that VMs get as their virtio-blk disks (core/gpt.c). The disk is not
 * trusted: whatever it holds, gpt_read gives a clean table or one sentence
 * saying what is wrong, reading nothing outside the disk.
 */
#ifndef QUIRE_GPT_H
#define QUIRE_GPT_H
#include <quire/types.h>

#define GPT_SECTOR 512	  /* Quire's disks have 512-byte logical sectors (virtio-blk's capacity unit) */
#define GPT_SCRATCH 4096  /* gpt_read's scratch buffer: one page */
#define GPT_PARTS_MAX 16  /* non-empty partitions Quire takes; more is an error */
#define GPT_NAME_MAX 36	  /* UTF-16 code units of an entry's PartitionName */
#define GPT_ENTRIES_MAX 1024 /* NumberOfPartitionEntries Quire takes */

struct gpt_part {
	char name[GPT_NAME_MAX + 1]; /* printable ASCII (anything else refuses the table); "" if unnamed */
	u8 type[16];		     /* PartitionTypeGUID as stored on disk (mixed-endian bytes) */
	u64 first, last;	     /* StartingLBA, EndingLBA: inclusive */
	unsigned index;		     /* 1-based entry number, as Linux numbers partitions (vda1 ...) */
};

struct gpt {
	u64 sectors;		     /* the disk's size in sectors, as given */
	u64 first_usable, last_usable; /* FirstUsableLBA, LastUsableLBA */
	unsigned nparts;
	struct gpt_part part[GPT_PARTS_MAX]; /* the non-empty entries, in entry order */
};

/* Reads count sectors from lba into buf: 0, or negative on a disk error. */
typedef int (*gpt_read_fn)(void *ctx, u64 lba, void *buf, unsigned count);

/*
 * Read the primary GPT of a disk of `sectors` 512-byte sectors through read(),
 * at most GPT_SCRATCH bytes at a time into scratch (no malloc in Quire: the
 * caller gives a page). 1: a valid GPT, *out filled; 0: no GPT (the disk has
 * no LBA 1, or it does not start with "EFI PART"), out->nparts 0; -1: a GPT
 * signature but the table is unusable, or a read failed: err gets one
 * sentence saying what.
 */
int gpt_read(u64 sectors, gpt_read_fn read, void *ctx, void *scratch, struct gpt *out, char *err,
	     size_t errlen);
/* The partition named name (never an unnamed one), or NULL. */
const struct gpt_part *gpt_find(const struct gpt *g, const char *name);
/* Is the type Linux swap, 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F? */
bool gpt_is_linux_swap(const struct gpt_part *p);
/* IEEE 802.3 CRC-32 (reflected, poly 0xEDB88320) as GPT uses it: gpt_crc32(0, buf, len); chains. */
u32 gpt_crc32(u32 crc, const void *buf, size_t len);
#endif
