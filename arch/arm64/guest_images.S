/* Guest images carried in quire.bin (see include/quire/guest.h). */
	.section .rodata.guests, "a"
	.balign	4096
memtest_start:
	.incbin	GUEST_MEMTEST
memtest_end:

	.section .rodata
name_memtest:
	.asciz	"memtest"

	.section .data.rel.ro, "aw"
	.balign	8
	.global	guest_images
guest_images:
	.quad	name_memtest, memtest_start, memtest_end - memtest_start
	.quad	0, 0, 0
