/*
 * vmconfig_parse / vmconfig_check on the configs in vmconfig/ (each bad one
 * breaks one rule of docs/config.md), on the examples in dts/vms/, and on
 * blobs built here; linux_layout on fake Image headers; vmconfig_quota_pages.
 *
 * The checks run against a fake build: a Linux Image of 20 MiB whose header
 * asks for 24 MiB, a 4 MiB initramfs, a 64 KiB test guest memtest and a 3 MiB test guest
 * image 'big'; 4 CPUs and 1 GiB of machine pages for guests.
 *
 * Tests named regression_* pin down defects found and fixed in the code.
 *
 * Environment: QUIRE_DTB_DIR, the compiled configs (default ../../build/host).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quire/vmconfig.h>

#define KERNEL_FILE MiB(20)
#define KERNEL_IMAGE_SIZE MiB(24)
#define INITRD_SIZE MiB(4)
#define MEMTEST_SIZE (64UL << 10)
#define BIG_SIZE MiB(3)
#define MACHINE_PAGES (MiB(1024) / SZ_4K)

static const char *dtb_dir = "../../build/host";
static struct vmcfg_image images[5];
static struct vmcfg_limits lim;
static struct vm_config vms[VMCFG_MAX_VMS];
static u32 machine_mib;
static char err[512];
static void *blob; /* the config a test loaded, freed after it */

/* ---- helpers ---------------------------------------------------------- */

static void put_le64(u8 *p, u64 v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

/* A 64-byte arm64 Image header (and zeroes up to size). */
static u8 *fake_image(u64 size, u64 text_offset, u64 image_size)
{
	u8 *p = calloc(1, size);

	assert_non_null(p);
	put_le64(p + 8, text_offset);
	put_le64(p + 16, image_size);
	memcpy(p + 56, "ARM\x64", 4);
	return p;
}

static int setup_build(void **state)
{
	const char *dir = getenv("QUIRE_DTB_DIR");

	(void)state;
	if (dir)
		dtb_dir = dir;
	images[0] = (struct vmcfg_image){ "linux", fake_image(KERNEL_FILE, 0, KERNEL_IMAGE_SIZE),
					  KERNEL_FILE };
	images[1] = (struct vmcfg_image){ "linux_initrd", calloc(1, INITRD_SIZE), INITRD_SIZE };
	images[2] = (struct vmcfg_image){ "memtest", calloc(1, MEMTEST_SIZE), MEMTEST_SIZE };
	images[3] = (struct vmcfg_image){ "big", calloc(1, BIG_SIZE), BIG_SIZE };
	images[4] = (struct vmcfg_image){ NULL, NULL, 0 };
	lim = (struct vmcfg_limits){ 4, MACHINE_PAGES, images, true, false, false, NULL };
	if (!images[1].data || !images[2].data || !images[3].data)
		return -1;
	/* memtest and big are Quire test guests: the marker start.S puts at offset 8 */
	memcpy((u8 *)images[2].data + IMAGE_TEST_GUEST_MAGIC_OFF, IMAGE_TEST_GUEST_MAGIC, 8);
	memcpy((u8 *)images[3].data + IMAGE_TEST_GUEST_MAGIC_OFF, IMAGE_TEST_GUEST_MAGIC, 8);
	return 0;
}

static int teardown_build(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		free((void *)images[i].data);
	return 0;
}

static int free_blob(void **state)
{
	(void)state;
	free(blob);
	blob = NULL;
	return 0;
}

/*
 * A compiled config, in a heap buffer of exactly its size so ASan sees any
 * overread: "bad-vm-prop" is one of vmconfig/, "vms/default" an example.
 */
static void *load(const char *name)
{
	char path[512];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/%s%s.dtb", dtb_dir, strchr(name, '/') ? "" : "vmconfig/", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s (build it with: make -C tests/host all)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	free(blob);
	blob = malloc(size);
	assert_non_null(blob);
	assert_int_equal(fread(blob, 1, size, f), size);
	fclose(f);
	return blob;
}

static int parse(const void *fdt)
{
	memset(vms, 0xa5, sizeof(vms)); /* no field may keep what was there before */
	memset(err, 0, sizeof(err));
	machine_mib = 12345;
	return vmconfig_parse(fdt, vms, VMCFG_MAX_VMS, &machine_mib, err, sizeof(err));
}

static int parse_ok(const void *fdt)
{
	int n = parse(fdt);

	if (n < 1)
		fail_msg("vmconfig_parse returned %d: %s", n, err);
	return n;
}

static void check_ok(int n)
{
	if (vmconfig_check(vms, n, &lim, err, sizeof(err)))
		fail_msg("vmconfig_check refused: %s", err);
}

/* err must be one line mentioning each of the strings (node path, property, ...). */
static void assert_mentions(const char *const *what)
{
	if (strchr(err, '\n') || !err[0])
		fail_msg("error message \"%s\" is not one line", err);
	for (; *what; what++)
		if (!strstr(err, *what))
			fail_msg("error message \"%s\" does not mention \"%s\"", err, *what);
}

/* ---- bad configs, one rule each ---------------------------------------- */

struct bad {
	const char *file;
	bool parses;		 /* refused by vmconfig_check, not by vmconfig_parse */
	const char *what[5];	 /* strings the error must contain, up to 4 */
};

static const struct bad bad[] = {
	{ "bad-compatible", false, { "/: ", "'compatible'", "quire,vm-config" } },
	{ "bad-no-compatible", false, { "/: ", "'compatible'" } },
	{ "bad-root-prop", false, { "/: ", "unknown property 'machine-memory'", "machine-memory-mib" } },
	{ "bad-root-child", false, { "/: ", "unknown child node 'extra'" } },
	{ "bad-machine-mib", false, { "/: ", "'machine-memory-mib'", "not 0" } },
	{ "bad-no-vms", false, { "/: ", "no 'vms' node" } },
	{ "bad-empty-vms", false, { "/vms: ", "no VM" } },
	{ "bad-vms-prop", false, { "/vms: ", "unknown property 'count'" } },
	{ "bad-too-many", false, { "/vms/vm9: ", "more than 8 VMs" } },
	{ "bad-vm-prop", false, { "/vms/web: ", "unknown property 'memory'", "memory-mib", "swap-mib" } },
	{ "bad-vm-child", false, { "/vms/web: ", "unknown child node 'disk'" } },
	{ "bad-name-char", false, { "/vms/web.1: ", "node name", "1 to 15" } },
	{ "bad-name-unit", false, { "/vms/web@1: ", "node name", "unit address" } },
	{ "bad-name-long", false, { "/vms/abcdefghijklmnop: ", "node name", "1 to 15" } },
	{ "bad-vcpus-zero", false, { "/vms/web: ", "'vcpus'", "1 to 8, not 0" } },
	{ "bad-vcpus-many", false, { "/vms/web: ", "'vcpus'", "1 to 8, not 9" } },
	{ "bad-vcpus-missing", false, { "/vms/web: ", "missing", "'vcpus'" } },
	{ "bad-memory-missing", false, { "/vms/web: ", "missing", "'memory-mib'" } },
	{ "bad-kernel-missing", false, { "/vms/web: ", "missing", "'kernel'" } },
	{ "bad-memory-zero", false, { "/vms/web: ", "'memory-mib'", "not 0" } },
	{ "bad-memory-huge", false, { "/vms/web: ", "'memory-mib'", "1 to 524288, not 524289" } },
	{ "bad-memory-size", false,
	  { "/vms/web: property 'memory-mib' must be one 32-bit cell, not 8 bytes" } },
	{ "bad-base-size", false, { "/vms/web: ", "'memory-base'", "64-bit", "not 4 bytes" } },
	{ "bad-base-align", false, { "/vms/web: ", "'memory-base'", "0x40100000", "2 MiB aligned" } },
	{ "bad-base-gic", false, { "/vms/web: ", "'memory-base'", "vGIC distributor" } },
	{ "bad-base-uart", false, { "/vms/web: ", "'memory-base'", "0x8e00000-0x9200000", "vPL011" } },
	{ "bad-ipa", false, { "/vms/web: ", "'memory-mib'", "39-bit", "0x7fe0000000" } },
	{ "bad-limit-over", false, { "/vms/web: ", "'resident-limit-mib'", "1 to 256, not 257" } },
	{ "bad-limit-zero", false, { "/vms/web: ", "'resident-limit-mib'", "not 0" } },
	{ "bad-kernel-unterminated", false, { "/vms/web: ", "'kernel'", "NUL-terminated" } },
	{ "bad-kernel-list", false, { "/vms/web: ", "'kernel'", "one string" } },
	{ "bad-kernel-long", false, { "/vms/web: ", "'kernel'", "at most 15", "not 16" } },
	{ "bad-bootargs-long", false, { "/vms/web: ", "'bootargs'", "at most 255", "not 256" } },
	{ "bad-cpus-range", false, { "/vms/web: ", "'cpus'", "CPU 8", "0 to 7" } },
	{ "bad-cpus-twice", false, { "/vms/web: ", "'cpus'", "CPU 1 twice" } },
	{ "bad-cpus-empty", false, { "/vms/web: ", "'cpus'", "not 0 bytes" } },
	{ "bad-sharing-mode", false, { "/vms/web: ", "'sharing'", "\"all\"" } },
	{ "bad-domain-missing", false, { "/vms/web: ", "'sharing'", "'share-domain'", "missing" } },
	{ "bad-domain-unneeded", false, { "/vms/web: ", "'share-domain'", "sharing = \"domain\"" } },
	{ "bad-domain-name", false, { "/vms/web: ", "'share-domain'", "1 to 15" } },
	{ "bad-scan-zero", false, { "/vms/web: ", "'share-scan-pages'", "1 to 65536, not 0" } },
	{ "bad-scan-big", false, { "/vms/web: ", "'share-scan-pages'", "not 65537" } },
	{ "bad-swap-size", false, { "/vms/web: ", "'swap-mib'", "32-bit", "not 8 bytes" } },
	{ "bad-min-noswap", false, { "/vms/web: ", "'resident-min-mib'", "needs 'swap-mib'" } },
	{ "bad-min-over", false, { "/vms/web: ", "'resident-min-mib'", "1 to 128", "not 129" } },
	{ "bad-swap-full", false, { "/vms/web: ", "'swap-full'", "\"stop\" or \"wait\"", "not \"pause\"" } },
	{ "bad-blocks", false, { "/vms/web: ", "'blocks'", "\"on\" or \"off\"", "not \"maybe\"" } },
	{ "bad-arg-size", false, { "/vms/web: ", "'arg'", "64-bit", "not 4 bytes" } },
	{ "check-kernel-unknown", true,
	  { "/vms/web: ", "'kernel'", "'nope'", "this build carries: linux, linux_initrd, memtest, big" } },
	{ "check-initramfs-unknown", true, { "/vms/web: ", "'initramfs'", "'nope'", "carries: linux," } },
	{ "check-initramfs-bare", true, { "/vms/web: ", "'initramfs'", "not for Quire test guests", "'memtest'" } },
	{ "check-bootargs-bare", true, { "/vms/web: ", "'bootargs'", "not for Quire test guests", "'memtest'" } },
	{ "check-arg-linux", true, { "/vms/web: ", "'arg'", "Quire test guests only", "'linux'" } },
	{ "check-linux-ram", true, { "/vms/web: ", "'memory-mib'", "(25 MiB)", "kernel 'linux'" } },
	{ "check-initrd-ram", true,
	  { "/vms/web: ", "'memory-mib'", "(28 MiB)", "initramfs 'linux_initrd'" } },
	{ "check-bare-ram", true, { "/vms/web: ", "'memory-mib'", "(2 MiB)", "image 'big'" } },
	{ "check-limit-linux", true,
	  { "/vms/web: ", "'resident-limit-mib'", "(24 MiB)", "24640 KiB" } },
	{ "check-limit-bare", true, { "/vms/web: ", "'resident-limit-mib'", "(2 MiB)", "3072 KiB" } },
	{ "check-cpus", true, { "/vms/web: ", "'cpus'", "CPUs 0 to 3" } },
	{ "check-machine", true,
	  { "/vms: ", "'resident-limit-mib'", "need 1283 MiB", "has 1024 MiB" } },
};

/* bootargs = "" is a command line, empty; no bootargs property means Quire's default. */
static void empty_bootargs(void **state)
{
	(void)state;
	parse_ok(load("bootargs-empty"));
	assert_true(vms[0].bootargs_set);
	assert_string_equal(vms[0].bootargs, "");
	assert_int_equal(vmconfig_check(vms, 1, &lim, err, sizeof(err)), 0);
	parse_ok(load("good-minimal"));
	assert_false(vms[0].bootargs_set);
}

static void bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const struct bad *b = &bad[i];
		int n = parse(load(b->file));

		if (b->parses) {
			if (n < 1)
				fail_msg("%s: vmconfig_parse refused: %s", b->file, err);
			if (!vmconfig_check(vms, n, &lim, err, sizeof(err)))
				fail_msg("%s: vmconfig_check accepted it", b->file);
		} else if (n != -1) {
			fail_msg("%s: vmconfig_parse returned %d, not -1", b->file, n);
		}
		printf("  %-24s %s\n", b->file, err);
		assert_mentions(b->what);
	}
}

/* A blob that is no FDT, or whose header lies about its size. */
static void not_a_device_tree(void **state)
{
	static const char junk[64] = "vm=linux:2:512:135000:0";
	const char *what[] = { "not a valid flattened device tree", NULL };
	u8 *fdt;

	(void)state;
	assert_int_equal(parse(junk), -1);
	assert_mentions(what);
	fdt = load("good-minimal");
	fdt_set_totalsize(fdt, fdt_totalsize(fdt) - 8); /* the strings block now overhangs */
	assert_int_equal(parse(fdt), -1);
	assert_mentions(what);
	fdt = load("good-minimal");
	fdt_set_version(fdt, 1);
	assert_int_equal(parse(fdt), -1);
	assert_mentions(what);
}

/* libfdt wants the blob 8-byte aligned; a boot module might not be. */
static void misaligned_blob(void **state)
{
	const char *what[] = { "/: ", "not 8-byte aligned", NULL };
	u8 *fdt = load("good-minimal"), *copy = malloc(fdt_totalsize(fdt) + 4);

	(void)state;
	assert_non_null(copy);
	memcpy(copy + 4, fdt, fdt_totalsize(fdt));
	assert_int_equal(parse(copy + 4), -1);
	free(copy);
	assert_mentions(what);
}

/* Found by fuzzing: libfdt 1.6's fdt_check_full crashed on a version-4 blob. */
static void regression_old_version(void **state)
{
	const char *what[] = { "not a valid flattened device tree", "FDT_ERR_BADVERSION", NULL };
	u8 *fdt;

	(void)state;
	fdt = load("good-minimal");
	fdt_set_version(fdt, 4);
	fdt_set_last_comp_version(fdt, 3);
	assert_int_equal(parse(fdt), -1);
	assert_mentions(what);
}

/* dtc refuses two nodes of one name, but a blob built otherwise can have them. */
static void duplicate_names(void **state)
{
	static u8 fdt[1024];
	const char *what[] = { "/vms/twin: ", "second VM of this name", NULL };

	(void)state;
	assert_int_equal(fdt_create(fdt, sizeof(fdt)), 0);
	assert_int_equal(fdt_finish_reservemap(fdt), 0);
	assert_int_equal(fdt_begin_node(fdt, ""), 0);
	assert_int_equal(fdt_property_string(fdt, "compatible", "quire,vm-config"), 0);
	assert_int_equal(fdt_begin_node(fdt, "vms"), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fdt_begin_node(fdt, "twin"), 0);
		assert_int_equal(fdt_property_u32(fdt, "vcpus", 1), 0);
		assert_int_equal(fdt_property_u32(fdt, "memory-mib", 16), 0);
		assert_int_equal(fdt_property_string(fdt, "kernel", "memtest"), 0);
		assert_int_equal(fdt_end_node(fdt), 0);
	}
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_finish(fdt), 0);
	assert_int_equal(parse(fdt), -1);
	assert_mentions(what);
}

/* More VMs than the caller has room for, however few that is. */
static void more_vms_than_room(void **state)
{
	const char *what[] = { "/vms/Db_2: ", "more than 1 VMs", NULL };

	(void)state;
	assert_int_equal(vmconfig_parse(load("good-full"), vms, 1, NULL, err, sizeof(err)), -1);
	assert_mentions(what);
}

/* A short error buffer truncates the sentence, never overruns. */
static void short_error_buffer(void **state)
{
	char small[12];

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(vmconfig_parse(load("bad-vm-prop"), vms, VMCFG_MAX_VMS, NULL, small,
					sizeof(small)),
			 -1);
	assert_string_equal(small, "/vms/web: u");
	assert_int_equal(vmconfig_parse(load("bad-vm-prop"), vms, VMCFG_MAX_VMS, NULL, small, 3), -1);
	assert_string_equal(small, "/v");
}

/* ---- good configs ------------------------------------------------------ */

static void full_config(void **state)
{
	const struct vm_config *c = &vms[0];

	(void)state;
	assert_int_equal(parse_ok(load("good-full")), 3);
	assert_int_equal(machine_mib, 4096);

	assert_string_equal(c->name, "web-1");
	assert_int_equal(c->vcpus, 4);
	assert_int_equal(c->mem_base, 0x80000000);
	assert_int_equal(c->mem_size, MiB(1024));
	assert_int_equal(c->resident_limit, MiB(300));
	assert_int_equal(c->resident_min, MiB(100));
	assert_string_equal(c->kernel, "linux");
	assert_string_equal(c->initramfs, "linux_initrd");
	assert_string_equal(c->bootargs, "console=ttyAMA0 quiet");
	assert_int_equal(c->cpus, BIT(1) | BIT(3));
	assert_int_equal(c->arg, 0);
	assert_int_equal(c->sharing, SHARE_DOMAIN);
	assert_string_equal(c->share_domain, "front_end");
	assert_int_equal(c->scan_pages, 65536);
	assert_int_equal(c->swap_limit, MiB(2048));
	assert_int_equal(c->swap_full, SWAP_FULL_WAIT);
	assert_false(c->blocks);

	c = &vms[1];
	assert_true(c->blocks); /* on unless the config says off */
	assert_string_equal(c->name, "Db_2");
	assert_int_equal(c->vcpus, 8);
	assert_int_equal(c->mem_base, VMCFG_RAM_BASE);
	assert_int_equal(c->mem_size, MiB(4));
	assert_int_equal(c->resident_limit, MiB(4));
	assert_string_equal(c->kernel, "memtest");
	assert_string_equal(c->initramfs, "");
	assert_string_equal(c->bootargs, "");
	assert_int_equal(c->cpus, 0xf);
	assert_int_equal(c->arg, UINT64_MAX);
	assert_int_equal(c->sharing, SHARE_OFF);
	assert_string_equal(c->share_domain, "");
	assert_int_equal(c->scan_pages, 1);
	assert_int_equal(c->swap_limit, 0);

	c = &vms[2];
	assert_string_equal(c->name, "z");
	assert_int_equal(c->resident_limit, MiB(4));
	assert_int_equal(c->sharing, SHARE_ZERO);
	assert_int_equal(c->cpus, VMCFG_CPUS_ALL);
	check_ok(3);
}

static void minimal_config_defaults(void **state)
{
	const struct vm_config *c = &vms[0];

	(void)state;
	assert_int_equal(parse_ok(load("good-minimal")), 1);
	assert_int_equal(machine_mib, 0);
	assert_string_equal(c->name, "m");
	assert_int_equal(c->vcpus, 1);
	assert_int_equal(c->mem_base, VMCFG_RAM_BASE);
	assert_int_equal(c->mem_size, MiB(64));
	assert_int_equal(c->resident_limit, MiB(64));
	assert_int_equal(c->resident_min, MiB(64));
	assert_string_equal(c->kernel, "memtest");
	assert_string_equal(c->initramfs, "");
	assert_string_equal(c->bootargs, "");
	assert_int_equal(c->cpus, VMCFG_CPUS_ALL);
	assert_int_equal(c->arg, 0);
	assert_int_equal(c->sharing, SHARE_SELF);
	assert_string_equal(c->share_domain, "");
	assert_int_equal(c->scan_pages, VMCFG_SCAN_PAGES);
	assert_int_equal(c->swap_limit, 0);
	assert_int_equal(c->swap_full, SWAP_FULL_STOP);
	check_ok(1);
}

/* RAM up to each device window and to the end of the IPA space; longest names and bootargs. */
static void edges_config(void **state)
{
	(void)state;
	assert_int_equal(parse_ok(load("good-edges")), 4);
	assert_int_equal(vms[0].mem_base + vms[0].mem_size, 0x08000000);
	assert_int_equal(vms[1].mem_base, 0x08200000);
	assert_int_equal(vms[1].mem_base + vms[1].mem_size, 0x09000000);
	assert_int_equal(vms[2].mem_base, 0x09200000);
	assert_string_equal(vms[3].name, "top_of_ipa_012");
	assert_int_equal(vms[3].mem_base + vms[3].mem_size, BIT(VMCFG_IPA_BITS));
	assert_int_equal(strlen(vms[3].bootargs), VMCFG_BOOTARGS_MAX - 1);
	check_ok(4);
}

/* The examples in dts/vms/ parse and pass the check against the fake build. */
static void example_configs(void **state)
{
	(void)state;
	assert_int_equal(parse_ok(load("vms/default")), 1);
	assert_int_equal(machine_mib, 2048);
	assert_string_equal(vms[0].name, "linux");
	assert_int_equal(vms[0].vcpus, 2);
	assert_int_equal(vms[0].mem_size, MiB(512));
	assert_int_equal(vms[0].resident_limit, MiB(512));
	assert_string_equal(vms[0].initramfs, "linux_initrd");
	check_ok(1);

	assert_int_equal(parse_ok(load("vms/four-linux")), 4);
	assert_int_equal(machine_mib, 1024);
	for (int i = 0; i < 4; i++) {
		static const char *const names[] = { "alpha", "beta", "gamma", "delta" };

		assert_string_equal(vms[i].name, names[i]);
		assert_int_equal(vms[i].resident_limit, MiB(160));
		assert_int_equal(vms[i].cpus, VMCFG_CPUS_ALL);
	}
	check_ok(4);

	assert_int_equal(parse_ok(load("vms/sparse")), 2);
	assert_int_equal(vms[0].mem_size, MiB(4096));
	assert_int_equal(vms[0].resident_limit, MiB(64));
	assert_int_equal(vms[0].arg, 3);
	check_ok(2);
}

/* The machine check is exact: the sum of quotas may equal the machine's pages. */
static void machine_pages_boundary(void **state)
{
	const char *what[] = { "/vms: ", "cannot all be met", NULL };
	u64 need;

	(void)state;
	assert_int_equal(parse_ok(load("vms/four-linux")), 4);
	need = 4 * (u64)vmconfig_quota_pages(&vms[0]);
	lim.machine_pages = need;
	check_ok(4);
	lim.machine_pages = need - 1;
	assert_int_equal(vmconfig_check(vms, 4, &lim, err, sizeof(err)), -1);
	lim.machine_pages = MACHINE_PAGES;
	assert_mentions(what);
}

/*
 * A VM that swaps is kept only its resident-min: with a swap disk, two
 * such VMs whose limits add up past the machine are admitted; without one,
 * their limits are hard and they are refused.
 */
static void overcommit_with_swap(void **state)
{
	const char *what[] = { "/vms: ", "cannot all be met", "'resident-min-mib'", NULL };
	u32 quota, over;

	(void)state;
	assert_int_equal(parse_ok(load("vms/four-linux")), 4);
	for (unsigned i = 0; i < 4; i++) {
		vms[i].swap_limit = MiB(512);
		vms[i].resident_min = MiB(16);
	}
	quota = vmconfig_quota_pages(&vms[0]);
	over = vmconfig_overcommit_pages(&vms[0]);
	assert_int_equal(over, (vms[0].resident_limit - MiB(16)) / SZ_4K);
	assert_int_equal(vmconfig_guaranteed_pages(&vms[0], true), quota - over);
	assert_int_equal(vmconfig_guaranteed_pages(&vms[0], false), quota);
	lim.machine_pages = 4 * (u64)(quota - over);
	check_ok(4);
	lim.swap = false;
	assert_int_equal(vmconfig_check(vms, 4, &lim, err, sizeof(err)), -1);
	lim.swap = true;
	lim.machine_pages = MACHINE_PAGES;
	assert_mentions(what);
	/* No swap space: nothing to give back, the whole limit is kept. */
	vms[0].swap_limit = 0;
	assert_int_equal(vmconfig_overcommit_pages(&vms[0]), 0);
}

/* ---- vmconfig_quota_pages ---------------------------------------------- */

static void quota_pages(void **state)
{
	struct vm_config c = { .mem_base = VMCFG_RAM_BASE };

	(void)state;
	/* 512 MiB: limit + root + 1 level-2 + 256 level-3 + 2 for the devices */
	c.mem_size = c.resident_limit = MiB(512);
	assert_int_equal(vmconfig_quota_pages(&c), 131072 + 1 + 1 + 256 + 2);
	/* the sparse example: 4 GiB of RAM, 64 MiB resident */
	c.mem_size = MiB(4096);
	c.resident_limit = MiB(64);
	assert_int_equal(vmconfig_quota_pages(&c), 16384 + 1 + 4 + 2048 + 2);
	/* 1 MiB: one of each table */
	c.mem_size = c.resident_limit = MiB(1);
	assert_int_equal(vmconfig_quota_pages(&c), 256 + 1 + 1 + 1 + 2);
	/* 4 MiB across a GiB boundary needs a level-2 table on each side */
	c.mem_base = SZ_1G * 2 - SZ_2M;
	c.mem_size = c.resident_limit = MiB(4);
	assert_int_equal(vmconfig_quota_pages(&c), 1024 + 1 + 2 + 2 + 2);
}

/* ---- linux_layout ------------------------------------------------------ */

static struct vm_config linux_vm(u64 mem_mib)
{
	struct vm_config c = { .name = "lx", .kernel = "linux", .initramfs = "linux_initrd",
			       .mem_base = VMCFG_RAM_BASE, .mem_size = MiB(mem_mib) };
	return c;
}

static void layout_ok(const struct vm_config *c, const u8 *hdr, u64 size, u64 rd,
		      struct linux_layout *l)
{
	memset(l, 0xa5, sizeof(*l));
	if (linux_layout(c, hdr, size, rd, l, err, sizeof(err)))
		fail_msg("linux_layout refused: %s", err);
}

static void layout_standard(void **state)
{
	u8 hdr[64] = { 0 };
	struct vm_config c = linux_vm(512);
	struct linux_layout l;
	const u64 base = VMCFG_RAM_BASE;

	(void)state;
	/* Debian's kernels: text_offset 0; image_size past the file (bss) */
	put_le64(hdr + 8, 0);
	put_le64(hdr + 16, MiB(24));
	memcpy(hdr + 56, "ARM\x64", 4);
	layout_ok(&c, hdr, MiB(20), MiB(4), &l);
	assert_int_equal(l.dtb, base);
	assert_int_equal(l.kernel, base + MiB(2));
	assert_int_equal(l.initrd, base + MiB(128));
	/* text_offset 0x80000, as older kernels */
	put_le64(hdr + 8, 0x80000);
	layout_ok(&c, hdr, MiB(20), MiB(4), &l);
	assert_int_equal(l.kernel, base + MiB(2) + 0x80000);
	assert_int_equal(l.initrd, base + MiB(128));
	/* no initramfs */
	layout_ok(&c, hdr, MiB(20), 0, &l);
	assert_int_equal(l.initrd, 0);
	/* a file longer than image_size counts by the file */
	put_le64(hdr + 8, 0);
	put_le64(hdr + 16, MiB(1));
	layout_ok(&c, hdr, MiB(130), MiB(4), &l);
	assert_int_equal(l.initrd, base + MiB(132));
	/* image_size 0 (before Linux 3.17): text_offset is taken as 0x80000 */
	put_le64(hdr + 8, 0x1234);
	put_le64(hdr + 16, 0);
	layout_ok(&c, hdr, MiB(20), MiB(4), &l);
	assert_int_equal(l.kernel, base + MiB(2) + 0x80000);
	/* elsewhere in the IPA space */
	c.mem_base = 0x100000000;
	put_le64(hdr + 8, 0x80000);
	put_le64(hdr + 16, MiB(24));
	layout_ok(&c, hdr, MiB(20), MiB(4), &l);
	assert_int_equal(l.dtb, 0x100000000);
	assert_int_equal(l.kernel, 0x100000000 + MiB(2) + 0x80000);
	assert_int_equal(l.initrd, 0x100000000 + MiB(128));
}

static void layout_small_ram(void **state)
{
	u8 hdr[64] = { 0 };
	struct vm_config c = linux_vm(30);
	struct linux_layout l;
	const char *kernel[] = { "/vms/lx: ", "'memory-mib'", "kernel 'linux'", NULL };
	const char *initrd[] = { "/vms/lx: ", "'memory-mib'", "initramfs 'linux_initrd'", NULL };

	(void)state;
	put_le64(hdr + 16, MiB(24));
	memcpy(hdr + 56, "ARM\x64", 4);
	/* RAM + 128 MiB is past the end: right after the kernel, ending exactly at the RAM's end */
	layout_ok(&c, hdr, MiB(20), MiB(4), &l);
	assert_int_equal(l.initrd, VMCFG_RAM_BASE + MiB(26));
	/* one byte too many */
	assert_int_equal(linux_layout(&c, hdr, MiB(20), MiB(4) + 1, &l, err, sizeof(err)), -1);
	assert_mentions(initrd);
	/* the kernel itself does not fit */
	c = linux_vm(25);
	assert_int_equal(linux_layout(&c, hdr, MiB(20), 0, &l, err, sizeof(err)), -1);
	assert_mentions(kernel);
}

/* Header fields that would overflow the sums, and blobs that are no Image. */
static void layout_hostile(void **state)
{
	u8 hdr[64] = { 0 };
	struct vm_config c = linux_vm(512);
	struct linux_layout l;
	const char *kernel[] = { "/vms/lx: ", "'memory-mib'", "kernel 'linux'", NULL };
	const char *not_image[] = { "/vms/lx: ", "'kernel'", "not an arm64 Linux Image", NULL };

	(void)state;
	memcpy(hdr + 56, "ARM\x64", 4);
	put_le64(hdr + 8, UINT64_MAX - MiB(1));
	put_le64(hdr + 16, MiB(24));
	assert_int_equal(linux_layout(&c, hdr, MiB(20), MiB(4), &l, err, sizeof(err)), -1);
	assert_mentions(kernel);
	put_le64(hdr + 8, 0);
	put_le64(hdr + 16, UINT64_MAX);
	assert_int_equal(linux_layout(&c, hdr, MiB(20), MiB(4), &l, err, sizeof(err)), -1);
	assert_mentions(kernel);
	put_le64(hdr + 16, MiB(24));
	assert_int_equal(linux_layout(&c, hdr, MiB(20), UINT64_MAX, &l, err, sizeof(err)), -1);
	hdr[59] = 0x65;
	assert_int_equal(linux_layout(&c, hdr, MiB(20), 0, &l, err, sizeof(err)), -1);
	assert_mentions(not_image);
}

static void linux_image_magic(void **state)
{
	u8 hdr[64] = { 0 };

	(void)state;
	memcpy(hdr + 56, "ARM\x64", 4);
	assert_true(is_linux_image(hdr, 64));
	assert_false(is_linux_image(hdr, 63));
	hdr[56] = 'a';
	assert_false(is_linux_image(hdr, 64));
}

static void bootargs_words(void **state)
{
	(void)state;
	assert_true(bootargs_has("console=ttyAMA0 quire.bench=pool", "quire.bench=pool"));
	assert_true(bootargs_has("\tquire.novm", "quire.novm"));
	assert_false(bootargs_has("quire.novmx", "quire.novm"));
	assert_false(bootargs_has("", "quire.novm"));
	assert_false(bootargs_has("  \t ", ""));
	assert_true(bootargs_has("quire.novmx quire.novm", "quire.novm"));
	{
		u64 v = 7;

		assert_int_equal(bootargs_u64("a quire.exitmark=61367180 b", "quire.exitmark=", &v), 1);
		assert_true(v == 61367180);
		assert_int_equal(bootargs_u64("quire.exitmark=", "quire.exitmark=", &v), 0);
		assert_int_equal(bootargs_u64("quire.exitmark=12x", "quire.exitmark=", &v), -1);
		assert_int_equal(bootargs_u64("quire.exitmark=99999999999999999999999", "quire.exitmark=", &v), -1);
		assert_int_equal(bootargs_u64("quire.exitmarks=5", "quire.exitmark=", &v), 0);
		assert_true(v == 61367180);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(bad_configs, free_blob),
		cmocka_unit_test_teardown(empty_bootargs, free_blob),
		cmocka_unit_test_teardown(not_a_device_tree, free_blob),
		cmocka_unit_test_teardown(misaligned_blob, free_blob),
		cmocka_unit_test_teardown(regression_old_version, free_blob),
		cmocka_unit_test(duplicate_names),
		cmocka_unit_test_teardown(more_vms_than_room, free_blob),
		cmocka_unit_test_teardown(short_error_buffer, free_blob),
		cmocka_unit_test_teardown(full_config, free_blob),
		cmocka_unit_test_teardown(minimal_config_defaults, free_blob),
		cmocka_unit_test_teardown(edges_config, free_blob),
		cmocka_unit_test_teardown(example_configs, free_blob),
		cmocka_unit_test_teardown(machine_pages_boundary, free_blob),
		cmocka_unit_test_teardown(overcommit_with_swap, free_blob),
		cmocka_unit_test(quota_pages),
		cmocka_unit_test(layout_standard),
		cmocka_unit_test(layout_small_ram),
		cmocka_unit_test(layout_hostile),
		cmocka_unit_test(linux_image_magic),
		cmocka_unit_test(bootargs_words),
	};

	return cmocka_run_group_tests(tests, setup_build, teardown_build);
}
