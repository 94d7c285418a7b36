/*
 * A host fake of the stage-2 translation functions declared in quire/vm.h.
 *
 * Shape: a root page, then one "level-3" table page per 2 MiB of IPA space
 * first touched. Table pages come from vmpool_take (charged to the VM,
 * counted in vm->pool.pgtables, flagged MP_PGTABLE) and are real memory
 * (hostmem): a leaf entry is a u64 in its table page, installed by CAS, and a
 * table by CAS into a directory, so racing vCPU threads see what the real
 * lock-free tables give them: one winner, -EEXIST for the others.
 * The directory is an array over the VM's RAM plus a small open-addressed
 * fallback for IPAs outside it.
 */
#ifndef FAKE_S2_H
#define FAKE_S2_H
#include <quire/vm.h>

struct fake_s2_stats {
	u64 maps;	  /* successful s2_fill */
	u64 eexist;	  /* s2_fill found a valid entry */
	u64 table_races;  /* a table page lost its CAS and was given back */
	u32 leaves;	  /* valid leaf entries now */
	u32 tables;	  /* table pages now, root included */
};

/* Yield the CPU just before installing a table or a leaf, to make races likely. */
extern _Atomic bool fake_s2_yield;

void fake_s2_stats(struct vm *vm, struct fake_s2_stats *st);
/* s2_claim calls that succeeded (each is a TLB invalidation on the real tables). */
extern _Atomic unsigned long fake_s2_claims;
/* The S2_* permissions of the page mapped at ipa (0 if none). */
unsigned fake_s2_prot(struct vm *vm, ipa_t ipa);
/* s2_flush_young calls. */
extern _Atomic unsigned long fake_s2_flushes;
/* Is the access flag of the page mapped at ipa set? */
bool fake_s2_young(struct vm *vm, ipa_t ipa);
/* The raw leaf at ipa (0 if no table): quire/s2_entry.h for invalid ones. */
u64 fake_s2_raw(struct vm *vm, ipa_t ipa);

/*
 * Cache and TLB maintenance, as the arch does it and as the fault path must
 * ask for it. page_sync_icache(pa) is defined here: it marks pa; every leaf
 * that makes a pool page executable (s2_fill with S2_X, s2_grant_exec; and
 * s2_install, which syncs by itself as the arch does) takes the mark, and
 * counts in fake_s2_x_unsynced when there was none: a page whose previous
 * owner's instructions could still be in an instruction cache.
 */
extern _Atomic unsigned long fake_s2_icache_syncs, fake_s2_x_unsynced;
/* s2_flush_tlb_local calls and the local TLB invalidations of s2_grant_exec. */
extern _Atomic unsigned long fake_s2_local_flushes;
/* VM-wide TLB flushes by s2_destroy, done before the first page goes back. */
extern _Atomic unsigned long fake_s2_vm_flushes;
/* Forget the marks and zero the counters above. */
void fake_s2_cache_reset(void);
#endif
