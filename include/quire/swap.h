/*
 * Swapping guest pages to the swap disk (docs/memory.md, "Swap"). A VM with
 * swap space (swap-mib) holds at most its resident limit of private pages;
 * past it, a clock over its pages, using the stage-2 access flag, picks the
 * coldest, writes them out and frees each page once its write completed.
 * A swapped page lives in its invalid stage-2 leaf as a slot number
 * (quire/s2_entry.h); the next access reads it back while the vCPU waits.
 */
#ifndef QUIRE_SWAP_H
#define QUIRE_SWAP_H
#include <quire/vm.h>

/* Pages one reclaim writes out at most (one disk request each run of consecutive slots). */
#define SWAP_BATCH 32

struct swap_stats {
	u64 slots, used;	/* the disk's slots, and those holding pages */
	u64 outs, ins;		/* pages written out, read back */
	u64 out_reqs, in_reqs;	/* ... in so many disk requests */
	u64 zero;		/* cold pages found all zero: dropped, no disk */
	u64 waits;		/* faults that waited for the disk */
	u64 out_us, in_us;	/* time requests were on the disk, summed */
	u64 in_cpu_ticks;	/* counter ticks Quire spent on swap-ins (fault, completion, read-ahead trigger; not the write-out they start), summed */
	u64 errors;		/* requests the disk failed */
	u64 lost;		/* pages of requests the disk failed and would not reset for: never used again */
	u64 clean;		/* pages evicted with their copy still on the disk: no write */
	u64 ahead, ahead_used;	/* pages read ahead of a fault, and those then used */
};

/* After blk_init: the slot map over the disk, if there is one (its pages from p). */
void swap_init(struct pool *p, unsigned cpu);
/* There is a disk in use (false for good once the driver takes a broken disk out of use). */
bool swap_enabled(void);
/* A VM is made: whether and how much it may swap, from its config. */
void swap_vm_init(struct vm *vm);
/* Nothing of the VM's is on its way to or from the disk (its memory may go). */
bool swap_vm_idle(struct vm *vm);
/* A swapped page's slot goes back as its VM goes (s2_destroy's callback). */
void swap_release(struct vm *vm, u64 slot, unsigned cpu);
/* s2_destroy's page callback: share_release, and a clean page's slot goes back too. */
void swap_page_release(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu);

/*
 * The violation handler's part. swap_fault: the leaf in slot (found
 * non-empty by s2_prepare) may hold a swapped page: read it back (VIO_WAIT),
 * wait for one in transit (VIO_WAIT), or VIO_RACED if it is something else.
 */
enum vio_result swap_fault(struct vm *vm, ipa_t page, struct s2_slot *slot, bool write, unsigned cpu);
/*
 * The VM is at its resident limit: start writing out its coldest pages and
 * answer VIO_WAIT, or VIO_STOP (stopped: the swap space is full, logged) or
 * VIO_SEA_QUOTA if it has no swap.
 */
enum vio_result swap_make_room(struct vm *vm, unsigned cpu);
/* Below the limit but near it: write out cold pages ahead, without waiting (never keep). */
void swap_ahead(struct vm *vm, ipa_t keep, unsigned cpu);
/* An access-flag fault found the page read ahead and now used: read further ahead. */
void swap_ahead_used(struct vm *vm, ipa_t page, unsigned cpu);
/*
 * A write to a read-only page: if it is one read back from swap and still
 * clean, it becomes writable and its slot free (VIO_MAPPED or VIO_RACED);
 * else VIO_UNHANDLED (copy-on-write's business).
 */
enum vio_result swap_write_fault(struct vm *vm, ipa_t page);

/* A vCPU that got VIO_WAIT waits until this changes (a request completed, a slot came free). */
u64 swap_gen(void);
void swap_stats(struct swap_stats *st);
#endif
