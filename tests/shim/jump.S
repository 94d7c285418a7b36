/*
 * A stand-in boot loader for tests that need to enter Quire in ways QEMU's
 * own loader will not: with a chosen x0 (a corrupt or missing DT), or at EL3.
 * Run as QEMU -bios; reads x0 and the entry point from memory the test fills
 * with -device loader,addr=0x47fff000,data=DTB,data-len=8 (and +8 for entry).
 */
	.text
	.global _start
_start:
	movz	x2, #0x47ff, lsl #16
	movk	x2, #0xf000
	ldp	x0, x1, [x2]
	mov	x2, xzr
	mov	x3, xzr
	br	x1
