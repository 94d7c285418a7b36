/*
 * Shared by the test guests' C and assembly: limits, hypercalls, printing.
 * The guests run at EL1 with the MMU off (all data accesses Device-nGnRnE):
 * naturally aligned accesses only, no exclusives or atomics.
 */
#ifndef GUEST_H
#define GUEST_H

#define MAX_VCPUS 8		/* Quire's MAX_VCPUS per VM */
#define STACK_SIZE 16384	/* per vCPU, inside the image's BSS */
#define RAM_BASE 0x40000000UL
#define PAGE_SIZE 4096UL
#define ABORT_REC_SHIFT 6	/* sizeof(struct abort_rec) == 64 */

#ifndef __ASSEMBLER__
#include <stdarg.h>
#include <stdbool.h>
#include <quire/hypercall.h>

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;

/*
 * Filled by the EL1 synchronous vector (start.S) on each data abort, per vCPU,
 * and on each UNDEF (EC 0x00) taken while undef_ok is set (by a probe that
 * expects one); any other exception ends the VM (guest_unexpected).
 */
struct abort_rec {
	volatile u64 count, far, esr, elr; /* offsets 0, 8, 16, 24: start.S */
	volatile u64 undef_ok;		    /* offset 32 */
	u64 pad[3];
};
extern struct abort_rec aborts[MAX_VCPUS];

struct smccc_res {
	u64 x0, x1, x2, x3;
};

/* hvc #0 with the SMC Calling Convention: x0..x3 in and out, x4..x17 may be clobbered. */
static inline struct smccc_res hvc(u64 fn, u64 a1, u64 a2, u64 a3)
{
	register u64 x0 asm("x0") = fn, x1 asm("x1") = a1, x2 asm("x2") = a2, x3 asm("x3") = a3;

	asm volatile("hvc #0"
		     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
		     :
		     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
		       "x16", "x17", "memory");
	return (struct smccc_res){ x0, x1, x2, x3 };
}

static inline void dmb(void)
{
	asm volatile("dmb sy" ::: "memory");
}

static inline u64 counter(void)
{
	u64 v;

	asm volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
}

static inline u64 counter_freq(void)
{
	u64 v;

	asm volatile("mrs %0, cntfrq_el0" : "=r"(v));
	return v;
}

static inline u64 vcpu_self(void)
{
	u64 v;

	asm volatile("mrs %0, mpidr_el1" : "=r"(v));
	return v & 0xff;
}

#define RD(a) (*(volatile u64 *)(a))

/* Console (hypercall PUTC; the PL011 in DEBUG builds), one byte per call. */
void con_putc(char c);
void con_puts(const char *s);
/* printf subset: %s %c %d %u %x (with an optional l; all take 64-bit values with l) and %%. */
void pr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Quire's memory counters; ok is false when the hypercall is not answered (DEBUG). */
struct mem_stats {
	bool ok;
	u64 fills, resident, pgtables;
};
struct mem_stats mem_stats(void);
struct mem_quota {
	bool ok;
	u64 quota, charged, refused;
};
struct mem_quota mem_quota(void);

s64 psci_cpu_on(u64 mpidr, u64 entry, u64 context);
__attribute__((noreturn)) void system_off(void);
__attribute__((noreturn)) void park(void);
#endif
#endif
