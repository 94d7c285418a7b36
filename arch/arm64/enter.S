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
	ldp	x0, x1, [sp, #FRAME_X(0)]
	ldp	x2, x3, [sp, #FRAME_X(2)]
	ldp	x4, x5, [sp, #FRAME_X(4)]
	ldp	x6, x7, [sp, #FRAME_X(6)]
	ldp	x8, x9, [sp, #FRAME_X(8)]
	ldp	x10, x11, [sp, #FRAME_X(10)]
	ldp	x12, x13, [sp, #FRAME_X(12)]
	ldp	x14, x15, [sp, #FRAME_X(14)]
	ldp	x16, x17, [sp, #FRAME_X(16)]
	ldp	x18, x19, [sp, #FRAME_X(18)]
	ldp	x20, x21, [sp, #FRAME_X(20)]
	ldp	x22, x23, [sp, #FRAME_X(22)]
	ldp	x24, x25, [sp, #FRAME_X(24)]
	ldp	x26, x27, [sp, #FRAME_X(26)]
	ldp	x28, x29, [sp, #FRAME_X(28)]
	ldr	x30, [sp, #FRAME_X(30)]
	add	sp, sp, #FRAME_SIZE
	eret
END(el2_restore)
