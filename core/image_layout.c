/*
 * Where a VM's kernel image, initramfs and guest DT go in its RAM, for
 * every kind of image (docs/guest-platform.md, "Booting other images").
 * vmconfig_check (at build time in tools/vmcheck, and at boot) and the
 * loader share it, so a config that passed the check is one the loader can
 * load. Images that are neither a Linux Image nor a Quire test guest are
 * booted as QEMU 10's -kernel boots them on virt (hw/arm/boot.c):
 *
 *  - an ELF: its PT_LOAD segments at their physical addresses (p_paddr),
 *    entered at e_entry with every register zero (x0 too: QEMU takes an
 *    ELF for no Linux); the DT at the RAM base if it fits below the lowest
 *    segment, else none; no initramfs.
 *  - a raw binary: at RAM + 0x80000 and entered there as a Linux kernel is,
 *    x0 = the DT, x1-x3 = 0; the initramfs at RAM + min(RAM / 2, 128 MiB)
 *    or past the image if that is higher (4 KiB aligned), the DT past both,
 *    2 MiB aligned.
 *
 * An image is untrusted input: every field is checked before it is used,
 * compared before anything is added, so no sum can overflow.
 */
#include <stdarg.h>
#include <string.h>
#include <quire/printf.h>
#include <quire/vmconfig.h>

/* ELF64 (the System V gABI): the fields Quire reads, and their offsets. */
#define EI_CLASS 4
#define EI_DATA 5
#define EI_VERSION 6
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
#define ET_EXEC 2
#define ET_DYN 3
#define EM_AARCH64 183
#define PT_LOAD 1
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define E_TYPE 16
#define E_MACHINE 18
#define E_ENTRY 24
#define E_PHOFF 32
#define E_PHENTSIZE 54
#define E_PHNUM 56
#define P_TYPE 0
#define P_OFFSET 8
#define P_PADDR 24
#define P_FILESZ 32
#define P_MEMSZ 40

#define INITRD_MAX_OFF MiB(128) /* QEMU: the initrd at min(RAM / 2, 128 MiB) */

/* Little-endian whatever the host, and at any alignment: a hostile offset may be odd. */
static u64 le(const u8 *p, unsigned bytes)
{
	u64 v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

static bool is_elf(const u8 *data, u64 size)
{
	return size >= 4 && !memcmp(data, "\x7f" "ELF", 4);
}

static bool is_test_guest(const u8 *data, u64 size)
{
	return size >= IMAGE_TEST_GUEST_MAGIC_OFF + 8 &&
	       !memcmp(data + IMAGE_TEST_GUEST_MAGIC_OFF, IMAGE_TEST_GUEST_MAGIC, 8);
}

enum image_kind image_kind(const u8 *data, u64 size)
{
	if (is_linux_image(data, size))
		return IMAGE_LINUX;
	if (is_test_guest(data, size))
		return IMAGE_TEST_GUEST;
	return is_elf(data, size) ? IMAGE_ELF : IMAGE_RAW;
}

const char *image_kind_name(enum image_kind kind)
{
	static const char *const names[] = { "an arm64 Linux Image", "a Quire test guest", "an ELF image",
					     "a raw image" };

	return kind <= IMAGE_RAW ? names[kind] : "?";
}

static int __printf(4, 5) refuse(const struct vm_config *c, char *err, size_t errlen, const char *fmt, ...)
{
	int len = q_snprintf(err, errlen, "/vms/%s: ", c->name);
	va_list ap;

	if (len < 0 || (size_t)len >= errlen)
		return -1;
	va_start(ap, fmt);
	q_vsnprintf(err + len, errlen - len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The ELF's complaint, in one form: the VM, the image, the reason. */
#define bad_elf(c, err, errlen, fmt, ...)                                                              \
	refuse(c, err, errlen, "property 'kernel': ELF image '%s' " fmt, (c)->kernel, ##__VA_ARGS__)

/* The ELF header: a 64-bit little-endian AArch64 executable with a sane program header table. */
static int elf_header(const struct vm_config *c, const u8 *d, u64 size, u64 *phoff, unsigned *phnum,
		      char *err, size_t errlen)
{
	u64 type, machine;

	if (size < EHDR_SIZE)
		return bad_elf(c, err, errlen, "is truncated (%lu bytes, less than its header)",
			       (unsigned long)size);
	if (d[EI_CLASS] == ELFCLASS32)
		return bad_elf(c, err, errlen, "is 32-bit (ELFCLASS32); Quire's vCPUs run AArch64 only");
	if (d[EI_CLASS] != ELFCLASS64)
		return bad_elf(c, err, errlen, "has an unknown class %u", d[EI_CLASS]);
	if (d[EI_DATA] != ELFDATA2LSB)
		return bad_elf(c, err, errlen, "is not little-endian (EI_DATA %u); Quire's guests start "
					       "little-endian", d[EI_DATA]);
	if (d[EI_VERSION] != EV_CURRENT)
		return bad_elf(c, err, errlen, "has an unknown version %u", d[EI_VERSION]);
	type = le(d + E_TYPE, 2);
	machine = le(d + E_MACHINE, 2);
	if (machine != EM_AARCH64)
		return bad_elf(c, err, errlen, "is for machine %lu, not AArch64 (%u)", (unsigned long)machine,
			       EM_AARCH64);
	if (type != ET_EXEC && type != ET_DYN)
		return bad_elf(c, err, errlen, "is not an executable (e_type %lu)", (unsigned long)type);
	*phoff = le(d + E_PHOFF, 8);
	*phnum = le(d + E_PHNUM, 2);
	if (le(d + E_PHENTSIZE, 2) != PHDR_SIZE)
		return bad_elf(c, err, errlen, "has program headers of %lu bytes, not %u",
			       (unsigned long)le(d + E_PHENTSIZE, 2), PHDR_SIZE);
	if (!*phnum || *phnum > IMAGE_MAX_PHDRS)
		return bad_elf(c, err, errlen, "has %u program headers (1 to %u)", *phnum, IMAGE_MAX_PHDRS);
	if (*phoff > size || (u64)*phnum * PHDR_SIZE > size - *phoff)
		return bad_elf(c, err, errlen, "has its program headers (%u at offset 0x%lx) past its end "
					       "(%lu bytes)", *phnum, (unsigned long)*phoff, (unsigned long)size);
	return 0;
}

/* One PT_LOAD: its bytes inside the file, its memory inside the VM's RAM. */
static int elf_segment(const struct vm_config *c, const u8 *ph, u64 size, unsigned i, struct image_segment *s,
		       char *err, size_t errlen)
{
	u64 end = c->mem_base + c->mem_size;

	s->offset = le(ph + P_OFFSET, 8);
	s->ipa = le(ph + P_PADDR, 8);
	s->filesz = le(ph + P_FILESZ, 8);
	s->memsz = le(ph + P_MEMSZ, 8);
	if (s->filesz > s->memsz)
		return bad_elf(c, err, errlen, "segment %u has p_filesz 0x%lx > p_memsz 0x%lx", i,
			       (unsigned long)s->filesz, (unsigned long)s->memsz);
	if (s->offset > size || s->filesz > size - s->offset)
		return bad_elf(c, err, errlen, "segment %u (0x%lx bytes at offset 0x%lx) runs past the "
					       "file's end (%lu bytes)", i, (unsigned long)s->filesz,
			       (unsigned long)s->offset, (unsigned long)size);
	if (s->ipa < c->mem_base || s->ipa >= end || s->memsz > end - s->ipa)
		return bad_elf(c, err, errlen, "segment %u (0x%lx bytes at 0x%lx) is not inside the VM's "
					       "RAM 0x%lx-0x%lx ('memory-base', 'memory-mib')", i,
			       (unsigned long)s->memsz, (unsigned long)s->ipa, (unsigned long)c->mem_base,
			       (unsigned long)end);
	return 0;
}

/* Whole pages holding file bytes: what loading writes (the rest of memsz is RAM's own zeroes). */
static u64 file_pages(const struct image_layout *l)
{
	u64 bytes = 0, done = 0;

	for (unsigned i = 0; i < l->nseg; i++) {
		const struct image_segment *s = &l->seg[i];
		u64 from, to;

		if (!s->filesz)
			continue;
		from = MAX(ALIGN_DOWN(s->ipa, SZ_4K), done);
		to = ALIGN_UP(s->ipa + s->filesz, SZ_4K);
		if (to > from)
			bytes += to - from;
		done = MAX(done, to);
	}
	return bytes;
}

static int elf_layout(const struct vm_config *c, const u8 *d, u64 size, struct image_layout *l, char *err,
		      size_t errlen)
{
	u64 phoff = 0, entry;
	unsigned phnum = 0, n = 0;
	bool entry_in = false;

	if (c->initramfs[0])
		return refuse(c, err, errlen, "property 'initramfs' cannot go with ELF image '%s': QEMU "
					      "boots an ELF with no initramfs", c->kernel);
	if (elf_header(c, d, size, &phoff, &phnum, err, errlen))
		return -1;
	entry = le(d + E_ENTRY, 8);
	for (unsigned i = 0; i < phnum; i++) {
		const u8 *ph = d + phoff + (u64)i * PHDR_SIZE;
		struct image_segment s;
		unsigned k;

		if (le(ph + P_TYPE, 4) != PT_LOAD || !le(ph + P_MEMSZ, 8))
			continue;
		if (n == IMAGE_MAX_SEGMENTS)
			return bad_elf(c, err, errlen, "has more than %u loadable segments", IMAGE_MAX_SEGMENTS);
		if (elf_segment(c, ph, size, i, &s, err, errlen))
			return -1;
		/* Insert in address order; neighbours must not overlap. */
		for (k = n; k && l->seg[k - 1].ipa > s.ipa; k--)
			l->seg[k] = l->seg[k - 1];
		l->seg[k] = s;
		n++;
		if ((k && l->seg[k - 1].ipa + l->seg[k - 1].memsz > s.ipa) ||
		    (k + 1 < n && s.ipa + s.memsz > l->seg[k + 1].ipa))
			return bad_elf(c, err, errlen, "has overlapping segments (segment %u at 0x%lx)", i,
				       (unsigned long)s.ipa);
		entry_in |= entry >= s.ipa && entry - s.ipa < s.memsz;
	}
	l->nseg = n;
	if (!n)
		return bad_elf(c, err, errlen, "has no loadable segment");
	if (!entry_in || entry % 4)
		return bad_elf(c, err, errlen, "has its entry point 0x%lx outside its segments or unaligned",
			       (unsigned long)entry);
	l->entry = entry;
	l->x0 = 0;
	/* QEMU: the DT at the RAM base if it fits below the image, else none. */
	l->dtb_room = MIN(l->seg[0].ipa - c->mem_base, VMCFG_DT_MAX);
	l->dtb = l->dtb_room ? c->mem_base : 0;
	if (!l->dtb && c->bootargs_set)
		return refuse(c, err, errlen, "property 'bootargs' would reach nothing: ELF image '%s' starts "
					      "at the RAM base, which leaves no room for the guest DT", c->kernel);
	l->loaded = file_pages(l) + ALIGN_UP(l->dtb_room, SZ_4K);
	return 0;
}

static int __printf(5, 6) no_room(const struct vm_config *c, char *err, size_t errlen, u64 what, const char *fmt,
				  ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return refuse(c, err, errlen, "property 'memory-mib' (%lu MiB) cannot hold %s (%lu KiB)",
		      (unsigned long)(c->mem_size >> 20), buf, (unsigned long)(ALIGN_UP(what, 1024) >> 10));
}

static int raw_layout(const struct vm_config *c, u64 size, u64 initrd_size, struct image_layout *l, char *err,
		      size_t errlen)
{
	u64 end = c->mem_base + c->mem_size, kend, rd;

	if (c->mem_size < IMAGE_RAW_OFFSET || size > c->mem_size - IMAGE_RAW_OFFSET)
		return no_room(c, err, errlen, size, "raw image '%s' at RAM + 512 KiB", c->kernel);
	l->entry = c->mem_base + IMAGE_RAW_OFFSET;
	l->seg[0] = (struct image_segment){ l->entry, 0, size, size };
	l->nseg = 1;
	kend = l->entry + size;
	rd = ALIGN_UP(MAX(c->mem_base + MIN(c->mem_size / 2, INITRD_MAX_OFF), kend), SZ_4K);
	if (initrd_size && (rd >= end || initrd_size > end - rd))
		return no_room(c, err, errlen, initrd_size, "initramfs '%s' after raw image '%s' at RAM + %lu MiB",
			       c->initramfs, c->kernel, (unsigned long)((rd - c->mem_base) >> 20));
	l->initrd = initrd_size ? rd : 0;
	/* rd + initrd_size <= end < 2^39 (check_ram): no wrap. */
	l->dtb = ALIGN_UP(rd + initrd_size, SZ_2M);
	if (l->dtb >= end || VMCFG_DT_MAX > end - l->dtb)
		return no_room(c, err, errlen, VMCFG_DT_MAX, "the guest DT above raw image '%s'%s%s%s at RAM + %lu MiB",
			       c->kernel, initrd_size ? " and initramfs '" : "", initrd_size ? c->initramfs : "",
			       initrd_size ? "'" : "",
			       (unsigned long)((l->dtb - c->mem_base) >> 20));
	l->dtb_room = VMCFG_DT_MAX;
	l->x0 = l->dtb;
	l->loaded = ALIGN_UP(size, SZ_4K) + ALIGN_UP(initrd_size, SZ_4K) + VMCFG_DT_MAX;
	return 0;
}

int image_layout(const struct vm_config *c, const u8 *data, u64 size, u64 initrd_size,
		 struct image_layout *out, char *err, size_t errlen)
{
	struct linux_layout lx;

	memset(out, 0, sizeof(*out));
	out->kind = image_kind(data, size);
	if (!size)
		return refuse(c, err, errlen, "property 'kernel': image '%s' is empty", c->kernel);
	if (out->kind != IMAGE_TEST_GUEST && c->arg)
		return refuse(c, err, errlen, "property 'arg' is for Quire test guests only, and image '%s' "
					      "is %s", c->kernel, image_kind_name(out->kind));
	switch (out->kind) {
	case IMAGE_LINUX:
		if (linux_layout(c, data, size, initrd_size, &lx, err, errlen))
			return -1;
		out->entry = lx.kernel;
		out->x0 = out->dtb = lx.dtb;
		out->dtb_room = VMCFG_DT_MAX;
		out->initrd = lx.initrd;
		out->seg[0] = (struct image_segment){ lx.kernel, 0, size, size };
		out->nseg = 1;
		out->loaded = VMCFG_DT_MAX + ALIGN_UP(size, SZ_4K) + ALIGN_UP(initrd_size, SZ_4K);
		return 0;
	case IMAGE_TEST_GUEST:
		/* Quire's own contract: at the RAM base, x0 = arg (x1-x3 the loader sets), no DT. */
		if (c->initramfs[0] || c->bootargs_set)
			return refuse(c, err, errlen, "property '%s' is not for Quire test guests, and image "
						      "'%s' is one", c->initramfs[0] ? "initramfs" : "bootargs",
				      c->kernel);
		if (size > c->mem_size)
			return no_room(c, err, errlen, size, "image '%s'", c->kernel);
		out->entry = c->mem_base;
		out->x0 = c->arg;
		out->seg[0] = (struct image_segment){ c->mem_base, 0, size, size };
		out->nseg = 1;
		out->loaded = ALIGN_UP(size, SZ_4K);
		return 0;
	case IMAGE_ELF:
		return elf_layout(c, data, size, out, err, errlen);
	default:
		return raw_layout(c, size, initrd_size, out, err, errlen);
	}
}
