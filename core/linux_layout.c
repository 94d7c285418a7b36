/*
 * Where a Linux guest's pieces go in its RAM, by the arm64 boot protocol
 * (Documentation/arch/arm64/booting.rst). vmconfig_check and the loader
 * share it, so a config that passed the check is one the loader can load.
 */
#include <string.h>
#include <quire/printf.h>
#include <quire/vmconfig.h>

#define IMAGE_MAGIC_OFF 56
#define INITRD_PREFERRED MiB(128) /* from the RAM base: room for the kernel to grow into */

/* The Image header's fields are little-endian whatever the host. */
static u64 le64(const u8 *p)
{
	u64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

bool is_linux_image(const u8 *data, u64 size)
{
	return size >= 64 && !memcmp(data + IMAGE_MAGIC_OFF, "ARM\x64", 4);
}

int linux_layout(const struct vm_config *c, const u8 *hdr, u64 size, u64 initrd_size,
		 struct linux_layout *out, char *err, size_t errlen)
{
	u64 text_offset, image_size, end = c->mem_base + c->mem_size, kend, rd;

	if (!is_linux_image(hdr, size)) {
		q_snprintf(err, errlen, "/vms/%s: property 'kernel': image '%s' is not an arm64 "
			   "Linux Image", c->name, c->kernel);
		return -1;
	}
	text_offset = le64(hdr + 8);
	image_size = le64(hdr + 16);
	if (!image_size) /* kernels before 3.17: text_offset is then 0x80000 (booting.rst) */
		text_offset = 0x80000;
	out->dtb = c->mem_base;
	out->kernel = c->mem_base + SZ_2M + text_offset;
	/* Compared before adding, so a wild header cannot overflow the sums. */
	if (text_offset >= c->mem_size || MAX(image_size, size) > c->mem_size ||
	    (kend = out->kernel + MAX(image_size, size)) > end) {
		q_snprintf(err, errlen, "/vms/%s: property 'memory-mib' (%lu MiB) cannot hold "
			   "kernel '%s' (%lu KiB at RAM + 2 MiB)", c->name,
			   (unsigned long)(c->mem_size >> 20), c->kernel,
			   (unsigned long)(MAX(image_size, size) >> 10));
		return -1;
	}
	out->initrd = 0;
	if (!initrd_size)
		return 0;
	rd = MAX(ALIGN_UP(kend, SZ_2M), c->mem_base + INITRD_PREFERRED);
	if (rd >= end || initrd_size > end - rd)
		rd = ALIGN_UP(kend, SZ_2M); /* a small VM: right after the kernel */
	if (rd >= end || initrd_size > end - rd) {
		q_snprintf(err, errlen, "/vms/%s: property 'memory-mib' (%lu MiB) cannot hold "
			   "kernel '%s' and initramfs '%s' (%lu KiB after RAM + %lu MiB)", c->name,
			   (unsigned long)(c->mem_size >> 20), c->kernel, c->initramfs,
			   (unsigned long)(initrd_size >> 10),
			   (unsigned long)((rd - c->mem_base) >> 20));
		return -1;
	}
	out->initrd = rd;
	return 0;
}
