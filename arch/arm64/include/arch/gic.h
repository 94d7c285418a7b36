/* The physical GICv2 (distributor, CPU interface) and the virtual interface control (GICH). */
#ifndef ARCH_GIC_H
#define ARCH_GIC_H
#include <quire/machine.h>

#define SGI_KICK 0	   /* wakes a CPU to look at its vCPU again */
#define PPI_HTIMER 26	   /* the EL2 physical timer: time slices, wake-ups */
#define PPI_VTIMER 27	   /* the EL1 virtual timer */
#define GIC_SPURIOUS 1020

void gic_init(const struct machine *m); /* boot CPU: distributor */
void gic_init_cpu(void);		/* every CPU: its interface, banked PPIs */
void gic_init_cpu_if_present(void);
void gic_enable_spi(u32 intid, unsigned cpu);
void gic_kick(unsigned cpu);
void gic_set_pending(u32 intid); /* an SPI, as if its line had been raised */
u32 gic_ack(void);
void gic_eoi(u32 iar);	      /* priority drop */
void gic_deactivate(u32 iar); /* with EOImode=1, separately */
void gic_deactivate_ppi(u32 intid);
void gic_activate_ppi(u32 intid);
bool gic_ppi_active(u32 intid);
/* Just before a CPU sleeps in WFI: the interrupt controller looks at what is pending. */
void gic_before_wfi(void);
u32 gich_read(unsigned off);
void gich_write(unsigned off, u32 v);
unsigned gich_nr_lrs(void);
u32 gic_maint_irq(void);
paddr_t gic_gicv_base(void);
u64 gic_gicv_size(void);

#define GICH_HCR 0x000
#define GICH_VTR 0x004
#define GICH_VMCR 0x008
#define GICH_MISR 0x010
#define GICH_EISR0 0x020
#define GICH_ELRSR0 0x030
#define GICH_APR 0x0f0
#define GICH_LR(n) (0x100 + 4 * (n))

#define GICH_HCR_EN (1u << 0)
#define GICH_HCR_UIE (1u << 1)
#define GICH_LR_HW (1u << 31)
#define GICH_LR_GRP1 (1u << 30)
#define GICH_LR_PENDING (1u << 28)
#define GICH_LR_ACTIVE (2u << 28)
#define GICH_LR_STATE (3u << 28)
#define GICH_LR_PRIO_SHIFT 23
#define GICH_LR_PHYS_SHIFT 10
#define GICH_LR_EOI (1u << 19)
#endif
