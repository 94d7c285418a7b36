/*
 * The host DT's RAM and reservations: memory banks sorted and merged,
 * /memreserve/ and /reserved-memory kept apart however many there are.
 */
#include <string.h>
#include "machine_priv.h"

/* The RAM bank r overlaps, or NULL. */
const struct region *machine_ram_under(const struct machine *m, struct region r)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (overlap(m->mem[i], r))
			return &m->mem[i];
	return NULL;
}

/* [base, base + size) lies inside one RAM bank (banks are merged, so inside RAM). */
bool machine_in_ram(const struct machine *m, u64 base, u64 size)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (base >= m->mem[i].base && base - m->mem[i].base <= m->mem[i].size &&
		    size <= m->mem[i].size - (base - m->mem[i].base))
			return true;
	return false;
}

void machine_sum_ram(struct machine *m)
{
	m->mem_total = 0;
	for (unsigned i = 0; i < m->nmem; i++)
		m->mem_total += m->mem[i].size;
}

int machine_parse_memory(const void *fdt, struct machine *m)
{
	struct {
		struct region r;
		int node;
	} raw[MAX_MEM_REGIONS * 4];
	unsigned n = 0;
	int node = -1;
	char path[64], path2[64];

	while ((node = fdt_node_offset_by_prop_value(fdt, node, "device_type", "memory",
						      sizeof("memory"))) >= 0) {
		struct region r;

		if (!dt_node_enabled(fdt, node))
			continue;
		for (int i = 0; dt_reg(fdt, node, i, &r) == 0; i++) {
			unsigned j;

			if (!r.size)
				continue;
			if (wraps(r.base, r.size)) {
				dt_note(m, "%s reg: bank at 0x%lx of 0x%lx bytes runs past the top of the address space, ignored",
					dt_path_of(fdt, node, path, sizeof(path)), r.base, r.size);
				continue;
			}
			if (n == ARRAY_SIZE(raw))
				return -FDT_ERR_NOSPACE;
			/* Sorted by base. */
			for (j = n; j > 0 && raw[j - 1].r.base > r.base; j--)
				raw[j] = raw[j - 1];
			raw[j].r = r;
			raw[j].node = node;
			n++;
		}
	}
	/*
	 * Merge banks that overlap or adjoin, as Linux's memblock does: a machine
	 * page in two banks would get two descriptors and go to two owners.
	 */
	for (unsigned i = 0; i < n; i++) {
		struct region *prev = m->nmem ? &m->mem[m->nmem - 1] : NULL;
		struct region r = raw[i].r;

		if (prev && r.base <= last(*prev) + 1) {
			dt_note(m, "%s reg: bank 0x%lx-0x%lx %s 0x%lx-0x%lx (%s), merged",
				dt_path_of(fdt, raw[i].node, path, sizeof(path)), r.base, last(r),
				r.base <= last(*prev) ? "overlaps" : "adjoins", prev->base, last(*prev),
				m->mem_node[m->nmem - 1]);
			if (last(r) > last(*prev))
				prev->size = last(r) - prev->base + 1;
			continue;
		}
		if (m->nmem == MAX_MEM_REGIONS)
			return -FDT_ERR_NOSPACE;
		m->mem[m->nmem] = r;
		copy_str(m->mem_node[m->nmem], sizeof(m->mem_node[0]),
			 dt_path_of(fdt, raw[i].node, path2, sizeof(path2)));
		m->nmem++;
	}
	machine_sum_ram(m);
	return 0;
}

/* While machine_parse_reserved runs: entries seen, and RAM withheld by joining neighbours to fit the table. */
static struct {
	unsigned seen;
	u64 joined;
} rsv;

/*
 * The reserved table is full. Dropping a reservation would hand firmware's
 * memory to guests, so make room instead: leave out what lies outside RAM
 * (it withholds nothing), merge what overlaps or adjoins, and if it is still
 * full, join the two closest neighbours, withholding the RAM between them.
 */
static void reserved_make_room(struct machine *m)
{
	struct reserved_region *r = m->reserved;
	unsigned n = m->nreserved, k = 0, best = 0;
	u64 gap = ~0UL;

	for (unsigned i = 1; i < n; i++) {
		struct reserved_region t = r[i];
		unsigned j;

		for (j = i; j > 0 && r[j - 1].r.base > t.r.base; j--)
			r[j] = r[j - 1];
		r[j] = t;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!machine_ram_under(m, r[i].r))
			continue;
		if (k && r[i].r.base <= last(r[k - 1].r) + 1) {
			if (last(r[i].r) > last(r[k - 1].r))
				r[k - 1].r.size = last(r[i].r) - r[k - 1].r.base + 1;
			continue;
		}
		r[k++] = r[i];
	}
	if (k == MAX_RESERVED) {
		for (unsigned i = 0; i + 1 < k; i++)
			if (r[i + 1].r.base - last(r[i].r) - 1 < gap) {
				gap = r[i + 1].r.base - last(r[i].r) - 1;
				best = i;
			}
		r[best].r.size = last(r[best + 1].r) - r[best].r.base + 1;
		memmove(&r[best + 1], &r[best + 2], (k - best - 2) * sizeof(*r));
		k--;
		rsv.joined += gap;
	}
	m->nreserved = k;
}

void machine_add_reserved(struct machine *m, paddr_t base, u64 size, const char *name, const char *what)
{
	if (!size)
		return;
	rsv.seen++;
	if (wraps(base, size)) {
		u64 top = m->nmem ? last(m->mem[m->nmem - 1]) + 1 : 0;

		dt_note(m, "%s: 0x%lx bytes at 0x%lx run past the top of the address space; %s", what, size, base,
			base < top ? "reserved to the end of RAM" : "ignored");
		if (base >= top)
			return;
		size = top - base;
	}
	if (m->nreserved == MAX_RESERVED)
		reserved_make_room(m);
	m->reserved[m->nreserved].r.base = base;
	m->reserved[m->nreserved].r.size = size;
	copy_str(m->reserved[m->nreserved].name, sizeof(m->reserved[0].name), name);
	m->nreserved++;
}

void machine_parse_reserved(const void *fdt, struct machine *m)
{
	int n = fdt_num_mem_rsv(fdt), node, child;
	char path[80], name[64];

	rsv.seen = 0;
	rsv.joined = 0;
	for (int i = 0; i < n; i++) {
		u64 base, size;

		if (fdt_get_mem_rsv(fdt, i, &base, &size) == 0) {
			q_snprintf(path, sizeof(path), "/memreserve/ entry %d", i);
			machine_add_reserved(m, base, size, "memreserve", path);
		}
	}
	node = fdt_path_offset(fdt, "/reserved-memory");
	if (node >= 0) {
		fdt_for_each_subnode(child, fdt, node) {
			struct region r;

			if (!dt_node_enabled(fdt, child))
				continue;
			q_snprintf(path, sizeof(path), "%s reg", dt_path_of(fdt, child, name, sizeof(name)));
			for (int i = 0; dt_reg(fdt, child, i, &r) == 0; i++)
				machine_add_reserved(m, r.base, r.size, fdt_get_name(fdt, child, NULL), path);
		}
	}
	if (rsv.seen > MAX_RESERVED)
		dt_note(m, "/memreserve/ and /reserved-memory: %u regions, more than the %d Quire keeps apart: "
			   "neighbours joined, %lu KiB between them withheld too",
			rsv.seen, MAX_RESERVED, (unsigned long)(rsv.joined >> 10));
}

void machine_reserve(struct machine *m, struct region r, const char *name)
{
	machine_add_reserved(m, r.base, r.size, name, name);
}
