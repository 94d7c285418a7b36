/*
 * Split virtqueues for Quire's device models (include/quire/virtq.h).
 * The driver is not trusted: every index, descriptor and length it wrote
 * is checked here before a device sees it, and guest memory is reached
 * only through gmem_copy, so a lie costs the driver its device, never
 * Quire or another VM.
 */
#include <stdatomic.h>
#include <quire/errno.h>
#include <quire/gmem.h>
#include <quire/virtq.h>
#include <quire/vm.h>

/* The rings' layout (2.7.5, 2.7.6, 2.7.8), little-endian as the guest writes it. */
struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_IDX 2
#define USED_RING 4

static bool in_ram(const struct vm *vm, u64 addr, u64 len)
{
	return len == 0 || (addr + len > addr && vm_in_ram(vm, IPA(addr)) && vm_in_ram(vm, IPA(addr + len - 1)));
}

bool virtq_areas_ok(const struct vm *vm, const struct virtq *q)
{
	u64 n = q->num;

	return n && n <= VIRTQ_NUM_MAX && !(n & (n - 1)) && !(q->desc & 15) && !(q->avail & 1) &&
	       !(q->used & 3) && in_ram(vm, q->desc, 16 * n) && in_ram(vm, q->avail, 6 + 2 * n) &&
	       in_ram(vm, q->used, 6 + 8 * n);
}

static int rd16(struct vm *vm, u64 addr, u16 *v, unsigned cpu)
{
	return gmem_copy(vm, addr, v, 2, false, cpu);
}

#define BROKEN(msg)            \
	do {                   \
		*why = msg;    \
		return -EPROTO; \
	} while (0)

int virtq_pop(struct vm *vm, struct virtq *q, struct virtq_chain *c, const char **why, unsigned cpu)
{
	u16 idx, head, i;
	unsigned n = 0;
	int rc;

	if (!q->ready)
		return 0;
	if ((rc = rd16(vm, q->avail + AVAIL_IDX, &idx, cpu)))
		return rc;
	if (idx == q->last_avail)
		return 0;
	/* More than a ring's worth ahead of the device: no driver writes that. */
	if ((u16)(idx - q->last_avail) > q->num)
		BROKEN("avail->idx is more than the queue size ahead of the device");
	if ((rc = rd16(vm, q->avail + AVAIL_RING + 2 * (q->last_avail & (q->num - 1)), &head, cpu)))
		return rc;
	if (head >= q->num)
		BROKEN("an avail ring entry names a descriptor past the table");
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (i = head;; n++) {
		struct virtq_desc d;

		/* A chain visits each descriptor at most once: a longer one loops. */
		if (n >= q->num)
			BROKEN("a descriptor chain loops");
		if (n >= VIRTQ_SEGS_MAX)
			BROKEN("a descriptor chain is longer than the device takes");
		if ((rc = gmem_copy(vm, q->desc + 16 * (u64)i, &d, sizeof(d), false, cpu)))
			return rc;
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			BROKEN("an indirect descriptor, which was not offered");
		if (!in_ram(vm, d.addr, d.len))
			BROKEN("a descriptor's buffer is outside the VM's RAM");
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->in_len += d.len;
			c->nin++;
		} else {
			/* 2.7.4.2: readable descriptors come before writable ones. */
			if (c->nin)
				BROKEN("a readable descriptor after a writable one");
			c->out_len += d.len;
			c->nout++;
		}
		c->seg[n] = (struct virtq_seg){ d.addr, d.len };
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= q->num)
			BROKEN("a descriptor's next is past the table");
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

int virtq_push(struct vm *vm, struct virtq *q, u16 head, u32 len, unsigned cpu)
{
	u32 elem[2] = { head, len };
	u16 idx = q->used_idx + 1;
	int rc;

	/* The entry, then the index that publishes it (gmem_copy's install orders them). */
	rc = gmem_copy(vm, q->used + USED_RING + 8 * (u64)(q->used_idx & (q->num - 1)), elem, sizeof(elem), true,
		       cpu);
	if (!rc)
		rc = gmem_copy(vm, q->used + USED_IDX, &idx, 2, true, cpu);
	if (!rc)
		q->used_idx = idx;
	return rc;
}

bool virtq_wants_irq(struct vm *vm, struct virtq *q, unsigned cpu)
{
	u16 flags;

	/*
	 * The used index just written is seen before the flags are read. The
	 * driver does the mirror (clears NO_INTERRUPT, a full barrier, reads
	 * used->idx): without this each side can miss the other's store, and
	 * an interrupt is lost while the driver sleeps (Linux's virtio_mb).
	 */
	atomic_thread_fence(memory_order_seq_cst);
	/* Unreadable flags: interrupt anyway, a spurious one is harmless. */
	return rd16(vm, q->avail, &flags, cpu) || !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copy to or from one part of the chain (the readable segments, or the writable ones). */
static int part_copy(struct vm *vm, const struct virtq_chain *c, bool writable, u64 off, u8 *buf, u64 len,
		     unsigned cpu)
{
	unsigned first = writable ? c->nout : 0, end = writable ? c->nout + c->nin : c->nout;

	if (off + len < off || off + len > (writable ? c->in_len : c->out_len))
		return -EINVAL;
	for (unsigned k = first; k < end && len; k++) {
		const struct virtq_seg *s = &c->seg[k];
		u64 n;
		int rc;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = MIN(len, s->len - off);
		if ((rc = gmem_copy(vm, s->addr + off, buf, n, writable, cpu)))
			return rc;
		buf += n;
		len -= n;
		off = 0;
	}
	return 0;
}

int virtq_read(struct vm *vm, const struct virtq_chain *c, u64 off, void *buf, u64 len, unsigned cpu)
{
	return part_copy(vm, c, false, off, buf, len, cpu);
}

int virtq_write(struct vm *vm, const struct virtq_chain *c, u64 off, const void *buf, u64 len, unsigned cpu)
{
	return part_copy(vm, c, true, off, (u8 *)buf, len, cpu);
}
