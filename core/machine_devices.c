/*
 * The devices Quire itself uses from the host DT: the GICv2, the console
 * PL011, the timer and the virtio-mmio slots, each left out if it clashes with
 * RAM or another (RAM under a small device region is reserved).
 */
#include <string.h>
#include "machine_priv.h"

const char *const machine_gic_frame_name[] = { "distributor", "CPU interface", "GICH", "GICV" };

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
	ram = machine_ram_under(m, r);
	if (ram) {
		q_snprintf(why, n, "overlaps RAM 0x%lx-0x%lx (%s)", ram->base, last(*ram),
			   m->mem_node[ram - m->mem]);
		/*
		 * Whichever is the lie, keep guests off those pages; but a
		 * "device" of megabytes is not believable, and would take the RAM.
		 */
		if (r.size <= SZ_2M)
			machine_add_reserved(m, MAX(r.base, ram->base),
					     MIN(last(r), last(*ram)) - MAX(r.base, ram->base) + 1,
					     "under a device", "");
		return why;
	}
	for (unsigned i = 0; m->gic.found && i < ARRAY_SIZE(gic); i++) {
		if (overlap(r, *gic[i])) {
			q_snprintf(why, n, "overlaps the GIC's %s frame 0x%lx-0x%lx", machine_gic_frame_name[i],
				   gic[i]->base, last(*gic[i]));
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
		dt_note(m, "%s reg: 0x%lx+0x%lx %s; not used as the console", dt_path_of(fdt, node, path, sizeof(path)),
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
void machine_parse_uart(const void *fdt, struct machine *m)
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
				dt_note(m, "/aliases: the alias stdout-path names is not a full path; not followed");
		}
	}
	if (node >= 0 && fdt_node_check_compatible(fdt, node, "arm,pl011") == 0) {
		if (set_uart(fdt, m, node))
			return;
		tried = node;
	}
	for (node = -1; (node = fdt_node_offset_by_compatible(fdt, node, "arm,pl011")) >= 0;)
		if (node != tried && dt_node_enabled(fdt, node) && set_uart(fdt, m, node))
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
				q_snprintf(why, sizeof(why), "overlaps the %s frame", machine_gic_frame_name[j]);
				bad = why;
			}
		}
		if (!bad && f[i]->size < min[i])
			bad = "is too small";
		/* Guests map the GICV frame as their GIC CPU interface, whole pages of it. */
		if (!bad && i == 3 && ((f[i]->base | f[i]->size) & (SZ_4K - 1)))
			bad = "is not page-aligned";
		if (bad) {
			dt_note(m, "%s reg: %s frame 0x%lx+0x%lx %s; the GIC is not used, so no VM can run",
				m->gic.path, machine_gic_frame_name[i], f[i]->base, f[i]->size, bad);
			return false;
		}
	}
	return true;
}

void machine_parse_gic(const void *fdt, struct machine *m)
{
	static const char *const v2[] = { "arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic",
					   "arm,cortex-a9-gic" };

	for (unsigned i = 0; i < ARRAY_SIZE(v2); i++) {
		int node = fdt_node_offset_by_compatible(fdt, -1, v2[i]);

		if (node < 0 || !dt_node_enabled(fdt, node))
			continue;
		copy_str(m->gic.compatible, sizeof(m->gic.compatible), v2[i]);
		dt_path_of(fdt, node, m->gic.path, sizeof(m->gic.path));
		if (dt_reg(fdt, node, 0, &m->gic.dist) || dt_reg(fdt, node, 1, &m->gic.cpu)) {
			dt_note(m, "%s reg: no distributor and CPU interface frames; no VM can run", m->gic.path);
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
			dt_note(m, "%s reg: no GICH and GICV frames (virtualization extensions); no VM can run",
				m->gic.path);
		return;
	}
	if (fdt_node_offset_by_compatible(fdt, -1, "arm,gic-v3") >= 0)
		copy_str(m->gic.compatible, sizeof(m->gic.compatible), "arm,gic-v3");
	dt_note(m, "no enabled GICv2 node (%s); no VM can run",
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

void machine_parse_timer(const void *fdt, struct machine *m)
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

void machine_parse_virtio(const void *fdt, struct machine *m)
{
	int node = -1;
	char path[64], why[128];

	while ((node = fdt_node_offset_by_compatible(fdt, node, "virtio,mmio")) >= 0) {
		struct region r;
		const char *bad;

		if (m->nvirtio == MAX_VIRTIO || !dt_node_enabled(fdt, node))
			continue;
		if (dt_reg(fdt, node, 0, &r))
			continue;
		bad = device_clash(m, r, true, why, sizeof(why));
		if (bad) {
			dt_note(m, "%s reg: 0x%lx+0x%lx %s; ignored", dt_path_of(fdt, node, path, sizeof(path)), r.base,
				r.size, bad);
			continue;
		}
		m->virtio[m->nvirtio].r = r;
		if (dt_irq(fdt, node, 0, &m->virtio[m->nvirtio].irq))
			m->virtio[m->nvirtio].irq = 0;
		m->nvirtio++;
	}
}
