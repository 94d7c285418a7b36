/*
 * Hypercalls (core/hypercall.c): what a guest can learn through them. Two
 * VMs; every counter of the other VM and every machine-wide sharing figure
 * holds a marker value, and no hypercall the guest may make returns one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <quire/conmux.h>
#include <quire/hypercall.h>
#include <quire/share.h>
#include <quire/vcpu.h>
#include "vm_registry.h"

#define OTHER 0xb000u	/* the other VM's counters: OTHER + k */
#define MACHINE 0xa000u /* machine-wide figures: MACHINE + k */
#define NMARK 32

static struct vm vm_a, vm_b;
static struct vcpu vcpu_a, vcpu_b;
static unsigned putcs, queued = 1;

/* The scheduler (arch/arm64/vcpu.c): vCPUs queued on a CPU. */
unsigned sched_queued(unsigned cpu)
{
	(void)cpu;
	return queued;
}

void conmux_vm_output(struct vm *vm, char c)
{
	(void)vm;
	(void)c;
	putcs++;
}

/* The machine-wide figures (core/share_scan.c): a guest must never see them. */
void share_stats(struct share_stats *st)
{
	*st = (struct share_stats){ .shared = MACHINE + 1, .sharing = MACHINE + 2, .zero = MACHINE + 3,
				    .saved = MACHINE + 4, .volatile_pages = MACHINE + 5, .scans = MACHINE + 6,
				    .scanned = MACHINE + 7, .merged = MACHINE + 8, .cow = MACHINE + 9,
				    .scan_ticks = MACHINE + 10 };
}

/* Every counter a VM has that a hypercall might return, from base + 1 on. */
static void counters(struct vm *vm, u32 base)
{
	u32 k = base;

	vm->pool.quota = ++k;
	atomic_store(&vm->pool.charged, ++k);
	atomic_store(&vm->pool.active, ++k);
	atomic_store(&vm->pool.pgtables, ++k);
	atomic_store(&vm->pool.fills, ++k);
	atomic_store(&vm->pool.quota_hits, ++k);
	atomic_store(&vm->pool.zero, ++k);
	atomic_store(&vm->pool.shared, ++k);
	atomic_store(&vm->pool.swapped, ++k);
	atomic_store(&vm->share.scan_pages, ++k);
	atomic_store(&vm->share.volatile_pages, ++k);
	atomic_store(&vm->share.scans, ++k);
	atomic_store(&vm->share.scanned, ++k);
	atomic_store(&vm->share.merged, ++k);
	atomic_store(&vm->share.cow, ++k);
	atomic_store(&vm->swap.outs, ++k);
	atomic_store(&vm->swap.ins, ++k);
	atomic_store(&vm->swap.zero, ++k);
	atomic_store(&vm->swap.waits, ++k);
	atomic_store(&vm->swap.squeezed, ++k);
	assert_true(k - base < NMARK);
}

static void vm_setup(struct vm *vm, struct vcpu *v, unsigned id, u32 base)
{
	memset(vm, 0, sizeof(*vm));
	memset(v, 0, sizeof(*v));
	vm->id = (u8)id;
	snprintf(vm->name, sizeof(vm->name), "vm%u", id);
	vm->ram_base = IPA(GUEST_RAM_BASE);
	vm->ram_size = 64 * PAGE_SIZE;
	vm->nvcpus = 1;
	vm->vcpu[0] = v;
	v->vm = vm;
	atomic_store(&v->state, VCPU_RUNNING);
	counters(vm, base);
	registry[id - 1] = vm;
}

static int setup(void **state)
{
	(void)state;
	vm_setup(&vm_a, &vcpu_a, 1, 0);
	vm_setup(&vm_b, &vcpu_b, 2, OTHER);
	return 0;
}

static u64 call(u32 fn, u64 a1, u64 x[4])
{
	x[0] = fn;
	x[1] = a1;
	x[2] = x[3] = 0;
	assert_true(hypercall(&vcpu_a, x));
	return x[0];
}

static bool is_marker(u64 v)
{
	return (v > OTHER && v <= OTHER + NMARK) || (v > MACHINE && v <= MACHINE + NMARK);
}

/*
 * Every hypercall that leaves the VM running (the PSCI and SMCCC queries,
 * Quire's whole vendor range), with argument 0..15: nothing of the other
 * VM's or of the machine's comes back.
 */
static void nothing_of_other_vms(void **state)
{
	static const u32 psci[] = { PSCI_VERSION, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE, PSCI_AFFINITY_INFO_64,
				    SMCCC_VERSION, SMCCC_ARCH_FEATURES };
	u64 x[4];

	(void)state;
	for (u64 a1 = 0; a1 < 16; a1++) {
		for (unsigned k = 0; k < sizeof(psci) / sizeof(psci[0]); k++) {
			call(psci[k], a1, x);
			for (unsigned r = 0; r < 4; r++)
				assert_false(is_marker(x[r]));
		}
		for (u32 fn = 0xc6000000; fn < 0xc6000040; fn++) {
			call(fn, a1, x);
			for (unsigned r = 0; r < 4; r++)
				if (is_marker(x[r]))
					fail_msg("hypercall %#x x1=%lu: x%u = %#lx is %s", fn, a1, r, x[r],
						 x[r] > OTHER ? "the other VM's" : "machine-wide");
		}
	}
}

/* Selector 2 (machine-wide, once) is refused; the calling VM's own figures are there. */
static void share_stats_own_only(void **state)
{
	u64 x[4];

	(void)state;
	assert_int_equal((s64)call(QUIRE_HC_SHARE_STATS, 2, x), SMCCC_NOT_SUPPORTED);
	assert_int_equal(x[1] | x[2] | x[3], 0);

	assert_int_equal(call(QUIRE_HC_SHARE_STATS, 0, x), 0);
	assert_int_equal(x[1], atomic_load(&vm_a.pool.zero));
	assert_int_equal(x[2], atomic_load(&vm_a.pool.shared));
	assert_int_equal(x[3], atomic_load(&vm_a.share.cow));
	assert_int_equal(call(QUIRE_HC_SHARE_STATS, 1, x), 0);
	assert_int_equal(x[1], atomic_load(&vm_a.share.scans));
	assert_int_equal(x[2], atomic_load(&vm_a.share.volatile_pages));
	assert_int_equal(x[3], atomic_load(&vm_a.share.scan_pages));
	assert_int_equal(call(QUIRE_HC_SHARE_STATS, 3, x), 0);
	assert_int_equal(x[1], atomic_load(&vm_a.share.merged));
	assert_int_equal(x[2], atomic_load(&vm_a.share.scanned));
	assert_int_equal(x[3], 0);
	assert_int_equal((s64)call(QUIRE_HC_SHARE_STATS, 4, x), SMCCC_NOT_SUPPORTED);
}

/* CPU_OFF by every vCPU stops the VM (nothing could start one again); one left keeps it. */
static void last_cpu_off_stops_the_vm(void **state)
{
	struct vcpu second = { .vm = &vm_a, .index = 1 };
	unsigned long offs = atomic_load(&registry_power_offs);
	u64 x[4] = { PSCI_CPU_OFF };

	(void)state;
	vm_a.nvcpus = 2;
	vm_a.vcpu[1] = &second;
	atomic_store(&second.state, VCPU_START); /* being started by a CPU_ON */
	assert_false(hypercall(&vcpu_a, x));
	assert_int_equal(atomic_load(&vcpu_a.state), VCPU_OFF);
	assert_false(atomic_load(&vm_a.off));
	atomic_store(&second.state, VCPU_RUNNING);
	x[0] = PSCI_CPU_OFF;
	assert_false(hypercall(&second, x));
	assert_true(atomic_load(&vm_a.off));
	assert_int_equal(atomic_load(&registry_power_offs), offs + 1);
	assert_false(atomic_load(&vm_b.off));
}

/* A reset restarts the VM, unless it was stopped first (killed: it stays off). */
static void reset_restarts_unless_stopped(void **state)
{
	u64 x[4] = { PSCI_SYSTEM_RESET };

	(void)state;
	assert_false(hypercall(&vcpu_a, x));
	assert_true(atomic_load(&vm_a.off) && atomic_load(&vm_a.restart));
	x[0] = PSCI_SYSTEM_RESET;
	atomic_store(&vm_b.off, true); /* the monitor killed it a moment before */
	assert_false(hypercall(&vcpu_b, x));
	assert_false(atomic_load(&vm_b.restart));
}

/* A yield gives the CPU away only if another vCPU is queued there; alone it is straight back. */
static void yield_only_when_shared(void **state)
{
	u64 x[4] = { QUIRE_HC_YIELD };
	unsigned long kicks = atomic_load(&registry_kicks);

	(void)state;
	queued = 1;
	assert_true(hypercall(&vcpu_a, x));
	assert_int_equal(x[0], 0);
	assert_false(vcpu_a.yield);
	assert_int_equal(atomic_load(&registry_kicks), kicks);
	queued = 2;
	x[0] = QUIRE_HC_YIELD;
	assert_true(hypercall(&vcpu_a, x));
	assert_int_equal(x[0], 0);
	assert_true(vcpu_a.yield);
	assert_int_equal(atomic_load(&registry_kicks), kicks + 1);
	queued = 1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(nothing_of_other_vms, setup),
		cmocka_unit_test_setup(share_stats_own_only, setup),
		cmocka_unit_test_setup(last_cpu_off_stops_the_vm, setup),
		cmocka_unit_test_setup(reset_restarts_unless_stopped, setup),
		cmocka_unit_test_setup(yield_only_when_shared, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
