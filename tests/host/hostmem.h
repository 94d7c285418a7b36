/*
 * Host stand-in for machine memory, for the pool and violation tests.
 *
 * Machine page numbers are 32 bits (16 TiB reach) and host heap pointers lie
 * far above that, so machine addresses here are not host pointers: a test
 * backs a range of "machine" addresses with host memory (hostmem_add) and
 * reaches a page through hostmem_ptr(pa). An address nobody backed aborts,
 * so a pool that hands out a wrong address is caught at the first touch.
 * page_zero() is defined here (memset), as the arch layer does with DC ZVA.
 */
#ifndef HOSTMEM_H
#define HOSTMEM_H
#include <stdatomic.h>
#include <quire/machine.h>
#include <quire/mpage.h>

/* Back [base, base + size), widened to whole pages, with host memory filled with 0x5a. */
void *hostmem_add(paddr_t base, u64 size);
/* Forget (and free) every backed range. */
void hostmem_reset(void);
/* The host address of machine address pa; aborts if pa is not backed. */
void *hostmem_ptr(paddr_t pa);
/* Is pa in a pool's pages (hostmem_pool)? */
bool hostmem_in_pool(paddr_t pa);
/* Is the 4 KiB page at pa all zeros? */
bool hostmem_page_is_zero(paddr_t pa);
/*
 * page_zero() marks the page it zeroes as zeroed and cleaned (DC ZVA +
 * DC CIVAC on the real arch); a test that writes a page through
 * hostmem_write() (a guest, a copy) clears the mark. A write behind its
 * back (memset on hostmem_ptr) leaves the mark, but not the zeroes.
 */
void hostmem_write(paddr_t pa, u8 byte);
/* The page at pa was written some other way (the caller's own stores): clear its mark. */
void hostmem_written(paddr_t pa);
/* Was the page at pa zeroed by page_zero(), not written through hostmem_write since, and is it still zero? */
bool hostmem_page_zero_clean(paddr_t pa);

struct pool;
/*
 * A pool over `pages` machine pages from base, backed by host memory, its
 * descriptors in malloc'd memory (*desc, for the caller to free). Aborts
 * unless every page is managed.
 */
void hostmem_pool(struct pool *p, paddr_t base, u32 pages, void **desc);

/* Calls of page_zero() so far. */
extern _Atomic unsigned long hostmem_zero_calls;
#endif
