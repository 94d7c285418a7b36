/*
 * The virtio-mmio transports of the guest platform (virtio 1.x, 4.2.2,
 * version 2): VIRTIO_MMIO_SLOTS slots of VIRTIO_MMIO_SLOT bytes from
 * VIRTIO_MMIO_BASE, on SPIs 16-47, as QEMU virt has them. A slot with a
 * device (virtio_attach) runs feature negotiation, the device status and
 * its split virtqueues, and hands notifications to the device model. A
 * slot without one answers as a version 2 transport with device ID 0
 * ("no device"), so a driver probes it and moves on.
 *
 * Every value the driver writes is checked: a queue outside RAM, a size
 * over the maximum or a broken ring puts the device into
 * DEVICE_NEEDS_RESET (virtio_broken), logged once; never Quire or another
 * VM or device.
 */
#include <quire/console.h>
#include <quire/errno.h>
#include <quire/vdev.h>
#include <quire/virtio.h>
#include <quire/vm.h>

#define VIRTIO_MMIO_MAGIC 0x74726976u  /* "virt", little-endian */
#define VIRTIO_MMIO_VERSION 2u	       /* the modern (1.x) transport */
#define VIRTIO_MMIO_VENDOR 0x554d4551u /* "QEMU": what QEMU's own devices say */

enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEV_FEATURES = 0x010, REG_DEV_FEATURES_SEL = 0x014, REG_DRV_FEATURES = 0x020,
	REG_DRV_FEATURES_SEL = 0x024, REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050, REG_INT_STATUS = 0x060, REG_INT_ACK = 0x064,
	REG_STATUS = 0x070, REG_QUEUE_DESC_LO = 0x080, REG_QUEUE_DESC_HI = 0x084, REG_QUEUE_DRIVER_LO = 0x090,
	REG_QUEUE_DRIVER_HI = 0x094, REG_QUEUE_DEVICE_LO = 0x0a0, REG_QUEUE_DEVICE_HI = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LO = 0x0b0, REG_SHM_LEN_HI = 0x0b4, REG_SHM_BASE_LO = 0x0b8,
	REG_SHM_BASE_HI = 0x0bc, REG_CONFIG_GEN = 0x0fc, REG_CONFIG = 0x100,
};

static u32 intid(const struct virtio_dev *d)
{
	return VIRTIO_MMIO_FIRST_INTID + d->slot;
}

static void irq_update(struct virtio_dev *d)
{
	vm_set_irq_level(d->vm, intid(d), d->isr != 0);
}

static u64 offered(const struct virtio_dev *d)
{
	return (d->ops->features & ~d->withheld) | 1UL << VIRTIO_F_VERSION_1;
}

static void dev_reset(struct virtio_dev *d)
{
	d->status = 0;
	d->dev_features_sel = d->drv_features_sel = d->queue_sel = 0;
	d->driver_features = 0;
	d->isr = 0;
	for (unsigned q = 0; q < VIRTIO_QUEUES_MAX; q++)
		d->q[q] = (struct virtq){ 0 };
	if (d->ops->reset)
		d->ops->reset(d);
	irq_update(d);
}

void virtio_attach(struct vm *vm, unsigned slot, struct virtio_dev *d)
{
	d->vm = vm;
	d->slot = slot;
	/* Once per device life, not per driver reset: a driver that breaks and resets in a loop is not a log flood. */
	d->broken_logged = false;
	spin_lock(&d->lock);
	dev_reset(d);
	spin_unlock(&d->lock);
	vm->virtio[slot] = d;
}

void virtio_reset_all(struct vm *vm)
{
	for (unsigned s = 0; s < VIRTIO_MMIO_SLOTS; s++) {
		struct virtio_dev *d = vm->virtio[s];

		if (d) {
			spin_lock(&d->lock);
			dev_reset(d);
			spin_unlock(&d->lock);
		}
	}
}

void virtio_broken(struct virtio_dev *d, const char *why)
{
	if (!d->broken_logged) {
		d->broken_logged = true;
		printk("quire: %s: virtio-%s in slot %u: %s; the device needs a reset (logged once)\n", d->vm->name,
		       d->ops->name, d->slot, why);
	}
	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* 2.1.2: a driver learns of it by a configuration change notification, if it has DRIVER_OK. */
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		d->isr |= VIRTIO_INT_CONFIG;
		irq_update(d);
	}
}

void virtio_used(struct virtio_dev *d, unsigned q, unsigned cpu)
{
	if (virtq_wants_irq(d->vm, &d->q[q], cpu)) {
		d->isr |= VIRTIO_INT_VRING;
		irq_update(d);
	}
}

void virtio_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		d->isr |= VIRTIO_INT_CONFIG;
		irq_update(d);
	}
}

/* The selected queue, or NULL if QueueSel is past the device's queues. */
static struct virtq *sel_queue(struct virtio_dev *d)
{
	return d->queue_sel < d->ops->nqueues ? &d->q[d->queue_sel] : NULL;
}

static u32 reg_read(struct virtio_dev *d, u64 r)
{
	struct virtq *q = sel_queue(d);

	switch (r) {
	case REG_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case REG_VERSION:
		return VIRTIO_MMIO_VERSION;
	case REG_DEVICE_ID:
		return d->ops->device_id;
	case REG_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case REG_DEV_FEATURES:
		return d->dev_features_sel < 2 ? (u32)(offered(d) >> (32 * d->dev_features_sel)) : 0;
	case REG_QUEUE_NUM_MAX:
		return q ? VIRTQ_NUM_MAX : 0; /* 0: no such queue */
	case REG_QUEUE_READY:
		return q && q->ready;
	case REG_INT_STATUS:
		return d->isr;
	case REG_STATUS:
		return d->status;
	case REG_SHM_LEN_LO:
	case REG_SHM_LEN_HI:
	case REG_SHM_BASE_LO:
	case REG_SHM_BASE_HI:
		return ~0u; /* no shared memory regions */
	case REG_CONFIG_GEN:
		return d->config_generation;
	default:
		return 0; /* write-only registers read as zero */
	}
}

/* Status: the driver's steps (3.1.1), each checked; FEATURES_OK only for features that were offered. */
static void status_write(struct virtio_dev *d, u32 val)
{
	if (val == 0) {
		dev_reset(d);
		return;
	}
	/* NEEDS_RESET is the device's: a driver cannot set or clear it; it can only reset. */
	val = (val & ~VIRTIO_STATUS_NEEDS_RESET) | (d->status & VIRTIO_STATUS_NEEDS_RESET);
	/* 2.1.1: the driver never clears a bit but by a reset (clearing FEATURES_OK would reopen negotiation). */
	if (d->status & ~val) {
		virtio_broken(d, "the driver cleared device status bits without a reset");
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(d->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((d->driver_features & ~offered(d)) || !(d->driver_features & 1UL << VIRTIO_F_VERSION_1)))
		val &= ~VIRTIO_STATUS_FEATURES_OK; /* refused: the driver reads it back clear (3.1.1 step 6) */
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_broken(d, "DRIVER_OK without FEATURES_OK");
		val &= ~VIRTIO_STATUS_DRIVER_OK;
	}
	/* 2.1.2: a device that needs a reset says so by a configuration interrupt once the driver runs it. */
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(d->status & VIRTIO_STATUS_DRIVER_OK) &&
	    (d->status & VIRTIO_STATUS_NEEDS_RESET)) {
		d->isr |= VIRTIO_INT_CONFIG;
		irq_update(d);
	}
	d->status = val | (d->status & VIRTIO_STATUS_NEEDS_RESET);
}

static void queue_addr(struct virtq *q, u64 *field, bool high, u32 val)
{
	if (!q || q->ready)
		return; /* only while the queue is not ready (4.2.2.2) */
	*field = high ? (*field & 0xffffffffUL) | (u64)val << 32 : (*field & ~0xffffffffUL) | val;
}

/* A register write; 0, or the device model's -EAGAIN/-EBUSY from a notify. */
static int reg_write(struct virtio_dev *d, u64 r, u32 val, unsigned cpu)
{
	struct virtq *q = sel_queue(d);

	switch (r) {
	case REG_DEV_FEATURES_SEL:
		d->dev_features_sel = val;
		break;
	case REG_DRV_FEATURES_SEL:
		d->drv_features_sel = val;
		break;
	case REG_DRV_FEATURES:
		/* Only before FEATURES_OK; bits past 63 do not exist. */
		if (!(d->status & VIRTIO_STATUS_FEATURES_OK) && d->drv_features_sel < 2)
			d->driver_features = (d->driver_features & ~(0xffffffffUL << (32 * d->drv_features_sel))) |
					     (u64)val << (32 * d->drv_features_sel);
		break;
	case REG_QUEUE_SEL:
		d->queue_sel = val;
		break;
	case REG_QUEUE_NUM:
		if (q && !q->ready)
			q->num = val > 0xffff ? 0 : (u16)val; /* checked when the queue is made ready */
		break;
	case REG_QUEUE_READY:
		if (!q)
			break;
		if (!(val & 1)) {
			q->ready = false;
			break;
		}
		if (!q->ready && !virtq_areas_ok(d->vm, q)) {
			virtio_broken(d, "a queue made ready with a bad size, or areas outside RAM or misaligned");
			break;
		}
		q->ready = true;
		break;
	case REG_QUEUE_NOTIFY:
		/*
		 * Once the features are agreed, a ready queue is taken. Linux notifies
		 * some (the balloon's stats queue) before DRIVER_OK, as QEMU allows.
		 */
		if (val < d->ops->nqueues && d->q[val].ready && (d->status & VIRTIO_STATUS_FEATURES_OK) &&
		    !(d->status & VIRTIO_STATUS_NEEDS_RESET))
			return d->ops->notify(d, val, cpu);
		break;
	case REG_INT_ACK:
		d->isr &= ~val;
		irq_update(d);
		break;
	case REG_STATUS:
		status_write(d, val);
		break;
	case REG_QUEUE_DESC_LO:
	case REG_QUEUE_DESC_HI:
		queue_addr(q, q ? &q->desc : NULL, r == REG_QUEUE_DESC_HI, val);
		break;
	case REG_QUEUE_DRIVER_LO:
	case REG_QUEUE_DRIVER_HI:
		queue_addr(q, q ? &q->avail : NULL, r == REG_QUEUE_DRIVER_HI, val);
		break;
	case REG_QUEUE_DEVICE_LO:
	case REG_QUEUE_DEVICE_HI:
		queue_addr(q, q ? &q->used : NULL, r == REG_QUEUE_DEVICE_HI, val);
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
	return 0;
}

/* The device's configuration space: any size at its natural alignment (4.2.2.2), inside config_size. */
static int config_access(struct virtio_dev *d, u32 off, unsigned size, bool write, u64 *val)
{
	if ((size != 1 && size != 2 && size != 4) || (off & (size - 1)) || off + size > d->ops->config_size)
		return -EINVAL;
	if (write) {
		if (d->ops->config_write)
			d->ops->config_write(d, off, size, (u32)*val);
		return 0;
	}
	*val = 0;
	for (unsigned k = 0; k < size; k++)
		*val |= (u64)d->config[off + k] << (8 * k);
	return 0;
}

static int empty_slot(u64 r, unsigned size, bool write, u64 *val)
{
	if (size != 4 || (r & 3))
		return -EINVAL;
	if (write)
		return 0; /* nothing to drive: ignored, as on QEMU */
	switch (r) {
	case REG_MAGIC:
		*val = VIRTIO_MMIO_MAGIC;
		break;
	case REG_VERSION:
		*val = VIRTIO_MMIO_VERSION;
		break;
	case REG_VENDOR_ID:
		*val = VIRTIO_MMIO_VENDOR;
		break;
	default:
		*val = 0; /* REG_DEVICE_ID 0: no device; every other register of an absent device */
		break;
	}
	return 0;
}

int virtio_mmio_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val, unsigned cpu)
{
	u64 slot = off / VIRTIO_MMIO_SLOT; /* 64 bits: an offset far past the window must not wrap to a slot */
	u64 r = off % VIRTIO_MMIO_SLOT;
	struct virtio_dev *d = slot < VIRTIO_MMIO_SLOTS ? vm->virtio[slot] : NULL;
	int rc = 0;

	if (!d)
		return empty_slot(r, size, write, val);
	/*
	 * Only a try: the holder (a device's kick on another CPU, moving this
	 * VM's memory) may be waiting on this CPU meanwhile, for a TLB
	 * invalidation's broadcast under QEMU: the vCPU makes its access again.
	 */
	if (!spin_trylock(&d->lock))
		return -EBUSY;
	if (r >= REG_CONFIG) {
		rc = config_access(d, r - REG_CONFIG, size, write, val);
	} else if (size != 4 || (r & 3)) {
		rc = -EINVAL; /* the transport's registers are 32 bits wide and aligned */
	} else if (write) {
		rc = reg_write(d, r, (u32)*val, cpu);
	} else {
		*val = reg_read(d, r);
	}
	spin_unlock(&d->lock);
	return rc;
}
