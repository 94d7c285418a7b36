/*
 * A bare-metal virtio-mmio driver's pieces (vdrv.c), for memtest's hostile
 * drivers: mode 28 against the balloon in slot 0 (memtest.c), mode 29
 * against the disk in slot 1 (vblk_hostile.c), mode 30 against the network
 * device in slot 2 (vnet_hostile.c). They drive the transport's
 * registers by hand and build one split queue in the guest's own RAM, so a
 * test can write any lie into it.
 */
#ifndef VDRV_H
#define VDRV_H
#include "guest.h"

#define VIRTIO_MMIO 0x0a000000UL
#define VIRTIO_SLOT(n) (VIRTIO_MMIO + (u64)(n) * 0x200)
#define R32(a) (*(volatile unsigned int *)(a))
#define WR(a, v) (RD(a) = (v))

/* The transport's registers (virtio 1.x, 4.2.2). */
#define VR_DEVICE_ID 0x008
#define VR_DEV_FEATURES 0x010
#define VR_DEV_FEATURES_SEL 0x014
#define VR_DRV_FEATURES 0x020
#define VR_DRV_FEATURES_SEL 0x024
#define VR_QUEUE_SEL 0x030
#define VR_QUEUE_NUM_MAX 0x034
#define VR_QUEUE_NUM 0x038
#define VR_QUEUE_READY 0x044
#define VR_QUEUE_NOTIFY 0x050
#define VR_INT_STATUS 0x060
#define VR_INT_ACK 0x064
#define VR_STATUS 0x070
#define VR_QUEUE_DESC 0x080
#define VR_QUEUE_DRIVER 0x090
#define VR_QUEUE_DEVICE 0x0a0
#define VR_CONFIG 0x100

#define VS_ACK 1u
#define VS_DRIVER 2u
#define VS_DRIVER_OK 4u
#define VS_FEATURES_OK 8u
#define VS_NEEDS_RESET 0x40u
#define VI_VRING 1u
#define VI_CONFIG 2u

#define VQD_NEXT 1
#define VQD_WRITE 2
#define VQD_INDIRECT 4

struct vq_desc {
	u64 addr;
	u32 len;
	unsigned short flags, next;
};

/* One device and its queue 0 as the driver sets them up. */
struct vdrv {
	const char *mode;  /* for FAIL lines: "virtio-hostile" */
	u64 regs;	   /* the slot's registers */
	u64 base;	   /* the rings: desc at +0, avail at +0x1000, used at +0x2000 */
	unsigned num;	   /* the honest queue size (a power of 2, at most 256) */
	u32 features;	   /* feature bits 0-31 the driver takes; bits 32-63: VERSION_1 only */
};

/*
 * Reset, negotiate (VERSION_1 and v->features), and set up queue 0 of num
 * entries at desc/avail/used (the rings at v->base zeroed first), ready,
 * DRIVER_OK. Returns the device status read back at the end.
 */
u32 vdrv_setup(struct vdrv *v, u64 num, u64 desc, u64 avail, u64 used);
/* vdrv_setup with v->num entries at v->base's three pages. */
u32 vdrv_honest(struct vdrv *v);
/* Put one chain head in the avail ring, move avail->idx on by idx_bump, and notify queue 0. */
void vdrv_offer(struct vdrv *v, unsigned short head, unsigned short idx_bump);
void vdrv_desc(struct vdrv *v, unsigned i, u64 addr, u32 len, unsigned short flags, unsigned short next);
static inline volatile unsigned short *vdrv_avail(struct vdrv *v)
{
	return (volatile unsigned short *)(v->base + 0x1000);
}
static inline volatile unsigned short *vdrv_used(struct vdrv *v)
{
	return (volatile unsigned short *)(v->base + 0x2000);
}
/*
 * The device refused a lie as the spec asks: DEVICE_NEEDS_RESET, the
 * configuration change bit in InterruptStatus, and a reset clears both.
 * Otherwise prints `memtest: <mode> FAIL <what>: ...` and returns false.
 */
bool vdrv_refused(struct vdrv *v, const char *what);

/* memtest mode 29 (vblk_hostile.c): free is the first page past the image, ram_end RAM's end. */
void mode_vblk_hostile(u64 free, u64 ram_end);
/* memtest modes 30 and 31 (vnet_hostile.c): the lying network driver and its honest peer. */
void mode_vnet_hostile(u64 free, u64 ram_end);
void mode_net_echo(u64 free, u64 ram_end);
#endif
