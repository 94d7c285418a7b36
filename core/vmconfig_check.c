/*
 * Checking parsed VMs against the build and the machine: their images exist
 * and fit, the CPUs they name exist, and their guaranteed pages fit the
 * machine; at boot, VMs naming a boot module that does not suit them are
 * refused alone.
 */
#include <string.h>
#include <quire/gpt.h>
#include <quire/printf.h>
#include "vmconfig_priv.h"

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
		return vmcfg_fail(x, "property '%s' names boot module '%s', but the host DT's /chosen gives %s%s", prop,
				  name + sizeof(MODULE_PREFIX) - 1, used ? "only: " : "none", list);
	return vmcfg_fail(x, "property '%s' names image '%s', but this build carries: %s", prop, name,
			  used ? list : "none");
}

/* The build cannot see boot modules: a VM naming one is checked at boot (vmconfig_drop_vms). */
static bool later(const struct vmcfg_limits *lim, const char *image)
{
	return lim->modules_later && vmconfig_is_module(image) && !find_image(lim, image);
}

/* Its disk: a partition the host disk has, not swap's, big enough (only once the disk is known). */
static int check_disk(const struct ctx *x, const struct vm_config *c, const struct vmcfg_limits *lim)
{
	const struct gpt_part *p;
	char list[160];
	size_t used = 0;
	u64 bytes;

	if (!c->disk[0] || !lim->disk_known)
		return 0;
	if (!lim->disk)
		return vmcfg_fail(x, "property 'disk' names partition '%s', but the host disk has no partition "
				     "table (or there is no host disk)", c->disk);
	p = gpt_find(lim->disk, c->disk);
	if (!p) {
		list[0] = '\0';
		for (unsigned i = 0; i < lim->disk->nparts && used < sizeof(list); i++)
			if (lim->disk->part[i].name[0] && !gpt_is_linux_swap(&lim->disk->part[i]))
				used += q_snprintf(list + used, sizeof(list) - used, "%s'%s'", used ? ", " : "",
						   lim->disk->part[i].name);
		return vmcfg_fail(x, "property 'disk' names partition '%s', but the host disk's partitions for "
				     "VMs are: %s", c->disk, used ? list : "none");
	}
	if (gpt_is_linux_swap(p))
		return vmcfg_fail(x, "property 'disk' names partition '%s', which is a Linux swap partition: the "
				     "host disk's swap, not a VM's", c->disk);
	bytes = (p->last - p->first + 1) * GPT_SECTOR;
	if (bytes < c->disk_min)
		return vmcfg_fail(x, "property 'disk' names partition '%s' of %lu KiB, less than its "
				     "'disk-min-mib' (%lu MiB)", c->disk, (unsigned long)(bytes >> 10),
				  (unsigned long)(c->disk_min >> 20));
	return 0;
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
		return vmcfg_fail(x, "property 'resident-limit-mib' (%lu MiB) cannot hold the %lu KiB the "
				     "VM starts with (%s)", (unsigned long)(c->resident_limit >> 20),
				  (unsigned long)lay.loaded >> 10, rd ? what_rd[lay.kind] : what[lay.kind]);
machine:
	if (c->cpus != VMCFG_CPUS_ALL && lim->cpus < 32 && c->cpus >> lim->cpus)
		return vmcfg_fail(x, "property 'cpus' names a CPU this machine lacks: it has CPUs 0 to %u",
				  lim->cpus - 1);
	return check_disk(x, c, lim);
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
		/* Two ports with one address: the switch could not tell them apart. */
		for (unsigned j = 0; j < i && c[i].net; j++)
			if (c[j].net && !memcmp(c[j].mac, c[i].mac, 6))
				return vmcfg_fail(&x, "property 'net-mac': VM '%s' has the address "
						      "%02x:%02x:%02x:%02x:%02x:%02x too; give each VM its own", c[j].name,
						  c[i].mac[0], c[i].mac[1], c[i].mac[2], c[i].mac[3], c[i].mac[4],
						  c[i].mac[5]);
		/* Two writers of one filesystem corrupt it: a partition is shared only read-only. */
		for (unsigned j = 0; j < i && c[i].disk[0] && !c[i].disk_ro; j++)
			if (!strcmp(c[j].disk, c[i].disk) && !c[j].disk_ro)
				return vmcfg_fail(&x, "property 'disk': partition '%s' is written by VM '%s' too; VMs "
						      "share a partition only read-only (disk-access = \"ro\")",
						  c[i].disk, c[j].name);
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

unsigned vmconfig_drop_vms(struct vm_config *c, unsigned n, const struct vmcfg_limits *lim, char *msg,
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
		if ((vmconfig_is_module(c[i].kernel) || vmconfig_is_module(c[i].initramfs) || c[i].disk[0]) &&
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
