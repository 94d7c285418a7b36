/*
 * ---- memtest mode 29: virtio-blk-hostile: a bare-metal driver of the disk
 * in virtio-mmio slot 1 (the VM's config says disk = "NAME"; core/vdisk.c).
 * First an honest driver: negotiate, one queue, a 4 KiB write read back at
 * sector 0 and at the disk's last 4 KiB, GET_ID, FLUSH. Then the lies, one
 * case each, each line `memtest: virtio-blk-hostile case NAME: ok|FAIL ...`:
 *
 *   - requests past the end, and requests of bad sizes (0, 100 bytes,
 *     68 KiB, over seg_max): VIRTIO_BLK_S_IOERR, nothing written, and the
 *     device goes on without a reset; an unknown type: UNSUPP;
 *   - wild descriptors (outside RAM, wrapping, 4 GiB long, next past the
 *     table, a loop, indirect, 65 in a chain, ...), chains without a header
 *     or a status byte, avail->idx too far ahead, a queue of 0 or 3
 *     entries: DEVICE_NEEDS_RESET with the configuration change bit in
 *     InterruptStatus (vdrv_refused), and a reset brings the device back;
 *   - harmless ones: the used ring over the descriptor table, a notify
 *     storm, writes to the read-only configuration (capacity), a reset
 *     with a read in flight (its data never lands after the reset);
 *   - legal but unusual framing (a header with its data in one descriptor,
 *     a header in two, data with the status byte), descriptors changed
 *     after they were offered, a ready queue's registers rewritten,
 *     features that were not offered;
 *   - bursts of 32 chains of 64 KiB at once (more than the disk takes at
 *     once: some wait their turn), written and read back, and a burst
 *     reset at once: nothing of it lands after the reset;
 *   - a read whose data buffer is the rings themselves: anything may
 *     happen to that request, but the device works after a reset.
 *
 * After each case a correct read of sector 0 (after a reset where the
 * device wanted one) must give back what the honest write put there, so
 * a lie that wrote anyway is caught too. Then
 * `memtest: virtio-blk-hostile ok cases=N` only if every case held, and
 * the VM powers off with a burst of reads offered (Quire drops them).
 * ----
 */
#include "vdrv.h"

#define MODE "virtio-blk-hostile"
#define BLK_DEVICE_ID 2
#define F_RO (1u << 5)
#define F_FLUSH (1u << 9)
#define T_IN 0u
#define T_OUT 1u
#define T_FLUSH 4u
#define T_GET_ID 8u
#define T_DISCARD 11u /* not offered */
#define S_OK 0u
#define S_IOERR 1u
#define S_UNSUPP 2u
#define S_NONE 0xffu /* the status byte before the device writes it */
#define ID_LEN 20
#define NUM 128		  /* the honest queue: room for a chain of 65 descriptors */
#define SEG_MAX 16	  /* Quire's seg_max (include/quire/vdisk.h) */
#define KiB 1024u

static struct vdrv blk = { .mode = MODE, .regs = VIRTIO_SLOT(1), .num = NUM, .features = F_FLUSH };

/* Guest-physical addresses, from the first free page (mode_vblk_hostile). */
static u64 hdr, st_addr, id_addr, ref0, refl, wbuf, rbuf, ring_data, burst;
static u64 cap;		     /* capacity in sectors */
static u64 used_at;	     /* the used ring as the driver placed it */
static unsigned short last_used;
static u64 wait_ticks;
static u64 cases, failed;

enum how { R_DONE, R_RESET, R_TIMEOUT };

/* What became of one request. */
struct res {
	enum how how;
	u32 status;		/* the status byte (S_NONE: not written) */
	u32 id, len;		/* its used entry */
};

static u64 mix(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53UL;
	x ^= x >> 33;
	return x;
}

static void fill(u64 buf, u64 len, u64 salt)
{
	for (u64 a = 0; a < len; a += 8)
		WR(buf + a, mix(a ^ (salt << 40)));
}

static void set(u64 buf, u64 len, u64 v)
{
	for (u64 a = 0; a < len; a += 8)
		WR(buf + a, v);
}

/* The first byte offset where a and b differ, or len. */
static u64 differ(u64 a, u64 b, u64 len)
{
	for (u64 i = 0; i < len; i += 8)
		if (RD(a + i) != RD(b + i))
			return i;
	return len;
}

static u32 status_reg(void)
{
	return R32(blk.regs + VR_STATUS);
}

static const char *how_name(const struct res *r)
{
	static const char *const st[] = { "OK", "IOERR", "UNSUPP" };

	if (r->how == R_RESET)
		return "NEEDS_RESET";
	if (r->how == R_TIMEOUT)
		return "timeout";
	return r->status < 3 ? st[r->status] : r->status == S_NONE ? "no-status" : "bad-status";
}

/* Reset and set up the queue with num entries, the used ring at used; the status read back. */
static u32 setup_raw(u64 num, u64 used)
{
	used_at = used;
	last_used = 0;
	return vdrv_setup(&blk, num, blk.base, blk.base + 0x1000, used);
}

/* An honest setup of the queue; the used ring at used (normally the third ring page). */
static bool setup_at(u64 used)
{
	u32 st = setup_raw(NUM, used);

	if (st != (VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK)) {
		pr("memtest: " MODE " FAIL an honest setup left status 0x%x\n", st);
		return false;
	}
	return true;
}

static bool honest(void)
{
	return setup_at(blk.base + 0x2000);
}

/*
 * Wait for the next used entry, or for the device to want a reset: poll
 * the used ring, and the status register now and then.
 */
static struct res wait_used(u64 ticks)
{
	volatile unsigned short *used = (volatile unsigned short *)used_at;
	u64 end = counter() + ticks;
	struct res r = { R_TIMEOUT, S_NONE, 0, 0 };

	for (u64 k = 0;; k++) {
		if (used[1] != last_used) {
			u64 e = used_at + 4 + 8 * (u64)(last_used % NUM);

			dmb();
			r.how = R_DONE;
			r.id = R32(e);
			r.len = R32(e + 4);
			r.status = *(volatile unsigned char *)st_addr;
			last_used++;
			return r;
		}
		if (!(k & 63) && (status_reg() & VS_NEEDS_RESET)) {
			r.how = R_RESET;
			return r;
		}
		if (counter() > end)
			return r;
	}
}

/* Wait for the status byte to be written, or for the device to want a reset: true if written. */
static bool wait_status(u64 ticks)
{
	u64 end = counter() + ticks;

	while (*(volatile unsigned char *)st_addr == S_NONE) {
		if ((status_reg() & VS_NEEDS_RESET) || counter() > end)
			return false;
	}
	return true;
}

/* Write one chain (rq's) without offering it. */
static void rq_chain(u32 type, u64 sector, u64 data, u32 len, unsigned nseg)
{
	unsigned short wr = type == T_OUT || type == T_DISCARD ? 0 : VQD_WRITE;
	unsigned n = 0;

	WR(hdr, type); /* type, reserved 0 */
	WR(hdr + 8, sector);
	*(volatile unsigned char *)st_addr = S_NONE;
	vdrv_desc(&blk, n, hdr, 16, VQD_NEXT, n + 1);
	n++;
	for (unsigned k = 0; k < nseg; k++, n++) {
		u32 piece = len / nseg, off = k * piece;

		if (k == nseg - 1)
			piece = len - off;
		vdrv_desc(&blk, n, data + off, piece, VQD_NEXT | wr, n + 1);
	}
	vdrv_desc(&blk, n, st_addr, 1, VQD_WRITE, 0);
}

/*
 * Chain from descriptor 0: the 16-byte header, the data in nseg pieces
 * (readable for OUT and DISCARD, else writable), the status byte;
 * offer it and wait.
 */
static struct res rq(u32 type, u64 sector, u64 data, u32 len, unsigned nseg)
{
	rq_chain(type, sector, data, len, nseg);
	vdrv_offer(&blk, 0, 1);
	return wait_used(wait_ticks);
}

/* The used entry a request that ended with status r->status must have. */
static bool used_ok(const struct res *r, u32 type, u32 len)
{
	u32 want = 1;

	if (r->status == S_OK && type == T_IN)
		want = len + 1;
	else if (r->status == S_OK && type == T_GET_ID)
		want = (len < ID_LEN ? len : ID_LEN) + 1;
	return r->id == 0 && r->len == want;
}

/* A request that must end in status want, with its used entry right. */
static bool expect(const char *what, struct res r, u32 type, u32 len, u32 want)
{
	if (r.how == R_DONE && r.status == want && used_ok(&r, type, len))
		return true;
	pr("memtest: " MODE " FAIL %s: %s (status 0x%x) used id %u len %u device status 0x%x, want status %u\n",
	   what, how_name(&r), r.status, r.id, r.len, status_reg(), want);
	return false;
}

/* A correct request after a case: a read of sector 0 gives back what the honest write put there. */
static bool fresh(const char *name)
{
	struct res r;
	u64 at;

	set(rbuf, 4 * KiB, 0);
	r = rq(T_IN, 0, rbuf, 4 * KiB, 1);
	if (!expect(name, r, T_IN, 4 * KiB, S_OK))
		return false;
	if ((at = differ(rbuf, ref0, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL %s: sector 0 reads 0x%lx at byte %lu, want 0x%lx\n", name, RD(rbuf + at),
		   at, RD(ref0 + at));
		return false;
	}
	return true;
}

static void verdict(const char *name, bool ok, const struct res *r)
{
	cases++;
	failed += !ok;
	pr("memtest: " MODE " case %s: %s got=%s\n", name, ok ? "ok" : "FAIL", how_name(r));
}

/* The device answered status want and wants no reset. */
static bool settled(const char *name, struct res r, u32 type, u32 len, u32 want)
{
	if (!expect(name, r, type, len, want))
		return false;
	if (status_reg() & VS_NEEDS_RESET) {
		pr("memtest: " MODE " FAIL %s: answered, but the device wants a reset (status 0x%x)\n", name,
		   status_reg());
		return false;
	}
	return true;
}

/* A case the device must answer with status want, then go on without a reset. */
static void answered(const char *name, struct res r, u32 type, u32 len, u32 want)
{
	bool ok = settled(name, r, type, len, want);

	ok = fresh(name) && ok;
	verdict(name, ok, &r);
}

/* A case the device must refuse: NEEDS_RESET, the config change bit, a reset; then it works again. */
static void refused(const char *name, struct res r)
{
	bool ok = r.how == R_RESET || (status_reg() & VS_NEEDS_RESET);

	if (!ok)
		pr("memtest: " MODE " FAIL %s: %s (status 0x%x), want NEEDS_RESET\n", name, how_name(&r), r.status);
	ok = vdrv_refused(&blk, name) && ok;
	ok = honest() && fresh(name) && ok;
	verdict(name, ok, &r);
}

/* ---- the honest driver ---- */

static bool honest_rw(const char *what, u64 sector, u64 ref, u64 salt)
{
	u64 at;

	fill(ref, 4 * KiB, salt);
	if (!expect(what, rq(T_OUT, sector, ref, 4 * KiB, 1), T_OUT, 4 * KiB, S_OK))
		return false;
	set(rbuf, 4 * KiB, 0);
	if (!expect(what, rq(T_IN, sector, rbuf, 4 * KiB, 1), T_IN, 4 * KiB, S_OK))
		return false;
	if ((at = differ(rbuf, ref, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL %s: read back 0x%lx at byte %lu, wrote 0x%lx\n", what, RD(rbuf + at), at,
		   RD(ref + at));
		return false;
	}
	return true;
}

static bool honest_driver(void)
{
	u32 f0, f1, seg_max, size_max;
	char id[ID_LEN + 1];

	if (R32(blk.regs + VR_DEVICE_ID) != BLK_DEVICE_ID) {
		pr("memtest: " MODE " FAIL slot 1 is device %u, not a disk (disk = \"NAME\"?)\n",
		   R32(blk.regs + VR_DEVICE_ID));
		return false;
	}
	R32(blk.regs + VR_STATUS) = 0;
	R32(blk.regs + VR_DEV_FEATURES_SEL) = 0;
	f0 = R32(blk.regs + VR_DEV_FEATURES);
	R32(blk.regs + VR_DEV_FEATURES_SEL) = 1;
	f1 = R32(blk.regs + VR_DEV_FEATURES);
	R32(blk.regs + VR_QUEUE_SEL) = 0;
	if (!(f1 & 1) || !(f0 & F_FLUSH) || (f0 & F_RO) || R32(blk.regs + VR_QUEUE_NUM_MAX) < NUM) {
		pr("memtest: " MODE " FAIL features 0x%x 0x%x QueueNumMax %u: want VERSION_1, FLUSH, not RO, %u\n", f1,
		   f0, R32(blk.regs + VR_QUEUE_NUM_MAX), NUM);
		return false;
	}
	if (!honest())
		return false;
	cap = R32(blk.regs + VR_CONFIG) | (u64)R32(blk.regs + VR_CONFIG + 4) << 32;
	size_max = R32(blk.regs + VR_CONFIG + 8);
	seg_max = R32(blk.regs + VR_CONFIG + 12);
	if (cap < 64 || size_max != PAGE_SIZE || seg_max != SEG_MAX) {
		pr("memtest: " MODE " FAIL config: capacity %lu size_max %u seg_max %u\n", cap, size_max, seg_max);
		return false;
	}
	if (!honest_rw("honest write and read at sector 0", 0, ref0, 1) ||
	    !honest_rw("honest write and read of the last 4 KiB", cap - 8, refl, 2))
		return false;
	set(id_addr, 32, ~0UL);
	if (!expect("GET_ID", rq(T_GET_ID, 0, id_addr, ID_LEN, 1), T_GET_ID, ID_LEN, S_OK) ||
	    !expect("FLUSH", rq(T_FLUSH, 0, 0, 0, 0), T_FLUSH, 0, S_OK))
		return false;
	for (unsigned i = 0; i < ID_LEN; i++)
		id[i] = (char)*(volatile unsigned char *)(id_addr + i);
	id[ID_LEN] = 0;
	pr("memtest: " MODE " honest ok capacity=%lu size_max=%u seg_max=%u id=%s\n", cap, size_max, seg_max, id);
	return true;
}

/* ---- the cases ---- */

/* Past the end, bad sizes, an unknown type: an answer, and no reset. */
static void errors(void)
{
	struct res r;
	bool ok;
	u64 at;

	answered("past-end-read", rq(T_IN, cap, rbuf, 512, 1), T_IN, 512, S_IOERR);
	/* 8 sectors from the last one: none of them written, the last 4 KiB as they were. */
	fill(wbuf, 4 * KiB, 3);
	r = rq(T_OUT, cap - 1, wbuf, 4 * KiB, 1);
	ok = settled("past-end-write", r, T_OUT, 4 * KiB, S_IOERR);
	set(rbuf, 4 * KiB, 0);
	ok = expect("past-end-write: the last 4 KiB", rq(T_IN, cap - 8, rbuf, 4 * KiB, 1), T_IN, 4 * KiB, S_OK) &&
	     ok;
	if ((at = differ(rbuf, refl, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL past-end-write: the last 4 KiB changed at byte %lu\n", at);
		ok = false;
	}
	ok = fresh("past-end-write") && ok;
	verdict("past-end-write", ok, &r);
	answered("sector-2^64-1", rq(T_IN, ~0UL, rbuf, 512, 1), T_IN, 512, S_IOERR);
	answered("sector-2^64-8-write", rq(T_OUT, ~0UL - 7, wbuf, 4 * KiB, 1), T_OUT, 4 * KiB, S_IOERR);
	/* Sizes: each would write sector 0 (fresh() reads it back) if it went through. */
	answered("size-0", rq(T_IN, 0, rbuf, 0, 0), T_IN, 0, S_IOERR);
	answered("size-100", rq(T_IN, 0, rbuf, 100, 1), T_IN, 100, S_IOERR);
	answered("size-100-write", rq(T_OUT, 0, wbuf, 100, 1), T_OUT, 100, S_IOERR);
	fill(wbuf, 68 * KiB, 4);
	answered("size-68k-write", rq(T_OUT, 0, wbuf, 68 * KiB, 1), T_OUT, 68 * KiB, S_IOERR);
	answered("size-68k-read", rq(T_IN, 0, rbuf, 68 * KiB, 1), T_IN, 68 * KiB, S_IOERR);
	answered("segs-17x4k-write", rq(T_OUT, 0, wbuf, 68 * KiB, 17), T_OUT, 68 * KiB, S_IOERR);
	/*
	 * 17 segments of 512 bytes, past seg_max but not past its bytes: Quire
	 * bounds a request by its bytes (include/quire/vdisk.h), so it may do it;
	 * then it must have done it right. IOERR would do too.
	 */
	r = rq(T_OUT, 64, wbuf, 17 * 512, 17);
	if (r.how == R_DONE && r.status == S_OK) {
		ok = settled("segs-17x512-write", r, T_OUT, 17 * 512, S_OK);
		set(rbuf, 17 * 512, 0);
		ok = expect("segs-17x512-write: read back", rq(T_IN, 64, rbuf, 17 * 512, 17), T_IN, 17 * 512, S_OK) &&
		     ok;
		if ((at = differ(rbuf, wbuf, 17 * 512)) != 17 * 512) {
			pr("memtest: " MODE " FAIL segs-17x512-write: taken, but reads back otherwise at byte %lu\n", at);
			ok = false;
		}
		ok = fresh("segs-17x512-write") && ok;
		verdict("segs-17x512-write", ok, &r);
	} else {
		answered("segs-17x512-write", r, T_OUT, 17 * 512, S_IOERR);
	}
	answered("type-discard", rq(T_DISCARD, 0, wbuf, 16, 1), T_DISCARD, 16, S_UNSUPP);
	answered("type-0xdeadbeef", rq(0xdeadbeefu, 0, rbuf, 512, 1), 0xdeadbeefu, 512, S_UNSUPP);
}

/* A chain of descriptors 0..n-1 as given, offered as head 0. */
static struct res chain(u64 n, const struct vq_desc *d)
{
	WR(hdr, T_IN);
	WR(hdr + 8, 0);
	*(volatile unsigned char *)st_addr = S_NONE;
	for (u64 i = 0; i < n; i++)
		vdrv_desc(&blk, i, d[i].addr, d[i].len, d[i].flags, d[i].next);
	vdrv_offer(&blk, 0, 1);
	return wait_used(wait_ticks);
}

#define D(a, l, f, n) ((struct vq_desc){ (a), (l), (f), (n) })
#define NW (VQD_NEXT | VQD_WRITE)

/* Lies in the rings and the queue's registers: the device must want a reset. */
static void broken(void)
{
	struct vq_desc d[65];
	struct res r;

	refused("desc-outside-ram", chain(3, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1), D(0x1000, 4096, NW, 2),
								 D(st_addr, 1, VQD_WRITE, 0) }));
	refused("desc-wraps", chain(3, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1),
							   D(0xfffffffffffff000UL, 0x2000, NW, 2),
							   D(st_addr, 1, VQD_WRITE, 0) }));
	refused("desc-len-4g", chain(3, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1), D(rbuf, 0xffffffffu, NW, 2),
							    D(st_addr, 1, VQD_WRITE, 0) }));
	refused("desc-next-past-table", chain(2, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, NUM + 5),
								     D(st_addr, 1, VQD_WRITE, 0) }));
	/* A loop of readable descriptors, in a queue of 16: caught as a loop before the 64 Quire takes. */
	setup_raw(16, blk.base + 0x2000);
	refused("desc-loop", chain(2, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1), D(wbuf, 512, VQD_NEXT, 0) }));
	refused("desc-indirect", chain(3, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1),
							      D(rbuf, 16, VQD_NEXT | VQD_INDIRECT, 2),
							      D(st_addr, 1, VQD_WRITE, 0) }));
	refused("desc-readable-after-writable", chain(3, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1),
									     D(st_addr, 1, NW, 2),
									     D(wbuf, 512, 0, 0) }));
	/* 65 descriptors: the header, 63 of 512 bytes, the status; more than the 64 Quire takes. */
	d[0] = D(hdr, 16, VQD_NEXT, 1);
	for (unsigned i = 1; i < 64; i++)
		d[i] = D(rbuf + 512 * (i - 1), 512, NW, (unsigned short)(i + 1));
	d[64] = D(st_addr, 1, VQD_WRITE, 0);
	refused("chain-65", chain(65, d));
	refused("no-header-len-0", chain(1, (struct vq_desc[]){ D(hdr, 0, 0, 0) }));
	refused("no-header-writable-only", chain(1, (struct vq_desc[]){ D(st_addr, 16, VQD_WRITE, 0) }));
	refused("no-status", chain(2, (struct vq_desc[]){ D(hdr, 16, VQD_NEXT, 1), D(wbuf, 512, 0, 0) }));
	vdrv_desc(&blk, 0, hdr, 16, VQD_NEXT, 1);
	vdrv_desc(&blk, 1, st_addr, 1, VQD_WRITE, 0);
	vdrv_offer(&blk, NUM + 3, 1);
	refused("avail-head-past-table", wait_used(wait_ticks));
	vdrv_offer(&blk, 0, NUM + 1);
	refused("avail-idx-jump", wait_used(wait_ticks));
	/* Queues of 0 and 3 entries: refused when made ready. */
	setup_raw(0, blk.base + 0x2000);
	r = (struct res){ (status_reg() & VS_NEEDS_RESET) ? R_RESET : R_DONE, S_NONE, 0, 0 };
	refused("queue-num-0", r);
	setup_raw(3, blk.base + 0x2000);
	r = (struct res){ (status_reg() & VS_NEEDS_RESET) ? R_RESET : R_DONE, S_NONE, 0, 0 };
	refused("queue-num-3", r);
}

/* Odd but within the rules, or only the driver's own loss: no reset wanted. */
static void harmless(void)
{
	volatile unsigned short *used;
	bool ok, inflight;
	struct res r;
	u64 at;

	/*
	 * The used ring over the descriptor table: the chain was taken before its
	 * used entry overwrote it. The driver's own descriptor 0 hides used->idx,
	 * so wait for the status byte, then for used->idx 1.
	 */
	ok = setup_at(blk.base);
	set(rbuf, 4 * KiB, 0);
	rq_chain(T_IN, 0, rbuf, 4 * KiB, 1);
	vdrv_offer(&blk, 0, 1);
	used = (volatile unsigned short *)used_at;
	r = (struct res){ wait_status(wait_ticks) ? R_DONE : (status_reg() & VS_NEEDS_RESET) ? R_RESET : R_TIMEOUT,
			  *(volatile unsigned char *)st_addr, 0, 0 };
	for (u64 end = counter() + wait_ticks; r.how == R_DONE && used[1] != 1 && counter() < end;)
		;
	dmb();
	r.id = R32(used_at + 4);
	r.len = R32(used_at + 8);
	ok = settled("used-over-desc", r, T_IN, 4 * KiB, S_OK) && used[1] == 1 && ok;
	if ((at = differ(rbuf, ref0, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL used-over-desc: sector 0 read 0x%lx at byte %lu\n", RD(rbuf + at), at);
		ok = false;
	}
	ok = honest() && fresh("used-over-desc") && ok;
	verdict("used-over-desc", ok, &r);

	/* 1000 notifications with nothing new, some to queues that do not exist. */
	used = (volatile unsigned short *)used_at;
	for (unsigned k = 0; k < 1000; k++)
		R32(blk.regs + VR_QUEUE_NOTIFY) = k % 3;
	r = (struct res){ (status_reg() & VS_NEEDS_RESET) ? R_RESET : R_DONE, S_OK, 0, 1 };
	ok = r.how == R_DONE && used[1] == last_used;
	if (!ok)
		pr("memtest: " MODE " FAIL notify-storm: status 0x%x used idx %u\n", status_reg(), used[1]);
	ok = fresh("notify-storm") && ok;
	verdict("notify-storm", ok, &r);

	/* Writes to the read-only configuration: capacity stays, the device goes on. */
	R32(blk.regs + VR_CONFIG) = 0xffffffffu;
	R32(blk.regs + VR_CONFIG + 4) = 0x7fffffffu;
	*(volatile unsigned char *)(blk.regs + VR_CONFIG) = 0x5a;
	*(volatile unsigned short *)(blk.regs + VR_CONFIG + 2) = 0x5a5a;
	R32(blk.regs + VR_CONFIG + 12) = 1000; /* seg_max */
	at = R32(blk.regs + VR_CONFIG) | (u64)R32(blk.regs + VR_CONFIG + 4) << 32;
	r = (struct res){ (status_reg() & VS_NEEDS_RESET) ? R_RESET : R_DONE, S_OK, 0, 1 };
	ok = r.how == R_DONE && at == cap && R32(blk.regs + VR_CONFIG + 12) == SEG_MAX;
	if (!ok)
		pr("memtest: " MODE " FAIL config-write: capacity reads %lu (was %lu) seg_max %u status 0x%x\n", at, cap,
		   R32(blk.regs + VR_CONFIG + 12), status_reg());
	ok = fresh("config-write") && ok;
	ok = ok && expect("config-write: past the end", rq(T_IN, cap, rbuf, 512, 1), T_IN, 512, S_IOERR);
	verdict("config-write", ok, &r);

	/*
	 * A reset with a 64 KiB read in flight: nothing of it lands in guest
	 * memory after the reset (its status byte as the reset found it says
	 * whether it was still in flight then).
	 */
	set(rbuf, 64 * KiB, 0);
	rq_chain(T_IN, 0, rbuf, 64 * KiB, 1);
	vdrv_offer(&blk, 0, 1);
	R32(blk.regs + VR_STATUS) = 0;
	inflight = *(volatile unsigned char *)st_addr == S_NONE;
	set(rbuf, 64 * KiB, 0x0123456789abcdefUL);
	*(volatile unsigned char *)st_addr = 0x77;
	used = (volatile unsigned short *)used_at;
	at = used[1];
	for (u64 end = counter() + wait_ticks / 10; counter() < end;)
		;
	pr("memtest: " MODE " reset-in-flight: the read was %s at the reset\n", inflight ? "in flight" : "done");
	r = (struct res){ R_DONE, *(volatile unsigned char *)st_addr, 0, 0 };
	ok = r.status == 0x77 && used[1] == at && status_reg() == 0;
	for (u64 a = 0; ok && a < 64 * KiB; a += 8)
		ok = RD(rbuf + a) == 0x0123456789abcdefUL;
	if (!ok)
		pr("memtest: " MODE " FAIL reset-in-flight: after the reset: status byte 0x%x used idx %u (was %lu) "
		   "device status 0x%x\n", r.status, used[1], at, status_reg());
	r.status = S_OK;
	ok = honest() && fresh("reset-in-flight") && ok;
	verdict("reset-in-flight", ok, &r);
}

/* Legal but unusual drivers, and lies the transport must shrug off. */
static void unusual(void)
{
	u64 frame = ring_data + 3 * PAGE_SIZE; /* a header and its 4 KiB of data, back to back */
	volatile struct vq_desc *d = (volatile struct vq_desc *)blk.base;
	struct res r;
	bool ok;
	u64 at;

	/* Any framing (2.6.4): the header and the data of a write in one descriptor. */
	WR(frame, T_OUT);
	WR(frame + 8, 512);
	fill(frame + 16, 4 * KiB, 6);
	*(volatile unsigned char *)st_addr = S_NONE;
	vdrv_desc(&blk, 0, frame, 16 + 4 * KiB, VQD_NEXT, 1);
	vdrv_desc(&blk, 1, st_addr, 1, VQD_WRITE, 0);
	vdrv_offer(&blk, 0, 1);
	answered("framing-write", wait_used(wait_ticks), T_OUT, 4 * KiB, S_OK);
	/* ... and a read with its header in two pieces, its data and status byte in one descriptor. */
	WR(hdr, T_IN);
	WR(hdr + 8, 512);
	set(rbuf, 8 * KiB, ~0UL);
	vdrv_desc(&blk, 0, hdr, 8, VQD_NEXT, 1);
	vdrv_desc(&blk, 1, hdr + 8, 8, VQD_NEXT, 2);
	vdrv_desc(&blk, 2, rbuf, 4 * KiB + 1, VQD_WRITE, 0);
	vdrv_offer(&blk, 0, 1);
	r = wait_used(wait_ticks);
	r.status = *(volatile unsigned char *)(rbuf + 4 * KiB);
	ok = settled("framing-read", r, T_IN, 4 * KiB, S_OK);
	if ((at = differ(rbuf, frame + 16, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL framing-read: read 0x%lx at byte %lu, wrote 0x%lx\n", RD(rbuf + at), at,
		   RD(frame + 16 + at));
		ok = false;
	}
	ok = fresh("framing-read") && ok;
	verdict("framing-read", ok, &r);

	/* Descriptors changed once offered: the device took them when offered, not again later. */
	set(rbuf, 64 * KiB, 0);
	rq_chain(T_IN, 0, rbuf, 64 * KiB, 1);
	vdrv_offer(&blk, 0, 1);
	d[1].addr = 0x1000;
	d[1].len = 0xffffffffu;
	d[2].addr = blk.base + 0x1000; /* the status byte into the avail ring */
	r = wait_used(wait_ticks);
	ok = settled("desc-changed-in-flight", r, T_IN, 64 * KiB, S_OK);
	if ((at = differ(rbuf, ref0, 4 * KiB)) != 4 * KiB) {
		pr("memtest: " MODE " FAIL desc-changed-in-flight: read 0x%lx at byte %lu\n", RD(rbuf + at), at);
		ok = false;
	}
	ok = fresh("desc-changed-in-flight") && ok;
	verdict("desc-changed-in-flight", ok, &r);

	/* A ready queue's registers rewritten: ignored until a reset (4.2.2.2). */
	R32(blk.regs + VR_QUEUE_NUM) = 3;
	R32(blk.regs + VR_QUEUE_DESC) = 0x1000;
	R32(blk.regs + VR_QUEUE_DESC + 4) = 0xffffffffu;
	R32(blk.regs + VR_QUEUE_DRIVER) = 0x1001;
	R32(blk.regs + VR_QUEUE_DEVICE) = 0x1002;
	R32(blk.regs + VR_QUEUE_READY) = 1;
	R32(blk.regs + VR_QUEUE_SEL) = 7; /* no such queue */
	R32(blk.regs + VR_QUEUE_READY) = 1;
	R32(blk.regs + VR_QUEUE_NUM) = 0;
	R32(blk.regs + VR_QUEUE_SEL) = 0;
	answered("queue-regs-while-ready", (struct res){ R_DONE, S_OK, 0, 1 }, T_OUT, 0, S_OK);

	/* Features the device did not offer (INDIRECT_DESC, RO on a writable disk): FEATURES_OK refused. */
	R32(blk.regs + VR_STATUS) = 0;
	R32(blk.regs + VR_STATUS) = VS_ACK | VS_DRIVER;
	R32(blk.regs + VR_DRV_FEATURES_SEL) = 1;
	R32(blk.regs + VR_DRV_FEATURES) = 1;
	R32(blk.regs + VR_DRV_FEATURES_SEL) = 0;
	R32(blk.regs + VR_DRV_FEATURES) = F_FLUSH | F_RO | 1u << 28;
	R32(blk.regs + VR_STATUS) = VS_ACK | VS_DRIVER | VS_FEATURES_OK;
	r = (struct res){ R_DONE, R32(blk.regs + VR_STATUS), 0, 1 };
	ok = r.status == (VS_ACK | VS_DRIVER);
	if (!ok)
		pr("memtest: " MODE " FAIL features-unoffered: status 0x%x after FEATURES_OK, want it refused\n",
		   r.status);
	r.status = S_OK;
	ok = honest() && fresh("features-unoffered") && ok;
	verdict("features-unoffered", ok, &r);
}

/*
 * ---- bursts: BURST chains of 64 KiB at once, more than the disk's
 * VDISK_DEPTH slots and than the guests' share of the host queue (some wait
 * for room, RQ_SUBMIT) ----
 */
#define BURST 32
#define BURST_SECTOR 1024 /* chain i at BURST_SECTOR + 128 i */

/* Chains 0..BURST-1 (descriptors 3i..3i+2), all made available with one notify. */
static void burst_offer(u32 type)
{
	volatile unsigned short *avail = vdrv_avail(&blk);
	unsigned short idx = avail[1];

	for (unsigned i = 0; i < BURST; i++) {
		u64 h = hdr + 0x400 + 16 * i;

		WR(h, type);
		WR(h + 8, BURST_SECTOR + 128 * i);
		*(volatile unsigned char *)(hdr + 0x800 + i) = S_NONE;
		vdrv_desc(&blk, 3 * i, h, 16, VQD_NEXT, (unsigned short)(3 * i + 1));
		vdrv_desc(&blk, 3 * i + 1, burst + 64 * KiB * i, 64 * KiB,
			  VQD_NEXT | (type == T_IN ? VQD_WRITE : 0), (unsigned short)(3 * i + 2));
		vdrv_desc(&blk, 3 * i + 2, hdr + 0x800 + i, 1, VQD_WRITE, 0);
		avail[2 + (unsigned short)(idx + i) % NUM] = (unsigned short)(3 * i);
	}
	asm volatile("dmb ishst" ::: "memory");
	avail[1] = (unsigned short)(idx + BURST);
	asm volatile("dsb ish" ::: "memory");
	R32(blk.regs + VR_QUEUE_NOTIFY) = 0;
}

/* Wait for all BURST used entries: each chain once, its length right, status 0. */
static bool burst_wait(const char *name, u32 type)
{
	volatile unsigned short *used = (volatile unsigned short *)used_at;
	unsigned short want = (unsigned short)(last_used + BURST);
	u64 seen = 0, end = counter() + wait_ticks;

	while (used[1] != want) {
		if (counter() > end || (status_reg() & VS_NEEDS_RESET)) {
			pr("memtest: " MODE " FAIL %s: used->idx %u, want %u; device status 0x%x\n", name, used[1], want,
			   status_reg());
			return false;
		}
	}
	dmb();
	for (; last_used != want; last_used++) {
		u64 e = used_at + 4 + 8 * (u64)(last_used % NUM);
		u32 id = R32(e), len = R32(e + 4), i = id / 3;

		if (id % 3 || i >= BURST || (seen & 1UL << i) || len != (type == T_IN ? 64 * KiB + 1 : 1) ||
		    *(volatile unsigned char *)(hdr + 0x800 + i) != S_OK) {
			pr("memtest: " MODE " FAIL %s: used entry id %u len %u, status 0x%x\n", name, id, len,
			   i < BURST ? *(volatile unsigned char *)(hdr + 0x800 + i) : 0);
			return false;
		}
		seen |= 1UL << i;
	}
	return true;
}

static void bursts(void)
{
	struct res r = { R_DONE, S_OK, 0, 1 };
	unsigned short at;
	bool ok, inflight = false;
	u64 off;

	for (unsigned i = 0; i < BURST; i++)
		fill(burst + 64 * KiB * i, 64 * KiB, 100 + i);
	burst_offer(T_OUT);
	ok = burst_wait("burst-write", T_OUT);
	ok = fresh("burst-write") && ok;
	verdict("burst-write", ok, &r);

	set(burst, BURST * 64 * KiB, 0);
	burst_offer(T_IN);
	ok = burst_wait("burst-read", T_IN);
	for (unsigned i = 0; ok && i < BURST; i++) {
		fill(wbuf, 64 * KiB, 100 + i);
		if ((off = differ(burst + 64 * KiB * i, wbuf, 64 * KiB)) != 64 * KiB) {
			pr("memtest: " MODE " FAIL burst-read: chain %u reads 0x%lx at byte %lu, want 0x%lx\n", i,
			   RD(burst + 64 * KiB * i + off), off, RD(wbuf + off));
			ok = false;
		}
	}
	ok = fresh("burst-read") && ok;
	verdict("burst-read", ok, &r);

	/* The same burst, and a reset at once: nothing of it lands after the reset, and the disk works. */
	set(burst, BURST * 64 * KiB, 0);
	burst_offer(T_IN);
	R32(blk.regs + VR_STATUS) = 0;
	for (unsigned i = 0; i < BURST; i++)
		inflight |= *(volatile unsigned char *)(hdr + 0x800 + i) == S_NONE;
	set(burst, BURST * 64 * KiB, 0x0123456789abcdefUL);
	for (unsigned i = 0; i < BURST; i++)
		*(volatile unsigned char *)(hdr + 0x800 + i) = 0x77;
	at = ((volatile unsigned short *)used_at)[1];
	for (u64 end = counter() + wait_ticks / 10; counter() < end;)
		;
	ok = ((volatile unsigned short *)used_at)[1] == at && status_reg() == 0;
	for (unsigned i = 0; i < BURST; i++)
		ok = ok && *(volatile unsigned char *)(hdr + 0x800 + i) == 0x77;
	for (off = 0; ok && off < BURST * 64 * KiB; off += 8)
		ok = RD(burst + off) == 0x0123456789abcdefUL;
	if (!ok)
		pr("memtest: " MODE " FAIL burst-reset: guest memory or the used ring changed after the reset (used "
		   "idx %u, was %u; device status 0x%x)\n", ((volatile unsigned short *)used_at)[1], at, status_reg());
	pr("memtest: " MODE " burst-reset: %s at the reset\n", inflight ? "some in flight" : "all done");
	ok = honest() && fresh("burst-reset") && ok;
	verdict("burst-reset", ok, &r);
}

/*
 * A read whose buffer is the rings: the device writes the disk's bytes over
 * its own descriptors, avail and used rings. Whatever becomes of that request
 * (an answer, or a reset wanted once the garbage is read as new chains),
 * Quire goes on, and after a reset the device works.
 */
static void over_rings(void)
{
	const char *name = "data-over-rings";
	struct res r;
	bool ok;

	/* 12 KiB of noise at sector 256, the rings' size. */
	fill(ring_data, 12 * KiB, 5);
	ok = expect(name, rq(T_OUT, 256, ring_data, 12 * KiB, 1), T_OUT, 12 * KiB, S_OK);
	rq_chain(T_IN, 256, blk.base, 12 * KiB, 1);
	vdrv_offer(&blk, 0, 1);
	r.status = wait_status(wait_ticks) ? *(volatile unsigned char *)st_addr : S_NONE;
	r.how = (status_reg() & VS_NEEDS_RESET) ? R_RESET : r.status == S_NONE ? R_TIMEOUT : R_DONE;
	r.id = r.len = 0;
	pr("memtest: " MODE " %s: the request's status byte 0x%x, used->idx 0x%x, then device status 0x%x\n", name,
	   *(volatile unsigned char *)st_addr, vdrv_used(&blk)[1], status_reg());
	ok = honest() && fresh(name) && ok;
	verdict(name, ok, &r);
}

void mode_vblk_hostile(u64 free, u64 ram_end)
{
	blk.base = free + 16 * PAGE_SIZE; /* 3 pages of rings */
	hdr = free + 20 * PAGE_SIZE;
	st_addr = hdr + 0x100;
	id_addr = hdr + 0x200;
	ref0 = free + 24 * PAGE_SIZE;
	refl = free + 25 * PAGE_SIZE;
	ring_data = free + 26 * PAGE_SIZE; /* 3 pages */
	wbuf = free + 32 * PAGE_SIZE;	   /* 24 pages each */
	rbuf = free + 64 * PAGE_SIZE;
	burst = free + 128 * PAGE_SIZE; /* BURST x 64 KiB */
	wait_ticks = counter_freq() * 20;
	if (burst + BURST * 64 * KiB > ram_end) {
		pr("memtest: " MODE " FAIL needs RAM up to 0x%lx, has 0x%lx\n", burst + BURST * 64 * KiB, ram_end);
		return;
	}
	if (!honest_driver())
		return;
	errors();
	broken();
	harmless();
	unusual();
	bursts();
	over_rings();
	if (failed)
		pr("memtest: " MODE " FAIL cases=%lu failed=%lu\n", cases, failed);
	else
		pr("memtest: " MODE " ok cases=%lu\n", cases);
	/* The VM goes while its disk still works for it: Quire drops the answers. */
	pr("memtest: " MODE " powering off with %u reads of 64 KiB offered\n", BURST);
	burst_offer(T_IN);
}
