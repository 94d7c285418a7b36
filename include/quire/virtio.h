/*
 * Quire's virtio devices for guests: the virtio-mmio transport (version 2,
 * virtio 1.x 4.2.2) in core/virtio_mmio.c, and the device models that plug
 * into it (struct virtio_ops). A device lives in one of the VM's
 * virtio-mmio slots, with the slot's SPI as its interrupt.
 */
#ifndef QUIRE_VIRTIO_H
#define QUIRE_VIRTIO_H
#include <quire/spinlock.h>
#include <quire/virtq.h>

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

#define VIRTIO_F_VERSION_1 32 /* bit number: every device offers it (a modern transport) */

/* InterruptStatus bits (4.2.2). */
#define VIRTIO_INT_VRING 1u
#define VIRTIO_INT_CONFIG 2u

#define VIRTIO_QUEUES_MAX 5
#define VIRTIO_CONFIG_MAX 64 /* bytes of device configuration space Quire's devices use */

struct vm;
struct virtio_dev;

struct virtio_ops {
	const char *name;	/* for the log */
	u32 device_id;		/* 5.x: 5 the balloon, 2 block, 1 network */
	u64 features;		/* offered (VIRTIO_F_VERSION_1 is added) */
	unsigned nqueues;
	u32 config_size;	/* bytes of d->config the driver may read */
	/*
	 * The driver wrote size bytes at off of the configuration space (already
	 * inside config_size): the device takes what it allows. May be NULL.
	 */
	void (*config_write)(struct virtio_dev *d, u32 off, unsigned size, u32 val);
	/*
	 * The driver notified queue q (ready): take its chains. 0; -EAGAIN or
	 * -EBUSY to be called again (guest memory on its way from swap: the vCPU
	 * waits); after virtio_broken, anything.
	 */
	int (*notify)(struct virtio_dev *d, unsigned q, unsigned cpu);
	/* The driver reset the device (status 0), or the VM restarts: back to as new. May be NULL. */
	void (*reset)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_ops *ops;
	u64 withheld;			/* features of ops this device does not offer (its VM's config says) */
	struct vm *vm;
	unsigned slot;			/* its virtio-mmio slot: its registers and its SPI */
	spinlock_t lock;		/* the registers and the queues; held across notify */
	u32 status;
	u32 dev_features_sel, drv_features_sel, queue_sel;
	u64 driver_features;
	u32 isr;			/* InterruptStatus */
	u32 config_generation;
	bool broken_logged;		/* a rule the driver broke, logged once per device life (not per reset) */
	u8 config[VIRTIO_CONFIG_MAX];
	struct virtq q[VIRTIO_QUEUES_MAX];
};

/*
 * A guest's access to the virtio-mmio window at off (from VIRTIO_MMIO_BASE).
 * 0 done (*val read); -EINVAL no such register for that size (the caller
 * logs it once); -EAGAIN or -EBUSY: the access must run again (a notify
 * that waits for guest memory, or the device busy on another CPU): the
 * vCPU does not go past it (after waiting for the disk, for -EAGAIN).
 */
int virtio_mmio_access(struct vm *vm, u64 off, unsigned size, bool write, u64 *val, unsigned cpu);

/* Put d (ops set) into slot of vm: its registers answer from then on. */
void virtio_attach(struct vm *vm, unsigned slot, struct virtio_dev *d);
/* The VM restarts: every device as new, its interrupt down. */
void virtio_reset_all(struct vm *vm);

/*
 * The driver broke a rule (why: for the log, once per device): the device
 * stops taking its queues, sets DEVICE_NEEDS_RESET and interrupts with a
 * configuration change, as 2.1.2 asks. Called with d->lock held.
 */
void virtio_broken(struct virtio_dev *d, const char *why);
/* Used buffers on queue q (lock held): interrupt the driver unless it asked not to be. */
void virtio_used(struct virtio_dev *d, unsigned q, unsigned cpu);
/* The device changed its configuration (lock held): a new generation and an interrupt. */
void virtio_config_changed(struct virtio_dev *d);
/* Is the driver running it (DRIVER_OK, not broken)? */
static inline bool virtio_live(const struct virtio_dev *d)
{
	return (d->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) == VIRTIO_STATUS_DRIVER_OK;
}
#endif
