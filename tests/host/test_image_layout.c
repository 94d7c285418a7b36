/*
 * image_layout (core/image_layout.c): which kind an image is, and where its
 * pieces go, for ELF and raw images as QEMU 10's -kernel places them on
 * virt, and for Quire's test guests; ELF headers built here, good and
 * hostile (every field out of range, overflowing sums, wrong class, byte
 * order or machine), and random ones, under ASan/UBSan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quire/vmconfig.h>

#define BASE VMCFG_RAM_BASE
#define ELF_SIZE 0x10000 /* the test ELFs' file size */

static char err[512];

/* ---- helpers ---------------------------------------------------------- */

static void put(u8 *p, u64 v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = v >> (8 * i);
}

static struct vm_config vm(u32 mib, const char *kernel)
{
	struct vm_config c = { .name = "vm1", .vcpus = 1, .mem_base = BASE, .mem_size = MiB(mib),
			       .resident_limit = MiB(mib) };

	strcpy(c.kernel, kernel);
	return c;
}

/* An AArch64 ELF64 executable, entry at `entry`, with room for 70 program headers at 64. */
static u8 *elf_new(u64 entry)
{
	u8 *e = calloc(1, ELF_SIZE);

	assert_non_null(e);
	memcpy(e, "\x7f" "ELF", 4);
	e[4] = 2; /* ELFCLASS64 */
	e[5] = 1; /* ELFDATA2LSB */
	e[6] = 1; /* EV_CURRENT */
	put(e + 16, 2, 2);   /* ET_EXEC */
	put(e + 18, 183, 2); /* EM_AARCH64 */
	put(e + 20, 1, 4);
	put(e + 24, entry, 8);
	put(e + 32, 64, 8); /* e_phoff */
	put(e + 52, 64, 2);
	put(e + 54, 56, 2); /* e_phentsize */
	return e;
}

/* Program header i: PT_LOAD unless type says otherwise; e_phnum follows the highest i. */
static void elf_ph(u8 *e, unsigned i, u32 type, u64 offset, u64 paddr, u64 filesz, u64 memsz)
{
	u8 *ph = e + 64 + i * 56;

	put(ph, type, 4);
	put(ph + 4, 5, 4);
	put(ph + 8, offset, 8);
	put(ph + 16, paddr, 8); /* p_vaddr: unused, as QEMU loads by p_paddr */
	put(ph + 24, paddr, 8);
	put(ph + 32, filesz, 8);
	put(ph + 40, memsz, 8);
	if (i + 1 > (unsigned)(e[56] | e[57] << 8))
		put(e + 56, i + 1, 2);
}

static void assert_mentions(const char *const *what)
{
	for (; *what; what++)
		if (!strstr(err, *what))
			fail_msg("error \"%s\" does not mention \"%s\"", err, *what);
}

static void refused(const struct vm_config *c, const u8 *d, u64 size, u64 rd, const char *const *what)
{
	struct image_layout l;

	err[0] = '\0';
	if (!image_layout(c, d, size, rd, &l, err, sizeof(err)))
		fail_msg("accepted an image it should refuse (expected: %s)", what[1]);
	printf("  %s\n", err);
	assert_mentions(what);
}

static void laid_out(const struct vm_config *c, const u8 *d, u64 size, u64 rd, struct image_layout *l)
{
	if (image_layout(c, d, size, rd, l, err, sizeof(err)))
		fail_msg("refused: %s", err);
}

/* ---- kinds ------------------------------------------------------------- */

static void kinds(void **state)
{
	u8 b[64] = { 0 };

	(void)state;
	assert_int_equal(image_kind(b, 64), IMAGE_RAW);
	memcpy(b + IMAGE_TEST_GUEST_MAGIC_OFF, IMAGE_TEST_GUEST_MAGIC, 8);
	assert_int_equal(image_kind(b, 64), IMAGE_TEST_GUEST);
	assert_int_equal(image_kind(b, 15), IMAGE_RAW); /* the marker cut short */
	memcpy(b, "\x7f" "ELF", 4);
	assert_int_equal(image_kind(b, 64), IMAGE_TEST_GUEST); /* the marker is explicit: it wins */
	memset(b + 8, 0, 8);
	assert_int_equal(image_kind(b, 64), IMAGE_ELF);
	assert_int_equal(image_kind(b, 3), IMAGE_RAW);
	memcpy(b + 56, "ARM\x64", 4);
	assert_int_equal(image_kind(b, 64), IMAGE_LINUX);
}

/* ---- raw images: QEMU's load_aarch64_image and arm_setup_direct_kernel_boot ---- */

static void raw_layouts(void **state)
{
	static u8 img[MiB(1) + 123];
	struct vm_config c = vm(256, "raw");
	struct image_layout l;

	(void)state;
	/* 256 MiB or more: the initrd at RAM + 128 MiB, the DT after it, 2 MiB aligned */
	laid_out(&c, img, sizeof(img), 0, &l);
	assert_int_equal(l.kind, IMAGE_RAW);
	assert_int_equal(l.entry, BASE + 0x80000);
	assert_int_equal(l.nseg, 1);
	assert_int_equal(l.seg[0].ipa, BASE + 0x80000);
	assert_int_equal(l.seg[0].filesz, sizeof(img));
	assert_int_equal(l.initrd, 0);
	assert_int_equal(l.dtb, BASE + MiB(128));
	assert_int_equal(l.x0, l.dtb);
	laid_out(&c, img, sizeof(img), MiB(4) + 1, &l);
	assert_int_equal(l.initrd, BASE + MiB(128));
	assert_int_equal(l.dtb, BASE + MiB(134));
	/* less: at half the RAM */
	c = vm(64, "raw");
	laid_out(&c, img, sizeof(img), 4096, &l);
	assert_int_equal(l.initrd, BASE + MiB(32));
	assert_int_equal(l.dtb, BASE + MiB(34));
	laid_out(&c, img, sizeof(img), 0, &l);
	assert_int_equal(l.dtb, BASE + MiB(32));
	/* an image past that point: right after it, page aligned, and the DT above both */
	c = vm(8, "raw");
	laid_out(&c, img, sizeof(img), 100, &l);
	assert_int_equal(l.initrd, BASE + MiB(4));
	assert_int_equal(l.dtb, BASE + MiB(4) + MiB(2));
	laid_out(&c, img, 5 * MiB(1) + 1, 100, &l);
	assert_int_equal(l.initrd, ALIGN_UP(BASE + 0x80000 + 5 * MiB(1) + 1, 4096));
	assert_int_equal(l.dtb, BASE + MiB(6));
	assert_true(l.dtb >= l.initrd + 100);
	assert_true(l.loaded >= ALIGN_UP(5 * MiB(1) + 1, 4096) + 4096 + VMCFG_DT_MAX);
}

static void raw_no_room(void **state)
{
	static u8 img[4096];
	struct vm_config c = vm(4, "raw");
	const char *dt[] = { "/vms/vm1: ", "'memory-mib' (2 MiB)", "guest DT above raw image 'raw'", NULL };
	const char *dt_rd[] = { "/vms/vm1: ", "guest DT above raw image 'raw' and initramfs 'rd'", NULL };
	const char *rd[] = { "/vms/vm1: ", "'memory-mib' (4 MiB)", "initramfs 'rd' after raw image 'raw'", NULL };
	const char *big[] = { "/vms/vm1: ", "'memory-mib' (4 MiB)", "raw image 'raw' at RAM + 512 KiB", NULL };
	const char *empty[] = { "/vms/vm1: ", "'kernel'", "'raw' is empty", NULL };
	const char *arg[] = { "/vms/vm1: ", "'arg'", "test guests only", "a raw image", NULL };
	struct image_layout l;

	(void)state;
	/* 4 MiB: the DT at RAM + 2 MiB fits; 2 MiB of initrd pushes it to RAM + 4 MiB, the end */
	laid_out(&c, img, sizeof(img), 0, &l);
	assert_int_equal(l.dtb, BASE + MiB(2));
	strcpy(c.initramfs, "rd");
	refused(&c, img, sizeof(img), MiB(1), dt_rd);
	refused(&c, img, sizeof(img), MiB(2) + 1, rd);
	refused(&c, img, sizeof(img), UINT64_MAX, rd);
	c.initramfs[0] = '\0';
	c.mem_size = MiB(2);
	refused(&c, img, sizeof(img), 0, dt);
	c = vm(4, "raw");
	refused(&c, img, MiB(4) - 0x80000 + 1, 0, big);
	refused(&c, img, UINT64_MAX, 0, big);
	refused(&c, img, 0, 0, empty);
	c.arg = 7;
	refused(&c, img, sizeof(img), 0, arg);
}

/* ---- Quire test guests: their own contract, unchanged ------------------ */

static void test_guests(void **state)
{
	static u8 img[8192];
	struct vm_config c = vm(64, "memtest");
	struct image_layout l;
	const char *bootargs[] = { "/vms/vm1: ", "'bootargs'", "not for Quire test guests", NULL };

	(void)state;
	memcpy(img + IMAGE_TEST_GUEST_MAGIC_OFF, IMAGE_TEST_GUEST_MAGIC, 8);
	c.arg = 23;
	laid_out(&c, img, sizeof(img), 0, &l);
	assert_int_equal(l.kind, IMAGE_TEST_GUEST);
	assert_int_equal(l.entry, BASE);
	assert_int_equal(l.x0, 23);
	assert_int_equal(l.dtb, 0);
	assert_int_equal(l.loaded, 8192);
	c.bootargs_set = true;
	refused(&c, img, sizeof(img), 0, bootargs);
}

/* ---- ELF: QEMU's arm_load_elf ------------------------------------------- */

static void elf_good(void **state)
{
	struct vm_config c = vm(128, "elf");
	struct image_layout l;
	u8 *e = elf_new(BASE + MiB(2) + 0x40);

	(void)state;
	/* out of order, a PT_NOTE and an empty PT_LOAD between: sorted, and those skipped */
	elf_ph(e, 0, 1, 0x3000, BASE + MiB(2) + 0x3000, 0x100, 0x5000); /* data + bss */
	elf_ph(e, 1, 4, 0x2000, 0, 0x20, 0x20);			     /* PT_NOTE */
	elf_ph(e, 2, 1, 0x2000, BASE + MiB(9), 0, 0);		     /* empty */
	elf_ph(e, 3, 1, 0x1000, BASE + MiB(2), 0x1234, 0x1234);	     /* text */
	laid_out(&c, e, ELF_SIZE, 0, &l);
	assert_int_equal(l.kind, IMAGE_ELF);
	assert_int_equal(l.entry, BASE + MiB(2) + 0x40);
	assert_int_equal(l.x0, 0);
	assert_int_equal(l.nseg, 2);
	assert_int_equal(l.seg[0].ipa, BASE + MiB(2));
	assert_int_equal(l.seg[0].offset, 0x1000);
	assert_int_equal(l.seg[1].ipa, BASE + MiB(2) + 0x3000);
	assert_int_equal(l.seg[1].memsz, 0x5000);
	/* the DT at the RAM base, below the image */
	assert_int_equal(l.dtb, BASE);
	assert_int_equal(l.dtb_room, VMCFG_DT_MAX);
	/* three pages of file bytes (text in two, data in one; not its bss), and the DT */
	assert_int_equal(l.loaded, 3 * 4096 + VMCFG_DT_MAX);
	/* segments touching end to end, sharing a page: fine, and that page counted once */
	elf_ph(e, 0, 1, 0x2000, BASE + MiB(2) + 0x1234, 0x10, 0x10);
	laid_out(&c, e, ELF_SIZE, 0, &l);
	assert_int_equal(l.loaded, 2 * 4096 + VMCFG_DT_MAX);
	/* little room below: the DT gets what there is (the loader puts it there if it fits) */
	elf_ph(e, 3, 1, 0x1000, BASE + 0x2000, 0x1234, 0x1234);
	elf_ph(e, 0, 1, 0x2000, BASE + 0x4000, 0x10, 0x10);
	put(e + 24, BASE + 0x2000, 8);
	laid_out(&c, e, ELF_SIZE, 0, &l);
	assert_int_equal(l.dtb, BASE);
	assert_int_equal(l.dtb_room, 0x2000);
	/* at the RAM base: no DT at all, as QEMU */
	elf_ph(e, 3, 1, 0x1000, BASE, 0x1234, 0x1234);
	put(e + 24, BASE, 8);
	laid_out(&c, e, ELF_SIZE, 0, &l);
	assert_int_equal(l.dtb, 0);
	assert_int_equal(l.dtb_room, 0);
	/* the last byte of RAM is still RAM; ET_DYN loads as ET_EXEC does */
	elf_ph(e, 0, 1, 0x2000, BASE + MiB(128) - 0x10, 0x10, 0x10);
	put(e + 16, 3, 2);
	laid_out(&c, e, ELF_SIZE, 0, &l);
	assert_int_equal(l.seg[1].ipa + l.seg[1].memsz, BASE + MiB(128));
	free(e);
}

/* Each hostile field on its own, on an ELF that is otherwise good: spoil case i, return what the error says. */
static const char *spoil(unsigned i, u8 *e)
{
	switch (i) {
	case 0: e[4] = 1; return "is 32-bit";
	case 1: e[4] = 3; return "unknown class 3";
	case 2: e[5] = 2; return "not little-endian (EI_DATA 2)";
	case 3: e[6] = 0; return "unknown version 0";
	case 4: put(e + 18, 62, 2); return "machine 62, not AArch64";
	case 5: put(e + 18, 40, 2); return "machine 40, not AArch64";
	case 6: put(e + 16, 1, 2); return "not an executable (e_type 1)";
	case 7: put(e + 16, 4, 2); return "not an executable (e_type 4)";
	case 8: put(e + 54, 64, 2); return "program headers of 64 bytes";
	case 9: put(e + 56, 0, 2); return "has 0 program headers";
	case 10: put(e + 56, 0xffff, 2); return "has 65535 program headers";
	case 11: put(e + 56, 65, 2); return "has 65 program headers";
	case 12: put(e + 32, ELF_SIZE - 55, 8); return "past its end";
	case 13: put(e + 32, UINT64_MAX - 8, 8); return "past its end";
	case 14: put(e + 32, 1ULL << 63, 8); return "past its end";
	case 15: elf_ph(e, 0, 1, 0x1000, BASE + MiB(2), 0x2000, 0x1000); return "p_filesz 0x2000 > p_memsz 0x1000";
	case 16: elf_ph(e, 0, 1, ELF_SIZE - 0x10, BASE + MiB(2), 0x11, 0x1000); return "runs past the file's end";
	case 17: elf_ph(e, 0, 1, UINT64_MAX, BASE + MiB(2), 2, 0x1000); return "runs past the file's end";
	case 18: elf_ph(e, 0, 1, 0x1000, BASE + MiB(2), UINT64_MAX, UINT64_MAX); return "runs past the file's end";
	case 19: elf_ph(e, 0, 1, 0x1000, BASE - 0x1000, 0x10, 0x2000); return "not inside the VM's RAM";
	case 20: elf_ph(e, 0, 1, 0x1000, 0, 0x10, 0x10); return "not inside the VM's RAM";
	case 21: elf_ph(e, 0, 1, 0x1000, BASE + MiB(128), 0x10, 0x10); return "not inside the VM's RAM";
	case 22: elf_ph(e, 0, 1, 0x1000, BASE + MiB(128) - 0x10, 0x10, 0x11); return "not inside the VM's RAM";
	case 23: elf_ph(e, 0, 1, 0x1000, BASE + MiB(2), 0x10, UINT64_MAX); return "not inside the VM's RAM";
	case 24: elf_ph(e, 0, 1, 0x1000, UINT64_MAX - 0xf, 0x10, 0x10); return "not inside the VM's RAM";
	case 25: elf_ph(e, 1, 1, 0x2000, BASE + MiB(2) + 0xfff, 0x10, 0x10); return "overlapping segments";
	case 26: elf_ph(e, 1, 1, 0x2000, BASE + MiB(2) - 0x10, 0x10, 0x11); return "overlapping segments";
	case 27: elf_ph(e, 1, 1, 0x2000, BASE + MiB(1), 0, MiB(8)); return "overlapping segments";
	case 28: elf_ph(e, 0, 4, 0x1000, BASE + MiB(2), 0x10, 0x10); return "has no loadable segment";
	case 29: elf_ph(e, 0, 1, 0x1000, BASE + MiB(2), 0, 0); return "has no loadable segment";
	case 30:
		for (unsigned k = 1; k < 17; k++)
			elf_ph(e, k, 1, 0x1000, BASE + MiB(3) + k * 0x1000, 0x10, 0x10);
		return "more than 16 loadable segments";
	case 31: put(e + 24, BASE + MiB(3), 8); return "entry point 0x40300000 outside";
	case 32: put(e + 24, BASE + MiB(2) + 2, 8); return "entry point 0x40200002 outside its segments or unaligned";
	case 33: put(e + 24, 0, 8); return "entry point 0x0";
	default: return NULL;
	}
}

static void elf_hostile(void **state)
{
	struct vm_config c = vm(128, "elf");
	const char *what[5] = { "/vms/vm1: ", "'kernel'", "ELF image 'elf'", NULL, NULL };
	u8 *e;

	(void)state;
	for (unsigned i = 0;; i++) {
		e = elf_new(BASE + MiB(2));
		elf_ph(e, 0, 1, 0x1000, BASE + MiB(2), 0x1000, 0x1000);
		if (!(what[3] = spoil(i, e))) {
			free(e);
			break;
		}
		refused(&c, e, ELF_SIZE, 0, what);
		free(e);
	}
	/* truncated: less than its header, checked before any field is read */
	e = elf_new(BASE + MiB(2));
	what[3] = "is truncated (63 bytes";
	refused(&c, e, 63, 0, what);
	free(e);
}

/* What the config may not ask of an ELF. */
static void elf_config(void **state)
{
	struct vm_config c = vm(128, "elf");
	u8 *e = elf_new(BASE);
	const char *initrd[] = { "/vms/vm1: ", "'initramfs'", "ELF image 'elf'", "no initramfs", NULL };
	const char *bootargs[] = { "/vms/vm1: ", "'bootargs'", "no room for the guest DT", NULL };
	const char *arg[] = { "/vms/vm1: ", "'arg'", "an ELF image", NULL };
	struct image_layout l;

	(void)state;
	elf_ph(e, 0, 1, 0x1000, BASE, 0x1000, 0x1000);
	strcpy(c.initramfs, "rd");
	refused(&c, e, ELF_SIZE, MiB(1), initrd);
	c.initramfs[0] = '\0';
	c.bootargs_set = true;
	refused(&c, e, ELF_SIZE, 0, bootargs);
	/* above the base there is a DT to carry them */
	elf_ph(e, 0, 1, 0x1000, BASE + 0x1000, 0x1000, 0x1000);
	put(e + 24, BASE + 0x1000, 8);
	laid_out(&c, e, ELF_SIZE, 0, &l);
	c.bootargs_set = false;
	c.arg = 1;
	refused(&c, e, ELF_SIZE, 0, arg);
	free(e);
}

/* Random program headers: accepted ones always lie in the file and the RAM, never overlapping. */
static void elf_random(void **state)
{
	struct vm_config c = vm(64, "elf");
	struct image_layout l;
	unsigned accepted = 0;
	u64 end = BASE + MiB(64);

	(void)state;
	srandom(15);
	for (int n = 0; n < 20000; n++) {
		u8 *e = elf_new(BASE + (random() % 8) * 0x1000);
		unsigned nph = 1 + random() % 6;

		for (unsigned i = 0; i < nph; i++) {
			/* mostly plausible values, sometimes extreme ones */
			u64 pick[] = { 0, 1, 0x1000, ELF_SIZE, UINT64_MAX, 1ULL << 63, BASE, end };
			u64 off = random() % 4 ? (u64)(random() % ELF_SIZE) : pick[random() % 8];
			u64 pa = random() % 4 ? BASE + (random() % 16) * 0x800 : pick[random() % 8];
			u64 fs = random() % 4 ? (u64)(random() % 0x2000) : pick[random() % 8];
			u64 ms = random() % 4 ? fs + random() % 0x2000 : pick[random() % 8];

			elf_ph(e, i, random() % 8 ? 1 : 4, off, pa, fs, ms);
		}
		if (!image_layout(&c, e, ELF_SIZE, 0, &l, err, sizeof(err))) {
			accepted++;
			for (unsigned i = 0; i < l.nseg; i++) {
				const struct image_segment *s = &l.seg[i];

				assert_true(s->filesz <= s->memsz);
				assert_true(s->offset + s->filesz <= ELF_SIZE && s->offset <= ELF_SIZE);
				assert_true(s->ipa >= BASE && s->ipa + s->memsz <= end && s->ipa < end);
				if (i)
					assert_true(l.seg[i - 1].ipa + l.seg[i - 1].memsz <= s->ipa);
			}
			assert_true(l.entry >= l.seg[0].ipa && l.entry % 4 == 0);
		}
		free(e);
	}
	printf("  %u of 20000 random ELFs accepted\n", accepted);
	assert_true(accepted > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kinds),	 cmocka_unit_test(raw_layouts), cmocka_unit_test(raw_no_room),
		cmocka_unit_test(test_guests), cmocka_unit_test(elf_good),    cmocka_unit_test(elf_hostile),
		cmocka_unit_test(elf_config),	 cmocka_unit_test(elf_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
