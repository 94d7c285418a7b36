/*
 * Boot modules from the host DT's /chosen (include/quire/modules.h,
 * docs/config.md "Boot modules"). The binding is Xen's dom0less one:
 *
 *   module@48000000 {
 *       compatible = "multiboot,kernel", "multiboot,module";
 *       reg = <0x0 0x48000000 0x0 0x1a00000>;   (in /chosen's #address-cells, #size-cells)
 *       quire,name = "linux2";
 *   };
 *
 * Every value is the loader's word, not a fact: a module Quire would read
 * outside RAM, or whose pages would also be Quire's, the DT's, a
 * reservation's or another module's, is refused, and nothing uses it.
 */
#include <libfdt.h>
#include <string.h>
#include <quire/modules.h>
#include <quire/printf.h>

struct boot_modules boot_modules;
/* Modules refused for a clash stay in the table until modules_parse ends: a third of a name is refused too. */
static bool clashed[MAX_MODULES];


static const char *const kind_names[] = { "raw image", "kernel", "ramdisk", "VM config" };

const char *module_kind_name(enum module_kind k)
{
	return k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

static u64 last(struct region r)
{
	return r.base + r.size - 1;
}

static bool overlap(struct region a, struct region b)
{
	return a.size && b.size && a.base <= last(b) && b.base <= last(a);
}

static bool in_ram(const struct machine *m, struct region r)
{
	for (unsigned i = 0; i < m->nmem; i++)
		if (r.base >= m->mem[i].base && r.base - m->mem[i].base <= m->mem[i].size &&
		    r.size <= m->mem[i].size - (r.base - m->mem[i].base))
			return true;
	return false;
}

static void __printf(2, 3) refuse(struct machine *m, const char *fmt, ...)
{
	char line[200];
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	machine_note(m, line);
}

/* As VM names: they print, and compare, cleanly. */
static bool good_name(const char *s, int len)
{
	if (len < 2 || len > MODULE_NAME_MAX || s[len - 1] || (int)strlen(s) != len - 1)
		return false;
	for (int i = 0; i < len - 1; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static bool compatible(const void *fdt, int node, const char *a, const char *b)
{
	return !fdt_node_check_compatible(fdt, node, a) || !fdt_node_check_compatible(fdt, node, b);
}

/* Xen's names, and the 4.4 ones it still takes. */
static enum module_kind kind_of(const void *fdt, int node)
{
	if (compatible(fdt, node, "multiboot,kernel", "xen,linux-zimage"))
		return MODULE_KERNEL;
	if (compatible(fdt, node, "multiboot,ramdisk", "xen,linux-initrd"))
		return MODULE_RAMDISK;
	if (!fdt_node_check_compatible(fdt, node, "quire,vm-config"))
		return MODULE_CONFIG;
	return MODULE_RAW;
}

/* The module's one (address, size) pair, in /chosen's cells; NULL, or why not. */
static const char *module_reg(const void *fdt, int chosen, int node, struct region *r)
{
	int ac = fdt_address_cells(fdt, chosen), sc = fdt_size_cells(fdt, chosen), len;
	const fdt32_t *p = fdt_getprop(fdt, node, "reg", &len);
	u64 v[2] = { 0, 0 };

	if (ac < 1 || ac > 2 || sc < 1 || sc > 2)
		return "/chosen's #address-cells or #size-cells is not 1 or 2";
	if (!p)
		return "missing";
	if (len != (ac + sc) * 4)
		return "not one (address, size) pair in /chosen's #address-cells and #size-cells";
	for (int i = 0; i < ac + sc; i++)
		v[i >= ac] = v[i >= ac] << 32 | fdt32_to_cpu(p[i]);
	r->base = v[0];
	r->size = v[1];
	return NULL;
}

/* Why [r] cannot be a module's, or NULL: checked against all but the other modules. */
static const char *bad_place(const struct machine *m, struct region r, struct region dt, char *why, size_t n)
{
	if (!r.size)
		return "size 0";
	if (r.size > ~0UL - r.base)
		return "runs past the top of the address space";
	if (r.base & (SZ_4K - 1))
		return "does not start on a 4 KiB page";
	if (!in_ram(m, r))
		return "is not inside RAM (/memory)";
	if (overlap(r, dt))
		return "overlaps the host DT itself";
	if (overlap(r, m->boot_module)) {
		q_snprintf(why, n, "overlaps /chosen linux,initrd-start..end 0x%lx-0x%lx", m->boot_module.base,
			   last(m->boot_module));
		return why;
	}
	for (unsigned i = 0; i < m->nreserved; i++)
		if (overlap(r, m->reserved[i].r)) {
			q_snprintf(why, n, "overlaps reserved region 0x%lx-0x%lx (%s)", m->reserved[i].r.base,
				   last(m->reserved[i].r), m->reserved[i].name);
			return why;
		}
	return NULL;
}

/* Take out module i, keeping the order. */
static void drop(unsigned i)
{
	struct boot_modules *b = &boot_modules;

	memmove(&b->mod[i], &b->mod[i + 1], (b->n - i - 1) * sizeof(b->mod[0]));
	memmove(&clashed[i], &clashed[i + 1], (b->n - i - 1) * sizeof(clashed[0]));
	b->n--;
}

/*
 * A name twice, or two modules over the same bytes: one of them is not what
 * its node says, and Quire cannot tell which, so neither is used.
 */
static bool clash(struct machine *m, const struct boot_module *new)
{
	bool found = false;

	for (unsigned i = 0; i < boot_modules.n; i++) {
		const struct boot_module *old = &boot_modules.mod[i];
		bool configs = old->kind == MODULE_CONFIG && new->kind == MODULE_CONFIG;
		bool same = !configs && !strcmp(old->image, new->image);

		if (!same && !configs && !overlap(old->r, new->r))
			continue;
		if (!found && same)
			refuse(m, "%s quire,name: \"%s\" again (also %s); neither is used", new->node,
			       new->image + sizeof(MODULE_PREFIX) - 1, old->node);
		else if (!found && configs)
			refuse(m, "%s compatible: a second VM config (also %s); neither is used", new->node, old->node);
		else if (!found)
			refuse(m, "%s reg: 0x%lx-0x%lx overlaps %s 0x%lx-0x%lx; neither is used", new->node,
			       new->r.base, last(new->r), old->node, old->r.base, last(old->r));
		if (old->kind == MODULE_CONFIG || new->kind == MODULE_CONFIG)
			m->boot_module_bad = true; /* a config meant to be used: not the built-in one instead */
		clashed[i] = true;
		found = true;
	}
	return found;
}

static void parse_one(const void *fdt, int chosen, int node, struct machine *m, struct region dt)
{
	struct boot_module b = { .kind = kind_of(fdt, node) };
	const char *name, *bad;
	char why[128];
	int len;

	if (fdt_get_path(fdt, node, b.node, sizeof(b.node)))
		q_snprintf(b.node, sizeof(b.node), "/chosen/%s", fdt_get_name(fdt, node, NULL));
	if (boot_modules.n == MAX_MODULES) {
		refuse(m, "%s compatible: more than %d boot modules; not used", b.node, MAX_MODULES);
		return;
	}
	name = fdt_getprop(fdt, node, "quire,name", &len);
	if (b.kind == MODULE_CONFIG && !name) {
		name = "vm_config"; /* found by its kind: no VM names it */
		len = sizeof("vm_config");
	}
	if (!name || !good_name(name, len)) {
		refuse(m, "%s quire,name: %s; not used", b.node,
		       !name ? "missing (a VM config names a module by it)" :
			       "must be 1 to 15 characters of A-Z a-z 0-9 _ -");
		return;
	}
	q_snprintf(b.image, sizeof(b.image), MODULE_PREFIX "%s", name);
	bad = module_reg(fdt, chosen, node, &b.r);
	if (!bad)
		bad = bad_place(m, b.r, dt, why, sizeof(why));
	if (bad) {
		refuse(m, "%s reg: 0x%lx+0x%lx %s; not used", b.node, b.r.base, b.r.size, bad);
		if (b.kind == MODULE_CONFIG)
			m->boot_module_bad = true; /* meant to be used: no falling back to the built-in one */
		return;
	}
	if (b.kind == MODULE_CONFIG && (m->boot_module.size || m->boot_module_bad)) {
		refuse(m, "%s compatible: a VM config, and /chosen linux,initrd-start names one too; not used",
		       b.node);
		return;
	}
	if (clash(m, &b)) {
		clashed[boot_modules.n] = true; /* kept, so a third of its name or bytes clashes too */
	}
	boot_modules.mod[boot_modules.n++] = b;
}

/* Each module as an image; after every change to the table, as entries move. */
static void seal(void)
{
	for (unsigned i = 0; i < boot_modules.n; i++) {
		struct boot_module *b = &boot_modules.mod[i];

		b->img = (struct vmcfg_image){ b->image, (const u8 *)(uintptr_t)b->r.base, b->r.size };
	}
}

void modules_parse(const void *fdt, int chosen, struct machine *m)
{
	struct region dt = { (paddr_t)(uintptr_t)fdt, fdt_totalsize(fdt) };
	int node;

	memset(&boot_modules, 0, sizeof(boot_modules));
	memset(clashed, 0, sizeof(clashed));
	if (chosen < 0)
		return;
	fdt_for_each_subnode(node, fdt, chosen) {
		if (!fdt_node_check_compatible(fdt, node, "xen,domain")) {
			char path[64];

			if (fdt_get_path(fdt, node, path, sizeof(path)))
				q_snprintf(path, sizeof(path), "/chosen/%s", fdt_get_name(fdt, node, NULL));
			refuse(m, "%s compatible: \"xen,domain\" is Xen's; Quire's VMs come from its VM config, "
				  "so its modules are not read", path);
			continue;
		}
		if (compatible(fdt, node, "multiboot,module", "xen,multiboot-module"))
			parse_one(fdt, chosen, node, m, dt);
	}
	for (unsigned i = 0; i < boot_modules.n;) {
		const struct boot_module *b = &boot_modules.mod[i];

		if (clashed[i]) {
			drop(i);
			continue;
		}
		if (b->kind == MODULE_CONFIG)
			m->boot_module = b->r;
		/* Its pages stay the loader's bytes: no guest page is made of them. */
		machine_reserve(m, b->r, b->image);
		i++;
	}
	seal();
}

void modules_fit(struct machine *m, struct region image)
{
	for (unsigned i = 0; i < boot_modules.n;) {
		struct boot_module *b = &boot_modules.mod[i];
		const char *bad = !in_ram(m, b->r) ? "is not in the RAM Quire can use" :
				  overlap(b->r, image) ? "overlaps Quire's own image" : NULL;

		if (!bad) {
			i++;
			continue;
		}
		refuse(m, "%s reg: 0x%lx-0x%lx %s; not used", b->node, b->r.base, last(b->r), bad);
		if (b->kind == MODULE_CONFIG) {
			m->boot_module = (struct region){ 0, 0 };
			m->boot_module_bad = true;
		}
		drop(i);
	}
	seal();
}

const struct boot_module *module_find(const char *image)
{
	for (unsigned i = 0; i < boot_modules.n; i++)
		if (boot_modules.mod[i].kind != MODULE_CONFIG && !strcmp(boot_modules.mod[i].image, image))
			return &boot_modules.mod[i];
	return NULL;
}

unsigned modules_images(struct vmcfg_image *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < boot_modules.n && k < max; i++) {
		const struct boot_module *b = &boot_modules.mod[i];

		if (b->kind == MODULE_CONFIG)
			continue;
		out[k++] = b->img;
	}
	return k;
}
