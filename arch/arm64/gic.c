/*
 * The physical GICv2, from the addresses in the host DT. Quire runs its CPU
 * interface with EOImode=1 (priority drop and deactivation apart), so an
 * interrupt forwarded to a guest with the list register's HW bit, the
 * virtual timer's, stays active until the guest deactivates it.
 */
#include <quire/console.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/pmu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>

#define GICD_CTLR 0x000
#define GICD_TYPER 0x004
#define GICD_TYPER_SECURITYEXTN (1u << 10)
#define GICD_IGROUPR(n) (0x080 + 4 * (n))
#define GICD_ISENABLER(n) (0x100 + 4 * (n))
#define GICD_ICENABLER(n) (0x180 + 4 * (n))
#define GICD_ISPENDR(n) (0x200 + 4 * (n))
#define GICD_ICPENDR(n) (0x280 + 4 * (n))
#define GICD_ISACTIVER(n) (0x300 + 4 * (n))
#define GICD_ICACTIVER(n) (0x380 + 4 * (n))
#define GICD_IPRIORITYR(n) (0x400 + (n))
#define GICD_ITARGETSR(n) (0x800 + (n))
#define GICD_SGIR 0xf00

#define GICC_CTLR 0x0000
#define GICC_PMR 0x0004
#define GICC_PMR_QUIRE 0xf0 /* every priority Quire uses is above it */
#define GICC_IAR 0x000c
#define GICC_EOIR 0x0010
#define GICC_DIR 0x1000
#define GICC_CTLR_EN (1u << 0)
#define GICC_CTLR_EOIMODE (1u << 9)

static volatile u8 *gicd, *gicc, *gich;
static paddr_t gicv_base;
static u64 gicv_size;
static u8 gic_cpu_mask[MAX_CPUS]; /* GIC CPU interface of each logical CPU */
static unsigned nr_lrs;
static u32 maint_irq; /* from the DT: the vGIC's underflow interrupt (a PPI) */

static inline u32 rd(volatile u8 *b, unsigned off)
{
	return *(volatile u32 *)(b + off);
}

static inline void wr(volatile u8 *b, unsigned off, u32 v)
{
	*(volatile u32 *)(b + off) = v;
}

/*
 * Bit 0 of GICD_CTLR and GICC_CTLR, all Quire sets, enables Group 1 in the
 * Non-secure view of a GIC with the Security Extensions and Group 0 in a GIC
 * without them. There, firmware (TF-A's BL31 on QEMU's raspi4b) may have put
 * interrupts in Group 1, which would never be signalled: take them back. With
 * the extensions, IGROUPR is RAZ/WI to Non-secure EL2 and firmware's choice holds.
 */
static void gic_group0(unsigned first, unsigned last)
{
	if (rd(gicd, GICD_TYPER) & GICD_TYPER_SECURITYEXTN)
		return;
	for (unsigned i = first; i < last; i++)
		wr(gicd, GICD_IGROUPR(i), 0);
}

void gic_init(const struct machine *m)
{
	unsigned lines;

	gicd = (volatile u8 *)(uintptr_t)m->gic.dist.base;
	gicc = (volatile u8 *)(uintptr_t)m->gic.cpu.base;
	gich = (volatile u8 *)(uintptr_t)m->gic.gich.base;
	gicv_base = m->gic.gicv.base;
	gicv_size = m->gic.gicv.size;
	maint_irq = m->gic.maint_irq;
	lines = (rd(gicd, GICD_TYPER) & 0x1f) + 1;
	/* Every SPI off until someone asks; all priorities the same. */
	for (unsigned i = 1; i < lines; i++) {
		wr(gicd, GICD_ICENABLER(i), ~0u);
		wr(gicd, GICD_ICPENDR(i), ~0u);
	}
	gic_group0(1, lines);
	wr(gicd, GICD_CTLR, 1);
	nr_lrs = MIN((rd(gich, GICH_VTR) & 0x3f) + 1, (u32)VGIC_MAX_LRS);
}

void gic_init_cpu_if_present(void)
{
	if (gicd && gich)
		gic_init_cpu();
}

void gic_init_cpu(void)
{
	/* SGIs and PPIs are banked: set them up on each CPU. */
	wr(gicd, GICD_ICENABLER(0), ~0u);
	gic_group0(0, 1);
	for (unsigned i = 0; i < 32; i += 4)
		wr(gicd, GICD_IPRIORITYR(i), 0xa0a0a0a0);
	/*
	 * The maintenance interrupt brings a running vCPU out when its list
	 * registers need Quire: drained while more wait (GICH_HCR.UIE), or an
	 * interrupt deactivated that must be resampled or sent again (the EOI
	 * bit). It is level-sensitive: irq_handle() clears GICH_HCR before it
	 * deactivates it, or it would be taken again at once, for ever (why
	 * console input once stalled with it on).
	 */
	wr(gicd, GICD_ISENABLER(0), 1u << SGI_KICK | 1u << PPI_VTIMER | 1u << PPI_HTIMER | 1u << PPI_PMU |
				    (maint_irq >= 16 && maint_irq < 32 ? 1u << maint_irq : 0));
	gic_cpu_mask[cpu_id()] = rd(gicd, GICD_ITARGETSR(0)) & 0xff;
	wr(gicc, GICC_PMR, GICC_PMR_QUIRE);
	wr(gicc, GICC_CTLR, GICC_CTLR_EN | GICC_CTLR_EOIMODE);
	wr(gich, GICH_HCR, 0);
}

void gic_enable_spi(u32 intid, unsigned cpu)
{
	gicd[GICD_IPRIORITYR(intid)] = 0xa0;
	gicd[GICD_ITARGETSR(intid)] = gic_cpu_mask[cpu];
	wr(gicd, GICD_ISENABLER(intid / 32), 1u << (intid % 32));
}

void gic_set_pending(u32 intid)
{
	wr(gicd, GICD_ISPENDR(intid / 32), 1u << (intid % 32));
}

void gic_kick(unsigned cpu)
{
	dsb(ishst);
	wr(gicd, GICD_SGIR, (u32)gic_cpu_mask[cpu] << 16 | SGI_KICK);
}

u32 gic_ack(void)
{
	return rd(gicc, GICC_IAR);
}

void gic_eoi(u32 iar)
{
	wr(gicc, GICC_EOIR, iar);
}

void gic_deactivate(u32 iar)
{
	wr(gicc, GICC_DIR, iar);
}

void gic_deactivate_ppi(u32 intid)
{
	wr(gicd, GICD_ICACTIVER(0), 1u << intid);
}

void gic_activate_ppi(u32 intid)
{
	wr(gicd, GICD_ISACTIVER(0), 1u << intid);
}

bool gic_ppi_active(u32 intid)
{
	return rd(gicd, GICD_ISACTIVER(0)) & (1u << intid);
}

void gic_before_wfi(void)
{
	/*
	 * QEMU's GICv2 works out what to signal to a CPU only when one of its
	 * registers is written or a line changes. A guest that deactivates its
	 * forwarded timer interrupt through a list register's HW bit while the
	 * timer has fired again leaves that PPI pending, and nothing signalled:
	 * the CPU sleeps through it and the guest's clock stops (seen: a Linux
	 * guest stuck in `sleep 3`, CNTV_CTL_EL0 5, GICC_HPPIR 27, once in a few
	 * boots on a loaded host). Writing PMR its own value makes it look again.
	 * On hardware a write that changes nothing.
	 */
	wr(gicc, GICC_PMR, GICC_PMR_QUIRE);
}

u32 gich_read(unsigned off)
{
	return rd(gich, off);
}

void gich_write(unsigned off, u32 v)
{
	wr(gich, off, v);
}

unsigned gich_nr_lrs(void)
{
	return nr_lrs;
}

u32 gic_maint_irq(void)
{
	return maint_irq;
}

paddr_t gic_gicv_base(void)
{
	return gicv_base;
}

u64 gic_gicv_size(void)
{
	return gicv_size;
}
