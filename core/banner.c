/* The boot banner: what Quire found. Tests parse it, so its format is stable. */
#include <quire/banner.h>
#include <quire/printf.h>

/* How the other CPUs were started: the enable method their DT nodes name. */
static const char *secondaries(const struct machine *m)
{
	unsigned psci = 0, spin = 0;

	for (unsigned i = 1; i < m->ncpus; i++) {
		psci += m->cpu[i].method == CPU_ENABLE_PSCI;
		spin += m->cpu[i].method == CPU_ENABLE_SPIN_TABLE;
	}
	if (psci && spin)
		return ", the others by PSCI and spin tables";
	if (psci)
		return m->psci.conduit == PSCI_CONDUIT_SMC ? ", the others by PSCI CPU_ON over SMC" :
							    ", the others not started (the DT's PSCI is unusable)";
	return spin ? ", the others by spin tables" : "";
}

#ifndef QUIRE_VERSION
#define QUIRE_VERSION "dev"
#endif

#define APPEND(...) (len += q_snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, __VA_ARGS__))

static void fmt_size(char *out, size_t n, u64 bytes)
{
	if (bytes >= MiB(1) && bytes % MiB(1) == 0)
		q_snprintf(out, n, "%lu MiB", bytes >> 20);
	else if (bytes >= 1024)
		q_snprintf(out, n, "%lu KiB", bytes >> 10);
	else
		q_snprintf(out, n, "%lu B", bytes);
}

int banner_format(char *buf, size_t size, const struct machine *m, const struct boot_info *b)
{
	size_t len = 0;
	char s[32];

	APPEND("Quire %s, an EL2 microhypervisor for ARMv8-A\n", QUIRE_VERSION);
	APPEND("  platform:  %s (%s)\n", b->platform, m->model[0] ? m->model : "no model");
	if (b->entry_el != b->el)
		APPEND("  running at EL%u (entered at EL%u)\n", b->el, b->entry_el);
	else
		APPEND("  running at EL%u\n", b->el);
	APPEND("  CPUs:      %u online of %u in the DT%s\n", b->cpus_online, m->ncpus + m->ncpus_ignored,
	       secondaries(m));
	fmt_size(s, sizeof(s), m->mem_total);
	APPEND("  memory:    %s in %u region%s\n", s, m->nmem, m->nmem == 1 ? "" : "s");
	for (unsigned i = 0; i < m->nmem; i++) {
		fmt_size(s, sizeof(s), m->mem[i].size);
		APPEND("    ram      0x%010lx-0x%010lx  %s\n", m->mem[i].base,
		       m->mem[i].base + m->mem[i].size - 1, s);
	}
	for (unsigned i = 0; i < m->nreserved; i++) {
		fmt_size(s, sizeof(s), m->reserved[i].r.size);
		APPEND("    reserved 0x%010lx-0x%010lx  %s (%s)\n", m->reserved[i].r.base,
		       m->reserved[i].r.base + m->reserved[i].r.size - 1, s, m->reserved[i].name);
	}
	fmt_size(s, sizeof(s), b->image_size);
	APPEND("    quire    0x%010lx-0x%010lx  %s\n", b->image_base, b->image_base + b->image_size - 1, s);
	if (m->gic.found) {
		APPEND("  GIC:       %s, distributor 0x%lx, CPU interface 0x%lx\n", m->gic.compatible,
		       m->gic.dist.base, m->gic.cpu.base);
		if (m->gic.gich.size)
			APPEND("  GIC virt:  GICH 0x%lx, GICV 0x%lx, maintenance INTID %u\n", m->gic.gich.base,
			       m->gic.gicv.base, m->gic.maint_irq);
		else
			APPEND("  GIC virt:  none (no virtualization extensions in the DT)\n");
	} else {
		APPEND("  GIC:       none usable (found: %s)\n", m->gic.compatible[0] ? m->gic.compatible : "none");
	}
	if (m->timer.found)
		APPEND("  timer:     INTIDs phys %u, virt %u, hyp %u\n", m->timer.irq_phys, m->timer.irq_virt,
		       m->timer.irq_hyp_phys);
	if (m->uart.found)
		APPEND("  console:   %s at 0x%lx (%s)\n", m->uart.path, m->uart.base, m->uart.compatible);
	APPEND("  virtio:    %u virtio,mmio slot%s\n", m->nvirtio, m->nvirtio == 1 ? "" : "s");
	return (int)len;
}
