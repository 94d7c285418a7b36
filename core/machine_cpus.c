/*
 * The host DT's CPUs, each with the method that starts it (PSCI or a
 * spin-table release address in RAM), and the PSCI conduit (SMC only).
 */
#include <string.h>
#include "machine_priv.h"

int machine_parse_cpus(const void *fdt, struct machine *m)
{
	int cpus = fdt_path_offset(fdt, "/cpus"), node, ac;
	char path[64];

	if (cpus < 0)
		return cpus;
	ac = fdt_address_cells(fdt, cpus);
	if (ac < 1 || ac > 2)
		return -FDT_ERR_BADNCELLS;
	fdt_for_each_subnode(node, fdt, cpus) {
		const char *type = fdt_getprop(fdt, node, "device_type", NULL);
		const char *method = fdt_getprop(fdt, node, "enable-method", NULL);
		const fdt32_t *reg, *rel;
		struct cpu_desc *c;
		u64 mpidr;
		int len;

		if (!type || strcmp(type, "cpu") || !dt_node_enabled(fdt, node))
			continue;
		reg = fdt_getprop(fdt, node, "reg", &len);
		if (!reg || len < ac * 4)
			continue;
		mpidr = dt_read_cells(reg, ac);
		if (machine_cpu_index(m, mpidr) >= 0) {
			/* Two logical CPUs with one MPIDR: the second would never find itself. */
			dt_note(m, "%s reg: MPIDR 0x%lx again, ignored", dt_path_of(fdt, node, path, sizeof(path)),
				mpidr);
			continue;
		}
		if (m->ncpus == MAX_CPUS) {
			m->ncpus_ignored++;
			continue;
		}
		c = &m->cpu[m->ncpus++];
		c->mpidr = mpidr;
		c->method = CPU_ENABLE_NONE;
		if (method && !strcmp(method, "psci")) {
			c->method = CPU_ENABLE_PSCI;
		} else if (method && !strcmp(method, "spin-table")) {
			rel = fdt_getprop(fdt, node, "cpu-release-addr", &len);
			if (rel && (len == 8 || len == 4)) {
				u64 a = dt_read_cells(rel, len / 4);

				/* Quire writes the entry point there: it must be RAM, or the store aborts. */
				if ((a & 7) || !machine_in_ram(m, a, 8)) {
					dt_note(m, "%s cpu-release-addr: 0x%lx is %s; that CPU cannot be started",
						dt_path_of(fdt, node, path, sizeof(path)), a,
						a & 7 ? "not 8-byte aligned" : "outside RAM");
				} else {
					c->method = CPU_ENABLE_SPIN_TABLE;
					c->release_addr = a;
				}
			}
		}
	}
	return m->ncpus ? 0 : -FDT_ERR_NOTFOUND;
}

void machine_parse_psci(const void *fdt, struct machine *m)
{
	static const char *const compat[] = { "arm,psci-1.0", "arm,psci-0.2", "arm,psci" };
	char path[64];

	for (unsigned i = 0; i < ARRAY_SIZE(compat); i++) {
		int node = fdt_node_offset_by_compatible(fdt, -1, compat[i]);
		const char *method;
		const fdt32_t *fn;
		int len;

		if (node < 0 || !dt_node_enabled(fdt, node))
			continue;
		method = fdt_getprop(fdt, node, "method", &len);
		if (method && !strcmp(method, "hvc")) {
			/* HVC from EL2 is taken at EL2: Quire would call itself. */
			dt_note(m, "%s method: \"hvc\" reaches no firmware from EL2, where Quire runs; PSCI not used",
				dt_path_of(fdt, node, path, sizeof(path)));
			return;
		}
		if (!method || strcmp(method, "smc")) {
			dt_note(m, "%s method: not \"smc\"; PSCI not used", dt_path_of(fdt, node, path, sizeof(path)));
			return;
		}
		m->psci.conduit = PSCI_CONDUIT_SMC;
		/* PSCI 0.2+ fixes the IDs; 0.1 names them in the node. */
		m->psci.cpu_on = 0xc4000003;
		if (i == 2) {
			fn = fdt_getprop(fdt, node, "cpu_on", &len);
			if (fn && len >= 4)
				m->psci.cpu_on = fdt32_to_cpu(*fn);
			else
				m->psci.conduit = PSCI_CONDUIT_NONE;
		}
		return;
	}
}

int machine_cpu_index(const struct machine *m, u64 mpidr)
{
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->cpu[i].mpidr == mpidr)
			return i;
	return -1;
}
