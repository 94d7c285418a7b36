/* The register frame the EL2 vectors save; offsets are shared with vectors.S. */
#ifndef ARCH_TRAP_FRAME_H
#define ARCH_TRAP_FRAME_H

#define FRAME_X(n) ((n) * 8)
#define FRAME_SP 248
#define FRAME_ELR 256
#define FRAME_SPSR 264
#define FRAME_ESR 272
#define FRAME_FAR 280
#define FRAME_SIZE 288

/* Vector index: which of the 16 EL2 vector entries was taken. */
#define VEC_CUR_SP0_SYNC 0
#define VEC_CUR_SPX_SYNC 4
#define VEC_CUR_SPX_IRQ 5
#define VEC_LOWER64_SYNC 8
#define VEC_LOWER64_IRQ 9

#ifndef __ASSEMBLER__
#include <quire/types.h>

struct trap_frame {
	u64 x[31];
	u64 sp;
	u64 elr;
	u64 spsr;
	u64 esr;
	u64 far;
};

_Static_assert(sizeof(struct trap_frame) == FRAME_SIZE, "frame layout");
_Static_assert(__builtin_offsetof(struct trap_frame, elr) == FRAME_ELR, "frame layout");

void el2_exception(struct trap_frame *f, unsigned vector);
#endif
#endif
