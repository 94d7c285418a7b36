/*
 * Parsing a VM configuration device tree (docs/config.md) into struct
 * vm_config: its structure, every property's syntax and range, and RAM clear
 * of the guest platform's devices. The same code runs in tools/vmcheck and in
 * Quire; the checks against the build and the machine are vmconfig_check.c's.
 */
#include <string.h>
#include <libfdt.h>
#include <quire/printf.h>
#include "vmconfig_priv.h"

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
	"bootargs", "cpus", "arg", "sharing", "share-domain", "share-scan-pages", "swap-mib", "swap-full", "resident-min-mib", "balloon",
	"balloon-deflate-on-oom", "disk", "disk-access", "disk-min-mib", "net", "net-mac", "blocks", NULL,
};
static const char *const sharing_modes[] = { "off", "zero", "self", "domain" };
static const char *const swap_full_policies[] = { "stop", "wait" };
static const char *const on_off[] = { "off", "on" };
static const char *const rw_ro[] = { "rw", "ro" };

/* bootargs: any string, "" too (a command line that is empty, not Quire's default). */
static int get_bootargs(const struct ctx *x, struct vm_config *c)
{
	int len, rc;
	const char *p = vmcfg_prop(x, "bootargs", false, &len, &rc);

	c->bootargs[0] = '\0';
	c->bootargs_set = p != NULL;
	if (!p)
		return rc;
	return len == 1 && !p[0] ? 0 : vmcfg_get_str(x, "bootargs", false, c->bootargs, sizeof(c->bootargs));
}

static int get_cpus(const struct ctx *x, u32 *mask)
{
	int len, rc;
	const fdt32_t *p = vmcfg_prop(x, "cpus", false, &len, &rc);

	if (!p)
		return rc;
	if (len < 4 || len % 4)
		return vmcfg_fail(x, "property 'cpus' must be a list of CPU numbers, not %d bytes", len);
	*mask = 0;
	for (int i = 0; i < len / 4; i++) {
		u32 cpu = fdt32_to_cpu(p[i]);

		if (cpu >= VMCFG_MAX_CPUS)
			return vmcfg_fail(x, "property 'cpus' lists CPU %u; CPU numbers are 0 to %u", cpu,
					  VMCFG_MAX_CPUS - 1);
		if (*mask & BIT(cpu))
			return vmcfg_fail(x, "property 'cpus' lists CPU %u twice", cpu);
		*mask |= BIT(cpu);
	}
	return 0;
}

static int get_sharing(const struct ctx *x, struct vm_config *c)
{
	unsigned mode = c->sharing;

	if (vmcfg_get_choice(x, "sharing", sharing_modes, ARRAY_SIZE(sharing_modes),
			     "\"off\", \"zero\", \"self\" or \"domain\"", &mode))
		return -1;
	c->sharing = mode;
	if (vmcfg_get_str(x, "share-domain", false, c->share_domain, sizeof(c->share_domain)) < 0)
		return -1;
	if (c->share_domain[0] && !vmcfg_good_name(c->share_domain, strlen(c->share_domain)))
		return vmcfg_fail(x, "property 'share-domain' must be 1 to %d characters of A-Z a-z 0-9 _ -",
				  VMCFG_NAME_MAX - 1);
	if (c->sharing == SHARE_DOMAIN && !c->share_domain[0])
		return vmcfg_fail(x, "property 'sharing' is \"domain\" but 'share-domain' is missing");
	if (c->sharing != SHARE_DOMAIN && c->share_domain[0])
		return vmcfg_fail(x, "property 'share-domain' needs sharing = \"domain\"");
	return vmcfg_get_u32(x, "share-scan-pages", false, 1, 65536, &c->scan_pages);
}

/* RAM must fit the IPA space and leave the device windows alone. */
static int check_ram(const struct ctx *x, const struct vm_config *c)
{
	u64 end = c->mem_base + c->mem_size;

	if (c->mem_base % SZ_2M)
		return vmcfg_fail(x, "property 'memory-base' 0x%lx must be 2 MiB aligned",
				  (unsigned long)c->mem_base);
	if (c->mem_base >= BIT(VMCFG_IPA_BITS) || c->mem_size > BIT(VMCFG_IPA_BITS) - c->mem_base)
		return vmcfg_fail(x, "property 'memory-mib' (%lu MiB at 0x%lx) runs past the end of the "
				     "%d-bit guest-physical space at 0x%lx",
				  (unsigned long)(c->mem_size >> 20), (unsigned long)c->mem_base,
				  VMCFG_IPA_BITS, (unsigned long)BIT(VMCFG_IPA_BITS));
	for (const struct vmcfg_window *w = vmcfg_windows; w->what; w++)
		if (c->mem_base < w->base + w->size && w->base < end)
			return vmcfg_fail(x, "properties 'memory-base' and 'memory-mib' put RAM "
					     "0x%lx-0x%lx over %s at 0x%lx", (unsigned long)c->mem_base,
					  (unsigned long)end, w->what, (unsigned long)w->base);
	return 0;
}

bool vmconfig_is_module(const char *image)
{
	return !strncmp(image, MODULE_PREFIX, sizeof(MODULE_PREFIX) - 1);
}

/* An image name: one quire.bin carries (1 to 15 characters), or "module:" and a boot module's name. */
static int get_image(const struct ctx *x, const char *name, bool required, char *buf)
{
	size_t len;

	if (vmcfg_get_str(x, name, required, buf, VMCFG_IMAGE_MAX))
		return -1;
	len = strlen(buf);
	if (vmconfig_is_module(buf) &&
	    !vmcfg_good_name(buf + sizeof(MODULE_PREFIX) - 1, len - (sizeof(MODULE_PREFIX) - 1)))
		return vmcfg_fail(x, "property '%s' names a boot module: \"module:\" and 1 to %d characters of "
				     "A-Z a-z 0-9 _ -, not \"%s\"", name, VMCFG_NAME_MAX - 1, buf);
	if (!vmconfig_is_module(buf) && len >= VMCFG_NAME_MAX)
		return vmcfg_fail(x, "property '%s' must be at most %d characters, not %zu", name, VMCFG_NAME_MAX - 1,
				  len);
	return 0;
}

/*
 * net-mac: six hex bytes with colons, unicast. Without it, a locally
 * administered address made from the VM's name (FNV-1a), so it is the same
 * at every boot.
 */
static int get_mac(const struct ctx *x, struct vm_config *c, bool net)
{
	const char *name = fdt_get_name(x->fdt, x->node, NULL);
	char s[24];
	u32 h = 2166136261u;

	s[0] = '\0';
	if (vmcfg_get_str(x, "net-mac", false, s, sizeof(s)))
		return -1;
	if (!net && s[0])
		return vmcfg_fail(x, "property 'net-mac' needs net = \"on\"");
	if (!s[0]) {
		for (const char *p = name; p && *p; p++)
			h = (h ^ (u8)*p) * 16777619u;
		c->mac[0] = 0x02; /* locally administered, unicast */
		c->mac[1] = 0x51;
		c->mac[2] = 0x75;
		c->mac[3] = (u8)(h >> 16);
		c->mac[4] = (u8)(h >> 8);
		c->mac[5] = (u8)h;
		return 0;
	}
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		unsigned v = 0;

		for (unsigned k = 0; k < 2; k++) {
			char ch = p[k];

			v = v * 16 + (ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
				      : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 256);
		}
		if (v > 255 || p[2] != (i < 5 ? ':' : '\0'))
			return vmcfg_fail(x, "property 'net-mac' must be six hex bytes with colons, like "
					     "\"02:00:00:00:00:01\", not \"%s\"", s);
		c->mac[i] = (u8)v;
	}
	if (c->mac[0] & 1)
		return vmcfg_fail(x, "property 'net-mac' is a multicast address (%s): a port needs a unicast one", s);
	return 0;
}

/* disk: a GPT partition's name, printable ASCII (GPT names are UTF-16; Quire takes the ASCII ones). */
static int get_disk(const struct ctx *x, struct vm_config *c)
{
	if (vmcfg_get_str(x, "disk", false, c->disk, sizeof(c->disk)))
		return -1;
	for (const char *s = c->disk; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return vmcfg_fail(x, "property 'disk' must name a partition in printable ASCII");
	return 0;
}

static int parse_vm(const struct ctx *x, struct vm_config *c)
{
	u32 mem_mib = 0, limit_mib, min_mib, swap_mib = 0;
	unsigned full = SWAP_FULL_STOP, balloon = 0, oom = 1, ro = 0, net = 0, blocks = 1;
	u32 disk_min = VMCFG_DISK_MIN_MIB;

	*c = (struct vm_config){ .mem_base = VMCFG_RAM_BASE, .cpus = VMCFG_CPUS_ALL,
				 .sharing = SHARE_SELF, .scan_pages = VMCFG_SCAN_PAGES };
	if (vmcfg_known_props(x, vm_props) || vmcfg_no_children(x) ||
	    vmcfg_get_u32(x, "vcpus", true, 1, VMCFG_MAX_VCPUS, &c->vcpus) ||
	    vmcfg_get_u32(x, "memory-mib", true, 1, BIT(VMCFG_IPA_BITS) >> 20, &mem_mib) ||
	    vmcfg_get_u64(x, "memory-base", &c->mem_base))
		return -1;
	c->mem_size = MiB(mem_mib);
	limit_mib = mem_mib;
	if (check_ram(x, c) || vmcfg_get_u32(x, "resident-limit-mib", false, 1, mem_mib, &limit_mib) ||
	    vmcfg_get_u32(x, "swap-mib", false, 0, ~0u, &swap_mib) ||
	    vmcfg_get_choice(x, "swap-full", swap_full_policies, ARRAY_SIZE(swap_full_policies), "\"stop\" or \"wait\"",
			     &full) ||
	    vmcfg_get_choice(x, "balloon", on_off, ARRAY_SIZE(on_off), "\"on\" or \"off\"", &balloon) ||
	    vmcfg_get_choice(x, "balloon-deflate-on-oom", on_off, ARRAY_SIZE(on_off), "\"on\" or \"off\"", &oom) ||
	    vmcfg_get_choice(x, "blocks", on_off, ARRAY_SIZE(on_off), "\"on\" or \"off\"", &blocks) ||
	    get_image(x, "kernel", true, c->kernel) || get_image(x, "initramfs", false, c->initramfs) ||
	    get_bootargs(x, c) ||
	    get_cpus(x, &c->cpus) || vmcfg_get_u64(x, "arg", &c->arg) || get_sharing(x, c))
		return -1;
	if (!balloon && fdt_getprop(x->fdt, x->node, "balloon-deflate-on-oom", NULL))
		return vmcfg_fail(x, "property 'balloon-deflate-on-oom' needs balloon = \"on\"");
	if (get_disk(x, c) ||
	    vmcfg_get_choice(x, "disk-access", rw_ro, ARRAY_SIZE(rw_ro), "\"rw\" or \"ro\"", &ro) ||
	    vmcfg_get_u32(x, "disk-min-mib", false, 1, ~0u, &disk_min))
		return -1;
	if (!c->disk[0] && (fdt_getprop(x->fdt, x->node, "disk-access", NULL) ||
			    fdt_getprop(x->fdt, x->node, "disk-min-mib", NULL)))
		return vmcfg_fail(x, "properties 'disk-access' and 'disk-min-mib' need 'disk'");
	c->blocks = blocks;
	c->disk_ro = ro;
	c->disk_min = MiB(disk_min);
	if (vmcfg_get_choice(x, "net", on_off, ARRAY_SIZE(on_off), "\"on\" or \"off\"", &net) || get_mac(x, c, net))
		return -1;
	c->net = net;
	min_mib = limit_mib;
	if (vmcfg_get_u32(x, "resident-min-mib", false, 1, limit_mib, &min_mib))
		return -1;
	if (min_mib < limit_mib && !swap_mib)
		return vmcfg_fail(x, "property 'resident-min-mib' below 'resident-limit-mib' needs 'swap-mib': "
				     "only a VM that swaps can give pages back when the machine runs short");
	c->resident_limit = MiB(limit_mib);
	c->resident_min = MiB(min_mib);
	c->swap_limit = MiB(swap_mib);
	c->swap_full = full;
	c->balloon = balloon;
	c->balloon_oom = balloon && oom;
	return 0;
}

static int parse_root(struct ctx *x, u32 *machine_mib)
{
	int rc, child;

	if ((uintptr_t)x->fdt & 7) /* libfdt 1.6 refuses it, with an error it cannot name */
		return vmcfg_fail(x, "the config blob at %p is not 8-byte aligned", x->fdt);
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
		return vmcfg_fail(x, "not a valid flattened device tree (%s)", fdt_strerror(rc));
	if (fdt_node_check_compatible(x->fdt, 0, "quire,vm-config"))
		return vmcfg_fail(x, "property 'compatible' must be \"quire,vm-config\"");
	if (vmcfg_known_props(x, root_props) ||
	    vmcfg_get_u32(x, "machine-memory-mib", false, 1, ~0u, machine_mib))
		return -1;
	fdt_for_each_subnode(child, x->fdt, 0) {
		if (strcmp(fdt_get_name(x->fdt, child, NULL), "vms"))
			return vmcfg_fail(x, "unknown child node '%s' (only 'vms')",
					  fdt_get_name(x->fdt, child, NULL));
		if (x->node)
			return vmcfg_fail(x, "more than one 'vms' node");
		x->node = child;
	}
	if (!x->node)
		return vmcfg_fail(x, "no 'vms' node");
	x->path = "/vms";
	return vmcfg_known_props(x, no_props);
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
		if (!vmcfg_good_name(name, len))
			return vmcfg_fail(&v, "a VM's node name must be 1 to %d characters of A-Z a-z 0-9 _ - "
					      "(no unit address)", VMCFG_NAME_MAX - 1);
		if (n == max)
			return vmcfg_fail(&v, "more than %u VMs", max);
		for (unsigned i = 0; i < n; i++)
			if (!strcmp(out[i].name, name))
				return vmcfg_fail(&v, "a second VM of this name");
		if (parse_vm(&v, &out[n]))
			return -1;
		memcpy(out[n++].name, name, len + 1);
	}
	if (!n)
		return vmcfg_fail(&x, "no VM (a VM is a child node of /vms)");
	if (machine_mib)
		*machine_mib = mib;
	return n;
}

/* The first word of bootargs (at *s) that starts with key and is at least min_len long; NULL if none. */
static const char *bootargs_word(const char *s, const char *key, size_t min_len, size_t *len)
{
	size_t kl = strlen(key);

	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		for (*len = 0; s[*len] && s[*len] != ' ' && s[*len] != '\t'; (*len)++)
			;
		if (*len >= min_len && *len >= kl && !strncmp(s, key, kl))
			return s;
		s += *len;
	}
	return NULL;
}

int bootargs_u64(const char *s, const char *key, u64 *val)
{
	size_t kl = strlen(key), len, i;
	const char *w = bootargs_word(s, key, kl + 1, &len);
	u64 v = 0;

	if (!w)
		return 0;
	for (i = kl; i < len && w[i] >= '0' && w[i] <= '9' && v <= (~0UL - 9) / 10; i++)
		v = v * 10 + (u64)(w[i] - '0');
	if (i != len)
		return -1;
	*val = v;
	return 1;
}

bool bootargs_has(const char *s, const char *word)
{
	size_t len;

	/* A word equal to it: one that starts with it and is no longer. */
	for (const char *w = s; (w = bootargs_word(w, word, 0, &len)); w += len)
		if (len == strlen(word))
			return true;
	return false;
}
