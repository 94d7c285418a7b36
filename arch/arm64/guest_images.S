/*
 * Guest images carried in quire.bin (see include/quire/guest.h): the test
 * guest, and Debian's arm64 kernel with the initramfs the build makes and
 * the guest platform's DT template, and the VM configuration; qemuboot, a
 * raw and an ELF image for QEMU's -kernel protocol (tests/guests/qemuboot.c).
 */
.macro image label, name, file
	.section .rodata.guests, "a"
	.balign	4096
\label\()_start:
	.incbin	"\file"
\label\()_end:
	.section .rodata
\label\()_name:
	.asciz	"\name"
.endm

/* (cpp would define `linux`: the Makefile passes -Ulinux) */
	image	g_memtest, memtest, GUEST_MEMTEST
	image	g_kernel, linux, GUEST_KERNEL
	image	g_initrd, linux_initrd, GUEST_INITRD
	image	g_dtb, guest_dtb, GUEST_DTB
	image	g_vms, vm_config, VMS_DTB
	image	g_qemuboot, qemuboot, GUEST_QEMUBOOT
	image	g_qemuboot_elf, qemuboot_elf, GUEST_QEMUBOOT_ELF

	.section .data.rel.ro, "aw"
	.balign	8
	.global	guest_images
guest_images:
	.quad	g_memtest_name, g_memtest_start, g_memtest_end - g_memtest_start
	.quad	g_kernel_name, g_kernel_start, g_kernel_end - g_kernel_start
	.quad	g_initrd_name, g_initrd_start, g_initrd_end - g_initrd_start
	.quad	g_dtb_name, g_dtb_start, g_dtb_end - g_dtb_start
	.quad	g_vms_name, g_vms_start, g_vms_end - g_vms_start
	.quad	g_qemuboot_name, g_qemuboot_start, g_qemuboot_end - g_qemuboot_start
	.quad	g_qemuboot_elf_name, g_qemuboot_elf_start, g_qemuboot_elf_end - g_qemuboot_elf_start
	.quad	0, 0, 0
