/* Shared by the sharing mechanics (share.c), merging (share_merge.c) and the scanner (share_scan.c). */
#ifndef CORE_SHARE_PRIV_H
#define CORE_SHARE_PRIV_H
#include <quire/share.h>
#include <quire/spinlock.h>

/*
 * The reverse map: one entry per (VM, guest page) mapping a shared page, in
 * one open-addressing table keyed by the pair (linear probing from the
 * key's home slot, no tombstones: a removal shifts later entries back), so
 * a COW break finds the writer's entry in a probe or two instead of walking
 * a chain of up to SHARE_MAX_REFS. Nothing needs a page's entries in a
 * chain: they are only ever added and removed by (VM, guest page).
 */
struct rmap_entry {
	u32 vm_gpn; /* VM id << RMAP_VM_SHIFT | guest page number; 0: a free slot (VM ids start at 1) */
	pidx_t page; /* the shared page it maps */
};
#define RMAP_VM_SHIFT 28

struct share_ctx {
	spinlock_t lock;	/* the table, the rmap, shared pages' refcounts, VMs' 'live' */
	struct pool *pool;
	struct share_meta *meta; /* per machine page */
	pidx_t *bucket;		/* table heads, chained through meta[].hnext */
	u32 bucket_mask;
	struct rmap_entry *rmap;
	u32 rmap_cap;	/* slots */
	u32 rmap_used, rmap_limit; /* entries; at most rmap_limit (7/8 of the slots: probes stay short) */
	bool rmap_full_logged;
	pidx_t zero_pidx;
	paddr_t zero_pa;
	u64 zero_hash;
	_Atomic u32 shared_pages;
};
extern struct share_ctx sh;

static inline u8 share_flags(pidx_t i)
{
	return atomic_load_explicit(&pool_desc(sh.pool, i)->flags, memory_order_relaxed);
}

static inline void share_set_flags(pidx_t i, u8 f)
{
	atomic_store_explicit(&pool_desc(sh.pool, i)->flags, f, memory_order_relaxed);
}

/* The table key of content hash h in a group: salted, never 0. */
u64 share_salted(u64 h, u8 group);
void share_table_insert(pidx_t i, u64 key);
void share_table_remove(pidx_t i);
bool share_rmap_add(pidx_t s, const struct vm *vm, u64 gpn);
/* The rmap slot an entry with key vm_gpn is looked for from. */
static inline u32 share_rmap_home(u32 vm_gpn)
{
	/* Fibonacci hashing (neighbouring pages land far apart), scaled to the slots. */
	return (u32)(((u64)(vm_gpn * 0x9e3779b1u) * sh.rmap_cap) >> 32);
}
/* A private page leaves its VM (merged away, or the VM goes): out of the table, back to the pool. */
void share_drop_private(struct vm *vm, pidx_t i, unsigned cpu, bool zeroed);
/* One mapping of shared page s goes (out of its rmap); the last one frees it. Lock held. */
void share_drop_ref(pidx_t s, const struct vm *vm, u64 gpn, unsigned cpu);

/*
 * The scanner's step in vm: the next mapped page from its cursor is hashed
 * and merged, remembered, or noted as changed.
 */
enum { SCAN_NOT_LIVE, SCAN_PAGE, SCAN_WRAPPED };
int share_scan_next(struct vm *vm, unsigned cpu);
/* Machine pages holding shared contents now. */
u32 share_shared_pages(void);
#endif
