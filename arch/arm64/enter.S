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

/*
 * frame_copy_regs(dst, src): a guest's registers from one frame to another,
 * x0-x30, the SP slot, ELR and SPSR (ESR and FAR describe one exit, not the
 * vCPU: not copied). A vCPU switch copies two frames: unrolled pairs cost it
 * 70 instructions where memcpy's loops cost 190.
 */
FUNC(frame_copy_regs)
	.irp	off, 0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256
	ldp	x2, x3, [x1, #\off]
	stp	x2, x3, [x0, #\off]
	.endr
	ret
END(frame_copy_regs)
