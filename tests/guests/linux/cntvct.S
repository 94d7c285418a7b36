// cntvct: print the virtual counter (CNTVCT_EL0) in decimal and exit.
// With any argument, print the counter frequency (CNTFRQ_EL0) instead.
// A static arm64 Linux program without libc, for the initramfs /init:
//   aarch64-linux-gnu-gcc -nostdlib -static -o cntvct cntvct.S
// Linux lets EL0 read the virtual counter (CNTKCTL_EL1.EL0VCTEN).

#define SYS_write	64
#define SYS_exit	93

	.text
	.globl	_start
_start:
	ldr	x1, [sp]		// argc
	isb				// the read must not be hoisted
	mrs	x0, cntvct_el0
	cmp	x1, #1
	b.le	1f
	mrs	x0, cntfrq_el0
1:
	// Digits from the end of buf backwards.
	adr	x2, buf_end
	mov	w3, #'\n'
	strb	w3, [x2, #-1]!
	mov	x4, #10
2:	udiv	x5, x0, x4
	msub	x6, x5, x4, x0		// x6 = x0 % 10
	add	w6, w6, #'0'
	strb	w6, [x2, #-1]!
	mov	x0, x5
	cbnz	x0, 2b

	mov	x0, #1			// stdout
	mov	x1, x2
	adr	x3, buf_end
	sub	x2, x3, x2		// length
	mov	x8, #SYS_write
	svc	#0
	mov	x0, #0
	mov	x8, #SYS_exit
	svc	#0

	.bss
	.balign	8
buf:	.skip	32
buf_end:
