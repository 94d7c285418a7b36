/*
 * Reading a disk's primary GUID Partition Table (include/quire/gpt.h; UEFI
 * 2.10, 5.3). Quire never repairs a table, so it reads only the primary
 * header and entry array: the backup (AlternateLBA) is neither needed nor
 * checked, nor is the protective MBR at LBA 0. The disk is not trusted:
 * every field is checked before it is used, sums that could wrap before
 * they are made, and the entries' CRC covers exactly the bytes parsed (one
 * pass, so a disk that changes under us cannot slip a table past it).
 */
#include <stdarg.h>
#include <string.h>
#include <quire/gpt.h>
#include <quire/printf.h>

/* The header's fields (5.3.2), at their offsets in LBA 1. */
#define H_REVISION 8
#define H_SIZE 12
#define H_CRC 16
#define H_MY_LBA 24
#define H_FIRST_USABLE 40
#define H_LAST_USABLE 48
#define H_ENTRY_LBA 72
#define H_NUM_ENTRIES 80
#define H_ENTRY_SIZE 84
#define H_ENTRIES_CRC 88
#define H_SIZE_MIN 92
/* A partition entry's (5.3.3). */
#define E_FIRST 32
#define E_LAST 40
#define E_NAME 56

/* "partition 3 'data'", or "partition 3" when it has no name. */
#define PART_FMT "partition %u%s%s%s"
#define PART_ARGS(p) (p)->index, (p)->name[0] ? " '" : "", (p)->name, (p)->name[0] ? "'" : ""

/* Byte by byte: the disk is little-endian and Quire builds with -mstrict-align. */
static u64 le(const u8 *p, unsigned n)
{
	u64 v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

u32 gpt_crc32(u32 crc, const void *buf, size_t len)
{
	/* Four bits at a time: a 64-byte table is fast enough for arrays of at most 512 KiB. */
	static const u32 t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	const u8 *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = crc >> 4 ^ t[crc & 15];
		crc = crc >> 4 ^ t[crc & 15];
	}
	return ~crc;
}

static __printf(3, 4) int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A non-empty entry into p, checked on its own (overlaps and duplicate names are the table's). */
static int take_entry(const u8 *e, unsigned index, const struct gpt *g, struct gpt_part *p, char *err,
		      size_t errlen)
{
	unsigned i;

	p->index = index;
	memcpy(p->type, e, sizeof(p->type));
	p->first = le(e + E_FIRST, 8);
	p->last = le(e + E_LAST, 8);
	/* Configs name partitions in ASCII: a name they could not spell is refused, not mangled. */
	for (i = 0; i < GPT_NAME_MAX; i++) {
		unsigned c = le(e + E_NAME + 2 * i, 2);

		if (!c)
			break;
		if (c < 0x20 || c > 0x7e)
			return fail(err, errlen, "partition %u's name has a character outside printable ASCII (U+%04X)",
				    index, c);
		p->name[i] = c;
	}
	p->name[i] = '\0';
	if (p->first > p->last)
		return fail(err, errlen, PART_FMT " ends before it starts (sectors %lu to %lu)", PART_ARGS(p),
			    p->first, p->last);
	if (p->first < g->first_usable)
		return fail(err, errlen, PART_FMT " starts before the first usable sector (%lu, FirstUsableLBA %lu)",
			    PART_ARGS(p), p->first, g->first_usable);
	if (p->last >= g->sectors)
		return fail(err, errlen, PART_FMT " ends past the disk (sector %lu of %lu)", PART_ARGS(p), p->last,
			    g->sectors);
	if (p->last > g->last_usable)
		return fail(err, errlen, PART_FMT " ends past the last usable sector (%lu, LastUsableLBA %lu)",
			    PART_ARGS(p), p->last, g->last_usable);
	return 0;
}

static bool zero(const u8 *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static int read_table(u64 sectors, gpt_read_fn read, void *ctx, u8 *b, struct gpt *g, char *err, size_t errlen)
{
	u32 hsize, want, rev, n, esize, crc = 0;
	u64 lba, bytes, nsec;
	int bad = 0;

	if (sectors < 2)
		return 0; /* no LBA 1, so no signature */
	if (read(ctx, 1, b, 1))
		return fail(err, errlen, "reading the GPT header (sector 1) failed");
	if (memcmp(b, "EFI PART", 8))
		return 0;
	/* The MBR, the header, one sector of entries, one usable. */
	if (sectors < 4)
		return fail(err, errlen, "a disk of %lu sectors is too small for a GPT", sectors);
	hsize = le(b + H_SIZE, 4);
	if (hsize < H_SIZE_MIN || hsize > GPT_SECTOR)
		return fail(err, errlen, "GPT HeaderSize %u is outside %u to %u bytes", hsize, H_SIZE_MIN, GPT_SECTOR);
	want = le(b + H_CRC, 4);
	memset(b + H_CRC, 0, 4);
	if (gpt_crc32(0, b, hsize) != want)
		return fail(err, errlen, "GPT header CRC mismatch");
	rev = le(b + H_REVISION, 4);
	if (rev >> 16 != 1)
		return fail(err, errlen, "GPT revision %u.%u is not one Quire reads (1.x)", rev >> 16, rev & 0xffff);
	if (le(b + H_MY_LBA, 8) != 1)
		return fail(err, errlen, "GPT header's MyLBA is %lu, not 1 where it was read", le(b + H_MY_LBA, 8));

	g->first_usable = le(b + H_FIRST_USABLE, 8);
	g->last_usable = le(b + H_LAST_USABLE, 8);
	if (g->first_usable < 2)
		return fail(err, errlen, "GPT FirstUsableLBA %lu overlaps the MBR or the header", g->first_usable);
	if (g->first_usable > g->last_usable)
		return fail(err, errlen, "GPT FirstUsableLBA %lu is past LastUsableLBA %lu", g->first_usable,
			    g->last_usable);
	if (g->last_usable >= sectors)
		return fail(err, errlen, "GPT LastUsableLBA %lu is past the disk's last sector %lu", g->last_usable,
			    sectors - 1);

	lba = le(b + H_ENTRY_LBA, 8);
	n = le(b + H_NUM_ENTRIES, 4);
	esize = le(b + H_ENTRY_SIZE, 4);
	want = le(b + H_ENTRIES_CRC, 4);
	if (n < 1 || n > GPT_ENTRIES_MAX)
		return fail(err, errlen, "GPT NumberOfPartitionEntries %u is outside 1 to %u", n, GPT_ENTRIES_MAX);
	/* 128 * 2^n (5.3.2), and at most a sector: so no entry straddles two sectors. */
	if (esize != 128 && esize != 256 && esize != 512)
		return fail(err, errlen, "GPT SizeOfPartitionEntry %u is not 128, 256 or 512 bytes", esize);
	bytes = (u64)n * esize; /* at most 512 KiB */
	nsec = (bytes + GPT_SECTOR - 1) / GPT_SECTOR;
	if (lba < 2)
		return fail(err, errlen, "GPT PartitionEntryLBA %lu overlaps the MBR or the header", lba);
	if (nsec > sectors || lba > sectors - nsec)
		return fail(err, errlen, "GPT partition entry array (%lu sectors from sector %lu) runs past the disk's %lu sectors",
			    nsec, lba, sectors);
	if (lba <= g->last_usable && lba + nsec - 1 >= g->first_usable)
		return fail(err, errlen, "GPT partition entry array (sectors %lu to %lu) overlaps the usable sectors %lu to %lu",
			    lba, lba + nsec - 1, g->first_usable, g->last_usable);

	/* An entry's error waits for the CRC: on a corrupt array that is the one to tell. */
	for (u64 done = 0; done < nsec;) {
		unsigned cnt = MIN(nsec - done, GPT_SCRATCH / GPT_SECTOR);
		unsigned len = MIN(bytes - done * GPT_SECTOR, (u64)cnt * GPT_SECTOR);

		if (read(ctx, lba + done, b, cnt))
			return fail(err, errlen, "reading the GPT partition entries (sectors %lu to %lu) failed",
				    lba + done, lba + done + cnt - 1);
		crc = gpt_crc32(crc, b, len);
		for (unsigned off = 0; off < len && !bad; off += esize) {
			unsigned index = (done * GPT_SECTOR + off) / esize + 1;

			if (zero(b + off, sizeof(g->part[0].type)))
				continue; /* an unused entry: PartitionTypeGUID zero */
			if (g->nparts == GPT_PARTS_MAX)
				bad = fail(err, errlen, "partition %u is the %uth partition; Quire takes at most %u", index,
					   GPT_PARTS_MAX + 1, GPT_PARTS_MAX);
			else
				bad = take_entry(b + off, index, g, &g->part[g->nparts], err, errlen);
			if (!bad)
				g->nparts++;
		}
		done += cnt;
	}
	if (crc != want)
		return fail(err, errlen, "GPT partition entry array CRC mismatch");
	if (bad)
		return -1;

	for (unsigned i = 0; i < g->nparts; i++)
		for (unsigned j = i + 1; j < g->nparts; j++) {
			const struct gpt_part *p = &g->part[i], *q = &g->part[j];

			if (p->first <= q->last && q->first <= p->last)
				return fail(err, errlen, "partitions %u%s%s%s and %u%s%s%s overlap", PART_ARGS(p),
					    PART_ARGS(q));
			if (p->name[0] && !strcmp(p->name, q->name))
				return fail(err, errlen, "partitions %u and %u are both named '%s'", p->index, q->index,
					    p->name);
		}
	return 1;
}

int gpt_read(u64 sectors, gpt_read_fn read, void *ctx, void *scratch, struct gpt *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->sectors = sectors;
	if (errlen)
		err[0] = '\0';
	rc = read_table(sectors, read, ctx, scratch, out, err, errlen);
	if (rc != 1)
		out->nparts = 0; /* nothing half-read for a caller that misses the error */
	return rc;
}

const struct gpt_part *gpt_find(const struct gpt *g, const char *name)
{
	if (!name || !name[0])
		return NULL;
	for (unsigned i = 0; i < g->nparts; i++)
		if (!strcmp(g->part[i].name, name))
			return &g->part[i];
	return NULL;
}

bool gpt_is_linux_swap(const struct gpt_part *p)
{
	/* 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F: its first three fields little-endian on disk */
	static const u8 swap[16] = { 0x6d, 0xfd, 0x57, 0x06, 0xab, 0xa4, 0xc4, 0x43,
				     0x84, 0xe5, 0x09, 0x33, 0xc8, 0x4b, 0x4f, 0x4f };

	return !memcmp(p->type, swap, sizeof(swap));
}
