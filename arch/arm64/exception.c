/*
 * EL2's own exceptions. Nothing at EL2 is expected to fault yet, so every
 * exception is a crash: report it on the console and stop this CPU only.
 */
#include <stdatomic.h>
#include <quire/console.h>
#include <quire/printf.h>
#include <arch/cpu.h>
#include <arch/esr.h>
#include <arch/trap_frame.h>
#include <arch/vcpu.h>

static const char *const vector_names[16] = {
	"synchronous, current EL with SP_EL0", "IRQ, current EL with SP_EL0",
	"FIQ, current EL with SP_EL0",	       "SError, current EL with SP_EL0",
	"synchronous, current EL with SP_ELx", "IRQ, current EL with SP_ELx",
	"FIQ, current EL with SP_ELx",	       "SError, current EL with SP_ELx",
	"synchronous, lower EL (AArch64)",     "IRQ, lower EL (AArch64)",
	"FIQ, lower EL (AArch64)",	       "SError, lower EL (AArch64)",
	"synchronous, lower EL (AArch32)",     "IRQ, lower EL (AArch32)",
	"FIQ, lower EL (AArch32)",	       "SError, lower EL (AArch32)",
};

_Atomic unsigned cpus_crashed;

#define APPEND(...) (len += q_snprintf(len < sizeof(buf) ? buf + len : NULL, len < sizeof(buf) ? sizeof(buf) - len : 0, __VA_ARGS__))

static void crash_report(const struct trap_frame *f, unsigned vector)
{
	char buf[2048];
	size_t len = 0;
	u32 ec = esr_ec(f->esr);

	APPEND("\n*** QUIRE CRASH on CPU %u (MPIDR 0x%lx): %s exception\n", cpu_id(),
	       this_cpu()->arch.mpidr, vector_names[vector & 15]);
	APPEND("  EC 0x%02x: %s\n", ec, esr_ec_name(ec));
	APPEND("  ESR_EL2 0x%08lx  IL %u  ISS 0x%07x", f->esr, (unsigned)((f->esr >> 25) & 1),
	       esr_iss(f->esr));
	if (ec == EC_DABT_CUR || ec == EC_DABT_LOW || ec == EC_IABT_CUR || ec == EC_IABT_LOW) {
		u32 fsc = f->esr & 0x3f;

		APPEND(" (%s", esr_fsc_name(fsc));
		if (fsc < 0x10)
			APPEND(", level %u", fsc & 3);
		if ((ec == EC_DABT_CUR || ec == EC_DABT_LOW) && (f->esr & (1 << 6)))
			APPEND(", write");
		APPEND(")");
	}
	APPEND("\n  FAR_EL2 0x%016lx  ELR_EL2 0x%016lx  SPSR_EL2 0x%08lx\n", f->far, f->elr, f->spsr);
	for (int i = 0; i < 31; i++)
		APPEND("  x%-2d 0x%016lx%s", i, f->x[i], (i % 4 == 3) ? "\n" : "");
	APPEND("  sp  0x%016lx\n", f->sp);
	APPEND("*** CPU %u halted; other CPUs continue\n", cpu_id());
	console_write_crash(buf);
}

void el2_exception(struct trap_frame *f, unsigned vector)
{
	if (vector >= VEC_LOWER64_SYNC && this_cpu()->vcpu) {
		guest_trap(f, vector);
		return;
	}
	crash_report(f, vector);
	atomic_fetch_add_explicit(&cpus_crashed, 1, memory_order_release);
	cpu_halt();
}
