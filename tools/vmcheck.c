/*
 * vmcheck: check a VM-config DTB at build time with the code Quire runs at
 * boot (core/vmconfig*.c), against the images the build carries and the
 * machine the config names (docs/config.md).
 *
 *   vmcheck [--cpus N] [--image NAME=PATH]... [--disk IMG] CONFIG.dtb
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libfdt.h>
#include <quire/gpt.h>
#include <quire/vmconfig.h>

#define MAX_IMAGES 16
#define QUIRE_SIZE MiB(2)	/* Quire's own image, stacks and tables */
#define PAGE_DESC_BYTES 16	/* the pool's descriptor of each machine page */

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmcheck: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: vmcheck [--cpus N] [--image NAME=PATH]... [--disk IMG] CONFIG.dtb\n"
			"  --cpus N            physical CPUs of the target (default %d)\n"
			"  --image NAME=PATH   an image the build carries, by its name in configs\n"
			"                      (module:NAME: a boot module, else checked only at boot)\n"
			"  --disk IMG          the host disk Quire will have: the VMs' 'disk' partitions are\n"
			"                      checked against its GPT (else only at boot)\n",
		VMCFG_MAX_CPUS);
	exit(2);
}

static u8 *read_all(const char *path, u64 *size)
{
	FILE *f = fopen(path, "rb");
	u8 *p = NULL;
	long n;

	if (!f)
		die("%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die("%s: cannot find its size", path);
	/* At least one byte, so an empty file is still a valid buffer. */
	if (!(p = malloc(n ? n : 1)) || fread(p, 1, n, f) != (size_t)n)
		die("%s: cannot read it", path);
	fclose(f);
	*size = n;
	return p;
}

static int read_sectors(void *ctx, u64 lba, void *buf, unsigned count)
{
	FILE *f = ctx;

	return fseek(f, (long)(lba * GPT_SECTOR), SEEK_SET) || fread(buf, GPT_SECTOR, count, f) != count ? -1 : 0;
}

/* The disk image's partition table, as Quire reads it at boot; NULL if it has none. */
static const struct gpt *read_disk(const char *path)
{
	static struct gpt g;
	static u8 scratch[GPT_SCRATCH];
	FILE *f = fopen(path, "rb");
	char err[256];
	long n;
	int rc;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0)
		die("%s: %s", path, strerror(errno));
	rc = gpt_read((u64)n / GPT_SECTOR, read_sectors, f, scratch, &g, err, sizeof(err));
	fclose(f);
	if (rc < 0)
		die("%s: partition table refused: %s", path, err);
	return rc ? &g : NULL;
}

static const char *mib(u64 bytes, char *buf, size_t size)
{
	if (bytes % MiB(1))
		snprintf(buf, size, "%.1f MiB", (double)bytes / MiB(1));
	else
		snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes >> 20));
	return buf;
}

static void print_vm(const struct vm_config *c)
{
	char mem[32], lim[32], cpus[3 * VMCFG_MAX_CPUS + 1] = "all";
	size_t used = 0;

	if (c->cpus != VMCFG_CPUS_ALL)
		for (unsigned i = 0; i < VMCFG_MAX_CPUS; i++)
			if (c->cpus & BIT(i))
				used += snprintf(cpus + used, sizeof(cpus) - used, "%s%u",
						 used ? "," : "", i);
	printf("%-15s %u vCPU%s, %s at 0x%llx, resident limit %s, kernel %s%s%s, CPUs %s%s%s%s%s",
	       c->name, c->vcpus, c->vcpus == 1 ? "" : "s", mib(c->mem_size, mem, sizeof(mem)),
	       (unsigned long long)c->mem_base, mib(c->resident_limit, lim, sizeof(lim)), c->kernel,
	       c->initramfs[0] ? " + initramfs " : "", c->initramfs, cpus,
	       !c->balloon ? "" : c->balloon_oom ? ", balloon" : ", balloon (no deflate on OOM)",
	       c->disk[0] ? ", disk " : "", c->disk, !c->disk[0] ? "" : c->disk_ro ? " (ro)" : " (rw)");
	if (c->net)
		printf(", net %02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1], c->mac[2], c->mac[3], c->mac[4],
		       c->mac[5]);
	printf("\n");
}

int main(int argc, char **argv)
{
	static struct vmcfg_image images[MAX_IMAGES + 1];
	struct vm_config vms[VMCFG_MAX_VMS];
	/*
	 * With a swap disk (Quire checks again at boot, where there may be none);
	 * boot modules ("module:NAME") not given as --image are checked at boot.
	 */
	struct vmcfg_limits lim = { VMCFG_MAX_CPUS, 0, images, true, true, false, NULL };
	unsigned nimages = 0;
	u64 size, carried = 0, machine, overhead, guest = 0;
	const char *config_path;
	u32 machine_mib;
	char err[512];
	u8 *fdt;
	int i, n;

	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		char *end, *eq;

		if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
			lim.cpus = strtoul(argv[++i], &end, 0);
			if (*end || !lim.cpus || lim.cpus > VMCFG_MAX_CPUS)
				die("--cpus must be 1 to %d", VMCFG_MAX_CPUS);
		} else if (!strcmp(argv[i], "--image") && i + 1 < argc) {
			eq = strchr(argv[++i], '=');
			if (!eq || eq == argv[i] || !eq[1])
				die("--image wants NAME=PATH, not '%s'", argv[i]);
			if (nimages == MAX_IMAGES)
				die("more than %d images", MAX_IMAGES);
			*eq = '\0';
			images[nimages].name = argv[i];
			images[nimages].data = read_all(eq + 1, &images[nimages].size);
			carried += images[nimages++].size;
		} else if (!strcmp(argv[i], "--disk") && i + 1 < argc) {
			lim.disk = read_disk(argv[++i]);
			lim.disk_known = true;
		} else {
			usage();
		}
	}
	if (i != argc - 1)
		usage();
	config_path = argv[i];
	fdt = read_all(config_path, &size);
	/* vmconfig_parse trusts the header's size: make sure the file holds that much. */
	if (size < sizeof(struct fdt_header) || (!fdt_check_header(fdt) && fdt_totalsize(fdt) > size))
		die("%s: not a device tree, or truncated (%llu bytes)", config_path,
		    (unsigned long long)size);
	n = vmconfig_parse(fdt, vms, VMCFG_MAX_VMS, &machine_mib, err, sizeof(err));
	if (n < 0)
		die("%s: %s", config_path, err);
	if (!machine_mib)
		die("%s: /: property 'machine-memory-mib' is missing; vmcheck needs the machine's "
		    "memory to check that the resident limits fit", config_path);
	/* What Quire keeps of the machine: itself, the images it carries, a descriptor per page. */
	machine = (u64)machine_mib << 8;
	overhead = ALIGN_UP(QUIRE_SIZE + carried + machine * PAGE_DESC_BYTES, SZ_4K) / SZ_4K;
	if (overhead >= machine)
		die("%s: /: property 'machine-memory-mib' (%u MiB) does not even hold Quire and its "
		    "images", config_path, machine_mib);
	lim.machine_pages = machine - overhead;
	if (vmconfig_check(vms, n, &lim, err, sizeof(err)))
		die("%s: %s", config_path, err);

	for (i = 0; i < n; i++) {
		print_vm(&vms[i]);
		guest += vms[i].mem_size;
	}
	printf("guest memory %llu MiB on %llu MiB for guests (machine %u MiB): %.2fx, %s\n",
	       (unsigned long long)(guest >> 20), (unsigned long long)lim.machine_pages >> 8,
	       machine_mib, (double)guest / (lim.machine_pages * SZ_4K),
	       guest > lim.machine_pages * SZ_4K ? "overcommitted" : "not overcommitted");
	return 0;
}
