/*
 * virtio-net for guests (include/quire/vnet.h). Sending: each frame the
 * driver makes available on the transmit queue is read whole into the
 * device's own buffer, its buffer given back at once, and the frame handed
 * to the switch, which copies it into the rings of the ports it goes to.
 * Receiving: frames in the port's ring go into the driver's receive
 * buffers, under the device's lock: at once if the sender could take it
 * (spin_trylock), else at the next vnet_kick, which a kick of the VM's CPU
 * brings soon. Frames stay in the ring while the driver gives no buffers:
 * when it is full, the switch drops what comes for this port alone.
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/clock.h>
#include <quire/console.h>
#include <quire/errno.h>
#include <quire/vcpu.h>
#include <quire/virtio.h>
#include <quire/vm.h>
#include <quire/vnet.h>

#define VIRTIO_ID_NET 1
#define F_MAC 5
#define F_STATUS 16
#define HDR_LEN 12 /* struct virtio_net_hdr with num_buffers: every frame's, with VIRTIO_F_VERSION_1 */
#define HDR_NUM_BUFFERS 10
#define CFG_MAC 0
#define CFG_STATUS 6
#define S_LINK_UP 1

enum { Q_RX, Q_TX, Q_NR };

_Static_assert(MAX_VMS <= 32, "a pending bit per VM");

struct vnet {
	struct virtio_dev dev;
	struct vsw_port *port;
	bool size_logged;
	u8 frame[VSW_FRAME_MAX]; /* the frame being sent (lock held) */
};

static struct vnet nets[MAX_VMS];
static _Atomic u32 pending; /* bit i: nets[i] has frames to take, or to send */

static struct vnet *of(struct virtio_dev *d)
{
	return (struct vnet *)d;
}

static void mark(struct vnet *k)
{
	atomic_fetch_or(&pending, 1u << (k - nets));
}

static bool queue_live(struct vnet *k, unsigned q)
{
	return virtio_live(&k->dev) && k->dev.q[q].ready;
}

/* Lock held: frames from the port's ring into the driver's receive buffers. 0, or -EAGAIN/-EBUSY. */
static int rx(struct vnet *k, unsigned cpu)
{
	struct vm *vm = k->dev.vm;
	struct virtq *vq = &k->dev.q[Q_RX];
	u8 hdr[HDR_LEN] = { 0 };
	bool used = false;
	const u8 *f;
	unsigned len;
	int rc = 0;

	if (!queue_live(k, Q_RX))
		return 0;
	/* The driver has given receive buffers: frames for it are kept from now on. */
	vsw_port_up(k->port, true);
	hdr[HDR_NUM_BUFFERS] = 1;
	while ((f = vsw_peek(k->port, &len))) {
		struct virtq_chain c;
		const char *why = "";
		int n = virtq_pop(vm, vq, &c, &why, cpu);

		if (n == 0)
			break; /* no buffer: the frames wait for the driver's next */
		if (n < 0) {
			if (n == -EPROTO || n == -EFAULT)
				virtio_broken(&k->dev, n == -EPROTO ? why : "a receive ring the VM cannot be given");
			rc = n == -EAGAIN || n == -EBUSY ? n : 0;
			break;
		}
		if (c.in_len < HDR_LEN + len) {
			/* A buffer too small for the frame: given back empty, the frame dropped (counted). */
			if ((rc = virtq_push(vm, vq, c.head, 0, cpu))) {
				vq->last_avail--; /* given back later: the frame stays till then */
				if (rc == -EFAULT)
					virtio_broken(&k->dev, "a receive ring the VM cannot be given");
				rc = rc == -EFAULT ? 0 : rc;
				break;
			}
			vsw_drop(k->port);
			used = true;
			continue;
		}
		rc = virtq_write(vm, &c, 0, hdr, HDR_LEN, cpu);
		if (!rc)
			rc = virtq_write(vm, &c, HDR_LEN, f, len, cpu);
		if (!rc)
			rc = virtq_push(vm, vq, c.head, HDR_LEN + len, cpu);
		if (rc) {
			vq->last_avail--; /* taken again later: nothing of it counted yet */
			if (rc == -EFAULT)
				virtio_broken(&k->dev, "a receive buffer the VM cannot be given");
			rc = rc == -EFAULT ? 0 : rc;
			break;
		}
		vsw_pop(k->port);
		used = true;
	}
	if (rc)
		mark(k);
	if (used)
		virtio_used(&k->dev, Q_RX, cpu);
	return rc;
}

/* Lock held: up to VNET_TX_BUDGET frames from the transmit queue into the switch. 0, or -EAGAIN/-EBUSY. */
static int tx(struct vnet *k, unsigned cpu)
{
	struct vm *vm = k->dev.vm;
	struct virtq *vq = &k->dev.q[Q_TX];
	bool used = false;
	unsigned sent = 0;
	int rc = 0;

	if (!queue_live(k, Q_TX))
		return 0;
	for (; sent < VNET_TX_BUDGET; sent++) {
		struct virtq_chain c;
		const char *why = "";
		int n = virtq_pop(vm, vq, &c, &why, cpu);
		u64 len;
		bool bad;

		if (n <= 0) {
			if (n == -EPROTO || n == -EFAULT)
				virtio_broken(&k->dev, n == -EPROTO ? why : "a transmit ring the VM cannot be given");
			rc = n == -EAGAIN || n == -EBUSY ? n : 0;
			break;
		}
		len = c.out_len - HDR_LEN;
		bad = c.out_len < HDR_LEN + VSW_FRAME_MIN || c.out_len > HDR_LEN + VSW_FRAME_MAX;
		if (!bad && (rc = virtq_read(vm, &c, HDR_LEN, k->frame, len, cpu))) {
			vq->last_avail--;
			if (rc == -EFAULT)
				virtio_broken(&k->dev, "a frame in memory the VM cannot be given");
			rc = rc == -EFAULT ? 0 : rc;
			break;
		}
		/* Given back before it goes: a used ring on its way from swap takes the chain again later. */
		if ((rc = virtq_push(vm, vq, c.head, 0, cpu))) {
			vq->last_avail--;
			if (rc == -EFAULT)
				virtio_broken(&k->dev, "a transmit ring the VM cannot be given");
			rc = rc == -EFAULT ? 0 : rc;
			break;
		}
		used = true;
		if (!bad) {
			vsw_send(k->port, k->frame, (unsigned)len, clock_us(), cpu);
			continue;
		}
		if (!k->size_logged)
			printk("quire: %s: virtio-net: a frame of %lu bytes (not %u to %u), dropped (logged once)\n",
			       vm->name, (unsigned long)(c.out_len > HDR_LEN ? c.out_len - HDR_LEN : 0), VSW_FRAME_MIN,
			       VSW_FRAME_MAX);
		k->size_logged = true;
		vsw_send(k->port, k->frame, 0, 0, cpu); /* no frame: the switch counts it dropped */
	}
	/* The budget spent, or guest memory on its way: the rest at the next kick. */
	if (sent == VNET_TX_BUDGET || rc)
		mark(k);
	if (used)
		virtio_used(&k->dev, Q_TX, cpu);
	return rc;
}

static int notify(struct virtio_dev *d, unsigned q, unsigned cpu)
{
	return q == Q_TX ? tx(of(d), cpu) : rx(of(d), cpu);
}

static void wake_cpu(struct vnet *k)
{
	struct vm *vm = k->dev.vm;

	mark(k);
	/* Its CPU looks at pending after the interrupt this brings (irq_handle). */
	if (vm->vcpu[0])
		vcpu_kick(vm->vcpu[0]);
}

/* The switch put frames in this port's ring. */
static void wake(struct vsw_port *p, unsigned cpu)
{
	struct vnet *k = vsw_port_ctx(p);

	if (!spin_trylock(&k->dev.lock)) {
		wake_cpu(k); /* its holder may be past its last look at the ring */
		return;
	}
	if (rx(k, cpu))
		wake_cpu(k);
	spin_unlock(&k->dev.lock);
}

/* The driver reset it, or the VM restarts or stops: what waited for it goes. */
static void reset(struct virtio_dev *d)
{
	struct vnet *k = of(d);

	vsw_port_up(k->port, false);
	vsw_flush(k->port);
}

static const struct vsw_port_ops port_ops = { .wake = wake };

static const struct virtio_ops vnet_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = 1UL << F_MAC | 1UL << F_STATUS,
	.nqueues = Q_NR,
	.config_size = 8,
	.notify = notify,
	.reset = reset,
};

bool vnet_attach(struct vm *vm, unsigned slot, const u8 mac[6], unsigned cpu)
{
	struct vnet *k = &nets[vm->id - 1];
	struct vsw_port *p;

	spin_lock(&k->dev.lock);
	p = vsw_port_add(vm->id - 1, mac, &port_ops, k, cpu);
	if (p) {
		k->port = p;
		k->size_logged = false;
		k->dev.ops = &vnet_ops;
		k->dev.withheld = 0;
		memset(k->dev.config, 0, sizeof(k->dev.config));
		memcpy(&k->dev.config[CFG_MAC], mac, 6);
		k->dev.config[CFG_STATUS] = S_LINK_UP;
	}
	spin_unlock(&k->dev.lock);
	if (p)
		virtio_attach(vm, slot, &k->dev);
	return p != NULL;
}

void vnet_kick(unsigned cpu)
{
	u32 m;

	if (!atomic_load_explicit(&pending, memory_order_relaxed))
		return;
	m = atomic_exchange(&pending, 0);
	for (unsigned i = 0; m; i++, m >>= 1) {
		struct vnet *k = &nets[i];

		if (!(m & 1))
			continue;
		/*
		 * Only a try: the holder is at work on this device (a vCPU's notify,
		 * another CPU's kick) and may be waiting on this CPU meanwhile (a TLB
		 * invalidation's broadcast); the next kick looks again.
		 */
		if (!spin_trylock(&k->dev.lock)) {
			mark(k);
			continue;
		}
		if (k->dev.ops) {
			tx(k, cpu);
			rx(k, cpu);
		}
		spin_unlock(&k->dev.lock);
	}
}

bool vnet_info(struct vm *vm, struct vsw_stats *st, u8 mac[6], bool *up)
{
	struct vnet *k = &nets[vm->id - 1];

	if (vm->virtio[VMCFG_NET_SLOT] != &k->dev)
		return false;
	vsw_port_stats(k->port, st, mac, up);
	return true;
}
