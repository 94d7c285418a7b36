/* Host stand-in for machine memory: see hostmem.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <quire/pool.h>
#include <quire/share.h>
#include "hostmem.h"

#define MAX_SPANS 32

static struct span {
	paddr_t base; /* page aligned */
	u64 size;     /* whole pages */
	u8 *host;
	bool pool; /* backs a hostmem_pool */
	_Atomic u8 *zeroed; /* per page: page_zero() left it zero and cleaned, and nobody said it was written since */
} spans[MAX_SPANS];
static unsigned nspans;

_Atomic unsigned long hostmem_zero_calls;

void *hostmem_add(paddr_t base, u64 size)
{
	paddr_t start = ALIGN_DOWN(base, PAGE_SIZE), end = ALIGN_UP(base + size, PAGE_SIZE);
	struct span *s;

	if (nspans == MAX_SPANS) {
		fprintf(stderr, "hostmem: too many spans\n");
		abort();
	}
	s = &spans[nspans++];
	s->base = start;
	s->size = end - start;
	s->pool = false;
	s->host = aligned_alloc(PAGE_SIZE, s->size);
	if (!s->host) {
		fprintf(stderr, "hostmem: out of host memory (%llu bytes)\n", (unsigned long long)s->size);
		abort();
	}
	memset(s->host, 0x5a, s->size);
	s->zeroed = calloc(s->size / PAGE_SIZE, 1);
	if (!s->zeroed) {
		fprintf(stderr, "hostmem: out of host memory\n");
		abort();
	}
	return s->host + (base - start);
}

void hostmem_reset(void)
{
	for (unsigned i = 0; i < nspans; i++) {
		free(spans[i].host);
		free((void *)spans[i].zeroed);
	}
	nspans = 0;
}

static struct span *span_of(paddr_t pa)
{
	for (unsigned i = 0; i < nspans; i++)
		if (pa >= spans[i].base && pa - spans[i].base < spans[i].size)
			return &spans[i];
	fprintf(stderr, "hostmem: machine address 0x%llx is not backed\n", (unsigned long long)pa);
	abort();
}

static _Atomic u8 *zeroed_mark(paddr_t pa)
{
	struct span *s = span_of(pa);

	return &s->zeroed[(pa - s->base) / PAGE_SIZE];
}

void hostmem_written(paddr_t pa)
{
	atomic_store_explicit(zeroed_mark(pa), 0, memory_order_relaxed);
}

void hostmem_write(paddr_t pa, u8 byte)
{
	hostmem_written(pa);
	memset(hostmem_ptr(ALIGN_DOWN(pa, PAGE_SIZE)), byte, PAGE_SIZE);
}

bool hostmem_page_zero_clean(paddr_t pa)
{
	return atomic_load_explicit(zeroed_mark(pa), memory_order_relaxed) && hostmem_page_is_zero(pa);
}

void *hostmem_ptr(paddr_t pa)
{
	for (unsigned i = 0; i < nspans; i++)
		if (pa >= spans[i].base && pa - spans[i].base < spans[i].size)
			return spans[i].host + (pa - spans[i].base);
	fprintf(stderr, "hostmem: machine address 0x%llx is not backed\n", (unsigned long long)pa);
	abort();
}

bool hostmem_in_pool(paddr_t pa)
{
	for (unsigned i = 0; i < nspans; i++)
		if (pa >= spans[i].base && pa - spans[i].base < spans[i].size)
			return spans[i].pool;
	return false;
}

bool hostmem_page_is_zero(paddr_t pa)
{
	static const u8 zero[PAGE_SIZE];

	return !memcmp(hostmem_ptr(pa), zero, PAGE_SIZE);
}

void page_zero(paddr_t pa)
{
	if (pa & (PAGE_SIZE - 1)) {
		fprintf(stderr, "page_zero: unaligned 0x%llx\n", (unsigned long long)pa);
		abort();
	}
	memset(hostmem_ptr(pa), 0, PAGE_SIZE);
	/* What DC ZVA + DC CIVAC give: zero, and cleaned to PoC. */
	atomic_store_explicit(zeroed_mark(pa), 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hostmem_zero_calls, 1, memory_order_relaxed);
}

/* Host memory is coherent: nothing to clean or invalidate, but the page must exist. */
void page_sync_for_guest(paddr_t pa)
{
	(void)hostmem_ptr(pa);
}

/* What the arch's copy gives: the bytes, cleaned to PoC (nothing to do here); no longer as page_zero left it. */
void page_copy_for_guest(paddr_t dst, paddr_t src)
{
	memcpy(hostmem_ptr(dst), hostmem_ptr(src), PAGE_SIZE);
	hostmem_written(dst);
}

bool page_same(paddr_t pa, paddr_t pb)
{
	return !memcmp(hostmem_ptr(pa), hostmem_ptr(pb), PAGE_SIZE);
}

void page_sync_for_quire(paddr_t pa)
{
	(void)hostmem_ptr(pa);
}

void *page_va(paddr_t pa)
{
	return hostmem_ptr(pa);
}

void hostmem_pool(struct pool *p, paddr_t base, u32 pages, void **desc)
{
	struct machine m;

	memset(&m, 0, sizeof(m));
	m.mem[0].base = base;
	m.mem[0].size = (u64)pages * PAGE_SIZE;
	m.nmem = 1;
	m.mem_total = m.mem[0].size;
	hostmem_add(base, m.mem[0].size);
	spans[nspans - 1].pool = true;
	*desc = malloc(pool_desc_bytes(&m));
	if (!*desc || pool_init(p, &m, NULL, 0, *desc) != pages) {
		fprintf(stderr, "hostmem_pool: no pool of %u pages\n", pages);
		abort();
	}
}
