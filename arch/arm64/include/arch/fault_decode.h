/* ESR_EL2, FAR_EL2 and HPFAR_EL2 of a stage-2 abort into core's struct s2_fault (arch/arm64/fault.c). */
#ifndef ARCH_FAULT_DECODE_H
#define ARCH_FAULT_DECODE_H
#include <quire/fault.h>

/* Decode; returns false (and leaves f untouched) if esr is not a lower-EL abort. */
bool fault_decode(u64 esr, u64 far, u64 hpfar, struct s2_fault *f);
#endif
