/*
 * VM configuration device trees (docs/config.md): vmconfig_parse checks the
 * structure and syntax, vmconfig_check the VMs against the build and the
 * machine. The same code runs in tools/vmcheck and in Quire, so the build
 * and the boot apply the same rules (only the machine may differ).
 * Strict throughout: a misspelt property silently ignored is a wrong VM.
 */
#include <stdarg.h>
#include <string.h>
#include <libfdt.h>
#include <quire/printf.h>
#include <quire/vmconfig.h>

/* The guest platform's devices (docs/guest-platform.md, arch/vgic.h, quire/vdev.h). */
const struct vmcfg_window vmcfg_windows[] = {
	{ 0x08000000, 0x10000, "the vGIC distributor" },
	{ 0x08010000, 0x10000, "the vGIC CPU interface" },
	{ 0x09000000, 0x1000, "the vPL011" },
	{ 0, 0, NULL },
};

static const char *const no_props[] = { NULL };
static const char *const root_props[] = { "compatible", "machine-memory-mib", NULL };
static const char *const vm_props[] = {
	"vcpus", "memory-mib", "memory-base", "resident-limit-mib", "kernel", "initramfs",
	"bootargs", "cpus", "arg", "sharing", "share-domain", "share-scan-pages", "swap-mib", "swap-full", "resident-min-mib", NULL,
};
static const char *const sharing_modes[] = { "off", "zero", "self", "domain" };
static const char *const swap_full_policies[] = { "stop", "wait" };

/* Where we are in the tree, so every error can name the node. */
struct ctx {
	const void *fdt;
	int node;
	const char *path;
	char *err;
	size_t errlen;
};

static int __printf(2, 3) fail(const struct ctx *x, const char *fmt, ...)
{
	int len = q_snprintf(x->err, x->errlen, "%s: ", x->path);
	va_list ap;

	if (len < 0 || (size_t)len >= x->errlen)
		return -1;
	va_start(ap, fmt);
	q_vsnprintf(x->err + len, x->errlen - len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The property, or NULL: *rc = 0 if it may be absent, else -1 with the error. */
static const void *prop(const struct ctx *x, const char *name, bool required, int *len, int *rc)
{
	const void *p = fdt_getprop(x->fdt, x->node, name, len);

	*rc = 0;
	if (!p && required)
		*rc = fail(x, "missing required property '%s'", name);
	return p;
}

static int get_u32(const struct ctx *x, const char *name, bool required, u32 min, u32 max, u32 *v)
{
	int len, rc;
	const fdt32_t *p = prop(x, name, required, &len, &rc);

	if (!p)
		return rc;
	if (len != 4)
		return fail(x, "property '%s' must be one 32-bit cell, not %d bytes", name, len);
	*v = fdt32_to_cpu(*p);
	if (*v < min || *v > max)
		return fail(x, "property '%s' must be %u to %u, not %u", name, min, max, *v);
	return 0;
}

static int get_u64(const struct ctx *x, const char *name, u64 *v)
{
	int len, rc;
	const void *p = prop(x, name, false, &len, &rc);
	fdt64_t be;

	if (!p)
		return rc;
	if (len != 8)
		return fail(x, "property '%s' must be one 64-bit value (/bits/ 64 <n>), not %d bytes",
			    name, len);
	memcpy(&be, p, 8); /* property values are only 4-byte aligned */
	*v = fdt64_to_cpu(be);
	return 0;
}

static int get_str(const struct ctx *x, const char *name, bool required, char *buf, size_t size)
{
	int len, rc;
	const char *p = prop(x, name, required, &len, &rc);

	if (!p)
		return rc;
	if (len < 1 || p[len - 1] != '\0')
		return fail(x, "property '%s' must be a NUL-terminated string", name);
	if (strlen(p) != (size_t)len - 1)
		return fail(x, "property '%s' must be one string, not a list", name);
	if (len == 1)
		return fail(x, "property '%s' must not be empty", name);
	if ((size_t)len > size)
		return fail(x, "property '%s' must be at most %zu characters, not %d", name, size - 1,
			    len - 1);
	memcpy(buf, p, len);
	return 0;
}

/* bootargs: any string, "" too (a command line that is empty, not Quire's default). */
static int get_bootargs(const struct ctx *x, struct vm_config *c)
{
	int len, rc;
	const char *p = prop(x, "bootargs", false, &len, &rc);

	c->bootargs[0] = '\0';
	c->bootargs_set = p != NULL;
	if (!p)
		return rc;
	return len == 1 && !p[0] ? 0 : get_str(x, "bootargs", false, c->bootargs, sizeof(c->bootargs));
}

/* VM and share-domain names: 1..15 of [A-Za-z0-9_-], so they print and compare cleanly. */
static bool good_name(const char *s, size_t len)
{
	if (len < 1 || len >= VMCFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Every property of the node must be in known[]; the error lists them. */
static int known_props(const struct ctx *x, const char *const *known)
{
	int off;

	fdt_for_each_property_offset(off, x->fdt, x->node) {
		const char *name;
		char list[192];
		size_t used = 0;
		unsigned i;

		if (!fdt_getprop_by_offset(x->fdt, off, &name, NULL))
			return fail(x, "unreadable property");
		for (i = 0; known[i] && strcmp(known[i], name); i++)
			;
		if (known[i])
			continue;
		list[0] = '\0';
		for (i = 0; known[i] && used < sizeof(list); i++)
			used += q_snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					   known[i]);
		if (!known[0])
			return fail(x, "unknown property '%s' (this node takes none)", name);
		return fail(x, "unknown property '%s' (known: %s)", name, list);
	}
	return 0;
}

static int no_children(const struct ctx *x)
{
	int child = fdt_first_subnode(x->fdt, x->node);

	if (child >= 0)
		return fail(x, "unknown child node '%s'", fdt_get_name(x->fdt, child, NULL));
	return 0;
}

static int get_cpus(const struct ctx *x, u32 *mask)
{
	int len, rc;
	const fdt32_t *p = prop(x, "cpus", false, &len, &rc);

	if (!p)
		return rc;
	if (len < 4 || len % 4)
		return fail(x, "property 'cpus' must be a list of CPU numbers, not %d bytes", len);
	*mask = 0;
	for (int i = 0; i < len / 4; i++) {
		u32 cpu = fdt32_to_cpu(p[i]);

		if (cpu >= VMCFG_MAX_CPUS)
			return fail(x, "property 'cpus' lists CPU %u; CPU numbers are 0 to %u", cpu,
				    VMCFG_MAX_CPUS - 1);
		if (*mask & BIT(cpu))
			return fail(x, "property 'cpus' lists CPU %u twice", cpu);
		*mask |= BIT(cpu);
	}
	return 0;
}

/* An optional string property that must be one of names (n of them, quoted in "want"); its index in *out. */
static int get_choice(const struct ctx *x, const char *prop, const char *const *names, unsigned n,
		      const char *want, unsigned *out)
{
	char v[VMCFG_NAME_MAX] = "";
	unsigned i;

	if (get_str(x, prop, false, v, sizeof(v)) < 0)
		return -1;
	if (!v[0])
		return 0; /* absent: get_str refuses empty strings */
	for (i = 0; i < n && strcmp(v, names[i]); i++)
		;
	if (i == n)
		return fail(x, "property '%s' must be %s, not \"%s\"", prop, want, v);
	*out = i;
	return 0;
}

static int get_sharing(const struct ctx *x, struct vm_config *c)
{
	unsigned mode = c->sharing;

	if (get_choice(x, "sharing", sharing_modes, ARRAY_SIZE(sharing_modes),
		       "\"off\", \"zero\", \"self\" or \"domain\"", &mode))
		return -1;
	c->sharing = mode;
	if (get_str(x, "share-domain", false, c->share_domain, sizeof(c->share_domain)) < 0)
		return -1;
	if (c->share_domain[0] && !good_name(c->share_domain, strlen(c->share_domain)))
		return fail(x, "property 'share-domain' must be 1 to %d characters of A-Z a-z 0-9 _ -",
			    VMCFG_NAME_MAX - 1);
	if (c->sharing == SHARE_DOMAIN && !c->share_domain[0])
		return fail(x, "property 'sharing' is \"domain\" but 'share-domain' is missing");
	if (c->sharing != SHARE_DOMAIN && c->share_domain[0])
		return fail(x, "property 'share-domain' needs sharing = \"domain\"");
	return get_u32(x, "share-scan-pages", false, 1, 65536, &c->scan_pages);
}

/* RAM must fit the IPA space and leave the device windows alone. */
static int check_ram(const struct ctx *x, const struct vm_config *c)
{
	u64 end = c->mem_base + c->mem_size;

	if (c->mem_base % SZ_2M)
		return fail(x, "property 'memory-base' 0x%lx must be 2 MiB aligned",
			    (unsigned long)c->mem_base);
	if (c->mem_base >= BIT(VMCFG_IPA_BITS) || c->mem_size > BIT(VMCFG_IPA_BITS) - c->mem_base)
		return fail(x, "property 'memory-mib' (%lu MiB at 0x%lx) runs past the end of the "
			       "%d-bit guest-physical space at 0x%lx",
			    (unsigned long)(c->mem_size >> 20), (unsigned long)c->mem_base,
			    VMCFG_IPA_BITS, (unsigned long)BIT(VMCFG_IPA_BITS));
	for (const struct vmcfg_window *w = vmcfg_windows; w->what; w++)
		if (c->mem_base < w->base + w->size && w->base < end)
			return fail(x, "properties 'memory-base' and 'memory-mib' put RAM "
				       "0x%lx-0x%lx over %s at 0x%lx", (unsigned long)c->mem_base,
				    (unsigned long)end, w->what, (unsigned long)w->base);
	return 0;
}

#define MODULE_PREFIX "module:" /* include/quire/modules.h: tools/vmcheck has no machine.h */

bool vmconfig_is_module(const char *image)
{
	return !strncmp(image, MODULE_PREFIX, sizeof(MODULE_PREFIX) - 1);
}

/* An image name: one quire.bin carries (1 to 15 characters), or "module:" and a boot module's name. */
static int get_image(const struct ctx *x, const char *name, bool required, char *buf)
{
	size_t len;

	if (get_str(x, name, required, buf, VMCFG_IMAGE_MAX))
		return -1;
	len = strlen(buf);
	if (vmconfig_is_module(buf) && !good_name(buf + sizeof(MODULE_PREFIX) - 1, len - (sizeof(MODULE_PREFIX) - 1)))
		return fail(x, "property '%s' names a boot module: \"module:\" and 1 to %d characters of "
			       "A-Z a-z 0-9 _ -, not \"%s\"", name, VMCFG_NAME_MAX - 1, buf);
	if (!vmconfig_is_module(buf) && len >= VMCFG_NAME_MAX)
		return fail(x, "property '%s' must be at most %d characters, not %zu", name, VMCFG_NAME_MAX - 1,
			    len);
	return 0;
}

static int parse_vm(const struct ctx *x, struct vm_config *c)
{
	u32 mem_mib = 0, limit_mib, min_mib, swap_mib = 0;
	unsigned full = SWAP_FULL_STOP;

	*c = (struct vm_config){ .mem_base = VMCFG_RAM_BASE, .cpus = VMCFG_CPUS_ALL,
				 .sharing = SHARE_SELF, .scan_pages = VMCFG_SCAN_PAGES };
	if (known_props(x, vm_props) || no_children(x) ||
	    get_u32(x, "vcpus", true, 1, VMCFG_MAX_VCPUS, &c->vcpus) ||
	    get_u32(x, "memory-mib", true, 1, BIT(VMCFG_IPA_BITS) >> 20, &mem_mib) ||
	    get_u64(x, "memory-base", &c->mem_base))
		return -1;
	c->mem_size = MiB(mem_mib);
	limit_mib = mem_mib;
	if (check_ram(x, c) || get_u32(x, "resident-limit-mib", false, 1, mem_mib, &limit_mib) ||
	    get_u32(x, "swap-mib", false, 0, ~0u, &swap_mib) ||
	    get_choice(x, "swap-full", swap_full_policies, ARRAY_SIZE(swap_full_policies), "\"stop\" or \"wait\"",
		       &full) ||
	    get_image(x, "kernel", true, c->kernel) || get_image(x, "initramfs", false, c->initramfs) ||
	    get_bootargs(x, c) ||
	    get_cpus(x, &c->cpus) || get_u64(x, "arg", &c->arg) || get_sharing(x, c))
		return -1;
	min_mib = limit_mib;
	if (get_u32(x, "resident-min-mib", false, 1, limit_mib, &min_mib))
		return -1;
	if (min_mib < limit_mib && !swap_mib)
		return fail(x, "property 'resident-min-mib' below 'resident-limit-mib' needs 'swap-mib': only a VM "
			       "that swaps can give pages back when the machine runs short");
	c->resident_limit = MiB(limit_mib);
	c->resident_min = MiB(min_mib);
	c->swap_limit = MiB(swap_mib);
	c->swap_full = full;
	return 0;
}

static int parse_root(struct ctx *x, u32 *machine_mib)
{
	int rc, child;

	if ((uintptr_t)x->fdt & 7) /* libfdt 1.6 refuses it, with an error it cannot name */
		return fail(x, "the config blob at %p is not 8-byte aligned", x->fdt);
	rc = fdt_check_header(x->fdt);
	/*
	 * Versions before 16 are refused up front: dtc writes 17, and libfdt
	 * 1.6's fdt_check_full dereferences NULL on some old-version blobs.
	 */
	if (!rc && fdt_version(x->fdt) < 16)
		rc = -FDT_ERR_BADVERSION;
	if (!rc)
		rc = fdt_check_full(x->fdt, fdt_totalsize(x->fdt));
	if (rc)
		return fail(x, "not a valid flattened device tree (%s)", fdt_strerror(rc));
	if (fdt_node_check_compatible(x->fdt, 0, "quire,vm-config"))
		return fail(x, "property 'compatible' must be \"quire,vm-config\"");
	if (known_props(x, root_props) ||
	    get_u32(x, "machine-memory-mib", false, 1, ~0u, machine_mib))
		return -1;
	fdt_for_each_subnode(child, x->fdt, 0) {
		if (strcmp(fdt_get_name(x->fdt, child, NULL), "vms"))
			return fail(x, "unknown child node '%s' (only 'vms')",
				    fdt_get_name(x->fdt, child, NULL));
		if (x->node)
			return fail(x, "more than one 'vms' node");
		x->node = child;
	}
	if (!x->node)
		return fail(x, "no 'vms' node");
	x->path = "/vms";
	return known_props(x, no_props);
}

int vmconfig_parse(const void *fdt, struct vm_config *out, unsigned max, u32 *machine_mib,
		   char *err, size_t errlen)
{
	struct ctx x = { fdt, 0, "/", err, errlen };
	u32 mib = 0;
	unsigned n = 0;
	int vm;

	if (machine_mib)
		*machine_mib = 0;
	if (parse_root(&x, &mib))
		return -1;
	fdt_for_each_subnode(vm, fdt, x.node) {
		int len;
		const char *name = fdt_get_name(fdt, vm, &len);
		char path[8 + VMCFG_NAME_MAX];
		struct ctx v = { fdt, vm, path, err, errlen };

		q_snprintf(path, sizeof(path), "/vms/%.*s", MIN(len, VMCFG_NAME_MAX), name);
		if (!good_name(name, len))
			return fail(&v, "a VM's node name must be 1 to %d characters of A-Z a-z 0-9 _ - "
					"(no unit address)", VMCFG_NAME_MAX - 1);
		if (n == max)
			return fail(&v, "more than %u VMs", max);
		for (unsigned i = 0; i < n; i++)
			if (!strcmp(out[i].name, name))
				return fail(&v, "a second VM of this name");
		if (parse_vm(&v, &out[n]))
			return -1;
		memcpy(out[n++].name, name, len + 1);
	}
	if (!n)
		return fail(&x, "no VM (a VM is a child node of /vms)");
	if (machine_mib)
		*machine_mib = mib;
	return n;
}

u32 vmconfig_quota_pages(const struct vm_config *c)
{
	u64 end = c->mem_base + c->mem_size;
	/* Level-2 tables: every GiB the RAM touches; for a GiB-aligned base ceil(size / 1 GiB). */
	u64 l2 = (ALIGN_UP(end, SZ_1G) - ALIGN_DOWN(c->mem_base, SZ_1G)) / SZ_1G;
	u64 l3 = ALIGN_UP(c->mem_size, SZ_2M) / SZ_2M;

	/* +1 the level-1 root, +2 the level-2 and level-3 tables of the device mappings. */
	return c->resident_limit / SZ_4K + 1 + l2 + l3 + 2;
}

u32 vmconfig_guaranteed_pages(const struct vm_config *c, bool swap)
{
	return vmconfig_quota_pages(c) - (swap ? vmconfig_overcommit_pages(c) : 0);
}

static const struct vmcfg_image *find_image(const struct vmcfg_limits *lim, const char *name)
{
	for (const struct vmcfg_image *i = lim->images; i->name; i++)
		if (!strcmp(i->name, name))
			return i;
	return NULL;
}

/* What the build carries, or (for a module) what the host DT's /chosen gives. */
static int no_image(const struct ctx *x, const struct vmcfg_limits *lim, const char *prop,
		    const char *name)
{
	bool module = vmconfig_is_module(name);
	char list[160];
	size_t used = 0;

	list[0] = '\0';
	for (const struct vmcfg_image *i = lim->images; i->name && used < sizeof(list); i++)
		if (vmconfig_is_module(i->name) == module)
			used += q_snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
					   module ? i->name + sizeof(MODULE_PREFIX) - 1 : i->name);
	if (module)
		return fail(x, "property '%s' names boot module '%s', but the host DT's /chosen gives %s%s", prop,
			    name + sizeof(MODULE_PREFIX) - 1, used ? "only: " : "none", list);
	return fail(x, "property '%s' names image '%s', but this build carries: %s", prop, name,
		    used ? list : "none");
}

/* The build cannot see boot modules: a VM naming one is checked at boot (vmconfig_drop_module_vms). */
static bool later(const struct vmcfg_limits *lim, const char *image)
{
	return lim->modules_later && vmconfig_is_module(image) && !find_image(lim, image);
}

/* One VM against the build: its images exist, suit its kind and fit its RAM and resident limit. */
static int check_vm(const struct ctx *x, const struct vm_config *c, const struct vmcfg_limits *lim)
{
	const struct vmcfg_image *k = find_image(lim, c->kernel), *rd = NULL;
	static const char *const what[] = { "guest DT and kernel", "its image", "its image and guest DT",
					    "its image and guest DT" };
	static const char *const what_rd[] = { "guest DT, kernel and initramfs", "", "",
					       "its image, initramfs and guest DT" };
	struct image_layout lay;

	if (later(lim, c->kernel) || (c->initramfs[0] && later(lim, c->initramfs)))
		goto machine;
	if (!k)
		return no_image(x, lim, "kernel", c->kernel);
	if (c->initramfs[0] && !(rd = find_image(lim, c->initramfs)))
		return no_image(x, lim, "initramfs", c->initramfs);
	/* The same layout the loader uses: the image's kind, its pieces in RAM (core/image_layout.c). */
	if (image_layout(c, k->data, k->size, rd ? rd->size : 0, &lay, x->err, x->errlen))
		return -1;
	if (lay.loaded > c->resident_limit)
		return fail(x, "property 'resident-limit-mib' (%lu MiB) cannot hold the %lu KiB the "
			       "VM starts with (%s)", (unsigned long)(c->resident_limit >> 20),
			    (unsigned long)lay.loaded >> 10, rd ? what_rd[lay.kind] : what[lay.kind]);
machine:
	if (c->cpus != VMCFG_CPUS_ALL && lim->cpus < 32 && c->cpus >> lim->cpus)
		return fail(x, "property 'cpus' names a CPU this machine lacks: it has CPUs 0 to %u",
			    lim->cpus - 1);
	return 0;
}

int vmconfig_check(const struct vm_config *c, unsigned n, const struct vmcfg_limits *lim, char *err,
		   size_t errlen)
{
	u64 need = 0;

	for (unsigned i = 0; i < n; i++) {
		char path[8 + VMCFG_NAME_MAX];
		struct ctx x = { NULL, 0, path, err, errlen };

		q_snprintf(path, sizeof(path), "/vms/%s", c[i].name);
		if (check_vm(&x, &c[i], lim))
			return -1;
		need += vmconfig_guaranteed_pages(&c[i], lim->swap);
	}
	if (need > lim->machine_pages) {
		q_snprintf(err, errlen, "/vms: the VMs' 'resident-limit-mib' (or 'resident-min-mib' for VMs that "
			   "swap) cannot all be met at once: they need %lu MiB with stage-2 tables, the machine "
			   "has %lu MiB for guests", (unsigned long)ALIGN_UP(need, 256) / 256,
			   (unsigned long)lim->machine_pages / 256);
		return -1;
	}
	return 0;
}

unsigned vmconfig_drop_module_vms(struct vm_config *c, unsigned n, const struct vmcfg_limits *lim, char *msg,
				  size_t msglen)
{
	size_t used = 0;
	unsigned k = 0;

	if (msglen)
		msg[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		char path[8 + VMCFG_NAME_MAX], err[256];
		struct ctx x = { NULL, 0, path, err, sizeof(err) };

		q_snprintf(path, sizeof(path), "/vms/%s", c[i].name);
		if ((vmconfig_is_module(c[i].kernel) || vmconfig_is_module(c[i].initramfs)) &&
		    check_vm(&x, &c[i], lim)) {
			if (used < msglen)
				used += q_snprintf(msg + used, msglen - used, "quire: %s not started: %s\n",
						   c[i].name, err);
			continue;
		}
		c[k++] = c[i];
	}
	return k;
}

bool bootargs_has(const char *s, const char *word)
{
	size_t wl = strlen(word);

	while (*s) {
		size_t len;

		while (*s == ' ' || *s == '\t')
			s++;
		for (len = 0; s[len] && s[len] != ' ' && s[len] != '\t'; len++)
			;
		if (len == wl && !strncmp(s, word, wl))
			return true;
		s += len;
	}
	return false;
}
