/*
 * EL2 exception vectors (entry code). Every entry saves the general
 * registers and the syndrome registers into a struct trap_frame on the
 * current stack and calls el2_exception(frame, vector index), then leaves
 * through el2_restore (enter.S) to ELR_EL2. A guest's synchronous
 * exceptions go to guest_sync(frame) instead, and its IRQs take a shorter
 * path (el2_guest_irq).
 */
#include <arch/asm.h>
#include <arch/trap_frame.h>

.macro ventry index
	.align	7
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #FRAME_X(0)]
	mov	x1, #\index
	b	el2_trap_common
.endm

	.text
	.align	11
FUNC(el2_vectors)
	.irp	i, 0, 1, 2, 3, 4, 5, 6, 7
	ventry	\i
	.endr
	/* 8, a synchronous exception from a guest: the whole frame, then straight to guest_sync. */
	.align	7
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #FRAME_X(0)]
	b	el2_guest_sync
	/* 9, an IRQ from a guest: saves only what C may clobber first. */
	.align	7
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #FRAME_X(0)]
	b	el2_guest_irq
	.irp	i, 10, 11, 12, 13, 14, 15
	ventry	\i
	.endr
END(el2_vectors)

/*
 * A guest's IRQ (mostly a kick carrying an SGI, or the timer): the
 * registers a C call may clobber, then guest_irq_fast(). If it has handled
 * it and the guest may go on, back at once (ELR_EL2 and SPSR_EL2 still hold
 * the guest's: nothing at EL2 took an exception meanwhile). Otherwise the
 * rest of the frame, as every other exit saves it, for the scheduler.
 */
el2_guest_irq:
	frame_save_x2_x19
	str	x30, [sp, #FRAME_X(30)]
	bl	guest_irq_fast
	cbz	w0, 1f
	frame_load_x0_x19
	ldr	x30, [sp, #FRAME_X(30)]
	add	sp, sp, #FRAME_SIZE
	eret
1:	/* x20-x29 are the guest's still: C preserved them. x30 is the call's now: the guest's back first. */
	frame_save_x20_x29
	ldr	x30, [sp, #FRAME_X(30)]
	frame_save_x30_el2
	mov	x0, sp
	bl	guest_irq_rest
	b	el2_restore

/* The rest of the frame (x0, x1 are saved), then \handler(frame, x1), then out through el2_restore. */
.macro frame_call handler
	frame_save_x2_x19
	frame_save_x20_x29
	frame_save_x30_el2
	mov	x0, sp
	bl	\handler
	b	el2_restore
.endm

el2_guest_sync:
	frame_call guest_sync

el2_trap_common:
	frame_call el2_exception
