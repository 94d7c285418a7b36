/*
 * Sharing identical guest pages, copy-on-write (docs/memory.md, "Sharing").
 *
 * A scanner, on idle CPU time, hashes the resident pages of VMs that allow
 * sharing. A page all zeros is mapped to the one zero page at once; any
 * other page whose hash did not change since its last scan is looked up in
 * one table of shared pages (stable) and candidates (unstable, still
 * private), and merged only after a full byte comparison. Merged pages are
 * mapped read-only; a write is a stage-2 permission fault answered by
 * share_cow(). Images that quire.bin carries are mapped read-only into VMs
 * from the start, the same way.
 *
 * Pages merge only within a group: the VM itself (policy self) or a named
 * domain, whose salt also keys the table. The zero page is shared by all
 * but 'off' VMs.
 */
#ifndef QUIRE_SHARE_H
#define QUIRE_SHARE_H
#include <quire/vm.h>

/* Mappings of one shared page at most; more duplicates start another copy (bounds rmap walks). */
#define SHARE_MAX_REFS 256

/* Per machine page, beside its descriptor: 16 bytes. */
struct share_meta {
	u64 key;	/* salted content hash at its last scan; 0 = not hashed yet */
	pidx_t hnext;	/* next page in its table bucket */
	u32 sample;	/* page_sample_* of it at its last scan (valid with key) */
};

/* All VMs together. */
struct share_stats {
	u32 shared;	/* machine pages holding shared contents (not the zero page, not images) */
	u32 sharing;	/* guest pages mapping a shared page or an image page */
	u32 zero;	/* guest pages mapping the zero page */
	u32 saved;	/* machine pages saved: sharing + zero - shared - the zero page */
	u32 volatile_pages;
	u64 scans;	/* full scans every sharing VM has done */
	u64 scanned, merged, cow;
	u64 scan_ticks;	/* counter ticks the scanner ran */
};

/* Bytes share_init needs beside the descriptors of npages pages. */
u64 share_meta_bytes(u32 npages);
/*
 * Set up over pool p with mem (share_meta_bytes) and the images quire.bin
 * carries, which VMs may map read-only. Takes the zero page from the pool.
 */
void share_init(struct pool *p, void *mem, const struct region *images, unsigned nimages, u64 salt_seed);

/* A VM is made: its group from its policy. */
void share_vm_init(struct vm *vm);
/* A VM stops: the scanner lets go of it for good. Before its tables go. */
void share_vm_stop(struct vm *vm);
/* Give back whatever the page mapped at ipa is (private, shared, zero or image) as the VM goes. */
void share_release(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu);
/* A private page leaves its mapping for the swap disk (leaf claimed): the scanner forgets it. */
void share_forget(pidx_t i);
/* Is pa in an image VMs may map read-only? */
bool share_is_image(paddr_t pa);
/* Map the image page at pa read-only at ipa (copy-on-write): 0 or as s2_map_page. */
int share_map_image(struct vm *vm, ipa_t ipa, paddr_t pa, unsigned cpu);
/* A write to a read-only shared, zero or image page (a permission fault): the writer's own copy. */
enum vio_result share_cow(struct vm *vm, ipa_t page, unsigned cpu);

/*
 * Scan on idle time: up to each VM's pages per slice, refilled every
 * slice_ticks; stops early when stop() says the CPU has work. One CPU scans
 * at a time (others return 0). Returns pages hashed.
 */
unsigned share_scan(unsigned cpu, u64 now, u64 slice_ticks, bool (*stop)(void));
/* When the scanner next has pages to scan (~0: never, nobody shares). */
u64 share_next_wake(u64 now, u64 slice_ticks);
/* Counter ticks the scanner ran, added up by the arch around share_scan. */
void share_add_ticks(u64 ticks);
void share_stats(struct share_stats *st);
/* Set a VM's scan rate (the monitor): pages per slice (0 stops scanning it); -1 if it never shares. */
int share_set_rate(struct vm *vm, u32 pages);

/*
 * The arch layer's (beside page_sync_for_guest in quire/pool.h): copy the
 * page at src to the page at dst and clean and invalidate dst to PoC, for a
 * guest with its caches off; one pass over the lines where page_va and
 * page_sync_for_guest take two.
 */
void page_copy_for_guest(paddr_t dst, paddr_t src);
/* The arch layer's too: do the pages at pa and pb hold the same 4096 bytes? */
bool page_same(paddr_t pa, paddr_t pb);

/* Page hashes (64-bit): CRC32C in two lanes where the CPU has it, else multiply-based. */
u64 page_hash_crc(const void *page);
u64 page_hash_mul(const void *page);
/* A sample of the page (16 bytes of every 128), 32 bits: CRC32C, or multiply-based. */
u32 page_sample_crc(const void *page);
u32 page_sample_mul(const void *page);
/* The one the scanner uses; tests may point it at a weak one to force collisions. */
extern u64 (*share_hash)(const void *page);
const char *share_hash_name(void);
#endif
