/*
 * Self-hosted debug for guests, switched lazily as KVM does.
 *
 * MDCR_EL2.TDE is clear, so the debug target is the guest's EL1: its
 * breakpoints, watchpoints and software step are taken by the guest. They can
 * never be taken by Quire: the PE takes no debug exception (other than BRK)
 * at an Exception level above the debug target (Arm ARM D2.x, "Routing debug
 * exceptions"), whatever DBGBCR/DBGWCR.{HMC, SSC, PMC} say, so a breakpoint or
 * watchpoint that matches at EL2 simply never fires, and software step is
 * inactive at EL2.
 *
 * A vCPU starts with MDCR_EL2.TDA set: its first access to a debug register
 * traps, and Quire loads all of its registers into the CPU and clears TDA
 * ("loaded"); from then on it uses them directly. When it leaves the CPU they
 * are saved and MDSCR_EL1 is cleared (MDE, KDE, SS: no breakpoint, watchpoint
 * or step for whoever runs next, whatever is left in DBGBCR/DBGWCR); a vCPU
 * that was debugging (MDE, KDE or SS set) has them loaded again at once when
 * it comes back, the others trap again on their next access.
 *
 * The OS lock is emulated (MDCR_EL2.TDOSA always set): a guest must never
 * lock the real one, which opens the external debug state (EDSCR via MDSCR_EL1).
 * While its emulated lock is set its registers stay in memory (TDA set, the
 * CPU's MDSCR_EL1 clear), so it gets no debug exception, as the architecture
 * has it for a locked OS lock; accesses are emulated against the saved copy.
 */
#include <string.h>
#include <arch/debug.h>
#include <arch/sysreg.h>

#define MDSCR_SS (1UL << 0)
#define MDSCR_TDCC (1UL << 12)
#define MDSCR_KDE (1UL << 13)
#define MDSCR_MDE (1UL << 15)
/* The bits a guest's EL1 may own; the rest (HDE, the DCC flags) belong to external debug. */
#define MDSCR_GUEST (MDSCR_SS | MDSCR_TDCC | MDSCR_KDE | MDSCR_MDE)
#define MDSCR_ACTIVE (MDSCR_SS | MDSCR_KDE | MDSCR_MDE)
#define MDCCINT_GUEST (3UL << 29) /* RX, TX */
/* The architected fields of DBGBCR<n>_EL1 (BT, LBN, SSC, HMC, BAS, PMC, E) and DBGWCR<n>_EL1. */
#define DBGBCR_MASK 0x00ffe1e7UL
#define DBGWCR_MASK 0x1f1fffffUL
#define OSLSR_OSLM_IMPLEMENTED (1UL << 3) /* OSLM = 0b10 */
#define OSLSR_OSLK (1UL << 1)

static unsigned nbrps, nwrps;

/* The n-th breakpoint (op2 4, 5) or watchpoint (op2 6, 7) register, as the CPU has it. */
#define DBG_CASE_READ(n)                                     \
	case n:                                              \
		switch (op2) {                               \
		case 4: return read_sysreg(dbgbvr##n##_el1); \
		case 5: return read_sysreg(dbgbcr##n##_el1); \
		case 6: return read_sysreg(dbgwvr##n##_el1); \
		default: return read_sysreg(dbgwcr##n##_el1); \
		}
#define DBG_CASE_WRITE(n)                                       \
	case n:                                                 \
		switch (op2) {                                  \
		case 4: write_sysreg(v, dbgbvr##n##_el1); return; \
		case 5: write_sysreg(v, dbgbcr##n##_el1); return; \
		case 6: write_sysreg(v, dbgwvr##n##_el1); return; \
		default: write_sysreg(v, dbgwcr##n##_el1); return; \
		}
#define DBG_CASES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

static u64 hw_read(unsigned n, unsigned op2)
{
	switch (n) {
		DBG_CASES(DBG_CASE_READ)
	}
	return 0;
}

static void hw_write(unsigned n, unsigned op2, u64 v)
{
	switch (n) {
		DBG_CASES(DBG_CASE_WRITE)
	}
}

/* The saved copy of breakpoint/watchpoint register n (op2 4..7). */
static u64 *slot(struct vcpu_debug *d, unsigned n, unsigned op2)
{
	u64 *regs[4] = { d->bvr, d->bcr, d->wvr, d->wcr };

	return &regs[op2 - 4][n];
}

void debug_cpu_init(void)
{
	u64 dfr0 = read_sysreg(id_aa64dfr0_el1);

	nbrps = ((dfr0 >> 12) & 0xf) + 1;
	nwrps = ((dfr0 >> 20) & 0xf) + 1;
	/* The OS lock is locked at cold reset (OSLSR_EL1.OSLK = 1): no debug exception would reach a guest. */
	write_sysreg(0, oslar_el1);
	write_sysreg(0, osdlr_el1);
	write_sysreg(0, mdscr_el1);
	isb(); /* the lock open before any guest runs */
}

void debug_reset(struct vcpu_debug *d)
{
	/* Unlocked, as KVM resets it: software that never heard of the OS lock can debug. */
	memset(d, 0, sizeof(*d));
}

static void regs_restore(struct vcpu_debug *d)
{
	for (unsigned n = 0; n < MIN(nbrps, DBG_MAX_BPS); n++) { /* MIN: for the compiler's bounds check */
		hw_write(n, 4, d->bvr[n]);
		hw_write(n, 5, d->bcr[n]);
	}
	for (unsigned n = 0; n < MIN(nwrps, DBG_MAX_BPS); n++) {
		hw_write(n, 6, d->wvr[n]);
		hw_write(n, 7, d->wcr[n]);
	}
	write_sysreg(d->mdccint, mdccint_el1);
	/* Last: MDE/KDE/SS only once the comparators are the vCPU's. ERET synchronises it all. */
	write_sysreg(d->mdscr, mdscr_el1);
	d->loaded = true;
}

void debug_load(struct vcpu_debug *d)
{
	if (!d->oslk && (d->mdscr & MDSCR_ACTIVE))
		regs_restore(d);
}

void debug_put(struct vcpu_debug *d)
{
	if (!d->loaded)
		return;
	d->mdscr = read_sysreg(mdscr_el1) & MDSCR_GUEST;
	d->mdccint = read_sysreg(mdccint_el1) & MDCCINT_GUEST;
	for (unsigned n = 0; n < MIN(nbrps, DBG_MAX_BPS); n++) {
		d->bvr[n] = hw_read(n, 4);
		d->bcr[n] = hw_read(n, 5);
	}
	for (unsigned n = 0; n < MIN(nwrps, DBG_MAX_BPS); n++) {
		d->wvr[n] = hw_read(n, 6);
		d->wcr[n] = hw_read(n, 7);
	}
	/* The comparators stay as they are, unreadable behind TDA; without MDE/KDE/SS none fires. */
	write_sysreg(0, mdscr_el1);
	write_sysreg(0, mdccint_el1);
	isb(); /* no debug event of this vCPU after this point, even for Quire's next guest entry */
	d->loaded = false;
}

/* OSLAR_EL1, OSLSR_EL1, OSDLR_EL1, DBGPRCR_EL1 (TDOSA) and MDRAR_EL1 (TDRA): always emulated. */
static enum sysreg_result os_regs(struct vcpu_debug *d, struct sysreg_access *a)
{
	switch (a->crm << 3 | a->op2) {
	case 0 << 3 | 4: /* OSLAR_EL1 */
		if (a->read)
			return SR_UNDEF;
		if ((a->val & 1) && d->loaded)
			debug_put(d); /* locking: no more debug exceptions */
		d->oslk = a->val & 1;
		if (!d->oslk)
			debug_load(d); /* unlocking: what it set while locked takes effect now */
		return SR_DONE;
	case 1 << 3 | 4: /* OSLSR_EL1 */
		if (!a->read)
			return SR_UNDEF;
		a->val = OSLSR_OSLM_IMPLEMENTED | (d->oslk ? OSLSR_OSLK : 0);
		return SR_DONE;
	case 3 << 3 | 4: /* OSDLR_EL1: no double lock (ID_AA64DFR0_EL1.DoubleLock says so): RAZ/WI */
		a->val = 0;
		return SR_DONE;
	case 4 << 3 | 4: /* DBGPRCR_EL1: CORENPDRQ kept; powerdown is Quire's business */
		if (a->read)
			a->val = d->corenpdrq;
		else
			d->corenpdrq = a->val & 1;
		return SR_DONE;
	case 0 << 3 | 0: /* MDRAR_EL1: no ROM table (Valid = 0b00) */
		if (!a->read)
			return SR_UNDEF;
		a->val = 0;
		return SR_DONE;
	}
	return SR_NOT_MINE;
}

/* The TDA registers against the saved copy (OS lock set: they must not reach the CPU). */
static enum sysreg_result emulate(struct vcpu_debug *d, struct sysreg_access *a)
{
	if (a->op1 == 0 && a->crn == 0 && a->op2 >= 4) {
		u64 *r = slot(d, a->crm, a->op2);

		if (a->read)
			a->val = *r;
		else if (a->op2 == 5)
			*r = a->val & DBGBCR_MASK;
		else if (a->op2 == 7)
			*r = a->val & DBGWCR_MASK;
		else
			*r = a->val & ~3UL;
		return SR_DONE;
	}
	if (a->op1 == 0 && a->crn == 0 && a->crm == 2 && (a->op2 == 0 || a->op2 == 2)) {
		u64 *r = a->op2 == 2 ? &d->mdscr : &d->mdccint;

		if (a->read)
			a->val = *r;
		else
			*r = a->val & (a->op2 == 2 ? MDSCR_GUEST : MDCCINT_GUEST);
		return SR_DONE;
	}
	if (a->op1 == 0 && a->crn == 7 && a->crm == 14 && a->op2 == 6) { /* DBGAUTHSTATUS_EL1 */
		a->val = read_sysreg(dbgauthstatus_el1);
		return SR_DONE;
	}
	/* The DCC (no external debugger: nothing arrives), OSDTR*, OSECCR, the claim tags: RAZ/WI. */
	a->val = 0;
	return SR_DONE;
}

/* Is it one of the TDA registers, and one this CPU has? */
static enum sysreg_result tda_reg(const struct sysreg_access *a)
{
	if (a->op1 == 0 && a->crn == 0 && a->op2 >= 4)
		return a->crm < (a->op2 < 6 ? nbrps : nwrps) ? SR_DONE : SR_UNDEF;
	if (a->op1 == 0 && a->crn == 0 &&
	    ((a->crm == 2 && (a->op2 == 0 || a->op2 == 2)) || /* MDCCINT_EL1, MDSCR_EL1 */
	     ((a->crm == 0 || a->crm == 3 || a->crm == 6) && a->op2 == 2))) /* OSDTRRX, OSDTRTX, OSECCR */
		return SR_DONE;
	if (a->op1 == 0 && a->crn == 7 && a->op2 == 6 && (a->crm == 8 || a->crm == 9 || a->crm == 14))
		return SR_DONE; /* DBGCLAIMSET, DBGCLAIMCLR, DBGAUTHSTATUS */
	if (a->op1 == 3 && a->crn == 0 && a->op2 == 0 && (a->crm == 1 || a->crm == 4 || a->crm == 5))
		return SR_DONE; /* MDCCSR_EL0, DBGDTR_EL0, DBGDTRRX/TX_EL0 */
	return SR_UNDEF;
}

enum sysreg_result debug_access(struct vcpu_debug *d, struct sysreg_access *a)
{
	enum sysreg_result r;

	if (a->op1 == 0 && a->crn == 1 && (r = os_regs(d, a)) != SR_NOT_MINE)
		return r;
	if (tda_reg(a) != SR_DONE)
		return SR_NOT_MINE;
	/* An EL0 access to the DCC that its MDSCR_EL1.TDCC forbids: its own EL1 handles it. */
	if (a->el0 && (d->mdscr & MDSCR_TDCC) && !d->loaded)
		return SR_UNDEF;
	if (d->oslk)
		return emulate(d, a);
	if (d->loaded)
		return SR_UNDEF; /* TDA is clear: the CPU itself trapped it */
	regs_restore(d);
	return SR_RETRY;
}

u64 debug_id_aa64dfr0(u64 hw)
{
	u64 debugver = hw & 0xf, pmuver = (hw >> 8) & 0xf;

	/* ARMv8.0 debug is what debug.c switches; PMUv3 (ARMv8.0) is what pmu.c does; an IMPDEF PMU is hidden. */
	debugver = debugver > 6 ? 6 : debugver;
	pmuver = pmuver == 0xf ? 0 : pmuver > 1 ? 1 : pmuver;
	/* BRPs, WRPs, CTX_CMPs as the CPU has them; no trace, no SPE; DoubleLock not implemented (0b1111). */
	return debugver | pmuver << 8 | (hw & 0xf0f0f000UL) | 0xfUL << 36;
}
