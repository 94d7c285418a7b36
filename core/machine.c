/*
 * Build struct machine from the host device tree with libfdt.
 *
 * Addresses in reg properties are bus addresses; they are translated through
 * every parent's ranges (the Pi 4 puts its GIC and UART behind /soc ranges).
 */
#include <libfdt.h>
#include <string.h>
#include <quire/machine.h>
#include <quire/printf.h>

#define FDT_MAX_SIZE (2UL << 20) /* Linux's limit too */

static u64 read_cells(const fdt32_t *p, int n)
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

static void index_tree(const void *fdt)
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

static bool node_enabled(const void *fdt, int node)
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
			u64 cb = read_cells(r, cac), pb = read_cells(r + cac, pac);
			u64 sz = read_cells(r + cac + pac, csc);

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
static int dt_reg(const void *fdt, int node, int idx, struct region *out)
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
	out->base = read_cells(p, ac);
	out->size = read_cells(p + ac, sc);
	return translate(fdt, node, &out->base);
}

/* INTID of the idx-th interrupt of a GIC-style 3-cell specifier. */
static int dt_irq(const void *fdt, int node, int idx, u32 *intid)
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

static void copy_str(char *dst, size_t n, const char *src)
{
	q_snprintf(dst, n, "%s", src ? src : "");
}

static int parse_memory(const void *fdt, struct machine *m)
{
	int node = -1;

	while ((node = fdt_node_offset_by_prop_value(fdt, node, "device_type", "memory",
						      sizeof("memory"))) >= 0) {
		struct region r;

		if (!node_enabled(fdt, node))
			continue;
		for (int i = 0; dt_reg(fdt, node, i, &r) == 0; i++) {
			unsigned j;

			if (!r.size)
				continue;
			if (m->nmem == MAX_MEM_REGIONS)
				return -FDT_ERR_NOSPACE;
			/* Keep regions sorted by base. */
			for (j = m->nmem; j > 0 && m->mem[j - 1].base > r.base; j--)
				m->mem[j] = m->mem[j - 1];
			m->mem[j] = r;
			m->nmem++;
			m->mem_total += r.size;
		}
	}
	return 0;
}

static void add_reserved(struct machine *m, paddr_t base, u64 size, const char *name)
{
	if (m->nreserved == MAX_RESERVED || !size)
		return;
	m->reserved[m->nreserved].r.base = base;
	m->reserved[m->nreserved].r.size = size;
	copy_str(m->reserved[m->nreserved].name, sizeof(m->reserved[0].name), name);
	m->nreserved++;
}

static void parse_reserved(const void *fdt, struct machine *m)
{
	int n = fdt_num_mem_rsv(fdt), node, child;

	for (int i = 0; i < n; i++) {
		u64 base, size;

		if (fdt_get_mem_rsv(fdt, i, &base, &size) == 0)
			add_reserved(m, base, size, "memreserve");
	}
	node = fdt_path_offset(fdt, "/reserved-memory");
	if (node < 0)
		return;
	fdt_for_each_subnode(child, fdt, node) {
		struct region r;

		if (!node_enabled(fdt, child))
			continue;
		for (int i = 0; dt_reg(fdt, child, i, &r) == 0; i++)
			add_reserved(m, r.base, r.size, fdt_get_name(fdt, child, NULL));
	}
}

static int parse_cpus(const void *fdt, struct machine *m)
{
	int cpus = fdt_path_offset(fdt, "/cpus"), node, ac;

	if (cpus < 0)
		return cpus;
	ac = fdt_address_cells(fdt, cpus);
	if (ac < 1 || ac > 2)
		return -FDT_ERR_BADNCELLS;
	fdt_for_each_subnode(node, fdt, cpus) {
		const char *type = fdt_getprop(fdt, node, "device_type", NULL);
		const char *method = fdt_getprop(fdt, node, "enable-method", NULL);
		const fdt32_t *reg, *rel;
		struct cpu_desc *c;
		int len;

		if (!type || strcmp(type, "cpu") || !node_enabled(fdt, node))
			continue;
		reg = fdt_getprop(fdt, node, "reg", &len);
		if (!reg || len < ac * 4)
			continue;
		if (m->ncpus == MAX_CPUS) {
			m->ncpus_ignored++;
			continue;
		}
		c = &m->cpu[m->ncpus++];
		c->mpidr = read_cells(reg, ac);
		c->method = CPU_ENABLE_NONE;
		if (method && !strcmp(method, "psci")) {
			c->method = CPU_ENABLE_PSCI;
		} else if (method && !strcmp(method, "spin-table")) {
			rel = fdt_getprop(fdt, node, "cpu-release-addr", &len);
			if (rel && (len == 8 || len == 4)) {
				c->method = CPU_ENABLE_SPIN_TABLE;
				c->release_addr = read_cells(rel, len / 4);
			}
		}
	}
	return m->ncpus ? 0 : -FDT_ERR_NOTFOUND;
}

static void parse_psci(const void *fdt, struct machine *m)
{
	static const char *const compat[] = { "arm,psci-1.0", "arm,psci-0.2", "arm,psci" };

	for (unsigned i = 0; i < ARRAY_SIZE(compat); i++) {
		int node = fdt_node_offset_by_compatible(fdt, -1, compat[i]);
		const char *method;
		const fdt32_t *fn;
		int len;

		if (node < 0 || !node_enabled(fdt, node))
			continue;
		method = fdt_getprop(fdt, node, "method", NULL);
		if (method && !strcmp(method, "smc"))
			m->psci.conduit = PSCI_CONDUIT_SMC;
		else if (method && !strcmp(method, "hvc"))
			m->psci.conduit = PSCI_CONDUIT_HVC;
		else
			return;
		/* PSCI 0.2+ fixes the IDs; 0.1 names them in the node. */
		m->psci.cpu_on = 0xc4000003;
		if (i == 2) {
			fn = fdt_getprop(fdt, node, "cpu_on", &len);
			if (fn && len >= 4)
				m->psci.cpu_on = fdt32_to_cpu(*fn);
			else
				m->psci.conduit = PSCI_CONDUIT_NONE;
		}
		return;
	}
}

static bool set_uart(const void *fdt, struct machine *m, int node)
{
	struct region r;

	if (dt_reg(fdt, node, 0, &r))
		return false;
	m->uart.found = true;
	m->uart.base = r.base;
	m->uart.size = r.size;
	if (dt_irq(fdt, node, 0, &m->uart.irq))
		m->uart.irq = 0;
	copy_str(m->uart.compatible, sizeof(m->uart.compatible),
		 fdt_getprop(fdt, node, "compatible", NULL));
	if (fdt_get_path(fdt, node, m->uart.path, sizeof(m->uart.path)))
		m->uart.path[0] = '\0';
	return true;
}

/*
 * The console is /chosen/stdout-path when that is a PL011 (the one UART
 * Quire drives); otherwise the first enabled PL011, as on a Pi 4 whose
 * stdout-path names the mini UART.
 */
static void parse_uart(const void *fdt, struct machine *m)
{
	int chosen = fdt_path_offset(fdt, "/chosen"), node = -FDT_ERR_NOTFOUND;
	const char *path = chosen >= 0 ? fdt_getprop(fdt, chosen, "stdout-path", NULL) : NULL;

	if (path) {
		const char *colon = strchr(path, ':');
		int len = colon ? colon - path : (int)strlen(path);

		if (path[0] == '/') {
			node = fdt_path_offset_namelen(fdt, path, len);
		} else {
			const char *alias = fdt_get_alias_namelen(fdt, path, len);
			node = alias ? fdt_path_offset(fdt, alias) : -FDT_ERR_NOTFOUND;
		}
	}
	if (node >= 0 && fdt_node_check_compatible(fdt, node, "arm,pl011") == 0 &&
	    set_uart(fdt, m, node))
		return;
	for (node = -1; (node = fdt_node_offset_by_compatible(fdt, node, "arm,pl011")) >= 0;)
		if (node_enabled(fdt, node) && set_uart(fdt, m, node))
			return;
}

static void parse_gic(const void *fdt, struct machine *m)
{
	static const char *const v2[] = { "arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic",
					   "arm,cortex-a9-gic" };

	for (unsigned i = 0; i < ARRAY_SIZE(v2); i++) {
		int node = fdt_node_offset_by_compatible(fdt, -1, v2[i]);

		if (node < 0 || !node_enabled(fdt, node))
			continue;
		copy_str(m->gic.compatible, sizeof(m->gic.compatible), v2[i]);
		if (dt_reg(fdt, node, 0, &m->gic.dist) || dt_reg(fdt, node, 1, &m->gic.cpu))
			return;
		m->gic.found = true;
		/* GICH and GICV exist only with the virtualization extensions. */
		if (dt_reg(fdt, node, 2, &m->gic.gich) || dt_reg(fdt, node, 3, &m->gic.gicv)) {
			memset(&m->gic.gich, 0, sizeof(m->gic.gich));
			memset(&m->gic.gicv, 0, sizeof(m->gic.gicv));
		}
		if (dt_irq(fdt, node, 0, &m->gic.maint_irq))
			m->gic.maint_irq = 0;
		return;
	}
	if (fdt_node_offset_by_compatible(fdt, -1, "arm,gic-v3") >= 0)
		copy_str(m->gic.compatible, sizeof(m->gic.compatible), "arm,gic-v3");
}

static void parse_timer(const void *fdt, struct machine *m)
{
	int node = fdt_node_offset_by_compatible(fdt, -1, "arm,armv8-timer");
	const fdt32_t *f;
	int len;

	if (node < 0)
		return;
	if (dt_irq(fdt, node, 0, &m->timer.irq_sec_phys) || dt_irq(fdt, node, 1, &m->timer.irq_phys) ||
	    dt_irq(fdt, node, 2, &m->timer.irq_virt) || dt_irq(fdt, node, 3, &m->timer.irq_hyp_phys))
		return;
	f = fdt_getprop(fdt, node, "clock-frequency", &len);
	m->timer.clock_frequency = f && len >= 4 ? fdt32_to_cpu(*f) : 0;
	m->timer.found = true;
}

static void parse_virtio(const void *fdt, struct machine *m)
{
	int node = -1;

	while ((node = fdt_node_offset_by_compatible(fdt, node, "virtio,mmio")) >= 0) {
		if (m->nvirtio == MAX_VIRTIO || !node_enabled(fdt, node))
			continue;
		if (dt_reg(fdt, node, 0, &m->virtio[m->nvirtio].r))
			continue;
		if (dt_irq(fdt, node, 0, &m->virtio[m->nvirtio].irq))
			m->virtio[m->nvirtio].irq = 0;
		m->nvirtio++;
	}
}

int machine_cpu_index(const struct machine *m, u64 mpidr)
{
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->cpu[i].mpidr == mpidr)
			return i;
	return -1;
}

/* linux,initrd-start/-end: one or two cells each, as loaders write them. */
static bool chosen_addr(const void *fdt, int chosen, const char *name, u64 *out)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, chosen, name, &len);

	if (!p || (len != 4 && len != 8))
		return false;
	*out = len == 4 ? fdt32_to_cpu(p[0]) : (u64)fdt32_to_cpu(p[0]) << 32 | fdt32_to_cpu(p[1]);
	return true;
}

static void parse_boot_module(const void *fdt, int chosen, struct machine *m)
{
	u64 start, end;

	if (chosen_addr(fdt, chosen, "linux,initrd-start", &start) &&
	    chosen_addr(fdt, chosen, "linux,initrd-end", &end) && end > start)
		m->boot_module = (struct region){ start, end - start };
}

int machine_from_fdt(const void *fdt, struct machine *m, char *err, size_t errlen)
{
	int rc;

	memset(m, 0, sizeof(*m));
	tree.fdt = NULL;
	rc = fdt_check_header(fdt);
	if (rc) {
		q_snprintf(err, errlen, "device tree at %p is not valid: %s", fdt, fdt_strerror(rc));
		return rc;
	}
	if (fdt_totalsize(fdt) > FDT_MAX_SIZE) {
		q_snprintf(err, errlen, "device tree at %p claims %u bytes, more than the %lu allowed",
			   fdt, fdt_totalsize(fdt), FDT_MAX_SIZE);
		return -FDT_ERR_TRUNCATED;
	}
	rc = fdt_check_full(fdt, fdt_totalsize(fdt));
	if (rc) {
		q_snprintf(err, errlen, "device tree at %p is corrupt: %s", fdt, fdt_strerror(rc));
		return rc;
	}
	index_tree(fdt);
	copy_str(m->model, sizeof(m->model), fdt_getprop(fdt, 0, "model", NULL));
	rc = parse_memory(fdt, m);
	if (rc) {
		q_snprintf(err, errlen, "device tree has more than %d memory regions", MAX_MEM_REGIONS);
		return rc;
	}
	if (!m->nmem) {
		q_snprintf(err, errlen, "device tree has no memory node with a usable reg: no RAM to manage");
		return -FDT_ERR_NOTFOUND;
	}
	rc = parse_cpus(fdt, m);
	if (rc) {
		q_snprintf(err, errlen, "device tree has no usable /cpus node: %s", fdt_strerror(rc));
		return rc;
	}
	parse_reserved(fdt, m);
	parse_psci(fdt, m);
	parse_uart(fdt, m);
	parse_gic(fdt, m);
	parse_timer(fdt, m);
	parse_virtio(fdt, m);
	int chosen = fdt_path_offset(fdt, "/chosen");
	if (chosen >= 0) {
		copy_str(m->bootargs, sizeof(m->bootargs), fdt_getprop(fdt, chosen, "bootargs", NULL));
		parse_boot_module(fdt, chosen, m);
	}
	tree.fdt = NULL; /* the blob may move or change after we return */
	return 0;
}
