/*
 * Stage-2 hardware: VTCR_EL2 (4 KiB granule, IPA size chosen from
 * ID_AA64MMFR0_EL1.PARange, at most 39 bits so the walk starts at level 1
 * with one root table), the VM's VMID in VTTBR_EL2, and the TLB and cache
 * maintenance core/stage2.c's walker asks for (arch/s2_desc.h). Calls
 * nothing in core.
 */
#include <quire/vm.h>
#include <arch/s2_desc.h>
#include <arch/stage2.h>
#include <arch/sysreg.h>

#define VTCR_EL2_RES1 (1UL << 31)
#define VTCR_SL0_SHIFT 6
#define VTCR_IRGN0_WBWA (1UL << 8)
#define VTCR_ORGN0_WBWA (1UL << 10)
#define VTCR_SH0_INNER (3UL << 12)
#define VTCR_TG0_4K (0UL << 14)
#define VTCR_PS_SHIFT 16
#define VTCR_HA (1UL << 21)

static u64 vtcr;
static unsigned ipa_bits;

unsigned s2_setup(void)
{
	unsigned pa = parange_bits();

	/* 39 bits = levels 1-3 from one 4 KiB root; smaller PA sizes just use fewer root entries. */
	ipa_bits = MIN(pa, 39u);
	vtcr = VTCR_EL2_RES1 | (64 - ipa_bits) | (1UL << VTCR_SL0_SHIFT) /* start at level 1 */ |
	       VTCR_IRGN0_WBWA | VTCR_ORGN0_WBWA | VTCR_SH0_INNER | VTCR_TG0_4K |
	       (MIN(parange(), 5UL) << VTCR_PS_SHIFT);
	/* FEAT_HAFDBS: the walker sets the access flag itself; without it (Cortex-A72) a fault does. */
	if (read_sysreg(id_aa64mmfr1_el1) & 0xf)
		vtcr |= VTCR_HA;
	return ipa_bits;
}

u64 s2_vtcr(void)
{
	return vtcr;
}

u64 s2_vttbr(const struct vm *vm)
{
	return (u64)vm->s2.vmid << 48 | vm->s2.root;
}

/* TLBIs act on the current VMID: make vm's current, and give back what was (vmid_leave). */
static u64 vmid_enter(struct vm *vm)
{
	u64 saved = read_sysreg(vttbr_el2);

	write_sysreg(s2_vttbr(vm), vttbr_el2);
	/* The TLBIs that follow see the new VMID. */
	isb();
	return saved;
}

static void vmid_leave(u64 saved)
{
	/* Callers end their TLBIs with a DSB and an ISB first. */
	write_sysreg(saved, vttbr_el2);
	isb();
}

void s2_tlbi_ipa(struct vm *vm, u64 ipa)
{
	u64 saved;

	/* The cleared leaf is seen by the walkers before their TLB entries go. */
	dsb(ishst);
	saved = vmid_enter(vm);
	asm volatile("tlbi ipas2e1is, %0" : : "r"(ipa >> 12) : "memory");
	dsb(ish);
	/* Stage-1 entries cached by the guest may combine the old stage-2 mapping. */
	asm volatile("tlbi vmalle1is" : : : "memory");
	dsb(ish);
	isb();
	vmid_leave(saved);
}

/* Every TLB entry of the VM's, stage 1 and 2, on every CPU. */
void s2_tlbi_vm(struct vm *vm)
{
	u64 saved;

	/* Cleared leaves are seen by the walkers before their TLB entries go. */
	dsb(ishst);
	saved = vmid_enter(vm);
	asm volatile("tlbi vmalls12e1is" : : : "memory");
	dsb(ish);
	isb();
	vmid_leave(saved);
}

/* This CPU's TLB entries of the VM, stage 1 and 2; called in its trap, so its VMID is current. */
void s2_flush_tlb_local(struct vm *vm)
{
	u64 saved = vmid_enter(vm);
	asm volatile("tlbi vmalls12e1" : : : "memory");
	/* The invalidation completes on this CPU before the guest retries. */
	dsb(nsh);
	isb();
	vmid_leave(saved);
}

/* This CPU's TLB entries for one IPA (and the guest's stage-1 entries built on it). */
void s2_tlbi_ipa_local(struct vm *vm, u64 ipa)
{
	u64 saved;

	/* The new leaf is seen by the walker before this CPU's stale entry goes. */
	dsb(ishst);
	saved = vmid_enter(vm);
	asm volatile("tlbi ipas2e1, %0" : : "r"(ipa >> 12) : "memory");
	/* The stage-2 entry is gone before the combined stage-1 entries go. */
	dsb(nsh);
	asm volatile("tlbi vmalle1" : : : "memory");
	/* Both complete before the guest retries. */
	dsb(nsh);
	isb();
	vmid_leave(saved);
}

void s2_dcache_clean_page(paddr_t pa)
{
	u64 line = 4UL << ((read_sysreg(ctr_el0) >> 16) & 0xf); /* CTR_EL0.DminLine */

	for (u64 a = pa; a < pa + PAGE_SIZE; a += line)
		asm volatile("dc civac, %0" : : "r"(a) : "memory");
}

void s2_dcache_done(void)
{
	/* Every line reached the point of coherency before the guest runs on. */
	dsb(ish);
}
