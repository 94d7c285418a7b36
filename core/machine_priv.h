/*
 * Shared by the host DT reader's pieces: machine.c, machine_dt.c (reading
 * nodes), machine_mem.c, machine_cpus.c, machine_devices.c, machine_fit.c.
 */
#ifndef CORE_MACHINE_PRIV_H
#define CORE_MACHINE_PRIV_H
#include <libfdt.h>
#include <quire/machine.h>
#include <quire/printf.h>

static inline void copy_str(char *dst, size_t n, const char *src)
{
	q_snprintf(dst, n, "%s", src ? src : "");
}

/* base + size runs past the top of the address space (an end of exactly 2^64 too: it cannot be written). */
static inline bool wraps(u64 base, u64 size)
{
	return size > ~0UL - base;
}

static inline u64 last(struct region r)
{
	return r.base + r.size - 1;
}

static inline bool overlap(struct region a, struct region b)
{
	return a.size && b.size && a.base <= last(b) && b.base <= last(a);
}

/* machine_dt.c: reading nodes. The parent index makes reg lookups fast while machine_from_fdt runs. */
void dt_index_tree(const void *fdt);
void dt_forget_tree(void);
u64 dt_read_cells(const fdt32_t *p, int n);
bool dt_node_enabled(const void *fdt, int node);
int dt_reg(const void *fdt, int node, int idx, struct region *out);
int dt_irq(const void *fdt, int node, int idx, u32 *intid);
void __printf(2, 3) dt_note(struct machine *m, const char *fmt, ...);
const char *dt_path_of(const void *fdt, int node, char *buf, int len);

/* machine_mem.c: RAM and reservations. */
const struct region *machine_ram_under(const struct machine *m, struct region r);
bool machine_in_ram(const struct machine *m, u64 base, u64 size);
void machine_sum_ram(struct machine *m);
int machine_parse_memory(const void *fdt, struct machine *m);
void machine_add_reserved(struct machine *m, paddr_t base, u64 size, const char *name, const char *what);
void machine_parse_reserved(const void *fdt, struct machine *m);

/* machine_cpus.c */
int machine_parse_cpus(const void *fdt, struct machine *m);
void machine_parse_psci(const void *fdt, struct machine *m);

/* machine_devices.c */
extern const char *const machine_gic_frame_name[]; /* dist, cpu, gich, gicv */
void machine_parse_gic(const void *fdt, struct machine *m);
void machine_parse_uart(const void *fdt, struct machine *m);
void machine_parse_timer(const void *fdt, struct machine *m);
void machine_parse_virtio(const void *fdt, struct machine *m);
#endif
