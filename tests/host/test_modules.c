/*
 * Boot modules (core/modules.c) through machine_from_fdt and machine_fit:
 * the good ones of each kind are kept and reserved, every hostile one is
 * refused with a "quire: host DT: <node> <property>: ..." note and not
 * used; and the VM config's side (core/vmconfig_check.c): a VM naming a module
 * ("module:NAME") is left to the boot by the build's checker, and at boot
 * refused alone when the module is absent.
 *
 * Environment: QUIRE_DTB_DIR, the compiled DTBs (default ../../build/host).
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

#include <quire/machine.h>
#include <quire/modules.h>
#include <quire/vmconfig.h>

static const char *dtb_dir = "../../build/host";
static struct machine m;
static char err[512];
static void *blob;

static int free_blob(void **state)
{
	(void)state;
	free(blob);
	blob = NULL;
	return 0;
}

/* A DTB from dtb_dir with 16 KiB of room to edit it; freed after the test. */
static void *load(const char *name)
{
	char path[512];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/%s", dtb_dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s (build it with: make -C tests/host all)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	rewind(f);
	free(blob);
	blob = calloc(1, size + 16384);
	assert_non_null(blob);
	assert_int_equal(fread(blob, 1, size, f), size);
	fclose(f);
	assert_int_equal(fdt_open_into(blob, blob, size + 16384), 0);
	return blob;
}

static void parse_ok(const void *fdt)
{
	int rc = machine_from_fdt(fdt, &m, err, sizeof(err));

	if (rc)
		fail_msg("machine_from_fdt returned %d: %s", rc, err);
	assert_int_equal(m.notes_lost, 0);
}

/* Some note line holds every one of parts (NULL-terminated). */
static void assert_note_all(const char *const *parts)
{
	const char *line = m.notes;

	while (*line) {
		const char *nl = strchr(line, '\n');
		char buf[sizeof(m.notes)];
		bool all = true;

		assert_non_null(nl);
		memcpy(buf, line, nl - line);
		buf[nl - line] = '\0';
		for (const char *const *p = parts; *p; p++)
			all &= strstr(buf, *p) != NULL;
		if (all && !strncmp(buf, "quire: host DT: ", 16))
			return;
		line = nl + 1;
	}
	fail_msg("no note with \"%s\" and \"%s\"; notes:\n%s", parts[0], parts[1] ? parts[1] : "", m.notes);
}
#define assert_note(...) assert_note_all((const char *const[]){ __VA_ARGS__, NULL })

/* Note lines about /chosen's nodes. */
static unsigned count_notes(void)
{
	unsigned n = 0;

	for (const char *p = m.notes; (p = strstr(p, "quire: host DT: /chosen/")); p++)
		n++;
	return n;
}

static const struct boot_module *find(const char *name)
{
	char image[64];

	snprintf(image, sizeof(image), "module:%s", name);
	return module_find(image);
}

static bool reserved(uint64_t base, uint64_t size, const char *name)
{
	for (unsigned i = 0; i < m.nreserved; i++)
		if (m.reserved[i].r.base == base && m.reserved[i].r.size == size && !strcmp(m.reserved[i].name, name))
			return true;
	return false;
}

static void assert_module(const char *name, enum module_kind kind, uint64_t base, uint64_t size)
{
	const struct boot_module *b = find(name);
	char image[64];

	if (!b)
		fail_msg("module %s not kept; notes:\n%s", name, m.notes);
	assert_int_equal(b->kind, kind);
	assert_true(b->r.base == base && b->r.size == size);
	/* guest_find's view: the image name and the bytes at the module's address. */
	snprintf(image, sizeof(image), "module:%s", name);
	assert_string_equal(b->img.name, image);
	assert_true(b->img.data == (const u8 *)(uintptr_t)base && b->img.size == size);
	/* Kept out of the page pool, as a reservation is. */
	assert_true(reserved(base, size, image));
}

/* One module node under /chosen (2 address and 2 size cells). */
static int add_module(void *fdt, const char *compat, uint64_t base, uint64_t size, const char *name)
{
	int chosen = fdt_path_offset(fdt, "/chosen"), n;
	char node[48];
	fdt32_t reg[4] = { cpu_to_fdt32(base >> 32), cpu_to_fdt32(base), cpu_to_fdt32(size >> 32),
			   cpu_to_fdt32(size) };

	assert_true(chosen >= 0);
	fdt_setprop_u32(fdt, chosen, "#address-cells", 2);
	fdt_setprop_u32(fdt, chosen, "#size-cells", 2);
	snprintf(node, sizeof(node), "module@%llx", (unsigned long long)base);
	n = fdt_add_subnode(fdt, chosen, node);
	assert_true(n >= 0);
	/* compatible: compat, then "multiboot,module" (a string list). */
	{
		char list[96];
		size_t a = strlen(compat) + 1;

		memcpy(list, compat, a);
		memcpy(list + a, "multiboot,module", sizeof("multiboot,module"));
		assert_int_equal(fdt_setprop(fdt, n, "compatible", list, a + sizeof("multiboot,module")), 0);
	}
	assert_int_equal(fdt_setprop(fdt, n, "reg", reg, sizeof(reg)), 0);
	if (name)
		assert_int_equal(fdt_setprop_string(fdt, n, "quire,name", name), 0);
	return n;
}

/* ---- the host DT side ------------------------------------------------- */

static void good_modules_of_every_kind(void **state)
{
	(void)state;
	parse_ok(load("modules.dtb"));
	assert_int_equal(boot_modules.n, 4);
	assert_module("k1", MODULE_KERNEL, 0x41000000, 0x200000);
	assert_module("rd_1", MODULE_RAMDISK, 0x42000000, 0x1234);
	assert_module("raw-1", MODULE_RAW, 0x43000000, 0x1000);
	assert_module("legacy", MODULE_KERNEL, 0x43100000, 0x1000);
	/* Only "module:NAME" finds a module: a bare name is a built-in image's. */
	assert_null(module_find("k1"));
	assert_null(find("other"));
	/* The VM config is not a module here: the built-in one stays. */
	assert_true(m.boot_module.size == 0 && !m.boot_module_bad);
}

static void hostile_reg_refused(void **state)
{
	(void)state;
	parse_ok(load("modules.dtb"));
	assert_note("/chosen/module@60000000 reg:", "0x60000000+0x1000 is not inside RAM", "not used");
	assert_note("/chosen/module@4ffff000 reg:", "is not inside RAM");
	assert_note("/chosen/module@44000000 reg:", "size 0", "not used");
	assert_note("/chosen/module@fffffffffffff000 reg:", "runs past the top of the address space");
	assert_note("/chosen/module@44000800 reg:", "does not start on a 4 KiB page");
	assert_note("/chosen/module@48000000 reg:", "overlaps reserved region 0x48000000-0x48000fff (memreserve)");
	assert_int_equal(count_notes(), 6);
	for (const char *const *n = (const char *const[]){ "outside", "straddle", "empty", "wrap", "unaligned",
							   "on-memreserve", NULL };
	     *n; n++) {
		assert_null(find(*n));
		for (unsigned i = 0; i < m.nreserved; i++)
			assert_true(strstr(m.reserved[i].name, *n) == NULL);
	}
}

static void names_and_overlaps_refused(void **state)
{
	(void)state;
	parse_ok(load("modules-names.dtb"));
	assert_int_equal(boot_modules.n, 1);
	assert_module("good", MODULE_KERNEL, 0x41000000, 0x1000);
	assert_note("/chosen/module@42100000 quire,name:", "\"twice\" again (also /chosen/module@42000000)",
		    "neither is used");
	assert_note("/chosen/module@42200000 quire,name:", "\"twice\" again");
	assert_null(find("twice"));
	assert_note("/chosen/module@43001000 reg:", "overlaps /chosen/module@43000000", "neither is used");
	assert_null(find("over1"));
	assert_null(find("over2"));
	assert_note("/chosen/module@44000000 quire,name:", "missing");
	assert_note("/chosen/module@44100000 quire,name:", "1 to 15 characters");
	assert_note("/chosen/module@44200000 reg:", "missing");
	assert_note("/chosen/module@44300000 reg:", "not one (address, size) pair");
	assert_note("/chosen/domU1 compatible:", "\"xen,domain\" is Xen's");
	assert_null(find("noreg"));
	assert_null(find("shortreg"));
	for (unsigned i = 0; i < m.nreserved; i++)
		assert_string_equal(m.reserved[i].name, "module:good");
}

/* machine_fit: over Quire's own image, or in RAM beyond the PA range Quire can map. */
static void fit_refuses_over_quire_and_beyond(void **state)
{
	void *fdt = load("modules.dtb");

	(void)state;
	add_module(fdt, "multiboot,kernel", 0x100000000ULL, 0x1000, "high");
	/* RAM to 8 GiB, so the module is in RAM until machine_fit cuts it at 4 GiB. */
	{
		fdt32_t reg[4] = { 0, cpu_to_fdt32(0x40000000), cpu_to_fdt32(1), 0 };

		assert_int_equal(fdt_setprop(fdt, fdt_path_offset(fdt, "/memory@40000000"), "reg", reg, 16), 0);
	}
	parse_ok(fdt);
	assert_non_null(find("high"));
	assert_int_equal(machine_fit(&m, 32, (struct region){ 0x41100000, 0x100000 }, err, sizeof(err)), 0);
	assert_note("/chosen/module@41000000 reg:", "0x41000000-0x411fffff overlaps Quire's own image", "not used");
	assert_note("/chosen/module@100000000 reg:", "is not in the RAM Quire can use");
	assert_null(find("k1"));
	assert_null(find("high"));
	assert_non_null(find("rd_1"));
	assert_true(find("rd_1")->img.name == find("rd_1")->image); /* still its own after the table moved */
}

static void module_over_the_dt_itself(void **state)
{
	void *fdt = load("modules-names.dtb");
	uint64_t dt = (uintptr_t)fdt & ~0xfffULL;
	fdt32_t reg[4] = { cpu_to_fdt32(dt >> 32), cpu_to_fdt32(dt), 0, cpu_to_fdt32(0x10000000) };

	(void)state;
	/* RAM where the host test's blob lies, and a module over its first page. */
	assert_int_equal(fdt_setprop(fdt, fdt_path_offset(fdt, "/memory@40000000"), "reg", reg, 16), 0);
	assert_int_equal(fdt_del_node(fdt, fdt_path_offset(fdt, "/chosen")), 0);
	assert_true(fdt_add_subnode(fdt, 0, "chosen") >= 0);
	add_module(fdt, "multiboot,kernel", dt, 0x1000, "on-dt");
	add_module(fdt, "multiboot,kernel", dt + 0x1000000, 0x1000, "beside");
	parse_ok(fdt);
	assert_note("reg:", "overlaps the host DT itself");
	assert_null(find("on-dt"));
	assert_non_null(find("beside"));
}

static void at_most_max_modules(void **state)
{
	void *fdt = load("modules-names.dtb");

	(void)state;
	assert_int_equal(fdt_del_node(fdt, fdt_path_offset(fdt, "/chosen")), 0);
	assert_true(fdt_add_subnode(fdt, 0, "chosen") >= 0);
	for (int i = 0; i < MAX_MODULES + 2; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%d", i);
		add_module(fdt, "multiboot,module", 0x41000000 + i * 0x100000, 0x1000, name);
	}
	parse_ok(fdt);
	assert_int_equal(boot_modules.n, MAX_MODULES);
	/* (fdt_add_subnode puts each new node first: m0 and m1 come last) */
	assert_note("/chosen/module@41000000 compatible:", "more than 8 boot modules; not used");
	assert_note("/chosen/module@41100000 compatible:", "more than 8 boot modules");
	assert_null(find("m0"));
	assert_non_null(find("m9"));
}

/* A quire,vm-config module is the VM config (m->boot_module); refused, it is not replaced by the built-in one. */
static void config_module(void **state)
{
	void *fdt = load("modules-names.dtb");
	int chosen;

	(void)state;
	assert_int_equal(fdt_del_node(fdt, fdt_path_offset(fdt, "/chosen")), 0);
	assert_true(fdt_add_subnode(fdt, 0, "chosen") >= 0);
	add_module(fdt, "quire,vm-config", 0x47000000, 0x800, NULL);
	parse_ok(fdt);
	assert_true(m.boot_module.base == 0x47000000 && m.boot_module.size == 0x800);
	assert_false(m.boot_module_bad);
	assert_true(reserved(0x47000000, 0x800, "module:vm_config"));
	assert_null(find("vm_config")); /* no VM boots it */

	/* linux,initrd-* names a config too: the loader said two things. */
	chosen = fdt_path_offset(fdt, "/chosen");
	assert_int_equal(fdt_setprop_u64(fdt, chosen, "linux,initrd-start", 0x48000000), 0);
	assert_int_equal(fdt_setprop_u64(fdt, chosen, "linux,initrd-end", 0x48001000), 0);
	parse_ok(fdt);
	assert_true(m.boot_module.base == 0x48000000);
	assert_note("/chosen/module@47000000 compatible:", "linux,initrd-start names one too");

	/* Two configs: neither, and the boot takes no config rather than the built-in one. */
	assert_int_equal(fdt_delprop(fdt, chosen, "linux,initrd-start"), 0);
	assert_int_equal(fdt_delprop(fdt, chosen, "linux,initrd-end"), 0);
	add_module(fdt, "quire,vm-config", 0x46000000, 0x1000, NULL);
	parse_ok(fdt);
	assert_note("/chosen/module@47000000 compatible:", "a second VM config");
	assert_true(m.boot_module.size == 0 && m.boot_module_bad);
}

/* ---- the VM config side ------------------------------------------------ */

/* A config of two bare VMs: a on kernel ka, b on kernel kb. */
static void *config(const char *ka, const char *kb)
{
	void *c = calloc(1, 4096);
	int vms, vm;

	assert_non_null(c);
	assert_int_equal(fdt_create_empty_tree(c, 4096), 0);
	assert_int_equal(fdt_setprop_string(c, 0, "compatible", "quire,vm-config"), 0);
	vms = fdt_add_subnode(c, 0, "vms");
	for (int i = 1; i >= 0; i--) { /* each new node goes first */
		vm = fdt_add_subnode(c, vms, i ? "b" : "a");
		assert_true(vm >= 0);
		fdt_setprop_u32(c, vm, "vcpus", 1);
		fdt_setprop_u32(c, vm, "memory-mib", 16);
		assert_int_equal(fdt_setprop_string(c, vm, "kernel", i ? kb : ka), 0);
	}
	return c;
}

static struct vmcfg_image images[4];
static struct vm_config cfg[VMCFG_MAX_VMS];
static u8 bare[4096];

static int parse_config(const char *ka, const char *kb)
{
	void *c = config(ka, kb);
	int n = vmconfig_parse(c, cfg, VMCFG_MAX_VMS, NULL, err, sizeof(err));

	free(c);
	return n;
}

static void config_names_modules(void **state)
{
	struct vmcfg_limits lim = { 4, 1 << 18, images, false, true, false, NULL };
	char msg[512];
	unsigned n;

	(void)state;
	images[0] = (struct vmcfg_image){ "memtest", bare, sizeof(bare) };
	images[1] = (struct vmcfg_image){ NULL, NULL, 0 };
	/* The build cannot see module:mt2: it leaves that VM to the boot, and checks the rest. */
	assert_int_equal(parse_config("memtest", "module:mt2"), 2);
	assert_string_equal(cfg[1].kernel, "module:mt2");
	assert_int_equal(vmconfig_check(cfg, 2, &lim, err, sizeof(err)), 0);
	/* ... but not a built-in image it lacks. */
	assert_int_equal(parse_config("nothere", "module:mt2"), 2);
	assert_int_equal(vmconfig_check(cfg, 2, &lim, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "names image 'nothere', but this build carries: memtest"));

	/* At boot, without the module: refused, that VM alone, with the modules there are. */
	lim.modules_later = false;
	images[1] = (struct vmcfg_image){ "module:other", bare, sizeof(bare) };
	images[2] = (struct vmcfg_image){ NULL, NULL, 0 };
	assert_int_equal(parse_config("memtest", "module:mt2"), 2);
	assert_int_equal(vmconfig_check(cfg, 2, &lim, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/vms/b: property 'kernel' names boot module 'mt2', but the host DT's "
				    "/chosen gives only: other"));
	n = vmconfig_drop_vms(cfg, 2, &lim, msg, sizeof(msg));
	assert_int_equal(n, 1);
	assert_string_equal(cfg[0].name, "a");
	assert_string_equal(msg, "quire: b not started: /vms/b: property 'kernel' names boot module 'mt2', but the "
				 "host DT's /chosen gives only: other\n");
	assert_int_equal(vmconfig_check(cfg, n, &lim, err, sizeof(err)), 0);

	/* With it: kept, and checked as any image (here: too big for its RAM). */
	images[1].name = "module:mt2";
	assert_int_equal(parse_config("memtest", "module:mt2"), 2);
	assert_int_equal(vmconfig_drop_vms(cfg, 2, &lim, msg, sizeof(msg)), 2);
	assert_string_equal(msg, "");
	images[1].size = MiB(17);
	assert_int_equal(vmconfig_drop_vms(cfg, 2, &lim, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "quire: b not started: /vms/b: property 'memory-mib' (16 MiB) cannot hold "
				    "raw image 'module:mt2'"));
}

static void config_module_names_checked(void **state)
{
	(void)state;
	assert_int_equal(parse_config("memtest", "module:abcdefghijklmno"), 2); /* 15: the most */
	assert_int_equal(parse_config("memtest", "module:"), -1);
	assert_non_null(strstr(err, "names a boot module: \"module:\" and 1 to 15 characters"));
	assert_int_equal(parse_config("memtest", "module:a b"), -1);
	assert_int_equal(parse_config("memtest", "module:abcdefghijklmnop"), -1);
	/* Built-in names keep their 15. */
	assert_int_equal(parse_config("memtest", "abcdefghijklmnop"), -1);
	assert_non_null(strstr(err, "at most 15 characters, not 16"));
}

int main(void)
{
	const char *dir = getenv("QUIRE_DTB_DIR");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(good_modules_of_every_kind, free_blob),
		cmocka_unit_test_teardown(hostile_reg_refused, free_blob),
		cmocka_unit_test_teardown(names_and_overlaps_refused, free_blob),
		cmocka_unit_test_teardown(fit_refuses_over_quire_and_beyond, free_blob),
		cmocka_unit_test_teardown(module_over_the_dt_itself, free_blob),
		cmocka_unit_test_teardown(at_most_max_modules, free_blob),
		cmocka_unit_test_teardown(config_module, free_blob),
		cmocka_unit_test(config_names_modules),
		cmocka_unit_test(config_module_names_checked),
	};

	if (dir)
		dtb_dir = dir;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
