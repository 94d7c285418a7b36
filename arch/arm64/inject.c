/*
 * Exceptions Quire makes the guest take, as if its own EL1 had trapped:
 * ESR_EL1, FAR_EL1, ELR_EL1 and SPSR_EL1 set, then the return goes to the
 * right entry of the guest's VBAR_EL1 with PSTATE as an exception to EL1h
 * would leave it (Arm ARM D1.10).
 */
#include <arch/esr.h>
#include <arch/sysreg.h>
#include <arch/vcpu.h>

#define PSR_MODE_MASK 0xf
#define PSR_MODE_EL0t 0x0
#define PSR_MODE_EL1t 0x4
#define PSR_MODE_EL1h 0x5
#define PSR_EL1h_DAIF 0x3c5
#define DFSC_SEA 0x10
#define ESR_WNR (1u << 6)

static void enter_el1_vector(struct trap_frame *f, u64 esr)
{
	u64 mode = f->spsr & PSR_MODE_MASK, offset;

	if (mode == PSR_MODE_EL1h)
		offset = 0x200; /* current EL with SP_ELx */
	else if (mode == PSR_MODE_EL1t)
		offset = 0x000; /* current EL with SP_EL0 */
	else
		offset = 0x400; /* lower EL, AArch64 */
	write_sysreg(esr, esr_el1);
	write_sysreg(f->elr, elr_el1);
	write_sysreg(f->spsr, spsr_el1);
	f->elr = read_sysreg(vbar_el1) + offset;
	f->spsr = PSR_EL1h_DAIF;
}

static bool from_el0(const struct trap_frame *f)
{
	return (f->spsr & PSR_MODE_MASK) == PSR_MODE_EL0t;
}

void inject_data_abort(struct trap_frame *f, u64 far, bool instr, bool write)
{
	u32 ec = instr ? (from_el0(f) ? EC_IABT_LOW : EC_IABT_CUR) : (from_el0(f) ? EC_DABT_LOW : EC_DABT_CUR);

	write_sysreg(far, far_el1);
	enter_el1_vector(f, (u64)ec << ESR_EC_SHIFT | ESR_IL | (write ? ESR_WNR : 0) | DFSC_SEA);
}

bool inject_abort_would_loop(const struct trap_frame *f)
{
	/* An instruction abort at the guest's own vectors: taking one there faults again. */
	return (f->elr & ~0x7ffUL) == read_sysreg(vbar_el1);
}

void inject_undef(struct trap_frame *f)
{
	enter_el1_vector(f, (u64)EC_UNKNOWN << ESR_EC_SHIFT | ESR_IL);
}
