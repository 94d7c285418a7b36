/*
 * Build struct machine from the host device tree with libfdt.
 *
 * Addresses in reg properties are bus addresses; they are translated through
 * every parent's ranges (the Pi 4 puts its GIC and UART behind /soc ranges).
 */
#include <libfdt.h>
#include <stdarg.h>
#include <string.h>
#include <quire/machine.h>
#include <quire/modules.h>
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

/* One line of m->notes: what Quire refused, changed or left out, and why. */
static void __printf(2, 3) note(struct machine *m, const char *fmt, ...)
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

static const char *path_of(const void *fdt, int node, char *buf, int len)
{
	if (fdt_get_path(fdt, node, buf, len))
		copy_str(buf, len, fdt_get_name(fdt, node, NULL));
	return buf;
}

/* base + size runs past the top of the address space (an end of exactly 2^64 too: it cannot be written). */
static bool wraps(u64 base, u64 size)
{
	return size > ~0UL - base;
}

static u64 last(struct region r)
{
	return r.base + r.size - 1;
}

static bool overlap(struct region a, struct region b)
{
	return a.size && b.size && a.base <= last(b) && b.base <= last(a);
}

/* The RAM bank r overlaps, or NULL. */
static const struct region *ram_under(const struct machine *m, struct region r)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (overlap(m->mem[i], r))
			return &m->mem[i];
	return NULL;
}

/* [base, base + size) lies inside one RAM bank (banks are merged, so inside RAM). */
static bool in_ram(const struct machine *m, u64 base, u64 size)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (base >= m->mem[i].base && base - m->mem[i].base <= m->mem[i].size &&
		    size <= m->mem[i].size - (base - m->mem[i].base))
			return true;
	return false;
}

static void sum_ram(struct machine *m)
{
	m->mem_total = 0;
	for (unsigned i = 0; i < m->nmem; i++)
		m->mem_total += m->mem[i].size;
}

static int parse_memory(const void *fdt, struct machine *m)
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

		if (!node_enabled(fdt, node))
			continue;
		for (int i = 0; dt_reg(fdt, node, i, &r) == 0; i++) {
			unsigned j;

			if (!r.size)
				continue;
			if (wraps(r.base, r.size)) {
				note(m, "%s reg: bank at 0x%lx of 0x%lx bytes runs past the top of the address space, ignored",
				     path_of(fdt, node, path, sizeof(path)), r.base, r.size);
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
			note(m, "%s reg: bank 0x%lx-0x%lx %s 0x%lx-0x%lx (%s), merged",
			     path_of(fdt, raw[i].node, path, sizeof(path)), r.base, last(r),
			     r.base <= last(*prev) ? "overlaps" : "adjoins", prev->base, last(*prev),
			     m->mem_node[m->nmem - 1]);
			if (last(r) > last(*prev))
				prev->size = last(r) - prev->base + 1;
			continue;
		}
		if (m->nmem == MAX_MEM_REGIONS)
			return -FDT_ERR_NOSPACE;
		m->mem[m->nmem] = r;
		copy_str(m->mem_node[m->nmem], sizeof(m->mem_node[0]), path_of(fdt, raw[i].node, path2, sizeof(path2)));
		m->nmem++;
	}
	sum_ram(m);
	return 0;
}

/* While parse_reserved runs: entries seen, and RAM withheld by joining neighbours to fit the table. */
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
		if (!ram_under(m, r[i].r))
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

static void add_reserved(struct machine *m, paddr_t base, u64 size, const char *name, const char *what)
{
	if (!size)
		return;
	rsv.seen++;
	if (wraps(base, size)) {
		u64 top = m->nmem ? last(m->mem[m->nmem - 1]) + 1 : 0;

		note(m, "%s: 0x%lx bytes at 0x%lx run past the top of the address space; %s", what, size, base,
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

static void parse_reserved(const void *fdt, struct machine *m)
{
	int n = fdt_num_mem_rsv(fdt), node, child;
	char path[80], name[64];

	rsv.seen = 0;
	rsv.joined = 0;
	for (int i = 0; i < n; i++) {
		u64 base, size;

		if (fdt_get_mem_rsv(fdt, i, &base, &size) == 0) {
			q_snprintf(path, sizeof(path), "/memreserve/ entry %d", i);
			add_reserved(m, base, size, "memreserve", path);
		}
	}
	node = fdt_path_offset(fdt, "/reserved-memory");
	if (node >= 0) {
		fdt_for_each_subnode(child, fdt, node) {
			struct region r;

			if (!node_enabled(fdt, child))
				continue;
			q_snprintf(path, sizeof(path), "%s reg", path_of(fdt, child, name, sizeof(name)));
			for (int i = 0; dt_reg(fdt, child, i, &r) == 0; i++)
				add_reserved(m, r.base, r.size, fdt_get_name(fdt, child, NULL), path);
		}
	}
	if (rsv.seen > MAX_RESERVED)
		note(m, "/memreserve/ and /reserved-memory: %u regions, more than the %d Quire keeps apart: "
			"neighbours joined, %lu KiB between them withheld too",
		     rsv.seen, MAX_RESERVED, (unsigned long)(rsv.joined >> 10));
}

static int parse_cpus(const void *fdt, struct machine *m)
{
	int cpus = fdt_path_offset(fdt, "/cpus"), node, ac;
	char path[64];

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
		u64 mpidr;
		int len;

		if (!type || strcmp(type, "cpu") || !node_enabled(fdt, node))
			continue;
		reg = fdt_getprop(fdt, node, "reg", &len);
		if (!reg || len < ac * 4)
			continue;
		mpidr = read_cells(reg, ac);
		if (machine_cpu_index(m, mpidr) >= 0) {
			/* Two logical CPUs with one MPIDR: the second would never find itself. */
			note(m, "%s reg: MPIDR 0x%lx again, ignored", path_of(fdt, node, path, sizeof(path)), mpidr);
			continue;
		}
		if (m->ncpus == MAX_CPUS) {
			m->ncpus_ignored++;
			continue;
		}
		c = &m->cpu[m->ncpus++];
		c->mpidr = mpidr;
		c->method = CPU_ENABLE_NONE;
		if (method && !strcmp(method, "psci")) {
			c->method = CPU_ENABLE_PSCI;
		} else if (method && !strcmp(method, "spin-table")) {
			rel = fdt_getprop(fdt, node, "cpu-release-addr", &len);
			if (rel && (len == 8 || len == 4)) {
				u64 a = read_cells(rel, len / 4);

				/* Quire writes the entry point there: it must be RAM, or the store aborts. */
				if ((a & 7) || !in_ram(m, a, 8)) {
					note(m, "%s cpu-release-addr: 0x%lx is %s; that CPU cannot be started",
					     path_of(fdt, node, path, sizeof(path)), a,
					     a & 7 ? "not 8-byte aligned" : "outside RAM");
				} else {
					c->method = CPU_ENABLE_SPIN_TABLE;
					c->release_addr = a;
				}
			}
		}
	}
	return m->ncpus ? 0 : -FDT_ERR_NOTFOUND;
}

static void parse_psci(const void *fdt, struct machine *m)
{
	static const char *const compat[] = { "arm,psci-1.0", "arm,psci-0.2", "arm,psci" };
	char path[64];

	for (unsigned i = 0; i < ARRAY_SIZE(compat); i++) {
		int node = fdt_node_offset_by_compatible(fdt, -1, compat[i]);
		const char *method;
		const fdt32_t *fn;
		int len;

		if (node < 0 || !node_enabled(fdt, node))
			continue;
		method = fdt_getprop(fdt, node, "method", &len);
		if (method && !strcmp(method, "hvc")) {
			/* HVC from EL2 is taken at EL2: Quire would call itself. */
			note(m, "%s method: \"hvc\" reaches no firmware from EL2, where Quire runs; PSCI not used",
			     path_of(fdt, node, path, sizeof(path)));
			return;
		}
		if (!method || strcmp(method, "smc")) {
			note(m, "%s method: not \"smc\"; PSCI not used", path_of(fdt, node, path, sizeof(path)));
			return;
		}
		m->psci.conduit = PSCI_CONDUIT_SMC;
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

static const char *const gic_frame_name[] = { "distributor", "CPU interface", "GICH", "GICV" };

/*
 * Why device region r cannot be used: it wraps, or overlaps RAM, a GIC frame
 * or (with uart) the console UART. NULL if it can. Any RAM under it is
 * reserved: neither the device nor those pages are used.
 */
static const char *device_clash(struct machine *m, struct region r, bool uart, char *why, size_t n)
{
	const struct region *gic[] = { &m->gic.dist, &m->gic.cpu, &m->gic.gich, &m->gic.gicv };
	const struct region *ram;

	if (!r.size)
		return "is empty";
	if (wraps(r.base, r.size))
		return "runs past the top of the address space";
	ram = ram_under(m, r);
	if (ram) {
		q_snprintf(why, n, "overlaps RAM 0x%lx-0x%lx (%s)", ram->base, last(*ram),
			   m->mem_node[ram - m->mem]);
		/*
		 * Whichever is the lie, keep guests off those pages; but a
		 * "device" of megabytes is not believable, and would take the RAM.
		 */
		if (r.size <= SZ_2M)
			add_reserved(m, MAX(r.base, ram->base),
				     MIN(last(r), last(*ram)) - MAX(r.base, ram->base) + 1, "under a device", "");
		return why;
	}
	for (unsigned i = 0; m->gic.found && i < ARRAY_SIZE(gic); i++) {
		if (overlap(r, *gic[i])) {
			q_snprintf(why, n, "overlaps the GIC's %s frame 0x%lx-0x%lx", gic_frame_name[i], gic[i]->base,
				   last(*gic[i]));
			return why;
		}
	}
	if (uart && m->uart.found && overlap(r, (struct region){ m->uart.base, m->uart.size })) {
		q_snprintf(why, n, "overlaps the console UART 0x%lx-0x%lx", m->uart.base, m->uart.base + m->uart.size - 1);
		return why;
	}
	return NULL;
}

static bool set_uart(const void *fdt, struct machine *m, int node)
{
	struct region r;
	char path[64], why[128];
	const char *bad;

	if (dt_reg(fdt, node, 0, &r))
		return false;
	bad = device_clash(m, r, false, why, sizeof(why));
	if (bad) {
		note(m, "%s reg: 0x%lx+0x%lx %s; not used as the console", path_of(fdt, node, path, sizeof(path)),
		     r.base, r.size, bad);
		return false;
	}
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
	int chosen = fdt_path_offset(fdt, "/chosen"), node = -FDT_ERR_NOTFOUND, plen = 0;
	const char *path = chosen >= 0 ? fdt_getprop(fdt, chosen, "stdout-path", &plen) : NULL;
	int tried = -1;

	if (path && !memchr(path, '\0', plen))
		path = NULL; /* not a string */
	if (path) {
		const char *colon = strchr(path, ':');
		int len = colon ? colon - path : (int)strlen(path);

		if (path[0] == '/') {
			node = fdt_path_offset_namelen(fdt, path, len);
		} else {
			int alen = 0;
			const char *alias = fdt_get_alias_namelen(fdt, path, len);
			int aliases = fdt_path_offset(fdt, "/aliases");

			if (alias && aliases >= 0)
				fdt_getprop_namelen(fdt, aliases, path, len, &alen);
			/*
			 * libfdt resolves an alias that names another alias by
			 * recursing, for ever if it names itself: only a full path
			 * is followed.
			 */
			if (alias && alen > 0 && alias[0] == '/' && memchr(alias, '\0', alen))
				node = fdt_path_offset(fdt, alias);
			else if (alias)
				note(m, "/aliases: the alias stdout-path names is not a full path; not followed");
		}
	}
	if (node >= 0 && fdt_node_check_compatible(fdt, node, "arm,pl011") == 0) {
		if (set_uart(fdt, m, node))
			return;
		tried = node;
	}
	for (node = -1; (node = fdt_node_offset_by_compatible(fdt, node, "arm,pl011")) >= 0;)
		if (node != tried && node_enabled(fdt, node) && set_uart(fdt, m, node))
			return;
}

/* The GIC's frames: big enough for what Quire and guests touch, clear of RAM and of each other. */
static bool gic_frames_ok(struct machine *m)
{
	static const u64 min[] = { 0x1000, 0x2000, 0x1000, 0x2000 }; /* GICC_DIR is at 0x1000 */
	struct region *f[] = { &m->gic.dist, &m->gic.cpu, &m->gic.gich, &m->gic.gicv };
	unsigned n = m->gic.gich.size ? 4 : 2;
	char why[128];

	for (unsigned i = 0; i < n; i++) {
		const char *bad = device_clash(m, *f[i], false, why, sizeof(why));

		for (unsigned j = 0; !bad && j < i; j++) {
			if (overlap(*f[i], *f[j])) {
				q_snprintf(why, sizeof(why), "overlaps the %s frame", gic_frame_name[j]);
				bad = why;
			}
		}
		if (!bad && f[i]->size < min[i])
			bad = "is too small";
		/* Guests map the GICV frame as their GIC CPU interface, whole pages of it. */
		if (!bad && i == 3 && ((f[i]->base | f[i]->size) & (SZ_4K - 1)))
			bad = "is not page-aligned";
		if (bad) {
			note(m, "%s reg: %s frame 0x%lx+0x%lx %s; the GIC is not used, so no VM can run", m->gic.path,
			     gic_frame_name[i], f[i]->base, f[i]->size, bad);
			return false;
		}
	}
	return true;
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
		path_of(fdt, node, m->gic.path, sizeof(m->gic.path));
		if (dt_reg(fdt, node, 0, &m->gic.dist) || dt_reg(fdt, node, 1, &m->gic.cpu)) {
			note(m, "%s reg: no distributor and CPU interface frames; no VM can run", m->gic.path);
			return;
		}
		/* GICH and GICV exist only with the virtualization extensions. */
		if (dt_reg(fdt, node, 2, &m->gic.gich) || dt_reg(fdt, node, 3, &m->gic.gicv)) {
			memset(&m->gic.gich, 0, sizeof(m->gic.gich));
			memset(&m->gic.gicv, 0, sizeof(m->gic.gicv));
		}
		if (dt_irq(fdt, node, 0, &m->gic.maint_irq))
			m->gic.maint_irq = 0;
		m->gic.found = gic_frames_ok(m);
		if (m->gic.found && !m->gic.gich.size)
			note(m, "%s reg: no GICH and GICV frames (virtualization extensions); no VM can run",
			     m->gic.path);
		return;
	}
	if (fdt_node_offset_by_compatible(fdt, -1, "arm,gic-v3") >= 0)
		copy_str(m->gic.compatible, sizeof(m->gic.compatible), "arm,gic-v3");
	note(m, "no enabled GICv2 node (%s); no VM can run",
	     m->gic.compatible[0] ? "only a GICv3, which Quire does not drive" : "arm,gic-400 or compatible");
}

const char *machine_vm_blocker(const struct machine *m)
{
	if (!m->gic.found)
		return "no usable GIC";
	if (!m->gic.gich.size || !m->gic.gicv.size)
		return "the GIC has no virtualization extensions (GICH and GICV frames)";
	return NULL;
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
	char path[64], why[128];

	while ((node = fdt_node_offset_by_compatible(fdt, node, "virtio,mmio")) >= 0) {
		struct region r;
		const char *bad;

		if (m->nvirtio == MAX_VIRTIO || !node_enabled(fdt, node))
			continue;
		if (dt_reg(fdt, node, 0, &r))
			continue;
		bad = device_clash(m, r, true, why, sizeof(why));
		if (bad) {
			note(m, "%s reg: 0x%lx+0x%lx %s; ignored", path_of(fdt, node, path, sizeof(path)), r.base,
			     r.size, bad);
			continue;
		}
		m->virtio[m->nvirtio].r = r;
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
	bool has_start, has_end;
	u64 start = 0, end = 0;

	has_start = chosen_addr(fdt, chosen, "linux,initrd-start", &start);
	has_end = chosen_addr(fdt, chosen, "linux,initrd-end", &end);
	if (!has_start && !has_end)
		return;
	/* Quire reads the module: outside RAM that is an abort, not a refusal. */
	if (!has_start || !has_end || end <= start || !in_ram(m, start, end - start)) {
		note(m, "/chosen linux,initrd-start, linux,initrd-end: boot module 0x%lx-0x%lx %s; not read",
		     start, end, !has_start || !has_end ? "half given" : end <= start ? "ends before it starts" :
		     "is not inside RAM");
		m->boot_module_bad = true;
		return;
	}
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
	parse_gic(fdt, m);
	parse_uart(fdt, m);
	parse_timer(fdt, m);
	parse_virtio(fdt, m);
	int chosen = fdt_path_offset(fdt, "/chosen");
	if (chosen >= 0) {
		copy_str(m->bootargs, sizeof(m->bootargs), fdt_getprop(fdt, chosen, "bootargs", NULL));
		parse_boot_module(fdt, chosen, m);
	}
	modules_parse(fdt, chosen, m);
	tree.fdt = NULL; /* the blob may move or change after we return */
	return 0;
}

/* A device region beyond what Quire can map: left out. */
static bool beyond(struct machine *m, struct region r, u64 limit, unsigned pa_bits, const char *what)
{
	if (r.size && r.base < limit && r.size <= limit - r.base)
		return false;
	note(m, "%s 0x%lx+0x%lx is beyond the CPU's %u-bit PA range; ignored", what, r.base, r.size, pa_bits);
	return true;
}

int machine_fit(struct machine *m, unsigned pa_bits, struct region image, char *err, size_t errlen)
{
	u64 limit = pa_bits < 64 ? 1UL << pa_bits : ~0UL;
	unsigned k = 0;
	char what[96];

	for (unsigned i = 0; i < m->nmem; i++) {
		struct region b = m->mem[i];

		if (b.base >= limit) {
			note(m, "%s reg: bank 0x%lx-0x%lx beyond the CPU's %u-bit PA range, ignored", m->mem_node[i],
			     b.base, last(b), pa_bits);
			continue;
		}
		if (b.size > limit - b.base) {
			note(m, "%s reg: bank 0x%lx-0x%lx reaches beyond the CPU's %u-bit PA range, cut at 0x%lx",
			     m->mem_node[i], b.base, last(b), pa_bits, limit);
			b.size = limit - b.base;
		}
		m->mem[k] = b;
		memmove(m->mem_node[k], m->mem_node[i], sizeof(m->mem_node[0]));
		k++;
	}
	m->nmem = k;
	sum_ram(m);
	if (!k) {
		q_snprintf(err, errlen, "no RAM the device tree declares lies within the CPU's %u-bit physical "
			   "address range", pa_bits);
		return -FDT_ERR_BADVALUE;
	}
	if (!in_ram(m, image.base, image.size)) {
		q_snprintf(err, errlen, "Quire's own image at 0x%lx-0x%lx is not in the RAM the device tree "
			   "declares (/memory reg)", image.base, image.base + image.size - 1);
		return -FDT_ERR_BADVALUE;
	}
	if (m->gic.found) {
		const struct region *f[] = { &m->gic.dist, &m->gic.cpu, &m->gic.gich, &m->gic.gicv };

		for (unsigned i = 0; i < (m->gic.gich.size ? 4u : 2u) && m->gic.found; i++) {
			q_snprintf(what, sizeof(what), "%s reg: %s frame", m->gic.path, gic_frame_name[i]);
			if (beyond(m, *f[i], limit, pa_bits, what))
				m->gic.found = false;
		}
		if (!m->gic.found)
			note(m, "%s: the GIC is not used, so no VM can run", m->gic.path);
	}
	if (m->uart.found) {
		q_snprintf(what, sizeof(what), "%s reg: console UART", m->uart.path);
		m->uart.found = !beyond(m, (struct region){ m->uart.base, m->uart.size }, limit, pa_bits, what);
	}
	k = 0;
	for (unsigned i = 0; i < m->nvirtio; i++)
		if (!beyond(m, m->virtio[i].r, limit, pa_bits, "virtio,mmio reg:"))
			m->virtio[k++] = m->virtio[i];
	m->nvirtio = k;
	modules_fit(m, image);
	if (m->boot_module.size && !in_ram(m, m->boot_module.base, m->boot_module.size)) {
		note(m, "/chosen linux,initrd-start: boot module at 0x%lx is not in usable RAM; not read",
		     m->boot_module.base);
		m->boot_module = (struct region){ 0, 0 };
		m->boot_module_bad = true;
	}
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct cpu_desc *c = &m->cpu[i];

		if (c->method != CPU_ENABLE_SPIN_TABLE)
			continue;
		/* Writing the entry point into Quire's own image would corrupt it. */
		if (!in_ram(m, c->release_addr, 8) || overlap((struct region){ c->release_addr, 8 }, image)) {
			note(m, "cpu with MPIDR 0x%lx cpu-release-addr: 0x%lx is %s; that CPU cannot be started",
			     c->mpidr, c->release_addr, in_ram(m, c->release_addr, 8) ? "inside Quire's image" :
			     "not in usable RAM");
			c->method = CPU_ENABLE_NONE;
		}
	}
	return 0;
}

void machine_note(struct machine *m, const char *line)
{
	note(m, "%s", line);
}

void machine_reserve(struct machine *m, struct region r, const char *name)
{
	add_reserved(m, r.base, r.size, name, name);
}
