/*
 * virtio-blk disks for guests (virtio 1.x, 5.2; core/vdisk.c): each is one
 * partition of the host disk (core/disk.c), read-write or read-only. A
 * guest's request is copied through pages of Quire's own (bounce pages)
 * and sent to the host disk at the partition's offset; it completes by the
 * disk's interrupt, and the guest's by its slot's.
 */
#ifndef QUIRE_VDISK_H
#define QUIRE_VDISK_H
#include <quire/gpt.h>

struct vm;

#define VDISK_DEPTH 8 /* requests of one guest disk with the host disk at once */
#define VDISK_SEG_MAX 16 /* data segments a request may have (seg_max), each at most 4 KiB (size_max) */

struct vdisk_info {
	bool present, ro, driver;
	char part[GPT_NAME_MAX + 1];
	u64 sectors;
	u64 reads, writes, flushes, ids;	/* requests answered, by type */
	u64 read_bytes, written_bytes;
	u64 errors;		/* requests answered VIRTIO_BLK_S_IOERR or UNSUPP */
	unsigned inflight;	/* requests on the host disk now */
};

/* Give vm a disk in virtio-mmio slot: partition p of the host disk (at its creation). */
void vdisk_attach(struct vm *vm, unsigned slot, const struct gpt_part *p, bool ro);
/*
 * Move on every guest disk that waits: for room on the host disk, for
 * memory, or for a guest page on its way back from swap. Cheap when none
 * waits; called after interrupts and from the idle loop.
 */
void vdisk_kick(unsigned cpu);
void vdisk_info(struct vm *vm, struct vdisk_info *out);
#endif
