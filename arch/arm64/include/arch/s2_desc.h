/*
 * The stage-2 descriptor format and the maintenance core/stage2.c's walker
 * needs, as small inline primitives: VMSAv8-64, 4 KiB granule (Arm ARM
 * D8.3), walks starting at level 1 (39-bit IPA, one root table). Tables and
 * pages are reached at their machine address: Quire maps RAM 1:1 at EL2.
 * Invalid descriptors hold Quire's own marks (quire/s2_entry.h): the
 * walker looks only at bit 0 of one, so they use bits 1, 2 and 12 up.
 */
#ifndef ARCH_S2_DESC_H
#define ARCH_S2_DESC_H
#include <quire/vm.h>
#include <arch/sysreg.h>

#define S2_START_LEVEL 1
#define S2_LAST_LEVEL 3
#define S2_TABLE_BITS 9 /* 512 descriptors per 4 KiB table */

#define S2D_VALID (1UL << 0)
#define S2D_TABLE (1UL << 1) /* table at levels 0-2, page at level 3 */
#define S2D_MEMATTR_MASK (0xfUL << 2)
#define S2D_MEMATTR_NORMAL (0xfUL << 2) /* Normal, Inner/Outer Write-Back */
#define S2D_MEMATTR_DEVICE (0x1UL << 2) /* Device-nGnRE */
#define S2D_S2AP_R (1UL << 6)
#define S2D_S2AP_W (1UL << 7)
#define S2D_SH_INNER (3UL << 8)
#define S2D_AF (1UL << 10)
#define S2D_XN (1UL << 54)
/* Bits [58:55] of a stage-2 leaf are for software: Quire's read-ahead marks. */
#define S2D_SW_AHEAD (1UL << 55) /* read ahead of use, not used yet */
#define S2D_SW_SEEN (1UL << 56)	 /* ... and the swap clock passed it once */
#define S2D_ADDR_MASK 0x0000fffffffff000UL

/* Quire's marks in an invalid descriptor (quire/s2_entry.h). */
#define S2E_VALID S2D_VALID
#define S2E_BUSY (1UL << 1)
#define S2E_SWAP (1UL << 2)
#define S2E_SLOT_SHIFT 12
#define S2E_SLOT_MAX ((1UL << 36) - 1) /* 256 TiB of swap */

static inline _Atomic u64 *s2_table(paddr_t pa)
{
	return (_Atomic u64 *)(uintptr_t)pa;
}

static inline bool s2d_valid(u64 d)
{
	return d & S2D_VALID;
}

static inline paddr_t s2d_addr(u64 d)
{
	return d & S2D_ADDR_MASK;
}

static inline u64 s2d_table(paddr_t pa)
{
	return pa | S2D_VALID | S2D_TABLE;
}

/* A level-3 leaf mapping pa with S2_* prot (S2_OLD: access flag clear; S2_AHEAD: the mark). */
static inline u64 s2d_leaf(paddr_t pa, unsigned prot)
{
	u64 d = pa | S2D_VALID | S2D_TABLE | (prot & S2_OLD ? 0 : S2D_AF) | (prot & S2_AHEAD ? S2D_SW_AHEAD : 0) |
		(prot & S2_DEVICE ? S2D_MEMATTR_DEVICE : S2D_MEMATTR_NORMAL | S2D_SH_INNER);

	if (prot & S2_R)
		d |= S2D_S2AP_R;
	if (prot & S2_W)
		d |= S2D_S2AP_W;
	if (!(prot & S2_X))
		d |= S2D_XN;
	return d;
}

/*
 * Blocks: a level-2 descriptor with bit 1 clear maps 2 MiB (the 4 KiB
 * granule's level-2 block), with the same attribute bits as a page.
 */
#define S2_BLOCK_LEVEL 2

/* A valid table descriptor (levels 0-2): bits [1:0] = 0b11. */
static inline bool s2d_is_table(u64 d)
{
	return (d & (S2D_VALID | S2D_TABLE)) == (S2D_VALID | S2D_TABLE);
}

static inline u64 s2d_block(paddr_t pa, unsigned prot)
{
	return s2d_leaf(pa, prot) & ~S2D_TABLE;
}

/* A valid descriptor above the last level: a block (else a table). */
static inline bool s2d_is_block(u64 d)
{
	return !(d & S2D_TABLE);
}

/* The level-3 page k of block d: the same attributes, the address k pages in. */
static inline u64 s2d_block_page(u64 d, unsigned k)
{
	return (d | S2D_TABLE) + ((u64)k << PAGE_SHIFT);
}

static inline bool s2d_device(u64 d)
{
	return (d & S2D_MEMATTR_MASK) == S2D_MEMATTR_DEVICE;
}

static inline bool s2d_exec(u64 d)
{
	return !(d & S2D_XN);
}

/* A leaf's S2_* permissions (and S2_DEVICE, S2_AHEAD). */
static inline unsigned s2d_prot(u64 d)
{
	return (d & S2D_S2AP_R ? S2_R : 0) | (d & S2D_S2AP_W ? S2_W : 0) | (s2d_exec(d) ? S2_X : 0) |
	       (s2d_device(d) ? S2_DEVICE : 0) | (d & S2D_SW_AHEAD ? S2_AHEAD : 0);
}

static inline u64 s2d_grant_exec(u64 d)
{
	return d & ~S2D_XN;
}

/* The access flag, and the read-ahead marks that age with it. */
static inline bool s2d_young(u64 d)
{
	return d & S2D_AF;
}

static inline bool s2d_ahead(u64 d)
{
	return d & S2D_SW_AHEAD;
}

static inline bool s2d_seen(u64 d)
{
	return d & S2D_SW_SEEN;
}

static inline u64 s2d_make_young(u64 d)
{
	return (d | S2D_AF) & ~(S2D_SW_AHEAD | S2D_SW_SEEN);
}

static inline u64 s2d_make_old(u64 d)
{
	return d & ~(S2D_AF | S2D_SW_AHEAD | S2D_SW_SEEN);
}

static inline u64 s2d_mark_seen(u64 d)
{
	return d | S2D_SW_SEEN;
}

/* What a page or table holds reaches the walker before the descriptor that makes it reachable. */
static inline void s2_before_publish(void)
{
	dsb(ishst);
}

/* A new leaf reaches the walker before the guest retries the access (and, with the ISB, before this CPU's next). */
static inline void s2_after_fill(void)
{
	dsb(ishst);
}

static inline void s2_after_install(void)
{
	dsb(ishst);
	isb();
}

/*
 * TLB and cache maintenance (arch/arm64/stage2.c). Each orders the
 * descriptor writes before it ahead of its invalidation, and completes
 * before it returns.
 */
/* Every CPU's entries for ipa, and the guest's stage-1 entries built on them. */
void s2_tlbi_ipa(struct vm *vm, u64 ipa);
/* This CPU's only (a permission that was narrower here). */
void s2_tlbi_ipa_local(struct vm *vm, u64 ipa);
/* Every CPU's entries of the VM, stage 1 and 2. */
void s2_tlbi_vm(struct vm *vm);
/* Clean and invalidate a page to the point of coherency; s2_dcache_done() completes them all. */
void s2_dcache_clean_page(paddr_t pa);
void s2_dcache_done(void);
#endif
