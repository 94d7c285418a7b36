/*
 * Build struct machine from the host device tree with libfdt: machine_from_fdt
 * checks the blob, then reads RAM and reservations (machine_mem.c), the CPUs
 * and PSCI (machine_cpus.c), the devices (machine_devices.c) and /chosen.
 */
#include <string.h>
#include <quire/modules.h>
#include "machine_priv.h"

#define FDT_MAX_SIZE (2UL << 20) /* Linux's limit too */

/* linux,initrd-start/-end: one or two cells each, as loaders write them. */
static bool chosen_addr(const void *fdt, int chosen, const char *name, u64 *out)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, chosen, name, &len);

	if (!p || (len != 4 && len != 8))
		return false;
	*out = len == 4 ? fdt32_to_cpu(p[0]) : (u64)fdt32_to_cpu(p[0]) << 32 | fdt32_to_cpu(p[1]);
	return true;
}

static void parse_boot_module(const void *fdt, int chosen, struct machine *m)
{
	bool has_start, has_end;
	u64 start = 0, end = 0;

	has_start = chosen_addr(fdt, chosen, "linux,initrd-start", &start);
	has_end = chosen_addr(fdt, chosen, "linux,initrd-end", &end);
	if (!has_start && !has_end)
		return;
	/* Quire reads the module: outside RAM that is an abort, not a refusal. */
	if (!has_start || !has_end || end <= start || !machine_in_ram(m, start, end - start)) {
		dt_note(m, "/chosen linux,initrd-start, linux,initrd-end: boot module 0x%lx-0x%lx %s; not read",
			start, end, !has_start || !has_end ? "half given" : end <= start ? "ends before it starts" :
			"is not inside RAM");
		m->boot_module_bad = true;
		return;
	}
	m->boot_module = (struct region){ start, end - start };
}

/* Whatever randomness the loader left: rng-seed, then kaslr-seed, as much as fits. */
static void machine_parse_seeds(const void *fdt, int chosen, struct machine *m)
{
	static const char *const props[] = { "rng-seed", "kaslr-seed" };

	for (unsigned i = 0; i < ARRAY_SIZE(props); i++) {
		int len;
		const u8 *p = fdt_getprop(fdt, chosen, props[i], &len);

		for (int j = 0; p && j < len && m->seed_len < sizeof(m->seed); j++)
			m->seed[m->seed_len++] = p[j];
	}
}

int machine_from_fdt(const void *fdt, struct machine *m, char *err, size_t errlen)
{
	int rc;

	memset(m, 0, sizeof(*m));
	dt_forget_tree();
	rc = fdt_check_header(fdt);
	if (rc) {
		q_snprintf(err, errlen, "device tree at %p is not valid: %s", fdt, fdt_strerror(rc));
		return rc;
	}
	if (fdt_totalsize(fdt) > FDT_MAX_SIZE) {
		q_snprintf(err, errlen, "device tree at %p claims %u bytes, more than the %lu allowed",
			   fdt, fdt_totalsize(fdt), FDT_MAX_SIZE);
		return -FDT_ERR_TRUNCATED;
	}
	rc = fdt_check_full(fdt, fdt_totalsize(fdt));
	if (rc) {
		q_snprintf(err, errlen, "device tree at %p is corrupt: %s", fdt, fdt_strerror(rc));
		return rc;
	}
	dt_index_tree(fdt);
	copy_str(m->model, sizeof(m->model), fdt_getprop(fdt, 0, "model", NULL));
	rc = machine_parse_memory(fdt, m);
	if (rc) {
		q_snprintf(err, errlen, "device tree has more than %d memory regions", MAX_MEM_REGIONS);
		return rc;
	}
	if (!m->nmem) {
		q_snprintf(err, errlen, "device tree has no memory node with a usable reg: no RAM to manage");
		return -FDT_ERR_NOTFOUND;
	}
	rc = machine_parse_cpus(fdt, m);
	if (rc) {
		q_snprintf(err, errlen, "device tree has no usable /cpus node: %s", fdt_strerror(rc));
		return rc;
	}
	machine_parse_reserved(fdt, m);
	machine_parse_psci(fdt, m);
	machine_parse_gic(fdt, m);
	machine_parse_uart(fdt, m);
	machine_parse_timer(fdt, m);
	machine_parse_virtio(fdt, m);
	int chosen = fdt_path_offset(fdt, "/chosen");
	if (chosen >= 0) {
		copy_str(m->bootargs, sizeof(m->bootargs), fdt_getprop(fdt, chosen, "bootargs", NULL));
		machine_parse_seeds(fdt, chosen, m);
		parse_boot_module(fdt, chosen, m);
	}
	modules_parse(fdt, chosen, m);
	dt_forget_tree(); /* the blob may move or change after we return */
	return 0;
}
