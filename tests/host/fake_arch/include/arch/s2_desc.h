/*
 * The host tests' stand-in for an architecture's stage-2 descriptors, under
 * core/stage2.c built unchanged (tests/host/fake_arch.c has the rest).
 * Deliberately not arm64's: four levels from level 0, as x86's EPT has, and
 * its own bit layout, so the walker cannot lean on arm64's. Tables live in
 * host memory standing in for machine memory (hostmem.h). Every barrier may
 * yield (fake_arch_yield) to widen race windows; every TLB invalidation is
 * recorded; a leaf that becomes executable must find its page's
 * instruction caches synced (page_sync_icache) since it was last mapped so.
 */
#ifndef FAKE_ARCH_S2_DESC_H
#define FAKE_ARCH_S2_DESC_H
#include <stdatomic.h>
#include <quire/vm.h>

#define S2_START_LEVEL 0
#define S2_LAST_LEVEL 3
#define S2_TABLE_BITS 9

#define FD_VALID (1ull << 0)
#define FD_TABLE (1ull << 1)	/* a table descriptor (never set in a leaf) */
#define FD_PROT_SHIFT 2		/* S2_R, S2_W, S2_X, S2_DEVICE at bits [5:2] */
#define FD_PROT_MASK ((u64)(S2_RWX | S2_DEVICE) << FD_PROT_SHIFT)
#define FD_AF (1ull << 6)
#define FD_BLOCK (1ull << 7)	/* a level-2 leaf mapping 2 MiB (EPT's PS bit) */
#define FD_AHEAD (1ull << 60)
#define FD_SEEN (1ull << 61)
#define FD_ADDR_MASK 0x0000fffffffff000ull
/* Quire's marks in an invalid descriptor: in high bits, where EPT's ignored ones are, not arm64's 1 and 2. */
#define S2E_VALID FD_VALID
#define S2E_BUSY (1ull << 52)
#define S2E_SWAP (1ull << 53)
#define S2E_SLOT_SHIFT 12
#define S2E_SLOT_MAX ((1ull << 36) - 1)

/* fake_arch.c */
void *hostmem_ptr(paddr_t pa);
void fake_arch_barrier(void);
void fake_arch_fence(void);
void fake_arch_table_made(paddr_t pa);
void fake_arch_exec_leaf(paddr_t pa);

static inline _Atomic u64 *s2_table(paddr_t pa)
{
	return hostmem_ptr(pa);
}

static inline bool s2d_valid(u64 d)
{
	return d & FD_VALID;
}

static inline paddr_t s2d_addr(u64 d)
{
	return d & FD_ADDR_MASK;
}

static inline u64 s2d_table(paddr_t pa)
{
	fake_arch_table_made(pa);
	return pa | FD_VALID | FD_TABLE;
}

static inline u64 s2d_leaf(paddr_t pa, unsigned prot)
{
	if (prot & S2_X)
		fake_arch_exec_leaf(pa);
	return pa | FD_VALID | (u64)(prot & (S2_RWX | S2_DEVICE)) << FD_PROT_SHIFT | (prot & S2_OLD ? 0 : FD_AF) |
	       (prot & S2_AHEAD ? FD_AHEAD : 0);
}

#define S2_BLOCK_LEVEL 2

static inline bool s2d_is_table(u64 d)
{
	return (d & (FD_VALID | FD_TABLE)) == (FD_VALID | FD_TABLE);
}

static inline u64 s2d_block(paddr_t pa, unsigned prot)
{
	return s2d_leaf(pa, prot) | FD_BLOCK;
}

static inline bool s2d_is_block(u64 d)
{
	return d & FD_BLOCK;
}

static inline u64 s2d_block_page(u64 d, unsigned k)
{
	return (d & ~FD_BLOCK) + ((u64)k << 12);
}

static inline unsigned s2d_prot(u64 d)
{
	return (unsigned)((d & FD_PROT_MASK) >> FD_PROT_SHIFT) | (d & FD_AHEAD ? S2_AHEAD : 0);
}

static inline bool s2d_device(u64 d)
{
	return s2d_prot(d) & S2_DEVICE;
}

static inline bool s2d_exec(u64 d)
{
	return s2d_prot(d) & S2_X;
}

static inline u64 s2d_grant_exec(u64 d)
{
	fake_arch_exec_leaf(s2d_addr(d));
	return d | (u64)S2_X << FD_PROT_SHIFT;
}

static inline bool s2d_young(u64 d)
{
	return d & FD_AF;
}

static inline bool s2d_ahead(u64 d)
{
	return d & FD_AHEAD;
}

static inline bool s2d_seen(u64 d)
{
	return d & FD_SEEN;
}

static inline u64 s2d_make_young(u64 d)
{
	return (d | FD_AF) & ~(FD_AHEAD | FD_SEEN);
}

static inline u64 s2d_make_old(u64 d)
{
	return d & ~(FD_AF | FD_AHEAD | FD_SEEN);
}

static inline u64 s2d_mark_seen(u64 d)
{
	return d | FD_SEEN;
}

static inline void s2_before_publish(void)
{
	fake_arch_barrier();
}

static inline void s2_after_fill(void)
{
	fake_arch_fence();
}

static inline void s2_after_install(void)
{
	fake_arch_fence();
}

void s2_tlbi_ipa(struct vm *vm, u64 ipa);
void s2_tlbi_ipa_local(struct vm *vm, u64 ipa);
void s2_tlbi_vm(struct vm *vm);
void s2_dcache_clean_page(paddr_t pa);
void s2_dcache_done(void);
#endif
