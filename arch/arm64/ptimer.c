/* The EL1 physical timer of a vCPU, emulated (arch/ptimer.h). */
#include <arch/cpu.h>
#include <arch/ptimer.h>
#include <arch/vcpu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>

#define CTL_ENABLE 1u
#define CTL_IMASK 2u
#define CTL_ISTATUS 4u

static bool fired(const struct vcpu *v, u64 now)
{
	return (v->ptimer.ctl & CTL_ENABLE) && v->ptimer.cval <= now;
}

u64 ptimer_deadline(const struct vcpu *v)
{
	return (v->ptimer.ctl & (CTL_ENABLE | CTL_IMASK)) == CTL_ENABLE ? v->ptimer.cval : ~0UL;
}

void ptimer_update(struct vcpu *v)
{
	/*
	 * The output: ISTATUS and not IMASK (a level: it drops when the guest
	 * masks or moves CVAL on). The counter only read for an enabled timer.
	 */
	vgic_set_ppi_level(v, PPI_PTIMER, (v->ptimer.ctl & (CTL_ENABLE | CTL_IMASK)) == CTL_ENABLE &&
						   v->ptimer.cval <= counter_read());
}

bool ptimer_access(struct vcpu *v, unsigned op2, bool read, u64 *val)
{
	u64 now = counter_read();

	switch (op2) {
	case 0: /* TVAL: CVAL - the counter, as a signed 32-bit value */
		if (read)
			*val = (u32)(v->ptimer.cval - now);
		else
			v->ptimer.cval = now + (u64)(s64)(int)(u32)*val; /* sign-extended from bit 31 */
		break;
	case 1: /* CTL: ENABLE and IMASK are the guest's; ISTATUS is read-only */
		if (read)
			*val = v->ptimer.ctl | (fired(v, now) ? CTL_ISTATUS : 0);
		else
			v->ptimer.ctl = *val & (CTL_ENABLE | CTL_IMASK);
		break;
	default: /* 2: CVAL */
		if (read)
			*val = v->ptimer.cval;
		else
			v->ptimer.cval = *val;
		break;
	}
	if (!read)
		ptimer_update(v);
	return !read;
}
