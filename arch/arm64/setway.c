/*
 * Set/way cache maintenance by a guest, emulated as KVM does
 * (kvm_set_way_flush, kvm_toggle_cache).
 *
 * DC ISW/CSW/CISW name a line of one CPU's cache by set and way: they cannot
 * be run for a guest (its vCPU moves, other CPUs and the system caches hold
 * its lines too), so HCR_EL2.TSW traps them. A guest uses them around turning
 * its caches on or off (firmware, a kernel's early boot): it cleans by
 * set/way, then turns its MMU and caches off and expects memory to hold what
 * it wrote. So:
 *
 * - The first set/way operation cleans and invalidates every page the VM
 *   maps to the point of coherency (by VA, which reaches every cache), and
 *   sets HCR_EL2.TVM for this vCPU: its writes to SCTLR_EL1 and the other
 *   stage-1 registers now trap. Further set/way operations do nothing.
 * - A trapped write to those registers is done as asked. If it turns the
 *   caches on or off (SCTLR_EL1.M and C both set, or not), the VM's memory is
 *   cleaned and invalidated again: on the way off, what sits dirty in the
 *   caches reaches memory before the guest reads it uncached; on the way on,
 *   no stale line hides what it wrote uncached. Caches on ends the trapping.
 *
 * The whole VM costs a DC CIVAC per 64 bytes of its resident memory; guests
 * that do this do it a few times per boot, while they are small. The flag
 * lives in struct vcpu (setway_tvm); vcpu_load puts setway_hcr() into
 * HCR_EL2 so it survives the vCPU being switched out.
 */
#include <quire/console.h>
#include <quire/vcpu.h>
#include <arch/setway.h>
#include <quire/vm.h>
#include <arch/sysreg.h>

#define SCTLR_EL1_M (1UL << 0)
#define SCTLR_EL1_C (1UL << 2)

static void flush_vm(struct vcpu *v, const char *why)
{
	u64 pages = s2_flush_dcache(v->vm);

	atomic_fetch_add(&v->vm->cache_flushes, 1);
	vm_log_once(v->vm, VM_LOG_SETWAY,
		    "quire: %s vCPU %u: set/way cache maintenance: %s: %lu pages cleaned and invalidated to PoC "
		    "(logged once; the monitor's stats count them as cache_flushes)\n",
		    v->vm->name, v->index, why, (unsigned long)pages);
}

static void set_tvm(struct vcpu *v, bool on)
{
	v->setway_tvm = on;
	write_sysreg(on ? read_sysreg(hcr_el2) | HCR_EL2_TVM : read_sysreg(hcr_el2) & ~HCR_EL2_TVM, hcr_el2);
	/* The new trap setting holds from the guest's next instruction. */
	isb();
}

void setway_op(struct vcpu *v)
{
	if (v->setway_tvm)
		return; /* flushed already; the cache toggle that follows flushes again */
	flush_vm(v, "first operation");
	set_tvm(v, true);
}

static bool caches_on(u64 sctlr)
{
	return (sctlr & (SCTLR_EL1_M | SCTLR_EL1_C)) == (SCTLR_EL1_M | SCTLR_EL1_C);
}

static void sctlr_write(struct vcpu *v, u64 val)
{
	bool was = caches_on(read_sysreg(sctlr_el1)), now = caches_on(val);

	write_sysreg(val, sctlr_el1);
	isb();
	if (was != now)
		flush_vm(v, now ? "caches turned on" : "caches turned off");
	if (now)
		set_tvm(v, false);
}

/* The registers HCR_EL2.TVM traps writes to (op0 3, op1 0), by CRn, CRm, op2. */
#define REG(crn, crm, op2) ((crn) << 8 | (crm) << 4 | (op2))

bool setway_vm_reg_write(struct vcpu *v, unsigned op1, unsigned crn, unsigned crm, unsigned op2, u64 val)
{
	if (!v->setway_tvm || op1 != 0)
		return false;
	switch (REG(crn, crm, op2)) {
	case REG(1, 0, 0):
		sctlr_write(v, val);
		return true;
	case REG(2, 0, 0):
		write_sysreg(val, ttbr0_el1);
		return true;
	case REG(2, 0, 1):
		write_sysreg(val, ttbr1_el1);
		return true;
	case REG(2, 0, 2):
		write_sysreg(val, tcr_el1);
		return true;
	case REG(5, 1, 0):
		write_sysreg(val, afsr0_el1);
		return true;
	case REG(5, 1, 1):
		write_sysreg(val, afsr1_el1);
		return true;
	case REG(5, 2, 0):
		write_sysreg(val, esr_el1);
		return true;
	case REG(6, 0, 0):
		write_sysreg(val, far_el1);
		return true;
	case REG(10, 2, 0):
		write_sysreg(val, mair_el1);
		return true;
	case REG(10, 3, 0):
		write_sysreg(val, amair_el1);
		return true;
	case REG(13, 0, 1):
		write_sysreg(val, contextidr_el1);
		return true;
	}
	return false;
}
