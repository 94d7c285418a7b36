/*
 * The GPT reader (core/gpt.c) on disks built in memory: a good table, one
 * rule broken at a time (CRCs recomputed where the rule is not the CRC, so
 * the check itself is reached), read errors, the partition limit, random
 * corruption, and a table the host's sfdisk wrote.
 *
 * Every read goes through disk_read, which fails the test's checks if the
 * reader asks for a sector outside the disk or more than its scratch holds;
 * the scratch is malloc'd at exactly GPT_SCRATCH bytes, so ASan sees an overrun.
 *
 * Environment: QUIRE_GPT_SEED, the fuzz loop's seed (default 1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quire/gpt.h>

#define SWAP_GUID "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
#define LINUX_GUID "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define SECTORS 256 /* the good table's disk: entries at 2..33, usable 34..222 */
#define NONE UINT64_MAX

struct disk {
	u8 *img;
	u64 sectors;  /* what disk_read serves; the image may be larger */
	u64 fail_lba; /* a read covering it fails; NONE: no failure */
	unsigned reads, max_count;
	bool outside; /* the reader asked for a sector past the disk, or more than its scratch */
};

static struct disk d;
static struct gpt g;
static void *scratch;
static char err[256];
static u8 swap_t[16], linux_t[16];

/* ---- building disks ------------------------------------------------------ */

static int disk_read(void *ctx, u64 lba, void *buf, unsigned count)
{
	struct disk *k = ctx;

	k->reads++;
	k->max_count = count > k->max_count ? count : k->max_count;
	if (!count || count > GPT_SCRATCH / GPT_SECTOR || lba >= k->sectors || count > k->sectors - lba) {
		k->outside = true;
		return -1;
	}
	if (k->fail_lba >= lba && k->fail_lba - lba < count)
		return -5;
	memcpy(buf, k->img + lba * GPT_SECTOR, (size_t)count * GPT_SECTOR);
	return 0;
}

static void put_le(u8 *p, u64 v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static u64 get_le(const u8 *p, unsigned n)
{
	u64 v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* "0657FD6D-A4AB-43C4-..." as GPT stores it: the first three fields little-endian. */
static void guid(u8 out[16], const char *s)
{
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	unsigned v[16];

	assert_int_equal(sscanf(s, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[0], &v[1], &v[2],
				&v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
				&v[14], &v[15]),
			 16);
	for (int i = 0; i < 16; i++)
		out[order[i]] = v[i];
}

static u8 *hdr(void)
{
	return d.img + GPT_SECTOR;
}

/* An empty table of n entries of esize bytes at LBA 2, usable sectors after it, room for a backup at the end. */
static void make(u64 sectors, unsigned n, unsigned esize)
{
	u64 nsec = ((u64)n * esize + GPT_SECTOR - 1) / GPT_SECTOR;
	u8 *h;

	free(d.img);
	d = (struct disk){ calloc(sectors, GPT_SECTOR), sectors, NONE, 0, 0, false };
	assert_non_null(d.img);
	h = hdr();
	memcpy(h, "EFI PART", 8);
	put_le(h + 8, 0x00010000, 4);
	put_le(h + 12, 92, 4);
	put_le(h + 24, 1, 8);
	put_le(h + 32, sectors - 1, 8);
	put_le(h + 40, 2 + nsec, 8);
	put_le(h + 48, sectors - 2 - nsec, 8);
	memset(h + 56, 0xa5, 16); /* DiskGUID */
	put_le(h + 72, 2, 8);
	put_le(h + 80, n, 4);
	put_le(h + 84, esize, 4);
}

static u8 *entry(unsigned slot)
{
	return d.img + 2 * GPT_SECTOR + slot * get_le(hdr() + 84, 4);
}

static void set_name(unsigned slot, const char *name)
{
	u8 *e = entry(slot);

	memset(e + 56, 0, 72);
	for (unsigned i = 0; name[i] && i < GPT_NAME_MAX; i++)
		put_le(e + 56 + 2 * i, (u8)name[i], 2);
}

static void set_part(unsigned slot, const u8 *type, u64 first, u64 last, const char *name)
{
	u8 *e = entry(slot);

	memcpy(e, type, 16);
	memset(e + 16, slot + 1, 16); /* UniquePartitionGUID */
	put_le(e + 32, first, 8);
	put_le(e + 40, last, 8);
	set_name(slot, name);
}

/* Recompute a CRC from whatever the header says, touching nothing outside the disk. */
static void fix_header_crc(void)
{
	u8 *h = hdr();
	u64 hsize = get_le(h + 12, 4);

	if (hsize >= 92 && hsize <= GPT_SECTOR) {
		put_le(h + 16, 0, 4);
		put_le(h + 16, gpt_crc32(0, h, hsize), 4);
	}
}

static void fix_crcs(void)
{
	u8 *h = hdr();
	u64 lba = get_le(h + 72, 8), bytes = get_le(h + 80, 4) * get_le(h + 84, 4);

	if (lba < d.sectors && bytes <= (d.sectors - lba) * GPT_SECTOR)
		put_le(h + 88, gpt_crc32(0, d.img + lba * GPT_SECTOR, bytes), 4);
	fix_header_crc();
}

/* The good table: swap 34..63, entry 2 empty, alpha 64..127, beta 128..222 (indices 1, 3, 4). */
static void make_good(void)
{
	make(SECTORS, 128, 128);
	set_part(0, swap_t, 34, 63, "swap");
	set_part(2, linux_t, 64, 127, "alpha");
	set_part(3, linux_t, 128, 222, "beta");
	fix_crcs();
}

static int run(void)
{
	int rc = gpt_read(d.sectors, disk_read, &d, scratch, &g, err, sizeof(err));

	assert_false(d.outside);
	assert_true(d.max_count <= GPT_SCRATCH / GPT_SECTOR);
	assert_int_equal(strnlen(err, sizeof(err)) < sizeof(err), 1);
	return rc;
}

/* gpt_read refuses the table with a message saying what. */
static void refused(const char *what)
{
	int rc = run();

	if (rc != -1 || !strstr(err, what))
		fail_msg("expected -1 and \"%s\", got %d and \"%s\"", what, rc, err);
	assert_int_equal(g.nparts, 0);
	print_message("  refused: %s\n", err);
}

static void accepted(unsigned nparts)
{
	int rc = run();

	if (rc != 1)
		fail_msg("expected a table, got %d: %s", rc, err);
	assert_int_equal(g.nparts, nparts);
	assert_string_equal(err, "");
}

/* ---- fixtures -------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	scratch = malloc(GPT_SCRATCH);
	guid(swap_t, SWAP_GUID);
	guid(linux_t, LINUX_GUID);
	return scratch ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(scratch);
	free(d.img);
	return 0;
}

static int before(void **state)
{
	(void)state;
	memset(&g, 0x5a, sizeof(g)); /* whatever gpt_read leaves must be its own doing */
	memset(err, 'x', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	make_good();
	return 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void crc32_vector(void **state)
{
	(void)state;
	assert_int_equal(gpt_crc32(0, "123456789", 9), 0xCBF43926);
	assert_int_equal(gpt_crc32(gpt_crc32(0, "1234", 4), "56789", 5), 0xCBF43926);
	assert_int_equal(gpt_crc32(0, "", 0), 0);
}

static void good_table(void **state)
{
	(void)state;
	accepted(3);
	assert_int_equal(g.sectors, SECTORS);
	assert_int_equal(g.first_usable, 34);
	assert_int_equal(g.last_usable, 222);

	assert_string_equal(g.part[0].name, "swap");
	assert_int_equal(g.part[0].index, 1);
	assert_int_equal(g.part[0].first, 34);
	assert_int_equal(g.part[0].last, 63);
	assert_true(gpt_is_linux_swap(&g.part[0]));
	assert_memory_equal(g.part[0].type, swap_t, 16);

	assert_string_equal(g.part[1].name, "alpha");
	assert_int_equal(g.part[1].index, 3); /* entry 2 is empty: indices stay entry numbers */
	assert_int_equal(g.part[1].first, 64);
	assert_int_equal(g.part[1].last, 127);
	assert_false(gpt_is_linux_swap(&g.part[1]));
	assert_memory_equal(g.part[1].type, linux_t, 16);

	assert_string_equal(g.part[2].name, "beta");
	assert_int_equal(g.part[2].index, 4);
	assert_int_equal(g.part[2].first, 128);
	assert_int_equal(g.part[2].last, 222);

	assert_ptr_equal(gpt_find(&g, "alpha"), &g.part[1]);
	assert_ptr_equal(gpt_find(&g, "beta"), &g.part[2]);
	assert_null(gpt_find(&g, "alph"));
	assert_null(gpt_find(&g, ""));
	/* the header, then 32 sectors of entries a scratch page at a time */
	assert_int_equal(d.reads, 1 + 4);
	assert_int_equal(d.max_count, GPT_SCRATCH / GPT_SECTOR);
}

/* Names: all 36 code units with no NUL, unnamed partitions (twice), a NUL ending a name early. */
static void names(void **state)
{
	(void)state;
	set_name(0, "abcdefghijklmnopqrstuvwxyz0123456789");
	set_name(2, "");
	set_name(3, "");
	put_le(entry(3) + 56 + 2, 'q', 2); /* after the NUL: not part of the name */
	fix_crcs();
	accepted(3);
	assert_string_equal(g.part[0].name, "abcdefghijklmnopqrstuvwxyz0123456789");
	assert_string_equal(g.part[1].name, "");
	assert_string_equal(g.part[2].name, "");
	assert_null(gpt_find(&g, ""));
	assert_ptr_equal(gpt_find(&g, "abcdefghijklmnopqrstuvwxyz0123456789"), &g.part[0]);
}

static void no_gpt(void **state)
{
	(void)state;
	memset(hdr(), 0, GPT_SECTOR);
	assert_int_equal(run(), 0);
	assert_int_equal(g.nparts, 0);
	assert_string_equal(err, "");

	make_good();
	hdr()[7] = 'X'; /* "EFI PARX" */
	assert_int_equal(run(), 0);
	assert_int_equal(g.nparts, 0);
	assert_int_equal(d.reads, 1);
}

/*
 * A disk of 1 sector has no LBA 1, so no signature: 0, and nothing read. One of
 * 2 or 3 sectors with a signature cannot hold entries and a usable sector: refused.
 */
static void too_small(void **state)
{
	(void)state;
	d.sectors = 0;
	assert_int_equal(run(), 0);
	d.sectors = 1;
	assert_int_equal(run(), 0);
	assert_int_equal(d.reads, 0);
	assert_int_equal(g.sectors, 1);
	d.sectors = 2;
	refused("a disk of 2 sectors is too small for a GPT");
	d.sectors = 3;
	refused("too small");
}

static void header_crc(void **state)
{
	(void)state;
	hdr()[60] ^= 1; /* in DiskGUID */
	refused("GPT header CRC mismatch");
}

static void entries_crc(void **state)
{
	(void)state;
	entry(3)[56] = 'B';
	refused("GPT partition entry array CRC mismatch");
}

/* An entry's error is told only once the array's CRC is known good. */
static void entries_crc_first(void **state)
{
	(void)state;
	put_le(entry(3) + 40, 5000, 8); /* past the disk */
	fix_crcs();
	refused("partition 4 'beta' ends past the disk (sector 5000 of 256)");
	hdr()[88] ^= 1; /* PartitionEntryArrayCRC32 */
	fix_header_crc();
	refused("GPT partition entry array CRC mismatch");
}

static void revision(void **state)
{
	(void)state;
	put_le(hdr() + 8, 0x00010003, 4);
	fix_crcs();
	accepted(3);
	put_le(hdr() + 8, 0x00020000, 4);
	fix_crcs();
	refused("GPT revision 2.0 is not one Quire reads");
	put_le(hdr() + 8, 0x00000100, 4);
	fix_crcs();
	refused("GPT revision 0.256");
}

static void my_lba(void **state)
{
	(void)state;
	put_le(hdr() + 24, SECTORS - 1, 8); /* a backup header read as the primary */
	fix_crcs();
	refused("MyLBA is 255");
}

static void header_size(void **state)
{
	(void)state;
	put_le(hdr() + 12, 91, 4);
	fix_crcs();
	refused("GPT HeaderSize 91 is outside 92 to 512 bytes");
	put_le(hdr() + 12, 513, 4);
	fix_crcs();
	refused("GPT HeaderSize 513");
	put_le(hdr() + 12, 0xffffffff, 4);
	refused("GPT HeaderSize 4294967295");
	/* the CRC covers the whole HeaderSize: bytes past 92 count */
	put_le(hdr() + 12, 512, 4);
	fix_crcs();
	accepted(3);
	hdr()[511] = 1;
	refused("GPT header CRC mismatch");
}

static void usable_range(void **state)
{
	(void)state;
	put_le(hdr() + 48, SECTORS, 8);
	fix_crcs();
	refused("GPT LastUsableLBA 256 is past the disk's last sector 255");
	put_le(hdr() + 48, UINT64_MAX, 8);
	fix_crcs();
	refused("LastUsableLBA");
	put_le(hdr() + 48, 222, 8);
	put_le(hdr() + 40, 223, 8);
	fix_crcs();
	refused("GPT FirstUsableLBA 223 is past LastUsableLBA 222");
	put_le(hdr() + 40, 1, 8);
	fix_crcs();
	refused("FirstUsableLBA 1 overlaps the MBR or the header");
}

static void part_bounds(void **state)
{
	(void)state;
	put_le(entry(3) + 40, 223, 8);
	fix_crcs();
	refused("partition 4 'beta' ends past the last usable sector (223, LastUsableLBA 222)");
	put_le(entry(3) + 40, UINT64_MAX, 8);
	fix_crcs();
	refused("partition 4 'beta' ends past the disk (sector 18446744073709551615 of 256)");
	make_good();
	put_le(entry(0) + 32, 33, 8);
	fix_crcs();
	refused("partition 1 'swap' starts before the first usable sector (33, FirstUsableLBA 34)");
	make_good();
	put_le(entry(2) + 32, 128, 8); /* alpha 128..127 */
	fix_crcs();
	refused("partition 3 'alpha' ends before it starts (sectors 128 to 127)");
}

static void overlap(void **state)
{
	(void)state;
	put_le(entry(2) + 40, 128, 8); /* alpha 64..128, beta 128..222 */
	fix_crcs();
	refused("partitions 3 'alpha' and 4 'beta' overlap");
	make_good();
	set_part(5, linux_t, 100, 100, ""); /* inside alpha, unnamed */
	fix_crcs();
	refused("partitions 3 'alpha' and 6 overlap");
	make_good();
	set_part(5, linux_t, 34, 222, "all"); /* around them all */
	fix_crcs();
	refused("partitions 1 'swap' and 6 'all' overlap");
}

static void duplicate_names(void **state)
{
	(void)state;
	set_name(3, "alpha");
	fix_crcs();
	refused("partitions 3 and 4 are both named 'alpha'");
	/* an empty entry's name is nobody's */
	make_good();
	set_name(1, "alpha");
	fix_crcs();
	accepted(3);
}

static void non_ascii_name(void **state)
{
	(void)state;
	put_le(entry(2) + 56 + 2, 0x00e9, 2); /* "aépha" */
	fix_crcs();
	refused("partition 3's name has a character outside printable ASCII (U+00E9)");
	put_le(entry(2) + 56 + 2, 0x7f, 2);
	fix_crcs();
	refused("(U+007F)");
	put_le(entry(2) + 56 + 2, 0x0a, 2);
	fix_crcs();
	refused("(U+000A)");
	/* an empty entry's name is never read */
	make_good();
	put_le(entry(1) + 56, 0xd800, 2);
	fix_crcs();
	accepted(3);
}

static void entry_size(void **state)
{
	(void)state;
	put_le(hdr() + 84, 100, 4);
	fix_crcs();
	refused("GPT SizeOfPartitionEntry 100 is not 128, 256 or 512 bytes");
	put_le(hdr() + 84, 136, 4); /* a multiple of 8, not 128 * 2^n */
	fix_crcs();
	refused("SizeOfPartitionEntry 136");
	put_le(hdr() + 84, 1024, 4);
	fix_crcs();
	refused("SizeOfPartitionEntry 1024");
	put_le(hdr() + 84, 0, 4);
	fix_crcs();
	refused("SizeOfPartitionEntry 0");

	for (unsigned esize = 256; esize <= 512; esize *= 2) {
		make(SECTORS, 128 * 128 / esize, esize); /* 32 sectors of entries still */
		set_part(0, swap_t, 34, 63, "swap");
		set_part(2, linux_t, 64, 127, "alpha");
		set_part(3, linux_t, 128, 222, "beta");
		memset(entry(3) + 128, 0xee, esize - 128); /* past the fields GPT defines: ignored */
		fix_crcs();
		accepted(3);
		assert_int_equal(g.part[1].index, 3);
		assert_string_equal(g.part[2].name, "beta");
	}
}

static void entry_count(void **state)
{
	(void)state;
	put_le(hdr() + 80, 0, 4);
	fix_crcs();
	refused("GPT NumberOfPartitionEntries 0 is outside 1 to 1024");
	put_le(hdr() + 80, 100000, 4);
	fix_crcs();
	refused("NumberOfPartitionEntries 100000");
	put_le(hdr() + 80, 1025, 4);
	fix_crcs();
	refused("NumberOfPartitionEntries 1025");
	put_le(hdr() + 80, 0xffffffff, 4);
	fix_crcs();
	refused("NumberOfPartitionEntries 4294967295");
	/* fewer entries than the sectors hold: the CRC covers only theirs */
	put_le(hdr() + 80, 5, 4);
	fix_crcs();
	d.reads = 0;
	accepted(3);
	assert_int_equal(d.reads, 2);
	/* one entry: 128 bytes of its sector */
	make_good();
	set_part(0, linux_t, 34, 222, "one");
	put_le(hdr() + 80, 1, 4);
	entry(1)[0] = 1; /* outside the array now */
	fix_crcs();
	accepted(1);
	assert_string_equal(g.part[0].name, "one");
}

/* The most entries Quire reads, 1024 of 512 bytes: 1024 sectors a scratch page at a time. */
static void big_array(void **state)
{
	(void)state;
	make(4096, 1024, 512);
	set_part(0, linux_t, 1026, 2000, "low");
	set_part(1023, swap_t, 3000, 3070, "high");
	fix_crcs();
	accepted(2);
	assert_int_equal(g.part[1].index, 1024);
	assert_int_equal(g.part[1].first, 3000);
	assert_true(gpt_is_linux_swap(&g.part[1]));
	assert_int_equal(d.reads, 1 + 1024 / (GPT_SCRATCH / GPT_SECTOR));
	/* a single bit of its last sector */
	entry(1023)[64] ^= 1;
	refused("entry array CRC mismatch");
}

static void array_place(void **state)
{
	(void)state;
	put_le(hdr() + 72, 240, 8); /* 32 sectors from 240 of 256 */
	fix_crcs();
	refused("GPT partition entry array (32 sectors from sector 240) runs past the disk's 256 sectors");
	put_le(hdr() + 72, UINT64_MAX - 3, 8);
	fix_crcs();
	refused("runs past the disk");
	put_le(hdr() + 72, 1, 8);
	fix_crcs();
	refused("GPT PartitionEntryLBA 1 overlaps the MBR or the header");
	put_le(hdr() + 72, 0, 8);
	fix_crcs();
	refused("PartitionEntryLBA 0");
	put_le(hdr() + 72, 3, 8); /* 3..34, usable from 34 */
	fix_crcs();
	refused("GPT partition entry array (sectors 3 to 34) overlaps the usable sectors 34 to 222");
	put_le(hdr() + 72, 100, 8);
	fix_crcs();
	refused("(sectors 100 to 131) overlaps");
	/* past the usable sectors, where a backup array would be: fine */
	memcpy(d.img + 223 * GPT_SECTOR, d.img + 2 * GPT_SECTOR, 32 * GPT_SECTOR);
	put_le(hdr() + 72, 223, 8);
	fix_crcs();
	accepted(3);
	/* 32 sectors on a disk of 16 */
	d.sectors = 16;
	put_le(hdr() + 48, 15, 8);
	put_le(hdr() + 72, 2, 8);
	put_le(hdr() + 40, 15, 8);
	fix_crcs();
	refused("GPT partition entry array (32 sectors from sector 2) runs past the disk's 16 sectors");
}

static void read_error(void **state)
{
	(void)state;
	d.fail_lba = 1;
	refused("reading the GPT header (sector 1) failed");
	d.fail_lba = 20;
	refused("reading the GPT partition entries (sectors 18 to 25) failed");
	d.fail_lba = 33;
	refused("(sectors 26 to 33) failed");
	d.fail_lba = 34;
	accepted(3);
}

static void parts_max(void **state)
{
	(void)state;
	make(SECTORS, 128, 128);
	for (unsigned i = 0; i < GPT_PARTS_MAX; i++) {
		char name[8];

		snprintf(name, sizeof(name), "p%u", i);
		set_part(2 * i, linux_t, 34 + 8 * i, 41 + 8 * i, name); /* every other entry */
	}
	fix_crcs();
	accepted(GPT_PARTS_MAX);
	assert_int_equal(g.part[GPT_PARTS_MAX - 1].index, 2 * GPT_PARTS_MAX - 1);
	assert_string_equal(gpt_find(&g, "p15")->name, "p15");

	set_part(100, linux_t, 200, 210, "p16");
	fix_crcs();
	refused("partition 101 is the 17th partition; Quire takes at most 16");
}

/* ---- random corruption ----------------------------------------------------- */

static u64 rng;

static u64 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static u64 interesting(void)
{
	static const u64 v[] = { 0, 1, 2, 33, 34, 127, 128, 222, 223, 255, 256, 257, 512, 1024, 0x7fffffff,
				 0xffffffff, 0x100000000, INT64_MAX, UINT64_MAX - 1, UINT64_MAX };

	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

/* What a returned table promises, checked independently of the reader. */
static void check_table(void)
{
	assert_true(g.nparts <= GPT_PARTS_MAX);
	assert_int_equal(g.sectors, d.sectors);
	for (unsigned i = 0; i < g.nparts; i++) {
		const struct gpt_part *p = &g.part[i];

		assert_true(p->first >= 2 && p->first >= g.first_usable);
		assert_true(p->first <= p->last);
		assert_true(p->last < g.sectors && p->last <= g.last_usable);
		assert_true(p->index >= 1 && p->index <= GPT_ENTRIES_MAX);
		assert_true(strlen(p->name) <= GPT_NAME_MAX);
		for (const char *c = p->name; *c; c++)
			assert_true(*c >= 0x20 && *c <= 0x7e);
		for (unsigned j = 0; j < i; j++) {
			const struct gpt_part *q = &g.part[j];

			assert_true(q->index < p->index);
			assert_true(q->last < p->first || p->last < q->first);
			assert_true(!p->name[0] || strcmp(p->name, q->name));
		}
	}
}

static void fuzz(void **state)
{
	const char *s = getenv("QUIRE_GPT_SEED");
	size_t size = (size_t)SECTORS * GPT_SECTOR;
	unsigned seen[3] = { 0 };
	u8 *good;

	(void)state;
	rng = s ? strtoull(s, NULL, 0) : 1;
	rng = rng ? rng : 1;
	good = malloc(size);
	assert_non_null(good);
	memcpy(good, d.img, size);
	for (unsigned it = 0; it < 20000; it++) {
		unsigned flips = 1 + rnd() % 6;
		int rc;

		memcpy(d.img, good, size);
		d.sectors = rnd() % 8 ? SECTORS : rnd() % (SECTORS + 1);
		d.reads = d.max_count = 0;
		d.fail_lba = rnd() % 16 ? NONE : rnd() % SECTORS;
		for (unsigned k = 0; k < flips; k++) {
			unsigned r = rnd() % 10;

			if (r < 4) /* the header's fields, sometimes past them */
				hdr()[rnd() % (rnd() % 4 ? 92 : GPT_SECTOR)] ^= 1 << (rnd() % 8);
			else if (r < 6) /* the used entries, or anywhere in the array */
				d.img[2 * GPT_SECTOR + rnd() % (rnd() % 2 ? 6 * 128 : 32 * GPT_SECTOR)] = rnd();
			else if (r < 8) { /* a header field set to a value near some limit */
				static const unsigned off[] = { 8, 12, 24, 40, 48, 72, 80, 84 };
				unsigned o = off[rnd() % 8];

				put_le(hdr() + o, interesting(), o >= 80 || o == 8 || o == 12 ? 4 : 8);
			} else /* an entry's LBAs (where they are in the good table) */
				put_le(d.img + 2 * GPT_SECTOR + rnd() % 6 * 128 + (rnd() % 2 ? 32 : 40), interesting(), 8);
		}
		if (it & 1)
			fix_crcs();
		memset(&g, 0x5a, sizeof(g));
		rc = gpt_read(d.sectors, disk_read, &d, scratch, &g, err, sizeof(err));
		if (d.outside || rc < -1 || rc > 1)
			fail_msg("iteration %u (QUIRE_GPT_SEED=%s): rc %d, read outside %d", it, s ? s : "1", rc,
				 d.outside);
		seen[rc + 1]++;
		if (rc == -1)
			assert_true(err[0]);
		if (rc != 1)
			assert_int_equal(g.nparts, 0);
		else
			check_table();
	}
	print_message("  20000 corrupted tables: %u refused, %u no GPT, %u read\n", seen[0], seen[1], seen[2]);
	assert_true(seen[0] > 1000 && seen[1] > 0 && seen[2] > 100);
	free(good);
}

/* ---- a table sfdisk wrote ---------------------------------------------------- */

static const char *find_sfdisk(void)
{
	static const char *const paths[] = { "/usr/sbin/sfdisk", "/sbin/sfdisk", "/usr/bin/sfdisk" };

	for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (!access(paths[i], X_OK))
			return paths[i];
	return NULL;
}

static void sfdisk(void **state)
{
	const char *tool = find_sfdisk();
	char path[] = "/tmp/quire-gpt-XXXXXX", cmd[256], line[256], name[64];
	struct { u64 start, size; u8 type[16]; char name[64]; } want[4];
	unsigned n = 0;
	u64 firstlba = 0, lastlba = 0, v;
	FILE *f;
	int fd;

	(void)state;
	if (!tool) {
		print_message("  sfdisk not found in /usr/sbin, /sbin or /usr/bin: skipping\n");
		skip();
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB(16)), 0);
	close(fd);

	snprintf(cmd, sizeof(cmd), "%s -q %s >/dev/null", tool, path);
	f = popen(cmd, "w");
	assert_non_null(f);
	fputs("label: gpt\nsize=2MiB, type=S, name=swap\nsize=4MiB, name=alpha\nsize=1MiB\n"
	      "name=\"rest of it\"\n", f);
	assert_int_equal(pclose(f), 0);

	snprintf(cmd, sizeof(cmd), "%s --json %s", tool, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	memset(want, 0, sizeof(want));
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if ((p = strstr(line, "\"firstlba\":")) && sscanf(p, "\"firstlba\": %lu", &v) == 1)
			firstlba = v;
		else if ((p = strstr(line, "\"lastlba\":")) && sscanf(p, "\"lastlba\": %lu", &v) == 1)
			lastlba = v;
		else if ((p = strstr(line, "\"start\":")) && sscanf(p, "\"start\": %lu", &v) == 1) {
			assert_true(n < 4);
			want[n++].start = v;
		} else if ((p = strstr(line, "\"size\":")) && n && sscanf(p, "\"size\": %lu", &v) == 1)
			want[n - 1].size = v;
		else if ((p = strstr(line, "\"type\":")) && n && sscanf(p, "\"type\": \"%63[^\"]\"", name) == 1)
			guid(want[n - 1].type, name);
		else if ((p = strstr(line, "\"name\":")) && n && sscanf(p, "\"name\": \"%63[^\"]\"", name) == 1)
			strcpy(want[n - 1].name, name);
	}
	assert_int_equal(pclose(f), 0);
	assert_int_equal(n, 4);

	free(d.img);
	d = (struct disk){ malloc(MiB(16)), MiB(16) / GPT_SECTOR, NONE, 0, 0, false };
	assert_non_null(d.img);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(d.img, 1, MiB(16), f), MiB(16));
	fclose(f);
	unlink(path);

	accepted(4);
	assert_int_equal(g.first_usable, firstlba);
	assert_int_equal(g.last_usable, lastlba);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(g.part[i].index, i + 1);
		assert_int_equal(g.part[i].first, want[i].start);
		assert_int_equal(g.part[i].last, want[i].start + want[i].size - 1);
		assert_memory_equal(g.part[i].type, want[i].type, 16);
		assert_string_equal(g.part[i].name, want[i].name);
		print_message("  sfdisk's partition %u '%s': sectors %lu to %lu\n", g.part[i].index, g.part[i].name,
			      g.part[i].first, g.part[i].last);
	}
	assert_string_equal(g.part[0].name, "swap");
	assert_true(gpt_is_linux_swap(&g.part[0]));
	assert_memory_equal(g.part[1].type, linux_t, 16);
	assert_string_equal(g.part[1].name, "alpha");
	assert_int_equal(g.part[1].last - g.part[1].first + 1, MiB(4) / GPT_SECTOR);
	assert_string_equal(g.part[2].name, "");
	assert_string_equal(g.part[3].name, "rest of it");
	assert_ptr_equal(gpt_find(&g, "rest of it"), &g.part[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32_vector),
		cmocka_unit_test_setup(good_table, before),
		cmocka_unit_test_setup(names, before),
		cmocka_unit_test_setup(no_gpt, before),
		cmocka_unit_test_setup(too_small, before),
		cmocka_unit_test_setup(header_crc, before),
		cmocka_unit_test_setup(entries_crc, before),
		cmocka_unit_test_setup(entries_crc_first, before),
		cmocka_unit_test_setup(revision, before),
		cmocka_unit_test_setup(my_lba, before),
		cmocka_unit_test_setup(header_size, before),
		cmocka_unit_test_setup(usable_range, before),
		cmocka_unit_test_setup(part_bounds, before),
		cmocka_unit_test_setup(overlap, before),
		cmocka_unit_test_setup(duplicate_names, before),
		cmocka_unit_test_setup(non_ascii_name, before),
		cmocka_unit_test_setup(entry_size, before),
		cmocka_unit_test_setup(entry_count, before),
		cmocka_unit_test_setup(big_array, before),
		cmocka_unit_test_setup(array_place, before),
		cmocka_unit_test_setup(read_error, before),
		cmocka_unit_test_setup(parts_max, before),
		cmocka_unit_test_setup(fuzz, before),
		cmocka_unit_test_setup(sfdisk, before),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
