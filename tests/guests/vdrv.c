/* A bare-metal virtio-mmio driver's pieces for memtest's hostile drivers (vdrv.h). */
#include "vdrv.h"

static void wr64(struct vdrv *v, u64 reg, u64 val)
{
	R32(v->regs + reg) = (u32)val;
	R32(v->regs + reg + 4) = (u32)(val >> 32);
}

u32 vdrv_setup(struct vdrv *v, u64 num, u64 desc, u64 avail, u64 used)
{
	u64 b = v->regs;

	R32(b + VR_STATUS) = 0;
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER;
	R32(b + VR_DRV_FEATURES_SEL) = 1; /* bits 32-63 */
	R32(b + VR_DRV_FEATURES) = 1;	  /* VIRTIO_F_VERSION_1 */
	R32(b + VR_DRV_FEATURES_SEL) = 0;
	R32(b + VR_DRV_FEATURES) = v->features;
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER | VS_FEATURES_OK;
	R32(b + VR_QUEUE_SEL) = 0;
	R32(b + VR_QUEUE_NUM) = (u32)num;
	wr64(v, VR_QUEUE_DESC, desc);
	wr64(v, VR_QUEUE_DRIVER, avail);
	wr64(v, VR_QUEUE_DEVICE, used);
	for (u64 a = v->base; a < v->base + 0x3000; a += 8)
		WR(a, 0);
	R32(b + VR_QUEUE_READY) = 1;
	R32(b + VR_STATUS) = VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK;
	return R32(b + VR_STATUS);
}

u32 vdrv_honest(struct vdrv *v)
{
	return vdrv_setup(v, v->num, v->base, v->base + 0x1000, v->base + 0x2000);
}

void vdrv_offer(struct vdrv *v, unsigned short head, unsigned short idx_bump)
{
	volatile unsigned short *avail = vdrv_avail(v);
	unsigned short idx = avail[1];

	avail[2 + idx % v->num] = head;
	asm volatile("dmb ishst" ::: "memory");
	avail[1] = (unsigned short)(idx + idx_bump);
	asm volatile("dsb ish" ::: "memory");
	R32(v->regs + VR_QUEUE_NOTIFY) = 0;
}

void vdrv_desc(struct vdrv *v, unsigned i, u64 addr, u32 len, unsigned short flags, unsigned short next)
{
	volatile struct vq_desc *d = (volatile struct vq_desc *)v->base + i;

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

bool vdrv_refused(struct vdrv *v, const char *what)
{
	u32 st = R32(v->regs + VR_STATUS), isr = R32(v->regs + VR_INT_STATUS);

	if (!(st & VS_NEEDS_RESET) || !(isr & VI_CONFIG)) {
		pr("memtest: %s FAIL %s: status 0x%x interrupt status 0x%x\n", v->mode, what, st, isr);
		return false;
	}
	R32(v->regs + VR_INT_ACK) = isr;
	R32(v->regs + VR_STATUS) = 0;
	if (R32(v->regs + VR_STATUS) || R32(v->regs + VR_INT_STATUS)) {
		pr("memtest: %s FAIL %s: a reset left status 0x%x\n", v->mode, what, R32(v->regs + VR_STATUS));
		return false;
	}
	return true;
}
