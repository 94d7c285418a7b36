/*
 * The virtual GICv2 of a VM: an emulated distributor, the hardware's GICV
 * frame as the guest's CPU interface, list registers filled by Quire.
 */
#ifndef ARCH_VGIC_H
#define ARCH_VGIC_H
#include <quire/spinlock.h>
#include <quire/vcpu.h>

#define VGIC_NR_IRQS 96 /* 16 SGIs, 16 PPIs, 64 SPIs: the UART (SPI 1) and the virtio-mmio slots (SPIs 16-47) */
#define VGIC_DIST_BASE 0x08000000UL
#define VGIC_DIST_SIZE 0x10000UL
#define VGIC_CPU_BASE 0x08010000UL
#define VGIC_MAX_LRS 16

struct virq {
	u8 prio;
	u8 targets;	/* SPIs: vCPU mask */
	bool enabled;
	bool pending;	/* latched: edge, SGI, or forwarded */
	bool level;	/* line level of a level-sensitive SPI */
	bool edge;	/* ICFGR */
	bool hw;	/* forwarded physical interrupt (the virtual timer) */
	s8 lr;		/* list register holding it, -1 if none */
	s8 lr_vcpu;	/* which vCPU's list register */
};

struct vgic_cpu {
	struct virq priv[32];
	u64 ppi_cand;       /* PPIs (bit = INTID) that may want a list register: see vgic_cand_mark */
	u16 sgi_src[16];    /* pending SGIs by source vCPU */
	u32 lr_used;        /* list registers Quire filled and has not seen retire */
	u32 lr_watch;       /* of those, the ones holding a forwarded or level-sensitive interrupt */
	s16 lr_irq[VGIC_MAX_LRS];
	u8 lr_src[VGIC_MAX_LRS];
	/* The CPU interface while the vCPU is not loaded. */
	u32 lr_val[VGIC_MAX_LRS];
	u32 vmcr, apr;
	bool timer_active; /* the physical timer PPI was active (forwarded, not yet deactivated) */
	bool pmu_active;   /* the same for the PMU overflow PPI */
};

struct vgic {
	spinlock_t lock;
	bool enabled;
	struct virq spi[VGIC_NR_IRQS - 32];
	u64 spi_cand[(VGIC_NR_IRQS - 32 + 63) / 64]; /* SPIs that may want one (bit = INTID - 32) */
	struct vgic_cpu cpu[MAX_VCPUS];
};

void vgic_init(struct vm *vm);
bool vgic_dist_access(struct vcpu *v, u64 off, unsigned size, bool write, u64 *val);
#define VGIC_SGIR (VGIC_DIST_BASE + 0xf00) /* GICD_SGIR: the guest's IPIs */
void vgic_sgir_write(struct vcpu *v, u32 sgir);
/* Set a level-sensitive SPI's line (an emulated device's interrupt output). */
void vgic_set_level(struct vm *vm, u32 intid, bool level);
/* Set a vCPU's level-sensitive PPI (an emulated timer's output). */
void vgic_set_ppi_level(struct vcpu *v, u32 intid, bool level);
/* The virtual timer fired on this CPU: forward it, linked to the physical PPI. */
void vgic_forward_vtimer(struct vcpu *v);
/* The PMU overflow interrupt (PPI 7) fired on this CPU for v's counters: forward it the same way. */
void vgic_forward_pmu(struct vcpu *v);
#define VGIC_WATCH 1
#define VGIC_WATCH_NEXT 2 /* put in a list register during this exit, its line high: no need yet */

void vgic_flush_slow(struct vcpu *v);
void vgic_resample(struct vcpu *v);
/*
 * Before entering the guest: retire finished list registers and fill free
 * ones if there is interrupt work; else only resample what is watched.
 */
static inline void vgic_flush(struct vcpu *v)
{
	if (atomic_load_explicit(&v->vgic_active, memory_order_acquire))
		vgic_flush_slow(v);
	else if (v->vgic_watch == VGIC_WATCH)
		vgic_resample(v);
	else if (v->vgic_watch == VGIC_WATCH_NEXT)
		v->vgic_watch = VGIC_WATCH;
}
/* Loaded vCPU, on a kick: the SGIs sent to it into list registers, or queued for vgic_flush. */
void vgic_take_sgis(struct vcpu *v);
/* Loaded vCPU, after vgic_flush: is an interrupt pending in its list registers (for WFI)? */
bool vgic_lr_pending(struct vcpu *v);
/* Unloaded vCPU: would it have an interrupt to take if it ran now? */
bool vgic_wake_pending(struct vcpu *v);
/* Move the vCPU's CPU interface (list registers, VMCR, APR, the timer PPI's active state) out of / into this CPU. */
void vgic_save(struct vcpu *v);
void vgic_restore(struct vcpu *v);
/* This CPU's list registers emptied, before it loads its first vCPU (vgic_save and vgic_restore move only those in use). */
void vgic_cpu_init(void);
/* The vCPU stops (for good, or CPU_OFF): empty its list registers, release the timer PPI. */
void vgic_vcpu_stop(struct vcpu *v);
#endif
