/*
 * machine_fit: what needs the CPU's PA range and where Quire was loaded. RAM
 * and devices beyond the range are cut or left out, and Quire's image, the
 * boot modules and spin-table addresses are checked against the RAM left.
 */
#include <string.h>
#include <quire/modules.h>
#include "machine_priv.h"

/* A device region beyond what Quire can map: left out. */
static bool beyond(struct machine *m, struct region r, u64 limit, unsigned pa_bits, const char *what)
{
	if (r.size && r.base < limit && r.size <= limit - r.base)
		return false;
	dt_note(m, "%s 0x%lx+0x%lx is beyond the CPU's %u-bit PA range; ignored", what, r.base, r.size, pa_bits);
	return true;
}

int machine_fit(struct machine *m, unsigned pa_bits, struct region image, char *err, size_t errlen)
{
	u64 limit = pa_bits < 64 ? 1UL << pa_bits : ~0UL;
	unsigned k = 0;
	char what[96];

	for (unsigned i = 0; i < m->nmem; i++) {
		struct region b = m->mem[i];

		if (b.base >= limit) {
			dt_note(m, "%s reg: bank 0x%lx-0x%lx beyond the CPU's %u-bit PA range, ignored", m->mem_node[i],
				b.base, last(b), pa_bits);
			continue;
		}
		if (b.size > limit - b.base) {
			dt_note(m, "%s reg: bank 0x%lx-0x%lx reaches beyond the CPU's %u-bit PA range, cut at 0x%lx",
				m->mem_node[i], b.base, last(b), pa_bits, limit);
			b.size = limit - b.base;
		}
		m->mem[k] = b;
		memmove(m->mem_node[k], m->mem_node[i], sizeof(m->mem_node[0]));
		k++;
	}
	m->nmem = k;
	machine_sum_ram(m);
	if (!k) {
		q_snprintf(err, errlen, "no RAM the device tree declares lies within the CPU's %u-bit physical "
			   "address range", pa_bits);
		return -FDT_ERR_BADVALUE;
	}
	if (!machine_in_ram(m, image.base, image.size)) {
		q_snprintf(err, errlen, "Quire's own image at 0x%lx-0x%lx is not in the RAM the device tree "
			   "declares (/memory reg)", image.base, image.base + image.size - 1);
		return -FDT_ERR_BADVALUE;
	}
	if (m->gic.found) {
		const struct region *f[] = { &m->gic.dist, &m->gic.cpu, &m->gic.gich, &m->gic.gicv };

		for (unsigned i = 0; i < (m->gic.gich.size ? 4u : 2u) && m->gic.found; i++) {
			q_snprintf(what, sizeof(what), "%s reg: %s frame", m->gic.path, machine_gic_frame_name[i]);
			if (beyond(m, *f[i], limit, pa_bits, what))
				m->gic.found = false;
		}
		if (!m->gic.found)
			dt_note(m, "%s: the GIC is not used, so no VM can run", m->gic.path);
	}
	if (m->uart.found) {
		q_snprintf(what, sizeof(what), "%s reg: console UART", m->uart.path);
		m->uart.found = !beyond(m, (struct region){ m->uart.base, m->uart.size }, limit, pa_bits, what);
	}
	k = 0;
	for (unsigned i = 0; i < m->nvirtio; i++)
		if (!beyond(m, m->virtio[i].r, limit, pa_bits, "virtio,mmio reg:"))
			m->virtio[k++] = m->virtio[i];
	m->nvirtio = k;
	modules_fit(m, image);
	if (m->boot_module.size && !machine_in_ram(m, m->boot_module.base, m->boot_module.size)) {
		dt_note(m, "/chosen linux,initrd-start: boot module at 0x%lx is not in usable RAM; not read",
			m->boot_module.base);
		m->boot_module = (struct region){ 0, 0 };
		m->boot_module_bad = true;
	}
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct cpu_desc *c = &m->cpu[i];

		if (c->method != CPU_ENABLE_SPIN_TABLE)
			continue;
		/* Writing the entry point into Quire's own image would corrupt it. */
		if (!machine_in_ram(m, c->release_addr, 8) || overlap((struct region){ c->release_addr, 8 }, image)) {
			dt_note(m, "cpu with MPIDR 0x%lx cpu-release-addr: 0x%lx is %s; that CPU cannot be started",
				c->mpidr, c->release_addr,
				machine_in_ram(m, c->release_addr, 8) ? "inside Quire's image" : "not in usable RAM");
			c->method = CPU_ENABLE_NONE;
		}
	}
	return 0;
}
