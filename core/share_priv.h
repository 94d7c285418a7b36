/* Shared by the sharing mechanics (share.c), merging (share_merge.c) and the scanner (share_scan.c). */
#ifndef CORE_SHARE_PRIV_H
#define CORE_SHARE_PRIV_H
#include <quire/share.h>
#include <quire/spinlock.h>

struct rmap_entry {
	u32 next;   /* RMAP_NONE ends a chain */
	u32 vm_gpn; /* VM id << RMAP_VM_SHIFT | guest page number */
};
#define RMAP_NONE 0xffffffffu
#define RMAP_VM_SHIFT 28

struct share_ctx {
	spinlock_t lock;	/* the table, the rmap, shared pages' refcounts, VMs' 'live' */
	struct pool *pool;
	struct share_meta *meta; /* per machine page */
	pidx_t *bucket;		/* table heads, chained through meta[].hnext */
	u32 bucket_mask;
	struct rmap_entry *rmap;
	u32 rmap_free, rmap_cap;
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
