/* Assembler helpers. */
#ifndef ARCH_ASM_H
#define ARCH_ASM_H

/* PC-relative address of a symbol: works before relocation and with the MMU off. */
.macro adr_l, dst, sym
	adrp	\dst, \sym
	add	\dst, \dst, :lo12:\sym
.endm

.macro mov_imm64, dst, imm
	movz	\dst, #((\imm) & 0xffff)
	movk	\dst, #(((\imm) >> 16) & 0xffff), lsl #16
	movk	\dst, #(((\imm) >> 32) & 0xffff), lsl #32
	movk	\dst, #(((\imm) >> 48) & 0xffff), lsl #48
.endm

#define FUNC(name) .global name; .type name, %function; name:
#define END(name) .size name, . - name
#endif
