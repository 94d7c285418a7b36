/* ESR_ELx exception classes (Arm ARM D19.2 "ESR_EL2"), by their architectural names. */
#ifndef ARCH_ESR_H
#define ARCH_ESR_H
#include <quire/types.h>

#define EC_UNKNOWN 0x00
#define EC_WFx 0x01
#define EC_FP_ASIMD 0x07
#define EC_ILLEGAL_STATE 0x0e
#define EC_HVC64 0x16
#define EC_SMC64 0x17
#define EC_SYS64 0x18
#define EC_IABT_LOW 0x20
#define EC_IABT_CUR 0x21
#define EC_PC_ALIGN 0x22
#define EC_DABT_LOW 0x24
#define EC_DABT_CUR 0x25
#define EC_SP_ALIGN 0x26
#define EC_SERROR 0x2f
#define EC_BRK64 0x3c

static inline u32 esr_ec(u64 esr)
{
	return (esr >> 26) & 0x3f;
}

static inline u32 esr_iss(u64 esr)
{
	return esr & 0x1ffffff;
}

/* The Arm ARM's name for an exception class; "Reserved EC" for unallocated values. */
const char *esr_ec_name(u32 ec);
/* For instruction and data aborts: the fault status code (xFSC) in words. */
const char *esr_fsc_name(u32 fsc);
#endif
