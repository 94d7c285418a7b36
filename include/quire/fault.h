/*
 * A stage-2 abort, decoded once from ESR_EL2, FAR_EL2 and HPFAR_EL2
 * (Arm ARM D19.2: ESR_EL2 ISS encoding for Data/Instruction Aborts).
 */
#ifndef QUIRE_FAULT_H
#define QUIRE_FAULT_H
#include <quire/mpage.h>

enum fault_class {
	FAULT_ADDR_SIZE,   /* DFSC 0b0000LL */
	FAULT_TRANSLATION, /* 0b0001LL */
	FAULT_ACCESS_FLAG, /* 0b0010LL */
	FAULT_PERMISSION,  /* 0b0011LL */
	FAULT_EXTERNAL,    /* synchronous external abort, incl. on table walk */
	FAULT_ALIGNMENT,
	FAULT_TLB_CONFLICT,
	FAULT_OTHER,
};

struct s2_fault {
	u32 ec;		    /* 0x20 instruction abort, 0x24 data abort (lower EL) */
	bool instr;	    /* instruction abort (the fetch itself, or the walk for it if s1ptw) */
	bool write;	    /* the access writes: WnR of a data abort; on a walk (s1ptw), a permission fault */
	enum fault_class cls;
	u8 level;	    /* lookup level for size/translation/access/permission faults */
	u8 fsc;		    /* raw xFSC */
	bool s1ptw;	    /* fault on the stage-2 walk of a stage-1 table */
	bool cm;	    /* cache maintenance */
	bool ea;	    /* external abort type */
	bool far_valid;	    /* !FnV: FAR holds the faulting VA */
	/* Instruction syndrome, valid when isv. */
	bool isv;
	u8 sas;		    /* access size: 1 << sas bytes */
	bool sse;	    /* sign-extend */
	u8 srt;		    /* register, 31 = xzr */
	bool sf;	    /* 64-bit register */
	bool ar;	    /* acquire/release */
	bool il;	    /* 32-bit instruction */
	u64 va;		    /* FAR_EL2 */
	ipa_t ipa;	    /* HPFAR_EL2.FIPA << 12 | FAR_EL2[11:0] */
};

const char *fault_class_name(enum fault_class c);

/*
 * What the violation handler needs from the arch beyond quire/vm.h
 * (arch/arm64/stage2.c and page.c; the host's in tests/host/fake_arch.c).
 */
struct vm;
/*
 * Make the instruction caches forget the page at pa (its data is at the
 * point of coherency already): IC IVAU over it, so a stale line of the
 * page's previous owner cannot be fetched once it is mapped executable.
 */
void page_sync_icache(paddr_t pa);
/*
 * An instruction fetch from a page mapped execute-never: let the guest
 * execute it, if the leaf at ipa still maps pa (the caller has called
 * page_sync_icache(pa)). 1 if X was granted, 0 if the leaf had it already
 * (a stale TLB entry of this CPU's, which is dropped), -ENOENT if ipa no
 * longer maps pa.
 */
int s2_grant_exec(struct vm *vm, ipa_t ipa, paddr_t pa);
/* A TLB conflict abort: this CPU forgets every TLB entry of the VM (current on it). */
void s2_flush_tlb_local(struct vm *vm);
#endif
