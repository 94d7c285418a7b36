/*
 * Into a guest: the registers of a struct trap_frame on this CPU's stack
 * back into the CPU, then ERET. A primitive (core's run loop enters a
 * vCPU through vcpu_enter); the vectors return through el2_restore.
 */
#include <arch/asm.h>
#include <arch/trap_frame.h>

	.text
/* vcpu_enter(frame): run a guest from a frame built on this CPU's stack. */
FUNC(vcpu_enter)
	mov	sp, x0
	b	el2_restore
END(vcpu_enter)

FUNC(el2_restore)
	ldp	x2, x3, [sp, #FRAME_ELR]
	msr	elr_el2, x2
	msr	spsr_el2, x3
	frame_load_x0_x19
	frame_load_x20_x29
	ldr	x30, [sp, #FRAME_X(30)]
	add	sp, sp, #FRAME_SIZE
	eret
END(el2_restore)
