/*
 * machine_from_fdt on real device trees (a QEMU virt dump, the Raspberry Pi 4
 * DTB) and on the hand-written edge cases in dts/, plus corrupted blobs.
 *
 * Tests named regression_* pin down defects found and fixed in the code.
 *
 * Environment (the Makefile sets both):
 *   QUIRE_DTB_DIR   the compiled DTBs and qemu-virt.dtb (default ../../build/host)
 *   QUIRE_RPI4_DTB  the Pi 4 DTB; its tests fail when it is missing (scripts/setup fetches it)
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
#include <quire/pool.h>

#define FDT_MAX_SIZE (2UL << 20) /* as in core/machine.c */

static const char *dtb_dir = "../../build/host";
static const char *rpi4_path;

static struct machine m;
static char err[256];

/* ---- helpers ---------------------------------------------------------- */

/* Blobs a test allocates, freed after it even when an assertion ends it early. */
static void *allocs[8];
static unsigned nallocs;

static void *track(void *p)
{
	assert_non_null(p);
	assert_true(nallocs < sizeof(allocs) / sizeof(allocs[0]));
	allocs[nallocs++] = p;
	return p;
}

static int free_all(void **state)
{
	(void)state;
	while (nallocs)
		free(allocs[--nallocs]);
	return 0;
}

/* The whole file in a heap buffer of exactly its size, so ASan sees any overread. */
static void *read_file(const char *path, size_t *sizep)
{
	FILE *f = fopen(path, "rb");
	void *p;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return NULL;
	}
	p = malloc(size);
	if (p && fread(p, 1, size, f) != (size_t)size) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (sizep)
		*sizep = size;
	return p;
}

static void *load(const char *name)
{
	char path[512];
	void *p;

	snprintf(path, sizeof(path), "%s/%s", dtb_dir, name);
	p = read_file(path, NULL);
	if (!p)
		fail_msg("cannot read %s (build it with: make -C tests/host all)", path);
	return track(p);
}

static void *load_rpi4(void)
{
	void *p = rpi4_path ? read_file(rpi4_path, NULL) : NULL;

	if (!p) {
		fail_msg("no Raspberry Pi 4 DTB at %s (run: scripts/setup)",
			 rpi4_path ? rpi4_path : "(QUIRE_RPI4_DTB unset)");
	}
	return track(p);
}

static int parse(const void *fdt)
{
	memset(err, 0, sizeof(err));
	return machine_from_fdt(fdt, &m, err, sizeof(err));
}

static void parse_ok(const void *fdt)
{
	int rc = parse(fdt);

	if (rc)
		fail_msg("machine_from_fdt returned %d: %s", rc, err);
}

/* Parsing must fail with a negative code and a message that mentions 'what'. */
static void parse_fails(const void *fdt, const char *what)
{
	int rc = parse(fdt);

	if (rc >= 0)
		fail_msg("machine_from_fdt returned %d, expected an error about '%s'", rc, what);
	if (!strstr(err, what))
		fail_msg("error message \"%s\" does not mention '%s'", err, what);
}

/* A writable copy of fdt with room to add to it. */
static void *editable(const void *fdt)
{
	int size = fdt_totalsize(fdt) + 16384;
	void *p = track(malloc(size));

	assert_int_equal(fdt_open_into(fdt, p, size), 0);
	return p;
}

static int node(const void *fdt, const char *path)
{
	int n = fdt_path_offset(fdt, path);

	if (n < 0)
		fail_msg("no node %s in the test tree", path);
	return n;
}

static void set_string(void *fdt, const char *path, const char *prop, const char *val)
{
	assert_int_equal(fdt_setprop_string(fdt, node(fdt, path), prop, val), 0);
}

static void set_cells(void *fdt, const char *path, const char *prop, const uint32_t *cells, int n)
{
	fdt32_t be[128];

	assert_true(n <= 128);
	for (int i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(cells[i]);
	assert_int_equal(fdt_setprop(fdt, node(fdt, path), prop, be, n * 4), 0);
}

static void assert_region(struct region r, uint64_t base, uint64_t size)
{
	if (r.base != base || r.size != size)
		fail_msg("region 0x%llx+0x%llx, expected 0x%llx+0x%llx", (unsigned long long)r.base,
			 (unsigned long long)r.size, (unsigned long long)base, (unsigned long long)size);
}

/* Every fixed-size string in m is NUL-terminated inside its array. */
static void assert_strings_terminated(void)
{
	assert_true(strnlen(m.model, sizeof(m.model)) < sizeof(m.model));
	assert_true(strnlen(m.bootargs, sizeof(m.bootargs)) < sizeof(m.bootargs));
	assert_true(strnlen(m.uart.path, sizeof(m.uart.path)) < sizeof(m.uart.path));
	assert_true(strnlen(m.uart.compatible, sizeof(m.uart.compatible)) < sizeof(m.uart.compatible));
	assert_true(strnlen(m.gic.compatible, sizeof(m.gic.compatible)) < sizeof(m.gic.compatible));
	for (unsigned i = 0; i < m.nreserved && i < MAX_RESERVED; i++)
		assert_true(strnlen(m.reserved[i].name, sizeof(m.reserved[i].name)) <
			    sizeof(m.reserved[i].name));
}

/* What any successful parse must satisfy. */
static void assert_sane(void)
{
	assert_in_range(m.nmem, 1, MAX_MEM_REGIONS);
	assert_in_range(m.ncpus, 1, MAX_CPUS);
	assert_in_range(m.nreserved, 0, MAX_RESERVED);
	assert_in_range(m.nvirtio, 0, MAX_VIRTIO);
	for (unsigned i = 1; i < m.nmem; i++)
		assert_true(m.mem[i - 1].base <= m.mem[i].base);
	assert_strings_terminated();
}

/* A line of m.notes contains every one of the strings (NULL-terminated list). */
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
	fail_msg("no note with \"%s\"%s; notes:\n%s", parts[0], parts[1] ? " and the rest" : "", m.notes);
}

#define assert_note(...) assert_note_all((const char *const[]){ __VA_ARGS__, NULL })

/* ---- QEMU virt (virtualization=on, gic-version=2, 4 CPUs, 2 GiB) ------- */

static void virt_memory_and_model(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_string_equal(m.model, "linux,dummy-virt");
	assert_int_equal(m.nmem, 1);
	assert_region(m.mem[0], 0x40000000, 2048ULL << 20);
	assert_true(m.mem_total == 2048ULL << 20);
	assert_int_equal(m.nreserved, 0);
	assert_string_equal(m.notes, ""); /* nothing to refuse on a real board */
	assert_string_equal(m.bootargs, "");
	assert_sane();
}

static void virt_cpus_and_psci(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.ncpus, 4);
	assert_int_equal(m.ncpus_ignored, 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(m.cpu[i].mpidr == i);
		assert_int_equal(m.cpu[i].method, CPU_ENABLE_PSCI);
		assert_true(m.cpu[i].release_addr == 0);
	}
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_SMC);
	assert_int_equal(m.psci.cpu_on, 0xc4000003);
}

static void virt_gic_and_timer(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_true(m.gic.found);
	assert_string_equal(m.gic.compatible, "arm,cortex-a15-gic");
	assert_region(m.gic.dist, 0x08000000, 0x10000);
	assert_region(m.gic.cpu, 0x08010000, 0x10000);
	assert_region(m.gic.gich, 0x08030000, 0x10000);
	assert_region(m.gic.gicv, 0x08040000, 0x10000);
	assert_int_equal(m.gic.maint_irq, 25); /* PPI 9 */

	assert_true(m.timer.found);
	assert_int_equal(m.timer.irq_sec_phys, 29); /* PPI 13 */
	assert_int_equal(m.timer.irq_phys, 30);     /* PPI 14 */
	assert_int_equal(m.timer.irq_virt, 27);     /* PPI 11 */
	assert_int_equal(m.timer.irq_hyp_phys, 26); /* PPI 10 */
	assert_int_equal(m.timer.clock_frequency, 0);
}

static void virt_console(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x09000000);
	assert_true(m.uart.size == 0x1000);
	assert_string_equal(m.uart.compatible, "arm,pl011");
	assert_string_equal(m.uart.path, "/pl011@9000000");
}

static void virt_virtio(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.nvirtio, 32);
	/* QEMU lists them in address order, SPI 16 upwards. */
	for (unsigned i = 0; i < 32; i++) {
		assert_region(m.virtio[i].r, 0x0a000000 + i * 0x200, 0x200);
		assert_int_equal(m.virtio[i].irq, 48 + i);
	}
}

static void virt_cpu_index(void **state)
{
	void *fdt = load("qemu-virt.dtb");

	(void)state;
	parse_ok(fdt);
	assert_int_equal(machine_cpu_index(&m, 0), 0);
	assert_int_equal(machine_cpu_index(&m, 3), 3);
	assert_int_equal(machine_cpu_index(&m, 4), -1);
	assert_int_equal(machine_cpu_index(&m, 0x100), -1);
}

/* bootargs and model are copied, and truncated to their arrays when too long. */
static void virt_bootargs_and_long_strings(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	char longs[400];

	(void)state;
	set_string(e, "/chosen", "bootargs", "console=ttyAMA0 earlycon");
	parse_ok(e);
	assert_string_equal(m.bootargs, "console=ttyAMA0 earlycon");

	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	set_string(e, "/chosen", "bootargs", longs);
	set_string(e, "/", "model", longs);
	parse_ok(e);
	assert_int_equal(strlen(m.bootargs), sizeof(m.bootargs) - 1);
	assert_int_equal(strlen(m.model), sizeof(m.model) - 1);
	assert_int_equal(m.bootargs[0], 'x');
}

/* A GIC with only distributor and CPU interface: usable, but no virtualization. */
static void virt_gic_without_virt_extensions(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	const uint32_t reg[] = { 0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000 };

	(void)state;
	set_cells(e, "/intc@8000000", "reg", reg, 8);
	assert_int_equal(fdt_delprop(e, node(e, "/intc@8000000"), "interrupts"), 0);
	parse_ok(e);
	assert_true(m.gic.found);
	assert_region(m.gic.dist, 0x08000000, 0x10000);
	assert_region(m.gic.cpu, 0x08010000, 0x10000);
	assert_region(m.gic.gich, 0, 0);
	assert_region(m.gic.gicv, 0, 0);
	assert_int_equal(m.gic.maint_irq, 0);
}

/* A GICv3 is recognised (for the banner) but not usable. */
static void virt_gicv3_only(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);

	(void)state;
	set_string(e, "/intc@8000000", "compatible", "arm,gic-v3");
	parse_ok(e);
	assert_false(m.gic.found);
	assert_string_equal(m.gic.compatible, "arm,gic-v3");
}

static void virt_timer_short_interrupts(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	const uint32_t irqs[] = { 1, 13, 4, 1, 14, 4, 1, 11, 4 };

	(void)state;
	set_cells(e, "/timer", "interrupts", irqs, 9);
	parse_ok(e);
	assert_false(m.timer.found);
}

static void virt_psci_variants(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);

	(void)state;
	/* 0.2 alone: the standard SMC64 CPU_ON. */
	set_string(e, "/psci", "compatible", "arm,psci-0.2");
	parse_ok(e);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_SMC);
	assert_int_equal(m.psci.cpu_on, 0xc4000003);

	/* An unknown method leaves PSCI unusable. */
	set_string(e, "/psci", "method", "firmware");
	parse_ok(e);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_NONE);

	/* 0.1 without a cpu_on property: no way to start CPUs. */
	set_string(e, "/psci", "method", "smc");
	set_string(e, "/psci", "compatible", "arm,psci");
	assert_int_equal(fdt_delprop(e, node(e, "/psci"), "cpu_on"), 0);
	parse_ok(e);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_NONE);

	/* A disabled node is no PSCI at all. */
	set_string(e, "/psci", "compatible", "arm,psci-1.0");
	set_string(e, "/psci", "status", "disabled");
	parse_ok(e);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_NONE);
}

static void virt_memory_region_limit(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	uint32_t reg[4 * (MAX_MEM_REGIONS + 1)];

	(void)state;
	/* Listed backwards, 1 MiB each, 16 MiB apart. */
	for (int i = 0; i <= MAX_MEM_REGIONS; i++) {
		uint64_t base = 0x40000000 + (uint64_t)(MAX_MEM_REGIONS - i) * 0x1000000;

		reg[4 * i + 0] = base >> 32;
		reg[4 * i + 1] = (uint32_t)base;
		reg[4 * i + 2] = 0;
		reg[4 * i + 3] = 0x100000;
	}
	/* Exactly MAX_MEM_REGIONS: accepted and sorted. */
	set_cells(e, "/memory@40000000", "reg", reg + 4, 4 * MAX_MEM_REGIONS);
	parse_ok(e);
	assert_int_equal(m.nmem, MAX_MEM_REGIONS);
	assert_true(m.mem_total == (uint64_t)MAX_MEM_REGIONS << 20);
	for (unsigned i = 0; i < MAX_MEM_REGIONS; i++)
		assert_region(m.mem[i], 0x40000000 + i * 0x1000000, 0x100000);

	/* One more: refused with a message. */
	set_cells(e, "/memory@40000000", "reg", reg, 4 * (MAX_MEM_REGIONS + 1));
	parse_fails(e, "memory regions");
}

/*
 * More reservations than the table holds: none is dropped (that would hand
 * firmware's memory to guests); neighbours are joined, and a note says so.
 */
static void virt_reserved_limit(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);

	(void)state;
	for (int i = 0; i < MAX_RESERVED + 8; i++)
		assert_int_equal(fdt_add_mem_rsv(e, 0x50000000 + i * 0x10000, 0x1000), 0);
	parse_ok(e);
	assert_int_equal(m.nreserved, MAX_RESERVED);
	for (int i = 0; i < MAX_RESERVED + 8; i++) {
		uint64_t a = 0x50000000 + i * 0x10000;
		bool covered = false;

		for (unsigned k = 0; k < m.nreserved; k++)
			covered |= a >= m.reserved[k].r.base && a + 0x1000 <= m.reserved[k].r.base + m.reserved[k].r.size;
		if (!covered)
			fail_msg("/memreserve/ entry %d at 0x%llx dropped", i, (unsigned long long)a);
	}
	assert_note("/memreserve/ and /reserved-memory: 40 regions");
}

static void virt_virtio_limit(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	const uint32_t reg[] = { 0, 0x0a004000, 0, 0x200 };
	int n;

	(void)state;
	n = fdt_add_subnode(e, 0, "virtio_mmio@a004000");
	assert_true(n >= 0);
	assert_int_equal(fdt_setprop_string(e, n, "compatible", "virtio,mmio"), 0);
	set_cells(e, "/virtio_mmio@a004000", "reg", reg, 4);
	parse_ok(e);
	assert_int_equal(m.nvirtio, MAX_VIRTIO);
}

static void virt_no_cpus(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);

	(void)state;
	assert_int_equal(fdt_del_node(e, node(e, "/cpus")), 0);
	parse_fails(e, "cpus");
}

/* A console path longer than uart.path: the UART is still used, the path left empty. */
static void virt_long_uart_path(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *e = editable(fdt);
	const char *name = "pl011-with-a-node-name-far-too-long-for-the-path-array@9000000";

	(void)state;
	assert_int_equal(fdt_set_name(e, node(e, "/pl011@9000000"), name), 0);
	assert_int_equal(fdt_delprop(e, node(e, "/chosen"), "stdout-path"), 0);
	parse_ok(e);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x09000000);
	assert_true(strnlen(m.uart.path, sizeof(m.uart.path)) < sizeof(m.uart.path));
}

/* The error message is truncated safely into a small buffer, or not written at all. */
static void error_buffer_small(void **state)
{
	void *fdt = load("no-memory.dtb");
	char small[8];

	(void)state;
	memset(small, 'X', sizeof(small));
	assert_true(machine_from_fdt(fdt, &m, small, sizeof(small)) < 0);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_true(machine_from_fdt(fdt, &m, NULL, 0) < 0);
}

/* ---- Raspberry Pi 4 ------------------------------------------------------ */

/* As shipped, memory@0 has reg <0 0 0>: the firmware fills it in at boot. */
static void rpi4_as_shipped_has_no_memory(void **state)
{
	void *fdt = load_rpi4();

	(void)state;
	assert_int_equal(fdt_totalsize(fdt) > 0, 1);
	parse_fails(fdt, "memory");
}

/* The tree as the Pi 4 (4 GiB) firmware hands it over: two banks below 4 GiB. */
static void *rpi4_booted(void)
{
	void *fdt = load_rpi4(), *e = editable(fdt);
	const uint32_t reg[] = { 0, 0x40000000, 0xbc000000, 0, 0, 0x3b400000 };

	set_cells(e, "/memory@0", "reg", reg, 6);
	return e;
}

static void rpi4_memory(void **state)
{
	void *fdt = rpi4_booted();

	(void)state;
	parse_ok(fdt);
	assert_string_equal(m.model, "Raspberry Pi 4 Model B");
	assert_int_equal(m.nmem, 2);
	assert_region(m.mem[0], 0, 0x3b400000);
	assert_region(m.mem[1], 0x40000000, 0xbc000000);
	assert_true(m.mem_total == 0x3b400000ULL + 0xbc000000ULL);
	/* /memreserve/ 0 0x1000 (the spin tables); linux,cma has no reg, nvram is disabled. */
	assert_int_equal(m.nreserved, 1);
	assert_region(m.reserved[0].r, 0, 0x1000);
	assert_string_equal(m.reserved[0].name, "memreserve");
	assert_sane();
	assert_string_equal(m.notes, ""); /* nothing to refuse on a real board */
}

static void rpi4_cpus(void **state)
{
	void *fdt = rpi4_booted();
	const uint64_t release[] = { 0xd8, 0xe0, 0xe8, 0xf0 };

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.ncpus, 4);
	assert_int_equal(m.ncpus_ignored, 0); /* l2-cache0 is not a cpu */
	for (unsigned i = 0; i < 4; i++) {
		assert_true(m.cpu[i].mpidr == i);
		assert_int_equal(m.cpu[i].method, CPU_ENABLE_SPIN_TABLE);
		assert_true(m.cpu[i].release_addr == release[i]);
	}
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_NONE);
	assert_int_equal(machine_cpu_index(&m, 2), 2);
}

/* The GIC-400 sits behind /soc ranges: 0x40041000 on the bus is 0xff841000. */
static void rpi4_gic_and_timer(void **state)
{
	void *fdt = rpi4_booted();

	(void)state;
	parse_ok(fdt);
	assert_true(m.gic.found);
	assert_string_equal(m.gic.compatible, "arm,gic-400");
	assert_region(m.gic.dist, 0xff841000, 0x1000);
	assert_region(m.gic.cpu, 0xff842000, 0x2000);
	assert_region(m.gic.gich, 0xff844000, 0x2000);
	assert_region(m.gic.gicv, 0xff846000, 0x2000);
	assert_int_equal(m.gic.maint_irq, 25);

	assert_true(m.timer.found);
	assert_int_equal(m.timer.irq_sec_phys, 29);
	assert_int_equal(m.timer.irq_phys, 30);
	assert_int_equal(m.timer.irq_virt, 27);
	assert_int_equal(m.timer.irq_hyp_phys, 26);
	assert_int_equal(m.nvirtio, 0);
}

/* stdout-path is "serial1:115200n8", the mini UART; Quire takes the PL011 (serial0). */
static void rpi4_console(void **state)
{
	void *fdt = rpi4_booted();

	(void)state;
	parse_ok(fdt);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0xfe201000);
	assert_true(m.uart.size == 0x200);
	assert_string_equal(m.uart.compatible, "arm,pl011");
	assert_string_equal(m.uart.path, "/soc/serial@7e201000");

	/* Same UART when stdout-path names it through its alias. */
	set_string(fdt, "/chosen", "stdout-path", "serial0:115200n8");
	parse_ok(fdt);
	assert_true(m.uart.base == 0xfe201000);
	assert_string_equal(m.uart.path, "/soc/serial@7e201000");
}

/* ---- hand-written trees ------------------------------------------------ */

static void no_memory_node(void **state)
{
	void *fdt = load("no-memory.dtb");

	(void)state;
	parse_fails(fdt, "memory");
}

static void only_memory_disabled(void **state)
{
	void *fdt = load("memory-disabled.dtb");

	(void)state;
	parse_fails(fdt, "memory");
}

static void memory_banks_sorted(void **state)
{
	void *fdt = load("memory-banks.dtb");

	(void)state;
	parse_ok(fdt);
	/* The zero-sized entry and the disabled node at 0xc0000000 are left out. */
	assert_int_equal(m.nmem, 4);
	assert_region(m.mem[0], 0x20000000, 16ULL << 20);
	assert_region(m.mem[1], 0x40000000, 256ULL << 20);
	assert_region(m.mem[2], 0x80000000, 1024ULL << 20);
	assert_region(m.mem[3], 0x100000000ULL, 2048ULL << 20);
	assert_true(m.mem_total == (16ULL + 256 + 1024 + 2048) << 20);
	assert_sane();
}

static void too_many_cpus(void **state)
{
	void *fdt = load("too-many-cpus.dtb");
	const uint64_t mpidr[] = { 0x0, 0x1, 0x2, 0x3, 0x100, 0x101, 0x102, 0x103 };

	(void)state;
	parse_ok(fdt);
	assert_int_equal(MAX_CPUS, 8);
	assert_int_equal(m.ncpus, MAX_CPUS);
	assert_int_equal(m.ncpus_ignored, 2);
	for (unsigned i = 0; i < MAX_CPUS; i++)
		assert_true(m.cpu[i].mpidr == mpidr[i]);
	assert_int_equal(machine_cpu_index(&m, 0x103), 7);
	assert_int_equal(machine_cpu_index(&m, 0x200), -1); /* ignored */
}

static void psci_0_1(void **state)
{
	void *fdt = load("psci-0.1.dtb");

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_SMC);
	assert_int_equal(m.psci.cpu_on, 0x95c1ba60);

	/* Two address cells; the disabled cpu and the one without reg are skipped. */
	assert_int_equal(m.ncpus, 5);
	assert_int_equal(m.ncpus_ignored, 0);
	assert_true(m.cpu[0].mpidr == 0x0);
	assert_true(m.cpu[1].mpidr == 0x100);
	assert_true(m.cpu[2].mpidr == 0x10000000000ULL);
	assert_int_equal(m.cpu[2].method, CPU_ENABLE_PSCI);
	assert_true(m.cpu[3].mpidr == 0x101);
	assert_int_equal(m.cpu[3].method, CPU_ENABLE_SPIN_TABLE);
	assert_true(m.cpu[3].release_addr == 0x4000fff8);
	assert_true(m.cpu[4].mpidr == 0x102);
	assert_int_equal(m.cpu[4].method, CPU_ENABLE_NONE);
	assert_int_equal(machine_cpu_index(&m, 0x10000000000ULL), 2);
	assert_int_equal(machine_cpu_index(&m, 0x103), -1);
}

static void bus_ranges_not_covering(void **state)
{
	void *fdt = load("bus-ranges.dtb");

	(void)state;
	parse_ok(fdt);
	/* serial@20000 is outside the soc window: no console. */
	assert_false(m.uart.found);
	/* The GIC's bus has no ranges at all. */
	assert_false(m.gic.found);
	/* Only the two virtio slots inside their windows. */
	assert_int_equal(m.nvirtio, 2);
	assert_region(m.virtio[0].r, 0x09001000, 0x200);
	assert_region(m.virtio[1].r, 0x09008800, 0x200);
	assert_int_equal(m.virtio[0].irq, 0); /* no interrupts property */
}

static void nested_ranges(void **state)
{
	void *fdt = load("nested-ranges.dtb");

	(void)state;
	parse_ok(fdt);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x400101000ULL);
	assert_string_equal(m.uart.path, "/soc@7c000000/bus@100000/serial@1000");
	assert_int_equal(m.nvirtio, 1);
	assert_region(m.virtio[0].r, 0x400104000ULL, 0x200);
	assert_int_equal(m.virtio[0].irq, 35);
	assert_true(m.gic.found);
	assert_region(m.gic.dist, 0xfc041000, 0x1000);
	assert_region(m.gic.cpu, 0xfc042000, 0x2000);
	assert_region(m.gic.gich, 0xfc044000, 0x2000);
	assert_region(m.gic.gicv, 0xfc046000, 0x2000);
	assert_int_equal(m.gic.maint_irq, 25);
}

static void stdout_path_full_path_with_options(void **state)
{
	void *fdt = load("stdout-path.dtb");

	(void)state;
	parse_ok(fdt);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x09001000);
	assert_string_equal(m.uart.path, "/uart@9001000");
	assert_string_equal(m.bootargs, "console=ttyAMA1,115200 earlycon");
}

static void stdout_path_variants(void **state)
{
	static const struct {
		const char *stdout_path;
		uint64_t base;
	} cases[] = {
		{ "/uart@9001000", 0x09001000 },	  /* full path, no options */
		{ "serial1", 0x09001000 },		  /* alias */
		{ "serial1:115200n8", 0x09001000 },	  /* alias with options */
		{ "serial0:9600", 0x09000000 },
		{ "serial2:115200n8", 0x09000000 },	  /* not a PL011: first PL011 */
		{ "/mini-uart@9002000", 0x09000000 },
		{ "nosuchalias:115200", 0x09000000 },	  /* dangling: first PL011 */
		{ "/no/such/node:115200", 0x09000000 },
		{ "", 0x09000000 },
		{ ":", 0x09000000 },
	};
	void *fdt = load("stdout-path.dtb"), *e = editable(fdt);

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_string(e, "/chosen", "stdout-path", cases[i].stdout_path);
		parse_ok(e);
		if (!m.uart.found || m.uart.base != cases[i].base)
			fail_msg("stdout-path \"%s\": console at 0x%llx (found %d), expected 0x%llx",
				 cases[i].stdout_path, (unsigned long long)m.uart.base, m.uart.found,
				 (unsigned long long)cases[i].base);
	}

	/* No stdout-path and the first PL011 disabled: the next enabled one. */
	assert_int_equal(fdt_delprop(e, node(e, "/chosen"), "stdout-path"), 0);
	set_string(e, "/uart@9000000", "status", "disabled");
	parse_ok(e);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x09001000);
}

static void reserved_memory(void **state)
{
	void *fdt = load("reserved.dtb");

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.nreserved, 6);
	/* /memreserve/ first, in order, then /reserved-memory children in tree order. */
	assert_region(m.reserved[0].r, 0x40000000, 0x1000);
	assert_string_equal(m.reserved[0].name, "memreserve");
	assert_region(m.reserved[1].r, 0x48000000, 0x200000);
	assert_string_equal(m.reserved[1].name, "memreserve");
	assert_region(m.reserved[2].r, 0x4e000000, 0x100000);
	assert_string_equal(m.reserved[2].name, "firmware@4e000000");
	assert_region(m.reserved[3].r, 0x4c000000, 0x10000);
	assert_string_equal(m.reserved[3].name, "pair@4c000000");
	assert_region(m.reserved[4].r, 0x4d000000, 0x20000);
	assert_string_equal(m.reserved[4].name, "pair@4c000000");
	assert_region(m.reserved[5].r, 0x49000000, 0x8000);
	/* Truncated to the array, NUL-terminated. */
	assert_string_equal(m.reserved[5].name, "a-reserved-region-with-a-very-l");
	assert_sane();
}

/* One of everything, as a smoke test of the tree the corruption tests use. */
static void full_board(void **state)
{
	void *fdt = load("full.dtb");

	(void)state;
	parse_ok(fdt);
	assert_string_equal(m.model, "Quire full test board");
	assert_int_equal(m.nmem, 2);
	assert_region(m.mem[0], 0x40000000, 0x10000000);
	assert_region(m.mem[1], 0x80000000, 0x20000000);
	assert_int_equal(m.nreserved, 2);
	assert_int_equal(m.ncpus, 2);
	assert_int_equal(m.cpu[1].method, CPU_ENABLE_SPIN_TABLE);
	assert_true(m.cpu[1].release_addr == 0x8000fff8);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_SMC);
	assert_int_equal(m.psci.cpu_on, 0xc4000003);
	assert_true(m.uart.found);
	assert_true(m.uart.base == 0x09002000);
	assert_true(m.gic.found);
	assert_region(m.gic.gicv, 0x09140000, 0x2000);
	assert_true(m.timer.found);
	assert_int_equal(m.timer.clock_frequency, 62500000);
	assert_int_equal(m.nvirtio, 2);
	assert_int_equal(m.virtio[1].irq, 50);
	assert_string_equal(m.bootargs, "quire.test=full");
}

/* ---- corrupt blobs: a negative return and a message, never a crash ------ */

static void *copy(const void *fdt, size_t size)
{
	void *p = track(malloc(size));

	memcpy(p, fdt, size);
	return p;
}

static void set_header(void *fdt, size_t field, uint32_t val)
{
	fdt32_t be = cpu_to_fdt32(val);

	memcpy((char *)fdt + field, &be, 4);
}

static void corrupt_bad_magic(void **state)
{
	void *fdt = load("full.dtb"), *c = copy(fdt, fdt_totalsize(fdt));

	(void)state;
	((unsigned char *)c)[0] ^= 0xff;
	assert_int_equal(parse(c), -FDT_ERR_BADMAGIC);
	assert_non_null(strstr(err, "not valid"));

	/* Not a device tree at all. */
	memset(c, 0, fdt_totalsize(fdt));
	assert_true(parse(c) < 0);
	assert_true(err[0] != '\0');
}

static void corrupt_bad_version(void **state)
{
	void *fdt = load("full.dtb"), *c = copy(fdt, fdt_totalsize(fdt));

	(void)state;
	set_header(c, offsetof(struct fdt_header, version), 1);
	set_header(c, offsetof(struct fdt_header, last_comp_version), 1);
	assert_int_equal(parse(c), -FDT_ERR_BADVERSION);
	assert_true(err[0] != '\0');
}

/* totalsize says less than the blocks need. */
static void corrupt_totalsize_truncated(void **state)
{
	void *fdt = load("full.dtb");
	uint32_t size = fdt_totalsize(fdt);
	void *c = copy(fdt, size);

	(void)state;
	for (uint32_t t = 0; t < size; t += 7) {
		set_header(c, offsetof(struct fdt_header, totalsize), t);
		if (parse(c) >= 0)
			fail_msg("totalsize %u of %u accepted", t, size);
		assert_true(err[0] != '\0');
	}
}

/* totalsize beyond the 2 MiB limit is refused before anything reads that far. */
static void corrupt_totalsize_huge(void **state)
{
	void *fdt = load("full.dtb"), *c = copy(fdt, fdt_totalsize(fdt));

	(void)state;
	set_header(c, offsetof(struct fdt_header, totalsize), 0x7ffffff0);
	assert_true(parse(c) < 0);
	assert_non_null(strstr(err, "claims"));
	set_header(c, offsetof(struct fdt_header, totalsize), FDT_MAX_SIZE + 1);
	assert_true(parse(c) < 0);
	assert_non_null(strstr(err, "claims"));
}

/* A bad token in the structure block, and a property name outside the strings. */
static void corrupt_struct_block(void **state)
{
	void *fdt = load("full.dtb");
	uint32_t size = fdt_totalsize(fdt), st = fdt_off_dt_struct(fdt);
	void *c = copy(fdt, size);
	fdt32_t tok;

	(void)state;
	/* Root: BEGIN_NODE, "" padded to 4 bytes; then the first PROP token. */
	memcpy(&tok, (char *)c + st + 8, 4);
	assert_int_equal(fdt32_to_cpu(tok), FDT_PROP);
	set_header(c, st + 8, 0xdeadbeef);
	assert_true(parse(c) < 0);
	assert_non_null(strstr(err, "corrupt"));

	/* PROP, len, nameoff: point the name far past the strings block. */
	memcpy(c, fdt, size);
	set_header(c, st + 16, 0x00ffffff);
	assert_true(parse(c) < 0);
	assert_true(err[0] != '\0');

	/* A property length running off the end of the structure block. */
	memcpy(c, fdt, size);
	set_header(c, st + 12, 0x00100000);
	assert_true(parse(c) < 0);
	assert_true(err[0] != '\0');

	/* No END token: the structure block is cut short. */
	memcpy(c, fdt, size);
	set_header(c, offsetof(struct fdt_header, size_dt_struct), fdt_size_dt_struct(fdt) - 4);
	assert_true(parse(c) < 0);
}

/* Parse a corrupted copy; either outcome is fine, but it must be coherent. */
static void parse_corrupted(const void *c, size_t pos)
{
	int rc = parse(c);

	if (rc > 0)
		fail_msg("byte %zu: machine_from_fdt returned %d", pos, rc);
	if (rc < 0 && !err[0])
		fail_msg("byte %zu: error %d without a message", pos, rc);
	if (rc == 0)
		assert_sane();
}

/*
 * Every byte of the blob flipped in three ways, each in an exact-size heap
 * copy so ASan catches any read outside it. totalsize is the exception: a
 * larger one is honest input only with the memory behind it, so those copies
 * get FDT_MAX_SIZE bytes.
 */
static void corrupt_every_byte(void **state)
{
	static const unsigned char flips[] = { 0xff, 0x01, 0x80 };
	void *fdt = load("full.dtb");
	size_t size = fdt_totalsize(fdt), ts = offsetof(struct fdt_header, totalsize);

	(void)state;
	for (size_t pos = 0; pos < size; pos++) {
		bool big = pos >= ts && pos < ts + 4;
		size_t alloc = big ? FDT_MAX_SIZE : size;
		unsigned char *c = calloc(1, alloc);

		assert_non_null(c);
		for (unsigned f = 0; f < sizeof(flips); f++) {
			memcpy(c, fdt, size);
			c[pos] ^= flips[f];
			parse_corrupted(c, pos);
		}
		free(c);
	}
}

/* Random multi-byte damage to the blocks of the QEMU tree (fixed seed). */
static void corrupt_random(void **state)
{
	void *fdt = load("qemu-virt.dtb"), *packed = editable(fdt);
	size_t size, lo, hi;
	unsigned char *c;
	unsigned seed = 12345;

	(void)state;
	assert_int_equal(fdt_pack(packed), 0);
	size = fdt_totalsize(packed);
	lo = fdt_off_mem_rsvmap(packed);
	hi = size;
	c = track(malloc(size));
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(c, packed, size);
		for (int n = 1 + iter % 8; n > 0; n--) {
			seed = seed * 1103515245 + 12345;
			c[lo + (seed >> 8) % (hi - lo)] = (seed >> 20) & 0xff;
		}
		parse_corrupted(c, iter);
	}
}

/* ---- host DT values checked before use (issue 14) ----------------------- */

/* Build a pool over m's RAM (descriptors on the heap; no page is touched). */
static struct pool pool;

static u32 build_pool(const struct region *ex, unsigned nex)
{
	void *desc = track(calloc(1, pool_desc_bytes(&m) + 1));

	return pool_init(&pool, &m, ex, nex, desc);
}

static void assert_mpns_unique(u32 n)
{
	uint8_t *seen = track(calloc(1, (size_t)1 << 20)); /* a bit per page of the low 32 GiB */

	for (u32 i = 0; i < n; i++) {
		mpn_t mpn = pool.desc[i].mpn;

		assert_true(mpn < (1u << 23));
		if (seen[mpn / 8] & (1 << mpn % 8))
			fail_msg("machine page 0x%llx has two descriptors", (unsigned long long)mpn << PAGE_SHIFT);
		seen[mpn / 8] |= 1 << mpn % 8;
	}
}

/*
 * Overlapping and duplicate /memory banks are merged (with a note), so
 * every machine page has one descriptor and one owner.
 */
static void regression_overlapping_memory_banks(void **state)
{
	void *fdt = load("memory-overlap.dtb");
	u32 n;

	(void)state;
	parse_ok(fdt);
	assert_int_equal(m.nmem, 2);
	assert_region(m.mem[0], 0x40000000, 0x12000000);
	assert_region(m.mem[1], 0x80000000, 0x100000);
	assert_true(m.mem_total == 0x12100000);
	assert_note("/memory@40000000 reg: bank 0x44000000-0x44ffffff overlaps", "merged");
	assert_note("/memory@40000000-again reg", "merged");
	assert_note("/memory@51000000 reg: bank 0x51000000-0x51ffffff adjoins", "merged");
	n = build_pool(NULL, 0);
	assert_int_equal(n, 0x12100000 >> PAGE_SHIFT);
	assert_mpns_unique(n);
}

/* Even given overlapping banks directly, pool_init never makes two descriptors for a page. */
static void regression_pool_overlapping_banks(void **state)
{
	u32 n;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.nmem = 3;
	m.mem[0] = (struct region){ 0x40000000, 0x1000000 };
	m.mem[1] = (struct region){ 0x40800000, 0x100000 };  /* inside the first */
	m.mem[2] = (struct region){ 0x40f00000, 0x200000 };  /* over its end */
	m.mem_total = 0x1300000;
	n = build_pool(NULL, 0);
	assert_int_equal(n, 0x1100000 >> PAGE_SHIFT);
	assert_mpns_unique(n);
}

/* A bank whose end wraps is left out with a note. */
static void bank_that_wraps(void **state)
{
	void *e = editable(load("memory-banks.dtb"));
	const uint32_t reg[] = { 0, 0x40000000, 0, 0x10000000, 0xffffffff, 0xfff00000, 0, 0x200000 };

	(void)state;
	set_cells(e, "/memory@40000000", "reg", reg, 8);
	parse_ok(e);
	for (unsigned i = 0; i < m.nmem; i++)
		assert_true(m.mem[i].base + m.mem[i].size > m.mem[i].base);
	assert_note("/memory@40000000 reg: bank at 0xfffffffffff00000", "past the top", "ignored");
}

/*
 * Reservations and a boot module that wrap: clipped or refused, and the pool
 * is built and placed without looping for ever (pool_place and run_end did).
 */
static void regression_reserve_that_wraps(void **state)
{
	void *e = editable(load("full.dtb"));
	struct region ex[MAX_RESERVED + 1];
	paddr_t at;
	u32 n;

	(void)state;
	assert_int_equal(fdt_add_mem_rsv(e, 0x9ff00000, 0xffffffffffffff00ULL), 0);
	parse_ok(e);
	assert_note("/memreserve/ entry 1: 0xffffffffffffff00 bytes at 0x9ff00000", "reserved to the end of RAM");
	for (unsigned i = 0; i < m.nreserved; i++) {
		ex[i] = m.reserved[i].r;
		assert_true(ex[i].base + ex[i].size >= ex[i].base);
	}
	assert_region(m.reserved[1].r, 0x9ff00000, 0x100000);
	n = build_pool(ex, m.nreserved);
	assert_mpns_unique(n);

	/* pool_place and pool_init given wrapping regions directly. */
	ex[0] = (struct region){ 0x40001000, ~0ULL - 0x1000 };
	assert_false(pool_place(&m, ex, 1, 0x3000, &at) && at >= 0x40001000);
	ex[0] = (struct region){ 0x40000800, ~0ULL - 0x7ff }; /* ends at 2^64 + 1: wraps to 1 */
	assert_true(pool_place(&m, ex, 1, 0x1000, &at) == false);
	n = build_pool(ex, 1);
	assert_int_equal(n, 0);
	ex[0] = (struct region){ 0xfffffffffffff800ULL, 0x700 }; /* page_after would wrap */
	assert_true(pool_place(&m, ex, 1, 0x1000, &at));
	assert_true(at == 0x40000000);
}

/* A boot module outside RAM, or half given, is never read; a note says why. */
static void boot_module_outside_ram(void **state)
{
	void *e = editable(load("full.dtb"));
	const uint32_t start[] = { 0x0, 0x09000000 }, end[] = { 0x0, 0x09100000 };
	const uint32_t wrap_end[] = { 0xffffffff, 0xffffffff };

	(void)state;
	set_cells(e, "/chosen", "linux,initrd-start", start, 2);
	set_cells(e, "/chosen", "linux,initrd-end", end, 2);
	parse_ok(e);
	assert_true(m.boot_module_bad);
	assert_true(m.boot_module.size == 0);
	assert_note("/chosen linux,initrd-start", "0x9000000-0x9100000 is not inside RAM");

	set_cells(e, "/chosen", "linux,initrd-end", wrap_end, 2);
	parse_ok(e);
	assert_true(m.boot_module_bad);

	/* Inside RAM: used. */
	const uint32_t s2[] = { 0x0, 0x48000000 }, e2[] = { 0x0, 0x48001000 };
	set_cells(e, "/chosen", "linux,initrd-start", s2, 2);
	set_cells(e, "/chosen", "linux,initrd-end", e2, 2);
	parse_ok(e);
	assert_false(m.boot_module_bad);
	assert_region(m.boot_module, 0x48000000, 0x1000);

	assert_int_equal(fdt_delprop(e, node(e, "/chosen"), "linux,initrd-end"), 0);
	parse_ok(e);
	assert_true(m.boot_module_bad);
	assert_note("boot module", "half given");
}

/* PSCI over HVC would call Quire itself: refused, with the node and property named. */
static void regression_psci_hvc_refused(void **state)
{
	void *e = editable(load("qemu-virt.dtb"));

	(void)state;
	set_string(e, "/psci", "method", "hvc");
	parse_ok(e);
	assert_int_equal(m.psci.conduit, PSCI_CONDUIT_NONE);
	assert_note("/psci method: \"hvc\"", "PSCI not used");
}

/* A spin-table release address outside RAM or misaligned: that CPU is not started. */
static void regression_release_addr_outside_ram(void **state)
{
	void *e = editable(load("full.dtb"));
	const uint32_t outside[] = { 0x0, 0x09000000 }, odd[] = { 0x0, 0x80000004 };

	(void)state;
	set_cells(e, "/cpus/cpu@1", "cpu-release-addr", outside, 2);
	parse_ok(e);
	assert_int_equal(m.cpu[1].method, CPU_ENABLE_NONE);
	assert_note("/cpus/cpu@1 cpu-release-addr: 0x9000000 is outside RAM", "cannot be started");
	set_cells(e, "/cpus/cpu@1", "cpu-release-addr", odd, 2);
	parse_ok(e);
	assert_int_equal(m.cpu[1].method, CPU_ENABLE_NONE);
	assert_note("/cpus/cpu@1 cpu-release-addr: 0x80000004 is not 8-byte aligned");
}

/* Two cpu nodes with one MPIDR: the second is left out. */
static void duplicate_mpidr(void **state)
{
	void *e = editable(load("full.dtb"));
	const uint32_t zero[] = { 0 };

	(void)state;
	set_cells(e, "/cpus/cpu@1", "reg", zero, 1);
	parse_ok(e);
	assert_int_equal(m.ncpus, 1);
	assert_note("/cpus/cpu@1 reg: MPIDR 0x0 again, ignored");
}

/*
 * The GICV frame over RAM (a guest read and wrote Quire's memory through
 * it), the UART over the distributor, a virtio slot over RAM: none is used,
 * the RAM under them is withheld, and no VM is started.
 */
static void regression_gicv_over_ram(void **state)
{
	void *fdt = load("gicv-over-ram.dtb");
	bool under = false;

	(void)state;
	parse_ok(fdt);
	assert_false(m.gic.found);
	assert_non_null(machine_vm_blocker(&m));
	assert_note("/interrupt-controller@8000000 reg: GICV frame 0x40000000+0x10000 overlaps RAM",
		    "no VM can run");
	for (unsigned i = 0; i < m.nreserved; i++)
		under |= m.reserved[i].r.base == 0x40000000 && m.reserved[i].r.size == 0x10000;
	assert_true(under);
	assert_int_equal(m.nvirtio, 0);
	assert_note("/virtio_mmio@4fffff00 reg: 0x4fffff00+0x200 overlaps RAM", "ignored");
	/* The UART does not clash with an unused GIC: it stays the console. */
	assert_true(m.uart.found);
}

static void gic_frames_clash(void **state)
{
	void *e = editable(load("qemu-virt.dtb"));
	const uint32_t overlap[] = { 0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000,
				     0, 0x08030000, 0, 0x10000, 0, 0x08038000, 0, 0x10000 };
	const uint32_t small[] = { 0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x1000 };
	const uint32_t uart[] = { 0, 0x08010000, 0, 0x1000 };
	const uint32_t wraps[] = { 0, 0x08000000, 0, 0x10000, 0xffffffff, 0xffff0000, 0, 0x20000 };

	(void)state;
	set_cells(e, "/intc@8000000", "reg", overlap, 16);
	parse_ok(e);
	assert_false(m.gic.found);
	assert_note("/intc@8000000 reg: GICV frame 0x8038000+0x10000 overlaps the GICH frame");

	set_cells(e, "/intc@8000000", "reg", small, 8);
	parse_ok(e);
	assert_false(m.gic.found);
	assert_note("CPU interface frame 0x8010000+0x1000 is too small");

	set_cells(e, "/intc@8000000", "reg", wraps, 8);
	parse_ok(e);
	assert_false(m.gic.found);
	assert_note("CPU interface frame", "runs past the top");

	/* A good GIC, and the console UART over its CPU interface: the UART is not used. */
	load("qemu-virt.dtb");
	e = editable(load("qemu-virt.dtb"));
	set_cells(e, "/pl011@9000000", "reg", uart, 4);
	parse_ok(e);
	assert_true(m.gic.found);
	assert_null(machine_vm_blocker(&m));
	assert_false(m.uart.found);
	assert_note("/pl011@9000000 reg: 0x8010000+0x1000 overlaps the GIC's CPU interface frame",
		    "not used as the console");
}

/* No GIC, a GICv3 only, or one without GICH/GICV: said once, and VMs are not started. */
static void gic_missing_or_partial(void **state)
{
	void *e = editable(load("qemu-virt.dtb"));
	const uint32_t reg[] = { 0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000 };

	(void)state;
	set_cells(e, "/intc@8000000", "reg", reg, 8);
	parse_ok(e);
	assert_true(m.gic.found);
	assert_non_null(machine_vm_blocker(&m));
	assert_note("/intc@8000000 reg: no GICH and GICV frames", "no VM can run");

	set_string(e, "/intc@8000000", "compatible", "arm,gic-v3");
	parse_ok(e);
	assert_non_null(machine_vm_blocker(&m));
	assert_note("no enabled GICv2 node (only a GICv3", "no VM can run");

	assert_int_equal(fdt_del_node(e, node(e, "/intc@8000000")), 0);
	parse_ok(e);
	assert_non_null(machine_vm_blocker(&m));
	assert_note("no enabled GICv2 node", "no VM can run");

	parse_ok(load("qemu-virt.dtb"));
	assert_null(machine_vm_blocker(&m));
	assert_string_equal(m.notes, "");
}

/* A stdout-path alias that names itself: libfdt recursed until the stack ran out. */
static void regression_stdout_path_alias_loop(void **state)
{
	void *e = editable(load("stdout-path.dtb"));

	(void)state;
	set_string(e, "/aliases", "serial1", "serial1");
	set_string(e, "/chosen", "stdout-path", "serial1:115200n8");
	parse_ok(e);
	assert_true(m.uart.found); /* the first PL011 */
	assert_true(m.uart.base == 0x09000000);
	assert_note("/aliases", "not a full path");

	set_string(e, "/aliases", "serial1", "serial0");
	parse_ok(e);
	assert_true(m.uart.base == 0x09000000);
}

/* machine_fit: RAM beyond the PA range is cut or left out; devices beyond it are not used. */
static void fit_pa_range(void **state)
{
	void *e = editable(load("memory-banks.dtb"));
	const struct region image = { 0x40080000, 0x100000 };

	(void)state;
	parse_ok(e);
	assert_int_equal(machine_fit(&m, 32, image, err, sizeof(err)), 0);
	/* 0x100000000+2 GiB is beyond 32 bits. */
	assert_int_equal(m.nmem, 3);
	assert_true(m.mem_total == (16ULL + 256 + 1024) << 20);
	assert_note("/memory@100000000 reg: bank 0x100000000-0x17fffffff beyond the CPU's 32-bit PA range, ignored");

	parse_ok(e);
	assert_int_equal(machine_fit(&m, 33, image, err, sizeof(err)), 0);
	assert_region(m.mem[3], 0x100000000ULL, 0x80000000ULL);
	assert_int_equal(machine_fit(&m, 32, image, err, sizeof(err)), 0);

	/* Devices beyond the range: not used. */
	e = editable(load("qemu-virt.dtb"));
	const uint32_t high[] = { 0x1, 0x09000000, 0x0, 0x1000 };
	const uint32_t gic[] = { 0, 0x08000000, 0, 0x10000, 0x1, 0x08010000, 0, 0x10000,
				 0, 0x08030000, 0, 0x10000, 0, 0x08040000, 0, 0x10000 };
	set_cells(e, "/pl011@9000000", "reg", high, 4);
	set_cells(e, "/intc@8000000", "reg", gic, 16);
	parse_ok(e);
	assert_true(m.uart.found && m.gic.found);
	assert_int_equal(machine_fit(&m, 32, image, err, sizeof(err)), 0);
	assert_false(m.uart.found);
	assert_note("/pl011@9000000 reg: console UART 0x109000000+0x1000 is beyond the CPU's 32-bit PA range");
	assert_false(m.gic.found);
	assert_non_null(machine_vm_blocker(&m));
	assert_note("/intc@8000000 reg: CPU interface frame 0x108010000+0x10000 is beyond");
	assert_note("/intc@8000000: the GIC is not used, so no VM can run");

	/* No RAM at all within range: refused with a reason. */
	e = editable(load("full.dtb"));
	const uint32_t big[] = { 0x1, 0x0, 0x0, 0x80000000 };
	set_cells(e, "/memory@80000000", "reg", big, 4);
	parse_ok(e);
	assert_true(machine_fit(&m, 32, (struct region){ 0x100000000ULL, 0x1000 }, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "32-bit"));
}

/* machine_fit: Quire's own image must be in RAM; a release address inside it is refused. */
static void fit_image(void **state)
{
	void *fdt = load("full.dtb");

	(void)state;
	parse_ok(fdt);
	assert_true(machine_fit(&m, 40, (struct region){ 0x60000000, 0x100000 }, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "Quire's own image at 0x60000000-0x600fffff is not in the RAM"));
	parse_ok(fdt);
	assert_true(machine_fit(&m, 40, (struct region){ 0x4ff80000, 0x100000 }, err, sizeof(err)) < 0);

	parse_ok(fdt);
	assert_int_equal(machine_fit(&m, 40, (struct region){ 0x80000000, 0x100000 }, err, sizeof(err)), 0);
	assert_int_equal(m.cpu[1].method, CPU_ENABLE_NONE); /* 0x8000fff8 is in the image */
	assert_note("cpu-release-addr: 0x8000fff8 is inside Quire's image");
}

/* ---- known defects ------------------------------------------------------ */

/*
 * BUG (core/machine_cpus.c, machine_parse_psci): the PSCI 0.1 cpu_on property is read as
 * a u32 without checking its length. An empty one yields the next structure
 * token (2, FDT_END_NODE) as the CPU_ON function ID, with the conduit set.
 */
static void regression_empty_cpu_on_property(void **state)
{
	void *fdt = load("psci-0.1.dtb"), *e = editable(fdt);

	(void)state;
	assert_int_equal(fdt_setprop(e, node(e, "/psci"), "cpu_on", NULL, 0), 0);
	parse_ok(e);
	if (m.psci.conduit != PSCI_CONDUIT_NONE)
		fail_msg("empty cpu_on accepted: conduit %d, CPU_ON id 0x%x", m.psci.conduit, m.psci.cpu_on);
}

/* BUG (core/machine_devices.c, machine_parse_timer): the same for the timer's clock-frequency. */
static void regression_empty_clock_frequency_property(void **state)
{
	void *fdt = load("full.dtb"), *e = editable(fdt);

	(void)state;
	assert_int_equal(fdt_setprop(e, node(e, "/timer"), "clock-frequency", NULL, 0), 0);
	parse_ok(e);
	assert_true(m.timer.found);
	if (m.timer.clock_frequency != 0)
		fail_msg("empty clock-frequency read as %u Hz", m.timer.clock_frequency);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, free_all)
	const struct CMUnitTest tests[] = {
		T(virt_memory_and_model),
		T(virt_cpus_and_psci),
		T(virt_gic_and_timer),
		T(virt_console),
		T(virt_virtio),
		T(virt_cpu_index),
		T(virt_bootargs_and_long_strings),
		T(virt_gic_without_virt_extensions),
		T(virt_gicv3_only),
		T(virt_timer_short_interrupts),
		T(virt_psci_variants),
		T(virt_memory_region_limit),
		T(virt_reserved_limit),
		T(virt_virtio_limit),
		T(virt_no_cpus),
		T(virt_long_uart_path),
		T(error_buffer_small),
		T(rpi4_as_shipped_has_no_memory),
		T(rpi4_memory),
		T(rpi4_cpus),
		T(rpi4_gic_and_timer),
		T(rpi4_console),
		T(no_memory_node),
		T(only_memory_disabled),
		T(memory_banks_sorted),
		T(too_many_cpus),
		T(psci_0_1),
		T(bus_ranges_not_covering),
		T(nested_ranges),
		T(stdout_path_full_path_with_options),
		T(stdout_path_variants),
		T(reserved_memory),
		T(full_board),
		T(corrupt_bad_magic),
		T(corrupt_bad_version),
		T(corrupt_totalsize_truncated),
		T(corrupt_totalsize_huge),
		T(corrupt_struct_block),
		T(corrupt_every_byte),
		T(corrupt_random),
		T(regression_empty_cpu_on_property),
		T(regression_empty_clock_frequency_property),
		T(regression_overlapping_memory_banks),
		T(regression_pool_overlapping_banks),
		T(bank_that_wraps),
		T(regression_reserve_that_wraps),
		T(boot_module_outside_ram),
		T(regression_psci_hvc_refused),
		T(regression_release_addr_outside_ram),
		T(duplicate_mpidr),
		T(regression_gicv_over_ram),
		T(gic_frames_clash),
		T(gic_missing_or_partial),
		T(regression_stdout_path_alias_loop),
		T(fit_pa_range),
		T(fit_image),
	};

	if (getenv("QUIRE_DTB_DIR"))
		dtb_dir = getenv("QUIRE_DTB_DIR");
	rpi4_path = getenv("QUIRE_RPI4_DTB");
	return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
