/*
 * banner_format: the boot banner the QEMU tests parse, for a hand-filled
 * struct machine, and its snprintf-style truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quire/banner.h>

/* A QEMU-virt-like machine with everything filled in. */
static void fill(struct machine *m, struct boot_info *b)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->model, "linux,dummy-virt");
	m->mem[0] = (struct region){ 0x40000000, 1024ULL << 20 };
	m->mem[1] = (struct region){ 0x100000000ULL, 512ULL << 20 };
	m->nmem = 2;
	m->mem_total = 1536ULL << 20;
	m->reserved[0] = (struct reserved_region){ { 0x48000000, 0x200000 }, "memreserve" };
	m->reserved[1] = (struct reserved_region){ { 0x4e000000, 0x3000 }, "firmware@4e000000" };
	m->nreserved = 2;
	m->ncpus = 4;
	m->ncpus_ignored = 2;
	for (unsigned i = 0; i < 4; i++)
		m->cpu[i].method = CPU_ENABLE_PSCI;
	m->psci.conduit = PSCI_CONDUIT_NONE; /* e.g. method "hvc", refused */
	m->gic.found = true;
	strcpy(m->gic.compatible, "arm,cortex-a15-gic");
	m->gic.dist = (struct region){ 0x08000000, 0x10000 };
	m->gic.cpu = (struct region){ 0x08010000, 0x10000 };
	m->gic.gich = (struct region){ 0x08030000, 0x10000 };
	m->gic.gicv = (struct region){ 0x08040000, 0x10000 };
	m->gic.maint_irq = 25;
	m->timer.found = true;
	m->timer.irq_sec_phys = 29;
	m->timer.irq_phys = 30;
	m->timer.irq_virt = 27;
	m->timer.irq_hyp_phys = 26;
	m->uart.found = true;
	m->uart.base = 0x09000000;
	m->uart.size = 0x1000;
	strcpy(m->uart.compatible, "arm,pl011");
	strcpy(m->uart.path, "/pl011@9000000");
	m->nvirtio = 32;

	memset(b, 0, sizeof(*b));
	b->platform = "qemu-virt";
	b->el = 2;
	b->entry_el = 2;
	b->cpus_online = 3;
	b->image_base = 0x40200000;
	b->image_size = 0x30000; /* 192 KiB */
	b->fdt = 0x48000000;
}

static struct machine m;
static struct boot_info b;
static char out[4096];

static void assert_line(const char *line)
{
	if (!strstr(out, line))
		fail_msg("banner lacks the line\n%s\nin:\n%s", line, out);
}

static void format(void)
{
	int n = banner_format(out, sizeof(out), &m, &b);

	assert_int_equal(n, strlen(out));
	assert_true(n > 0 && (size_t)n < sizeof(out));
}

static void full_banner(void **state)
{
	(void)state;
	fill(&m, &b);
	format();
	assert_true(strncmp(out, "Quire ", 6) == 0);
	assert_line(", an EL2 microhypervisor for ARMv8-A\n");
	assert_line("\n  platform:  qemu-virt (linux,dummy-virt)\n");
	assert_line("\n  running at EL2\n");
	/* The DT count includes the cpus beyond MAX_CPUS. */
	assert_line("\n  CPUs:      3 online of 6 in the DT, the others not started (the DT's PSCI is unusable)\n");
	assert_line("\n  memory:    1536 MiB in 2 regions\n");
	assert_line("\n    ram      0x0040000000-0x007fffffff  1024 MiB\n");
	assert_line("\n    ram      0x0100000000-0x011fffffff  512 MiB\n");
	assert_line("\n    reserved 0x0048000000-0x00481fffff  2 MiB (memreserve)\n");
	assert_line("\n    reserved 0x004e000000-0x004e002fff  12 KiB (firmware@4e000000)\n");
	assert_line("\n    quire    0x0040200000-0x004022ffff  192 KiB\n");
	assert_line("\n  GIC:       arm,cortex-a15-gic, distributor 0x8000000, CPU interface 0x8010000\n");
	assert_line("\n  GIC virt:  GICH 0x8030000, GICV 0x8040000, maintenance INTID 25\n");
	assert_line("\n  timer:     INTIDs phys 30, virt 27, hyp 26\n");
	assert_line("\n  console:   /pl011@9000000 at 0x9000000 (arm,pl011)\n");
	assert_line("\n  virtio:    32 virtio,mmio slots\n");
	assert_int_equal(out[strlen(out) - 1], '\n');
}

/* The banner is one line per item, in this order. */
static void line_order(void **state)
{
	static const char *const order[] = { "Quire ", "  platform:", "  running at", "  CPUs:",
					     "  memory:",   "    ram",	   "    ram",	    "    reserved",
					     "    reserved", "    quire",	   "  GIC:",	    "  GIC virt:",
					     "  timer:",    "  console:",   "  virtio:" };
	char *line = out;

	(void)state;
	fill(&m, &b);
	format();
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (strncmp(line, order[i], strlen(order[i])))
			fail_msg("line %u is \"%.30s...\", expected \"%s...\"", i, line, order[i]);
		line = strchr(line, '\n');
		assert_non_null(line);
		line++;
	}
	assert_int_equal(*line, '\0');
}

static void one_region_and_sizes(void **state)
{
	(void)state;
	fill(&m, &b);
	m.nmem = 1;
	m.mem[0] = (struct region){ 0x80000000, (3ULL << 20) + 0x400 }; /* not whole MiB */
	m.mem_total = m.mem[0].size;
	m.nreserved = 1;
	m.reserved[0].r.size = 100; /* bytes */
	m.nvirtio = 1;
	b.image_size = 2ULL << 20;
	format();
	assert_line("\n  memory:    3073 KiB in 1 region\n");
	assert_line("\n    ram      0x0080000000-0x00803003ff  3073 KiB\n");
	assert_line("\n    reserved 0x0048000000-0x0048000063  100 B (memreserve)\n");
	assert_line("\n    quire    0x0040200000-0x00403fffff  2 MiB\n");
	assert_line("\n  virtio:    1 virtio,mmio slot\n");
}

/* What is missing is said, not skipped silently; absent parts get no line. */
static void missing_parts(void **state)
{
	(void)state;
	fill(&m, &b);
	m.model[0] = '\0';
	m.gic.gich = (struct region){ 0, 0 };
	m.gic.gicv = (struct region){ 0, 0 };
	m.timer.found = false;
	m.uart.found = false;
	m.nvirtio = 0;
	format();
	assert_line("\n  platform:  qemu-virt (no model)\n");
	assert_line("\n  GIC virt:  none (no virtualization extensions in the DT)\n");
	assert_line("\n  virtio:    0 virtio,mmio slots\n");
	assert_null(strstr(out, "timer:"));
	assert_null(strstr(out, "console:"));

	m.gic.found = false;
	strcpy(m.gic.compatible, "arm,gic-v3");
	format();
	assert_line("\n  GIC:       none usable (found: arm,gic-v3)\n");
	assert_null(strstr(out, "GIC virt:"));

	m.gic.compatible[0] = '\0';
	format();
	assert_line("\n  GIC:       none usable (found: none)\n");
}

/* Entered at EL3 (e.g. through a bl31 that dropped to EL2): both are shown. */
static void entry_el(void **state)
{
	(void)state;
	fill(&m, &b);
	b.entry_el = 3;
	format();
	assert_line("\n  running at EL2 (entered at EL3)\n");
}

/* Addresses above 4 GiB keep all their digits. */
static void high_addresses(void **state)
{
	(void)state;
	fill(&m, &b);
	m.nmem = 1;
	m.mem[0] = (struct region){ 0x8000000000ULL, 1ULL << 30 };
	m.mem_total = 1ULL << 30;
	m.gic.dist.base = 0x2f000000000ULL;
	format();
	assert_line("\n    ram      0x8000000000-0x803fffffff  1024 MiB\n");
	assert_line("distributor 0x2f000000000,");
}

/*
 * Every buffer size from 0 up: the same return value, NUL-terminated, a
 * prefix of the full banner, and no byte written past size (each buffer is
 * exactly size bytes on the heap, for ASan).
 */
static void truncation_every_size(void **state)
{
	int len;

	(void)state;
	fill(&m, &b);
	format();
	len = strlen(out);
	for (int size = 1; size <= len + 2; size++) {
		char *buf = malloc(size);
		int end = len < size ? len : size - 1;

		assert_non_null(buf);
		memset(buf, 'X', size);
		assert_int_equal(banner_format(buf, size, &m, &b), len);
		assert_int_equal(buf[end], '\0');
		assert_memory_equal(buf, out, end);
		free(buf);
	}
}

static void size_zero(void **state)
{
	char c = 'X';

	(void)state;
	fill(&m, &b);
	format();
	assert_int_equal(banner_format(&c, 0, &m, &b), strlen(out));
	assert_int_equal(c, 'X');
}

/* snprintf(NULL, 0, ...) measures; banner_format promises snprintf style. */
static void size_zero_null_buffer(void **state)
{
	(void)state;
	fill(&m, &b);
	format();
	assert_int_equal(banner_format(NULL, 0, &m, &b), strlen(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_banner),
		cmocka_unit_test(line_order),
		cmocka_unit_test(one_region_and_sizes),
		cmocka_unit_test(missing_parts),
		cmocka_unit_test(entry_el),
		cmocka_unit_test(high_addresses),
		cmocka_unit_test(truncation_every_size),
		cmocka_unit_test(size_zero),
		cmocka_unit_test(size_zero_null_buffer),
	};

	return cmocka_run_group_tests_name("banner", tests, NULL, NULL);
}
