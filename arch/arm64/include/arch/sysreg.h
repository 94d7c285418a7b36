/* System register access and the fields Quire uses, named as in the Arm ARM. */
#ifndef ARCH_SYSREG_H
#define ARCH_SYSREG_H

#define SCTLR_EL2_M (1 << 0)
#define SCTLR_EL2_A (1 << 1)
#define SCTLR_EL2_C (1 << 2)
#define SCTLR_EL2_SA (1 << 3)
#define SCTLR_EL2_I (1 << 12)
#define SCTLR_EL2_WXN (1 << 19)
#define SCTLR_EL2_RES1 0x30c50830 /* ARMv8.0 RES1 bits 4,5,11,16,18,22,23,28,29 */

#define SCR_EL3_NS (1 << 0)
#define SCR_EL3_RES1 (3 << 4)
#define SCR_EL3_SMD (1 << 7)
#define SCR_EL3_HCE (1 << 8)
#define SCR_EL3_RW (1 << 10)

#define HCR_EL2_RW (1 << 31)

#define CPTR_EL2_RES1 0x32ff /* bits 0-7, 9, 12, 13: no FP/SIMD trap for EL2 itself */
#define CPTR_EL2_TFP (1UL << 10)

#define SPSR_EL2H_DAIF 0x3c9 /* EL2h, D, A, I, F masked */

#define TCR_EL2_RES1 ((1 << 31) | (1 << 23))
#define TCR_T0SZ(bits) (64 - (bits))
#define TCR_IRGN0_WBWA (1 << 8)
#define TCR_ORGN0_WBWA (1 << 10)
#define TCR_SH0_INNER (3 << 12)
#define TCR_TG0_4K (0 << 14)
#define TCR_PS_SHIFT 16

#define MAIR_ATTR_DEVICE_nGnRE 0x04
#define MAIR_ATTR_NORMAL_WB 0xff
#define MAIR_IDX_DEVICE 0
#define MAIR_IDX_NORMAL 1

#define MPIDR_AFF_MASK 0xff00ffffffUL

#define ESR_EC_SHIFT 26
#define ESR_EC_MASK 0x3f
#define ESR_IL (1 << 25)
#define ESR_ISS_MASK 0x1ffffff

#ifndef __ASSEMBLER__
#include <quire/types.h>

#define read_sysreg(r)                                        \
	({                                                    \
		u64 __v;                                      \
		asm volatile("mrs %0, " #r : "=r"(__v));      \
		__v;                                          \
	})
#define write_sysreg(v, r) asm volatile("msr " #r ", %x0" : : "rZ"((u64)(v)))

#define isb() asm volatile("isb" : : : "memory")
#define dsb(opt) asm volatile("dsb " #opt : : : "memory")
#define dmb(opt) asm volatile("dmb " #opt : : : "memory")
#define sev() asm volatile("sev" : : : "memory")
#define wfe() asm volatile("wfe" : : : "memory")
#define wfi() asm volatile("wfi" : : : "memory")

/* ID_AA64MMFR0_EL1.PARange, the field as it is (also what TCR/VTCR.PS take, capped at 48 bits). */
static inline u64 parange(void)
{
	return read_sysreg(id_aa64mmfr0_el1) & 0xf;
}

/* The physical address size PARange encodes, in bits. */
static inline unsigned parange_bits(void)
{
	static const unsigned bits[] = { 32, 36, 40, 42, 44, 48, 52 };
	u64 pa = parange();

	return pa < ARRAY_SIZE(bits) ? bits[pa] : 48;
}

static inline unsigned current_el(void)
{
	return (read_sysreg(CurrentEL) >> 2) & 3;
}
#endif
#endif
