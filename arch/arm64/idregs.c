/*
 * The ID registers (group 3: op0 = 3, op1 = 0, CRn = 0, CRm = 1..7) trap
 * (HCR_EL2.TID3); the guest reads the CPU's own values less what Quire does
 * not virtualise, so what they advertise works:
 *  - AArch64 only at EL0 and EL1: an AArch32 EL0 would trap to Quire from a
 *    32-bit state it does not handle; so the AArch32 ID registers read as zero.
 *  - debug and PMU as debug.c and pmu.c switch them (debug_id_aa64dfr0).
 *  - no SVE, SME, MTE, RAS, MPAM, AMU, Secure EL2, GIC system registers
 *    (the vGIC is a GICv2), pointer authentication (its keys are not
 *    switched), LORegions, nested virtualisation or EL2's own features
 *    (VHE, FGT, ECV, HCX, TWED).
 * Everything else (instruction set, memory model, FP/AdvSIMD) is the CPU's.
 * Unallocated encodings in the space read as zero, as the Arm ARM has them.
 */
#include <arch/debug.h>
#include <arch/idregs.h>
#include <arch/sysreg.h>

#define FIELD(shift) (0xfUL << (shift))

/* ID_AA64PFR0_EL1: keep EL2, EL3, FP, AdvSIMD, DIT, CSV2, CSV3; EL0 and EL1 AArch64 only. */
#define PFR0_KEEP (FIELD(8) | FIELD(12) | FIELD(16) | FIELD(20) | FIELD(48) | FIELD(56) | FIELD(60))
#define PFR0_EL0_EL1_AA64 0x11UL
/* ID_AA64PFR1_EL1: keep BT, SSBS (state in PSTATE and SCTLR_EL1, both switched). */
#define PFR1_KEEP (FIELD(0) | FIELD(4))
/* ID_AA64ISAR1_EL1: no APA, API, GPA, GPI; ID_AA64ISAR2_EL1: no GPA3, APA3. */
#define ISAR1_HIDE (FIELD(4) | FIELD(8) | FIELD(24) | FIELD(28))
#define ISAR2_HIDE (FIELD(8) | FIELD(12))
/* ID_AA64MMFR0_EL1: no FGT, ECV; MMFR1: no VH, LO, TWED, HCX; MMFR2: no NV. */
#define MMFR0_HIDE (FIELD(56) | FIELD(60))
#define MMFR1_HIDE (FIELD(8) | FIELD(16) | FIELD(32) | FIELD(40))
#define MMFR2_HIDE FIELD(24)

#define ID(crm, op2) ((crm) << 3 | (op2))

u64 idregs_read(unsigned crm, unsigned op2)
{
	switch (ID(crm, op2)) {
	case ID(4, 0):
		return (read_sysreg(id_aa64pfr0_el1) & PFR0_KEEP) | PFR0_EL0_EL1_AA64;
	case ID(4, 1):
		return read_sysreg(id_aa64pfr1_el1) & PFR1_KEEP;
	case ID(5, 0):
		return debug_id_aa64dfr0(read_sysreg(id_aa64dfr0_el1));
	case ID(6, 0):
		return read_sysreg(id_aa64isar0_el1);
	case ID(6, 1):
		return read_sysreg(id_aa64isar1_el1) & ~ISAR1_HIDE;
	case ID(6, 2):
		return read_sysreg(s3_0_c0_c6_2) & ~ISAR2_HIDE; /* ID_AA64ISAR2_EL1 */
	case ID(7, 0):
		return read_sysreg(id_aa64mmfr0_el1) & ~MMFR0_HIDE;
	case ID(7, 1):
		return read_sysreg(id_aa64mmfr1_el1) & ~MMFR1_HIDE;
	case ID(7, 2):
		return read_sysreg(s3_0_c0_c7_2) & ~MMFR2_HIDE;
	default:
		/* AArch32 (CRm 1-3), AFR0/1, DFR1, ZFR0, SMFR0 and the unallocated ones. */
		return 0;
	}
}
