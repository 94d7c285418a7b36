/*
 * Stage-2 translation: 4 KiB granule, IPA size chosen from
 * ID_AA64MMFR0_EL1.PARange (at most 39 bits, so the walk starts at level 1
 * with one root table), per-VM VMID in VTTBR_EL2.
 *
 * Tables come from the VM's own pool and count against its quota. Filling an
 * invalid entry needs no TLB maintenance (invalid entries are never cached),
 * so the fault path installs tables and leaves with a CAS and no lock; a
 * racing vCPU that loses gives its page back. Changing a valid leaf is
 * break-before-make: s2_claim() swaps it for S2_BUSY (invalid, but not
 * empty, so a fault there retries instead of filling it) and invalidates the
 * TLBs; s2_install() makes the new one.
 *
 * Executable leaves and the instruction caches: a leaf the fault path fills
 * for a data access is execute-never, and s2_grant_exec() allows execution
 * after the first fetch faults (core/violation.c invalidates the page's
 * instruction-cache lines first). s2_install() never makes a leaf
 * executable: it serves sharing and swap, whose pages get new contents (a
 * copy, a merge, a read from disk), so they too wait for their first fetch,
 * as KVM's do; a copy-on-write or swap-in of data pays no invalidation.
 */
#include <quire/errno.h>
#include <quire/fault.h>
#include <quire/s2_entry.h>
#include <quire/vm.h>
#include <arch/stage2.h>
#include <arch/sysreg.h>

#define S2_VALID (1UL << 0)
#define S2_TABLE (1UL << 1) /* table at levels 0-2, page at level 3 */
#define S2_MEMATTR_NORMAL (0xfUL << 2) /* Normal, Inner/Outer Write-Back */
#define S2_MEMATTR_DEVICE (0x1UL << 2) /* Device-nGnRE */
#define S2AP_R (1UL << 6)
#define S2AP_W (1UL << 7)
#define S2_SH_INNER (3UL << 8)
#define S2_AF (1UL << 10)
#define S2_XN (1UL << 54)
/* Bits [58:55] of a stage-2 leaf are for software: Quire's read-ahead marks. */
#define S2_SW_AHEAD (1UL << 55) /* read ahead of use, not used yet */
#define S2_SW_SEEN (1UL << 56)	/* ... and the swap clock passed it once */
#define S2_ADDR_MASK 0x0000fffffffff000UL
/* An invalid leaf being changed by whoever claimed it (quire/s2_entry.h). */
#define S2_BUSY S2E_BUSY

#define VTCR_EL2_RES1 (1UL << 31)
#define VTCR_SL0_SHIFT 6
#define VTCR_IRGN0_WBWA (1UL << 8)
#define VTCR_ORGN0_WBWA (1UL << 10)
#define VTCR_SH0_INNER (3UL << 12)
#define VTCR_TG0_4K (0UL << 14)
#define VTCR_PS_SHIFT 16
#define VTCR_HA (1UL << 21)

#define START_LEVEL 1

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

static inline _Atomic u64 *entry_at(paddr_t table, unsigned level, u64 ipa)
{
	unsigned shift = PAGE_SHIFT + 9 * (3 - level);

	return (_Atomic u64 *)(uintptr_t)table + ((ipa >> shift) & 511);
}

/* A zeroed page from the VM's pool, for a table. */
static int table_alloc(struct vm *vm, unsigned cpu, paddr_t *pa)
{
	int why = 0;
	pidx_t i = vmpool_take(&vm->pool, cpu, &why);

	if (i == PIDX_NONE)
		return why == 2 ? -ENOMEM : -EDQUOT;
	atomic_store_explicit(&pool_desc(vm->pool.vmm, i)->flags, MP_PGTABLE | MP_PINNED,
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
	*pa = pool_pa(vm->pool.vmm, i);
	return 0;
}

static void table_free(struct vm *vm, paddr_t pa, unsigned cpu)
{
	vmpool_give_back_table(&vm->pool, cpu, pool_pidx_of(vm->pool.vmm, pa));
	atomic_fetch_sub_explicit(&vm->pool.pgtables, 1, memory_order_relaxed);
}

int s2_init(struct vm *vm, unsigned cpu)
{
	vm->s2.vmid = vm->id;
	vm->s2.start_level = START_LEVEL;
	return table_alloc(vm, cpu, &vm->s2.root);
}

/* The level-3 table for ipa, created on the way if need be. */
static int walk_create(struct vm *vm, u64 ipa, unsigned cpu, paddr_t *l3)
{
	paddr_t table = vm->s2.root;

	for (unsigned level = START_LEVEL; level < 3; level++) {
		_Atomic u64 *e = entry_at(table, level, ipa);
		u64 v = atomic_load_explicit(e, memory_order_acquire);

		if (!(v & S2_VALID)) {
			paddr_t t;
			int rc = table_alloc(vm, cpu, &t);

			if (rc)
				return rc;
			/* The zeroed table must reach the walker before the entry that points to it. */
			dsb(ishst);
			u64 nv = t | S2_VALID | S2_TABLE;
			if (atomic_compare_exchange_strong_explicit(e, &v, nv, memory_order_acq_rel,
								    memory_order_acquire))
				v = nv;
			else
				table_free(vm, t, cpu); /* another vCPU installed one; v is it */
		}
		table = v & S2_ADDR_MASK;
	}
	*l3 = table;
	return 0;
}

static u64 leaf(paddr_t pa, unsigned prot)
{
	u64 v = pa | S2_VALID | S2_TABLE | (prot & S2_OLD ? 0 : S2_AF) | (prot & S2_AHEAD ? S2_SW_AHEAD : 0) |
		(prot & S2_DEVICE ? S2_MEMATTR_DEVICE : S2_MEMATTR_NORMAL | S2_SH_INNER);

	if (prot & S2_R)
		v |= S2AP_R;
	if (prot & S2_W)
		v |= S2AP_W;
	if (!(prot & S2_X))
		v |= S2_XN;
	return v;
}

int s2_prepare(struct vm *vm, ipa_t ipa, unsigned cpu, struct s2_slot *slot)
{
	paddr_t l3;
	int rc = walk_create(vm, ipa.bits, cpu, &l3);

	if (rc)
		return rc;
	slot->e = entry_at(l3, 3, ipa.bits);
	/* Valid, or busy being changed: either way not ours to fill. */
	return atomic_load_explicit(slot->e, memory_order_relaxed) ? -EEXIST : 0;
}

int s2_fill(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	u64 expected = 0;

	(void)vm;
	/* The page's contents (zeroes) must be visible before the mapping is. */
	dsb(ishst);
	if (!atomic_compare_exchange_strong_explicit(slot->e, &expected, leaf(pa, prot),
						     memory_order_release, memory_order_relaxed))
		return -EEXIST;
	dsb(ishst);
	return 0;
}

/* The level-3 entry for ipa, or NULL if a table on the way is missing. */
static _Atomic u64 *leaf_entry(struct vm *vm, u64 ipa)
{
	paddr_t table = vm->s2.root;

	for (unsigned level = START_LEVEL; level < 3; level++) {
		u64 v = atomic_load_explicit(entry_at(table, level, ipa), memory_order_acquire);

		if (!(v & S2_VALID))
			return NULL;
		table = v & S2_ADDR_MASK;
	}
	return entry_at(table, 3, ipa);
}

static unsigned prot_of(u64 v)
{
	return (v & S2AP_R ? S2_R : 0) | (v & S2AP_W ? S2_W : 0) | (v & S2_XN ? 0 : S2_X) |
	       ((v & (0xfUL << 2)) == S2_MEMATTR_DEVICE ? S2_DEVICE : 0) | (v & S2_SW_AHEAD ? S2_AHEAD : 0);
}

paddr_t s2_lookup(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_acquire) : 0;

	return v & S2_VALID ? v & S2_ADDR_MASK : 0;
}

bool s2_get(struct vm *vm, ipa_t ipa, struct s2_leaf *out)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_acquire) : 0;

	if (!(v & S2_VALID))
		return false;
	out->pa = v & S2_ADDR_MASK;
	out->prot = prot_of(v);
	return true;
}

u64 s2_next_leaf(struct vm *vm, u64 from, u64 end)
{
	u64 ipa = ALIGN_DOWN(from, PAGE_SIZE);

	while (ipa < end) {
		paddr_t table = vm->s2.root;
		unsigned level;

		for (level = START_LEVEL; level <= 3; level++) {
			unsigned shift = PAGE_SHIFT + 9 * (3 - level);
			u64 v = atomic_load_explicit(entry_at(table, level, ipa), memory_order_acquire);

			if (!(v & S2_VALID)) {
				/* Nothing mapped below this entry: go to the next one at this level. */
				ipa = ALIGN_DOWN(ipa, 1UL << shift) + (1UL << shift);
				break;
			}
			table = v & S2_ADDR_MASK;
		}
		if (level > 3)
			return ipa;
	}
	return end;
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

static void tlbi_ipa(struct vm *vm, u64 ipa)
{
	u64 saved = vmid_enter(vm);

	asm volatile("tlbi ipas2e1is, %0" : : "r"(ipa >> 12) : "memory");
	dsb(ish);
	/* Stage-1 entries cached by the guest may combine the old stage-2 mapping. */
	asm volatile("tlbi vmalle1is" : : : "memory");
	dsb(ish);
	isb();
	vmid_leave(saved);
}

int s2_claim(struct vm *vm, ipa_t ipa, struct s2_slot *slot, struct s2_leaf *old)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_acquire) : 0;

	if (!(v & S2_VALID) || !atomic_compare_exchange_strong_explicit(e, &v, S2_BUSY, memory_order_acq_rel,
									 memory_order_relaxed))
		return -ENOENT;
	/* Break: no walker sees the old leaf, no TLB holds it. */
	dsb(ishst);
	tlbi_ipa(vm, ipa.bits);
	slot->e = e;
	old->pa = v & S2_ADDR_MASK;
	old->prot = prot_of(v);
	return 0;
}

void s2_install(struct vm *vm, struct s2_slot *slot, paddr_t pa, unsigned prot)
{
	(void)vm;
	/* Make: the page's contents are visible before the leaf that maps them. */
	dsb(ishst);
	/* Execute-never: the first fetch faults and invalidates the instruction caches (violation.c). */
	atomic_store_explicit(slot->e, leaf(pa, prot & ~S2_X), memory_order_release);
	dsb(ishst);
	isb();
}

struct destroy_fns {
	void (*page)(struct vm *, ipa_t, paddr_t, unsigned);
	void (*swapped)(struct vm *, u64, unsigned);
};

bool s2_test_clear_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_relaxed) : 0;

	/*
	 * No break-before-make: only the access flag and software bits change
	 * (a failed CAS means it changed: young). A page read ahead is spared once.
	 */
	if (!(v & S2_VALID))
		return false;
	if (v & S2_AF) {
		atomic_compare_exchange_strong_explicit(e, &v, v & ~(S2_AF | S2_SW_AHEAD | S2_SW_SEEN),
							memory_order_relaxed, memory_order_relaxed);
		return true;
	}
	if ((v & (S2_SW_AHEAD | S2_SW_SEEN)) != S2_SW_AHEAD)
		return false;
	atomic_compare_exchange_strong_explicit(e, &v, v | S2_SW_SEEN, memory_order_relaxed, memory_order_relaxed);
	return true;
}

int s2_set_young(struct vm *vm, ipa_t ipa)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_relaxed) : 0;

	while (v & S2_VALID)
		if (atomic_compare_exchange_weak_explicit(e, &v, (v | S2_AF) & ~(S2_SW_AHEAD | S2_SW_SEEN),
							  memory_order_release, memory_order_relaxed))
			return v & S2_SW_AHEAD ? 2 : 1;
	return 0;
}

/* Every TLB entry of the VM's, stage 1 and 2, on every CPU. */
static void tlbi_vm(struct vm *vm)
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

void s2_flush_young(struct vm *vm)
{
	tlbi_vm(vm);
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
static void tlbi_ipa_local(struct vm *vm, u64 ipa)
{
	u64 saved = vmid_enter(vm);

	asm volatile("tlbi ipas2e1, %0" : : "r"(ipa >> 12) : "memory");
	/* The stage-2 entry is gone before the combined stage-1 entries go. */
	dsb(nsh);
	asm volatile("tlbi vmalle1" : : : "memory");
	/* Both complete before the guest retries. */
	dsb(nsh);
	isb();
	vmid_leave(saved);
}

int s2_grant_exec(struct vm *vm, ipa_t ipa, paddr_t pa)
{
	_Atomic u64 *e = leaf_entry(vm, ipa.bits);
	u64 v = e ? atomic_load_explicit(e, memory_order_relaxed) : 0;
	int rc = -ENOENT;

	/*
	 * Only the XN bit changes (a permission, so no break-before-make). The
	 * I-cache invalidation the caller did completed (DSB ISH) before this
	 * release store. Other CPUs that cached the XN entry fault, find X set
	 * and drop their entry the same way.
	 */
	while ((v & S2_VALID) && (v & S2_ADDR_MASK) == pa && !((v & (0xfUL << 2)) == S2_MEMATTR_DEVICE)) {
		if (!(v & S2_XN)) {
			rc = 0;
			break;
		}
		if (atomic_compare_exchange_weak_explicit(e, &v, v & ~S2_XN, memory_order_release,
							  memory_order_relaxed)) {
			rc = 1;
			break;
		}
	}
	if (rc >= 0) {
		/* The new leaf is seen by the walker before this CPU's stale XN entry goes. */
		dsb(ishst);
		tlbi_ipa_local(vm, ipa.bits);
	}
	return rc;
}

/* Clean and invalidate every Normal page mapped below table to PoC (Quire maps RAM at its PA). */
static u64 flush_level(paddr_t table, unsigned level, u64 line)
{
	u64 pages = 0;

	for (unsigned i = 0; i < 512; i++) {
		u64 v = atomic_load_explicit((_Atomic u64 *)(uintptr_t)table + i, memory_order_acquire);
		paddr_t pa = v & S2_ADDR_MASK;

		if (!(v & S2_VALID))
			continue;
		if (level < 3) {
			pages += flush_level(pa, level + 1, line);
			continue;
		}
		if ((v & (0xfUL << 2)) == S2_MEMATTR_DEVICE)
			continue;
		for (u64 a = pa; a < pa + PAGE_SIZE; a += line)
			asm volatile("dc civac, %0" : : "r"(a) : "memory");
		pages++;
	}
	return pages;
}

u64 s2_flush_dcache(struct vm *vm)
{
	u64 line = 4UL << ((read_sysreg(ctr_el0) >> 16) & 0xf), pages;

	/*
	 * Runs in a trap of one of the VM's vCPUs, so its tables stay (they are
	 * freed only when every vCPU is gone). A page that leaves the VM while
	 * it is walked is cleaned and invalidated anyway: harmless to its next
	 * owner, as both keep the data.
	 */
	pages = flush_level(vm->s2.root, START_LEVEL, line);
	/* Every line reached PoC before the guest runs with its new cache settings. */
	dsb(ish);
	return pages;
}

static void destroy_level(struct vm *vm, paddr_t table, unsigned level, u64 base,
			  const struct destroy_fns *fn, unsigned cpu)
{
	for (u64 i = 0; i < 512; i++) {
		_Atomic u64 *e = (_Atomic u64 *)(uintptr_t)table + i;
		u64 v = atomic_load_explicit(e, memory_order_relaxed);
		u64 ipa = base + (i << (PAGE_SHIFT + 9 * (3 - level)));

		if (level == 3 && s2e_swapped(v) && fn->swapped)
			fn->swapped(vm, s2e_slot(v), cpu);
		if (!(v & S2_VALID))
			continue;
		atomic_store_explicit(e, 0, memory_order_relaxed);
		if (level == 3)
			fn->page(vm, IPA(ipa), v & S2_ADDR_MASK, cpu);
		else
			destroy_level(vm, v & S2_ADDR_MASK, level + 1, ipa, fn, cpu);
	}
	table_free(vm, table, cpu);
}

void s2_destroy(struct vm *vm, void (*fn)(struct vm *, ipa_t, paddr_t, unsigned),
		void (*swapped)(struct vm *, u64, unsigned), unsigned cpu)
{
	struct destroy_fns fns = { fn, swapped };

	/*
	 * The TLBs forget the VM before any of its pages or tables goes back to
	 * the pool: a page freed while a TLB still mapped it could be read or
	 * written through that entry by its next owner's time. Nothing fills
	 * the TLBs for this VMID again: none of its vCPUs runs any more (every
	 * CPU that ran one left with HCR_EL2.VM clear), so no stage-2 walk of
	 * these tables happens between this flush and the frees below.
	 */
	tlbi_vm(vm);
	destroy_level(vm, vm->s2.root, START_LEVEL, 0, &fns, cpu);
	vm->s2.root = 0;
}
