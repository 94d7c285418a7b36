/*
 * The device tree a Linux guest gets: dts/guest-virt.dts (compiled into
 * quire.bin, the virtio-mmio slots included) completed for its VM with
 * libfdt: its memory, its vCPUs, bootargs, the initramfs and a seed for its
 * random pool.
 */
#include <libfdt.h>
#include <quire/entropy.h>
#include <quire/printf.h>
#include <quire/vm.h>

int guest_dt_build(const void *tmpl, void *buf, int size, const struct vm *vm, const char *bootargs,
		   u64 initrd_start, u64 initrd_end)
{
	fdt64_t reg[2] = { cpu_to_fdt64(vm->ram_base.bits), cpu_to_fdt64(vm->ram_size) };
	int rc, cpus, mem;

	if ((rc = fdt_open_into(tmpl, buf, size)))
		return rc;
	mem = fdt_path_offset(buf, "/memory@40000000");
	cpus = fdt_path_offset(buf, "/cpus");
	if (mem < 0 || cpus < 0)
		return -FDT_ERR_NOTFOUND;
	if ((rc = fdt_setprop(buf, mem, "reg", reg, sizeof(reg))))
		return rc;
	/* cpu@N in order: fdt_add_subnode puts new nodes first, so go backwards. */
	for (int i = vm->nvcpus - 1; i >= 0; i--) {
		char name[16];
		int n;

		q_snprintf(name, sizeof(name), "cpu@%d", i);
		n = fdt_add_subnode(buf, cpus, name);
		if (n < 0)
			return n;
		if ((rc = fdt_setprop_string(buf, n, "device_type", "cpu")) ||
		    (rc = fdt_setprop_string(buf, n, "compatible", "arm,armv8")) ||
		    (rc = fdt_setprop_u32(buf, n, "reg", i)) ||
		    (rc = fdt_setprop_string(buf, n, "enable-method", "psci")))
			return rc;
	}
	int chosen = fdt_path_offset(buf, "/chosen");
	if (chosen < 0)
		return chosen;
	/* NULL: no command line at all, as QEMU gives a -kernel image without -append. */
	rc = bootargs ? fdt_setprop_string(buf, chosen, "bootargs", bootargs) : fdt_delprop(buf, chosen, "bootargs");
	if (rc && rc != -FDT_ERR_NOTFOUND)
		return rc;
	/* Fresh for every boot of every VM: Linux's random pool is ready at once (include/quire/entropy.h). */
	u8 seed[64];

	entropy_draw(seed, sizeof(seed));
	if ((rc = fdt_setprop(buf, chosen, "rng-seed", seed, sizeof(seed))))
		return rc;
	if (initrd_end > initrd_start &&
	    ((rc = fdt_setprop_u64(buf, chosen, "linux,initrd-start", initrd_start)) ||
	     (rc = fdt_setprop_u64(buf, chosen, "linux,initrd-end", initrd_end))))
		return rc;
	return fdt_pack(buf);
}
