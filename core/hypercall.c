/*
 * Hypercalls: PSCI for CPU and system power, and Quire's own calls in the
 * SMCCC vendor-hypervisor range (include/quire/hypercall.h).
 */
#include <quire/conmux.h>
#include <quire/console.h>
#include <quire/hypercall.h>
#include <quire/sched.h>
#include <quire/vcpu.h>

#define MPIDR_AFF 0xff00ffffffUL

static s64 psci_cpu_on(struct vcpu *self, u64 target, u64 entry, u64 context)
{
	struct vm *vm = self->vm;
	struct vcpu *t;
	int expected = VCPU_OFF;

	/* MPIDR of vCPU i is Aff0 = i; the other affinity fields are 0. */
	if (target >= vm->nvcpus)
		return PSCI_RET_INVALID_PARAMS;
	t = vm->vcpu[target];
	if (!vm_in_ram(vm, IPA(entry)))
		return PSCI_RET_INVALID_PARAMS;
	/* Claim it first, so a racing CPU_ON cannot change where it starts. */
	if (!atomic_compare_exchange_strong(&t->state, &expected, VCPU_STARTING))
		return PSCI_RET_ALREADY_ON;
	t->entry = entry;
	t->context = context;
	atomic_store_explicit(&t->state, VCPU_START, memory_order_release);
	vcpu_kick(t);
	return PSCI_RET_SUCCESS;
}

/* v stops. A VM whose last vCPU that was could never run again: it is stopped, its memory freed. */
static void psci_cpu_off(struct vcpu *v)
{
	struct vm *vm = v->vm;

	atomic_store(&v->state, VCPU_OFF);
	/* Another vCPU being started (STARTING, START) or running keeps the VM. */
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (atomic_load(&vm->vcpu[i]->state) != VCPU_OFF)
			return;
	vm_power_off(vm, "stopped: every vCPU called CPU_OFF");
}

static s64 psci_affinity_info(struct vm *vm, u64 target, u64 level)
{
	if (level != 0 || target >= vm->nvcpus)
		return PSCI_RET_INVALID_PARAMS;
	return atomic_load(&vm->vcpu[target]->state) == VCPU_OFF ? 1 : 0; /* OFF : ON */
}

static s64 psci_features(u32 fn)
{
	switch (fn) {
	case PSCI_VERSION:
	case PSCI_CPU_ON_64:
	case PSCI_CPU_OFF:
	case PSCI_AFFINITY_INFO_64:
	case PSCI_SYSTEM_OFF:
	case PSCI_SYSTEM_RESET:
	case PSCI_FEATURES:
	case PSCI_MIGRATE_INFO_TYPE:
	case SMCCC_VERSION:
		return 0;
	default:
		return PSCI_RET_NOT_SUPPORTED;
	}
}

/*
 * The calling VM's own sharing figures only. Machine-wide ones (selector 2
 * once) stay in the monitor: polled by a guest they showed other VMs'
 * merges as they happened, a covert channel between VMs and a quick dedup
 * side channel. Selector 2 is retired, not reused, so an old reader gets an
 * error rather than figures that mean something else.
 */
static void share_hypercall(struct vm *vm, u64 x[4])
{
	x[0] = 0;
	switch (x[1]) {
	case 0:
		x[1] = atomic_load(&vm->pool.zero);
		x[2] = atomic_load(&vm->pool.shared);
		x[3] = atomic_load(&vm->share.cow);
		break;
	case 1:
		x[1] = atomic_load(&vm->share.scans);
		x[2] = atomic_load(&vm->share.volatile_pages);
		x[3] = atomic_load(&vm->share.scan_pages);
		break;
	case 3:
		x[1] = atomic_load(&vm->share.merged);
		x[2] = atomic_load(&vm->share.scanned);
		x[3] = 0;
		break;
	default:
		x[0] = (u64)(s64)SMCCC_NOT_SUPPORTED;
		x[1] = x[2] = x[3] = 0;
	}
}

static bool unknown_call(struct vcpu *v, u32 fn, u64 x[4])
{
	vm_log_once(v->vm, VM_LOG_HVC, "quire: %s vCPU %u: unknown hypercall 0x%x: NOT_SUPPORTED (logged once)\n",
		    v->vm->name, v->index, fn);
	x[0] = (u64)(s64)SMCCC_NOT_SUPPORTED;
	return true;
}

/* Quire's own calls (vendor-specific hypervisor service, owner 6): a switch of their own, so the common ones cost few compares. */
static bool vendor_call(struct vcpu *v, u32 fn, u64 x[4])
{
	struct vm *vm = v->vm;

	switch (fn) {
	case QUIRE_HC_PUTC:
		conmux_vm_output(vm, (char)x[1]);
		x[0] = 0;
		return true;
	case QUIRE_HC_YIELD:
		/* Alone on its CPU there is no one to yield to: straight back. */
		if (sched_queued(v->pcpu) > 1) {
			v->yield = true;
			vcpu_kick(v);
		}
		x[0] = 0;
		return true;
	case QUIRE_HC_MEM_STATS:
		x[0] = 0;
		x[1] = atomic_load_explicit(&vm->pool.fills, memory_order_relaxed);
		x[2] = atomic_load_explicit(&vm->pool.active, memory_order_relaxed);
		x[3] = atomic_load_explicit(&vm->pool.pgtables, memory_order_relaxed);
		return true;
	case QUIRE_HC_BLOCK_STATS:
		x[0] = 0;
		x[1] = atomic_load_explicit(&vm->s2.blocks, memory_order_relaxed);
		x[2] = atomic_load_explicit(&vm->s2.block_fills, memory_order_relaxed);
		x[3] = atomic_load_explicit(&vm->s2.splits, memory_order_relaxed);
		return true;
	case QUIRE_HC_MEM_QUOTA:
		x[0] = 0;
		x[1] = vm->pool.quota;
		x[2] = atomic_load_explicit(&vm->pool.charged, memory_order_relaxed);
		x[3] = atomic_load_explicit(&vm->pool.quota_hits, memory_order_relaxed);
		return true;
	case QUIRE_HC_SHARE_STATS:
		share_hypercall(vm, x);
		return true;
	case QUIRE_HC_SWAP_STATS:
		x[0] = 0;
		x[1] = atomic_load_explicit(&vm->swap.outs, memory_order_relaxed);
		x[2] = atomic_load_explicit(&vm->swap.ins, memory_order_relaxed);
		x[3] = atomic_load_explicit(&vm->pool.swapped, memory_order_relaxed);
		return true;
	default:
		return unknown_call(v, fn, x);
	}
}

bool hypercall(struct vcpu *v, u64 x[4])
{
	struct vm *vm = v->vm;
	u32 fn = (u32)x[0];

	if ((fn & 0xff000000) == (QUIRE_HC_PUTC & 0xff000000))
		return vendor_call(v, fn, x);
	switch (fn) {
	case PSCI_VERSION:
		x[0] = 0x10001; /* 1.1 */
		return true;
	case PSCI_FEATURES:
		x[0] = (u64)psci_features((u32)x[1]);
		return true;
	case PSCI_MIGRATE_INFO_TYPE:
		x[0] = 2; /* no Trusted OS: nothing to migrate */
		return true;
	case SMCCC_VERSION:
		x[0] = 0x10001; /* SMCCC 1.1 */
		return true;
	case SMCCC_ARCH_FEATURES:
		x[0] = (u64)(s64)SMCCC_NOT_SUPPORTED; /* no firmware workarounds offered */
		return true;
	case PSCI_AFFINITY_INFO_64:
		x[0] = (u64)psci_affinity_info(vm, x[1] & MPIDR_AFF, x[2]);
		return true;
	case PSCI_CPU_ON_64:
		x[0] = (u64)psci_cpu_on(v, x[1] & MPIDR_AFF, x[2], x[3]);
		return true;
	case PSCI_CPU_OFF:
		psci_cpu_off(v);
		return false;
	case PSCI_SYSTEM_OFF:
		vm_power_off(vm, "powered off");
		return false;
	case PSCI_SYSTEM_RESET:
		/*
		 * Not if it was stopped meanwhile (killed: it stays off). No one can
		 * reap it before the store: this vCPU is not out of it yet.
		 */
		if (vm_power_off(vm, "reset"))
			atomic_store(&vm->restart, true);
		return false;
	default:
		return unknown_call(v, fn, x);
	}
}
