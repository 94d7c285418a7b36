/*
 * Reading the host DT: reg and interrupts of a node, and the notes on what
 * Quire refused. Addresses in reg properties are bus addresses; they are
 * translated through every parent's ranges (the Pi 4 puts its GIC and UART
 * behind /soc ranges).
 */
#include <stdarg.h>
#include <string.h>
#include "machine_priv.h"

u64 dt_read_cells(const fdt32_t *p, int n)
{
	u64 v = 0;

	while (n-- > 0)
		v = (v << 32) | fdt32_to_cpu(*p++);
	return v;
}

/*
 * Parents of every node, found in one walk: libfdt's fdt_parent_offset walks
 * from the root each time, and QEMU's DT has dozens of virtio nodes.
 */
#define DT_MAX_NODES 1024
static struct {
	const void *fdt;
	int n;
	int off[DT_MAX_NODES], parent[DT_MAX_NODES];
} tree;

void dt_index_tree(const void *fdt)
{
	int stack[64], depth = 0, node = 0;

	tree.fdt = fdt;
	tree.n = 0;
	for (node = 0; node >= 0 && tree.n < DT_MAX_NODES && depth >= 0;
	     node = fdt_next_node(fdt, node, &depth)) {
		if (depth >= (int)ARRAY_SIZE(stack))
			break;
		stack[depth] = node;
		tree.off[tree.n] = node;
		tree.parent[tree.n++] = depth ? stack[depth - 1] : -FDT_ERR_NOTFOUND;
	}
}

/* Parents are looked up in the blob again: it may move or change. */
void dt_forget_tree(void)
{
	tree.fdt = NULL;
}

static int parent_of(const void *fdt, int node)
{
	int lo = 0, hi = tree.n - 1;

	if (tree.fdt != fdt)
		return fdt_parent_offset(fdt, node);
	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (tree.off[mid] == node)
			return tree.parent[mid];
		if (tree.off[mid] < node)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return fdt_parent_offset(fdt, node);
}

bool dt_node_enabled(const void *fdt, int node)
{
	const char *s = fdt_getprop(fdt, node, "status", NULL);

	return !s || !strcmp(s, "okay") || !strcmp(s, "ok");
}

/* Translate a bus address of a node's reg into a CPU physical address. */
static int translate(const void *fdt, int node, u64 *addr)
{
	int bus = parent_of(fdt, node);

	while (bus > 0) {
		int parent = parent_of(fdt, bus);
		int len, cac, pac, csc, step;
		const fdt32_t *r = fdt_getprop(fdt, bus, "ranges", &len);
		bool found = false;

		if (parent < 0)
			return parent;
		if (!r)
			return -FDT_ERR_NOTFOUND; /* bus not mapped into the CPU's space */
		cac = fdt_address_cells(fdt, bus);
		pac = fdt_address_cells(fdt, parent);
		csc = fdt_size_cells(fdt, bus);
		if (cac < 0 || pac < 0 || csc < 0 || cac > 2 || pac > 2 || csc > 2)
			return -FDT_ERR_BADNCELLS;
		step = (cac + pac + csc) * 4;
		if (len == 0)
			found = true; /* empty ranges: identity */
		for (; !found && len >= step; len -= step, r += step / 4) {
			u64 cb = dt_read_cells(r, cac), pb = dt_read_cells(r + cac, pac);
			u64 sz = dt_read_cells(r + cac + pac, csc);

			if (*addr >= cb && *addr - cb < sz) {
				*addr = *addr - cb + pb;
				found = true;
			}
		}
		if (!found)
			return -FDT_ERR_NOTFOUND;
		bus = parent;
	}
	return 0;
}

/* The idx-th (address, size) pair of a node's reg, translated. */
int dt_reg(const void *fdt, int node, int idx, struct region *out)
{
	int parent = parent_of(fdt, node);
	int ac, sc, len;
	const fdt32_t *p;

	if (parent < 0)
		return parent;
	ac = fdt_address_cells(fdt, parent);
	sc = fdt_size_cells(fdt, parent);
	if (ac < 1 || ac > 2 || sc < 0 || sc > 2)
		return -FDT_ERR_BADNCELLS;
	p = fdt_getprop(fdt, node, "reg", &len);
	if (!p)
		return len;
	if ((idx + 1) * (ac + sc) * 4 > len)
		return -FDT_ERR_NOTFOUND;
	p += idx * (ac + sc);
	out->base = dt_read_cells(p, ac);
	out->size = dt_read_cells(p + ac, sc);
	return translate(fdt, node, &out->base);
}

/* INTID of the idx-th interrupt of a GIC-style 3-cell specifier. */
int dt_irq(const void *fdt, int node, int idx, u32 *intid)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, node, "interrupts", &len);

	if (!p)
		return len;
	if ((idx + 1) * 12 > len)
		return -FDT_ERR_NOTFOUND;
	p += idx * 3;
	/* Cell 0: 0 = SPI (INTID 32+), 1 = PPI (INTID 16+). */
	*intid = fdt32_to_cpu(p[1]) + (fdt32_to_cpu(p[0]) == 1 ? 16 : 32);
	return 0;
}

/* One line of m->notes: what Quire refused, changed or left out, and why. */
void __printf(2, 3) dt_note(struct machine *m, const char *fmt, ...)
{
	char line[256];
	size_t len = strnlen(m->notes, sizeof(m->notes));
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len + sizeof("quire: host DT: \n") + strlen(line) > sizeof(m->notes)) {
		m->notes_lost++;
		return;
	}
	q_snprintf(m->notes + len, sizeof(m->notes) - len, "quire: host DT: %s\n", line);
}

const char *dt_path_of(const void *fdt, int node, char *buf, int len)
{
	if (fdt_get_path(fdt, node, buf, len))
		copy_str(buf, len, fdt_get_name(fdt, node, NULL));
	return buf;
}

void machine_note(struct machine *m, const char *line)
{
	dt_note(m, "%s", line);
}
