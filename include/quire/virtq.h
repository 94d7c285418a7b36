/*
 * Split virtqueues (virtio 1.x, 2.7) as a device model in Quire takes
 * them (core/virtq.c). Every value the driver wrote is checked before it
 * is used: indices in range, chains bounded and loop-free, every buffer
 * inside the VM's RAM. Guest memory is reached through gmem_copy.
 */
#ifndef QUIRE_VIRTQ_H
#define QUIRE_VIRTQ_H
#include <quire/types.h>

struct vm;

#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u

#define VIRTQ_NUM_MAX 256 /* QueueNumMax of Quire's devices */
#define VIRTQ_SEGS_MAX 64 /* descriptors in one chain */

/* One queue's registers, as the driver set them, and the device's place in it. */
struct virtq {
	u16 num;	 /* QueueNum: a power of 2, at most VIRTQ_NUM_MAX */
	bool ready;	 /* QueueReady */
	u64 desc, avail, used; /* guest-physical: the descriptor table, the driver area, the device area */
	u16 last_avail;	 /* the next avail ring entry the device takes */
	u16 used_idx;	 /* used->idx as the device last wrote it */
};

struct virtq_seg {
	u64 addr;
	u32 len;
};

/* A descriptor chain: its readable segments first (out), then its writable ones (in). */
struct virtq_chain {
	u16 head;
	unsigned nout, nin;
	u64 out_len, in_len; /* bytes */
	struct virtq_seg seg[VIRTQ_SEGS_MAX];
};

/*
 * Take the next available chain. 1 with *c filled; 0 if the driver has
 * made none available; -EAGAIN or -EBUSY (gmem_copy: try again, nothing
 * taken); -EFAULT if a ring page cannot be had (quota, memory); -EPROTO if
 * the driver broke the rules (*why says how, for the log). A chain is taken only when it is wholly valid.
 */
int virtq_pop(struct vm *vm, struct virtq *q, struct virtq_chain *c, const char **why, unsigned cpu);
/*
 * Give chain head back with len bytes written into its writable part:
 * the used ring's entry, then used->idx. 0 or gmem_copy's error.
 */
int virtq_push(struct vm *vm, struct virtq *q, u16 head, u32 len, unsigned cpu);
/* Does the driver want an interrupt for used buffers (VIRTQ_AVAIL_F_NO_INTERRUPT clear)? */
bool virtq_wants_irq(struct vm *vm, struct virtq *q, unsigned cpu);
/*
 * Copy from the chain's readable part (virtq_read) or into its writable
 * part (virtq_write), from byte off of that part: 0, -EINVAL if the part is shorter than
 * off + len, or gmem_copy's error.
 */
int virtq_read(struct vm *vm, const struct virtq_chain *c, u64 off, void *buf, u64 len, unsigned cpu);
int virtq_write(struct vm *vm, const struct virtq_chain *c, u64 off, const void *buf, u64 len, unsigned cpu);
/* Are the queue's areas, as the driver set them, inside the VM's RAM and aligned as 2.7 asks? */
bool virtq_areas_ok(const struct vm *vm, const struct virtq *q);
#endif
