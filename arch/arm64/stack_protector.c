/* libfdt from Debian is built with -fstack-protector-strong; it needs these two. */
#include <quire/console.h>
#include <arch/cpu.h>

unsigned long __stack_chk_guard = 0x5155495245bad5afUL;

void __noreturn __stack_chk_fail(void)
{
	console_write_crash("\n*** QUIRE CRASH: stack smashing detected (in libfdt); CPU halted\n");
	cpu_halt();
}
