/*
 * The arch's own part of a physical interrupt: acknowledge it at the GIC,
 * and handle those that are the vGIC's (a kick carrying SGIs, the
 * forwarded timer and PMU PPIs, the maintenance interrupt). Whatever else
 * it is goes to core (core/irq.c). Calls nothing in core.
 */
#include <quire/exitprof.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/irq.h>
#include <arch/pmu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>

/* The exit profile: an exit for an interrupt is named after its first one (not an idle CPU's). */
static void exit_irq_kind(enum exit_kind k)
{
	struct cpu *c = this_cpu();

	if (EXIT_PROF && c->exit_kind == EXIT_IRQ)
		c->exit_kind = k;
}

u32 irq_take(struct vcpu *v)
{
	for (;;) {
		u32 iar = gic_ack(), id = iar & 0x3ff;

		if (id >= GIC_SPURIOUS)
			return IRQ_NONE;
		gic_eoi(iar);
		if (id == SGI_KICK) {
			/*
			 * The most frequent: SGIs sent to the loaded vCPU go straight in;
			 * the caller looks at the run queue and the list registers before
			 * re-entry. Anything else pending brings the CPU back at once.
			 */
			gic_deactivate(iar);
			exit_irq_kind(EXIT_IRQ_KICK);
			if (v)
				vgic_take_sgis(v);
			return IRQ_NONE;
		}
		if (id == PPI_VTIMER && v) {
			/* Stays active until the guest deactivates it through the HW-linked list register. */
			exit_irq_kind(EXIT_IRQ_VTIMER);
			vgic_forward_vtimer(v);
			continue;
		}
		if (id == PPI_PMU && v) {
			/* The same: its PMU registers are the CPU's (pmu.c), so the level is its own. */
			vgic_forward_pmu(v);
			continue;
		}
		if (id == gic_maint_irq()) {
			/*
			 * Level-sensitive: its condition holds until the list registers are
			 * synced. Off until then (vgic_flush turns GICH_HCR on again before
			 * re-entry), so the deactivation does not make it pending again.
			 */
			exit_irq_kind(EXIT_IRQ_MAINT);
			gich_write(GICH_HCR, 0);
			if (v)
				atomic_store(&v->vgic_active, true);
			gic_deactivate(iar);
			continue;
		}
		gic_deactivate(iar);
		if (id == PPI_HTIMER) {
			/* Quire's own timer: off until the scheduler arms it again. */
			write_sysreg(0, cnthp_ctl_el2);
			exit_irq_kind(EXIT_IRQ_SLICE);
			return IRQ_SLICE;
		}
		exit_irq_kind(EXIT_IRQ_DEVICE);
		return id;
	}
}
