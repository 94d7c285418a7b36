/*
 * The host tests' fake arch under the real stage-2 walker (core/stage2.c):
 * its descriptors are in fake_arch/include/arch/s2_desc.h; here are what it
 * records and how a test looks at the tables.
 */
#ifndef FAKE_ARCH_H
#define FAKE_ARCH_H
#include <quire/vm.h>

/* Yield the CPU at every publishing barrier, to make races likely. */
extern _Atomic bool fake_arch_yield;

/*
 * TLB invalidations, as the walker and the fault path ask for them:
 * broadcast ones for one IPA (s2_claim's break), this CPU's (s2_grant_exec,
 * s2_flush_tlb_local), and a VM's whole (s2_destroy, s2_flush_young).
 */
extern _Atomic unsigned long fake_tlbi_ipa, fake_tlbi_local, fake_tlbi_vm;
enum fake_tlbi_kind { FAKE_TLBI_IPA, FAKE_TLBI_LOCAL, FAKE_TLBI_VM };
/* Called on each (ipa is 0 for a whole VM's); for a test's model of TLBs. NULL: none. */
extern void (*fake_tlbi_observer)(struct vm *vm, u64 ipa, enum fake_tlbi_kind kind);

/*
 * The instruction caches, as far as the contract goes: page_sync_icache(pa)
 * marks pa; every leaf that makes a pool page executable (s2_fill with S2_X,
 * s2_grant_exec) takes the mark, and counts in fake_arch_x_unsynced when
 * there was none: a page whose previous owner's instructions could still be
 * in an instruction cache.
 */
extern _Atomic unsigned long fake_arch_icache_syncs, fake_arch_x_unsynced;
/* Pages s2_dcache_clean_page cleaned. */
extern _Atomic unsigned long fake_arch_dcache_pages;
/* Forget the marks and zero every counter above. */
void fake_arch_reset(void);

/*
 * Table pages a VM's first touch creates below its root, and the ones below
 * a 1 GiB block one more: the fake's geometry (four levels) in the tests' sums.
 */
#define FAKE_S2_PATH_TABLES 3

/* The tables as they are, read with the fake's format (an oracle beside the walker). */
struct fake_s2_stats {
	u32 leaves;	 /* valid leaves (a block: 512) */
	u32 tables;	 /* table pages, the root included, and one a block holds for its split */
	u32 blocks;	 /* unsplit 2 MiB blocks */
	u32 table_races; /* table pages given back after a racing fill installed one first */
};
void fake_s2_stats(struct vm *vm, struct fake_s2_stats *st);
/* The raw leaf at ipa (0 if no table leads there; a block's entry): quire/s2_entry.h for invalid ones. */
u64 fake_s2_raw(struct vm *vm, ipa_t ipa);
/* The S2_* permissions of the page mapped at ipa (0 if none). */
unsigned fake_s2_prot(struct vm *vm, ipa_t ipa);
/* Is the access flag of the page mapped at ipa set? */
bool fake_s2_young(struct vm *vm, ipa_t ipa);
#endif
