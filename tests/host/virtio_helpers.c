/* The virtio host tests' machine, VMs, and driver's side: see virtio_helpers.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quire/console.h>
#include <quire/gmem.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vdev.h>
#include "../../core/swap_priv.h"
#include "fake_arch.h"
#include "fake_blk.h"
#include "hostmem.h"
#include "virtio_helpers.h"
#include "vm_registry.h"

struct pool pool;
u32 total;
u8 img_orig[PAGE_SIZE];
struct vm vm;
unsigned dev_slot;
int irq_level[NINTIDS];
unsigned irq_rises[NINTIDS];
size_t loglen;

static void *desc, *meta;
static char logbuf[8192];

/* ---- the machine and its VMs ------------------------------------------------ */

void setup_machine(u32 pages)
{
	struct region img = { IMG_BASE, PAGE_SIZE };
	u8 *ip;

	memset(&sw, 0, sizeof(sw));
	hostmem_pool(&pool, MACH_BASE, pages, &desc);
	total = pages;
	ip = hostmem_add(IMG_BASE, PAGE_SIZE);
	for (unsigned k = 0; k < PAGE_SIZE; k++)
		ip[k] = (u8)(k * 13 + 7);
	memcpy(img_orig, ip, PAGE_SIZE);
	meta = aligned_alloc(PAGE_SIZE, share_meta_bytes(pool.ndesc));
	assert_non_null(meta);
	share_init(&pool, meta, &img, 1, 0x1234);
	assert_int_equal(pool_free_pages(&pool), total - 1);
	for (unsigned k = 0; k < NINTIDS; k++)
		irq_level[k] = -1;
	memset(irq_rises, 0, sizeof(irq_rises));
}

void setup_swap_disk(u32 pages)
{
	fake_blk_setup((u64)pages * PAGE_SIZE, 8);
	swap_init(&pool, 0);
	assert_true(swap_enabled());
}

void setup_vm(struct vm *v, u8 id, u32 quota, enum vm_sharing pol)
{
	memset(v, 0, sizeof(*v));
	v->id = id;
	snprintf(v->name, sizeof(v->name), "vm%u", id);
	v->ram_base = IPA(RAM);
	v->ram_size = RAM_SIZE;
	v->cfg.sharing = pol;
	snprintf(v->cfg.share_domain, sizeof(v->cfg.share_domain), "dA");
	v->cfg.scan_pages = 1u << 16;
	vmpool_init(&v->pool, &pool, id, quota);
	assert_int_equal(s2_init(v, 0), 0);
	share_vm_init(v);
	registry[id - 1] = v;
}

void setup_vm_swap(struct vm *v, u32 limit, u32 slots)
{
	v->cfg.resident_limit = v->cfg.resident_min = (u64)limit * PAGE_SIZE;
	v->cfg.swap_limit = (u64)slots * PAGE_SIZE;
	swap_vm_init(v);
}

int teardown(void **state)
{
	(void)state;
	console_set_output(NULL);
	fake_blk_complete(~0u, 0);
	for (unsigned k = 0; k < MAX_VMS; k++) {
		struct vm *v = registry[k];

		if (v && v->s2.root) {
			share_vm_stop(v);
			s2_destroy(v, swap_page_release, swap_release, NULL, 0);
		}
		if (v)
			memset(v, 0, sizeof(*v));
	}
	memset(&vm, 0, sizeof(vm));
	memset(registry, 0, sizeof(registry));
	fake_blk_teardown();
	free(desc);
	free(meta);
	desc = meta = NULL;
	hostmem_reset();
	fake_arch_reset();
	memset(&sw, 0, sizeof(sw));
	return 0;
}

/* ---- guest memory, the driver's side ---------------------------------------- */

void put_in(struct vm *v, u64 ipa, const void *p, u64 len)
{
	assert_int_equal(gmem_copy(v, ipa, (void *)p, len, true, 0), 0);
}

void put(u64 ipa, const void *p, u64 len)
{
	put_in(&vm, ipa, p, len);
}

void get(u64 ipa, void *p, u64 len)
{
	assert_int_equal(gmem_copy(&vm, ipa, p, len, false, 0), 0);
}

void put16(u64 ipa, u16 v)
{
	put(ipa, &v, 2);
}

u16 get16(u64 ipa)
{
	u16 v;

	get(ipa, &v, 2);
	return v;
}

u32 get32(u64 ipa)
{
	u32 v;

	get(ipa, &v, 4);
	return v;
}

/* ---- split virtqueues, the driver's side -------------------------------------- */

void queue_init_at(struct virtq *q, u16 num, u64 desc_at, u64 avail, u64 used)
{
	static const u8 zero[PAGE_SIZE];

	put(desc_at, zero, PAGE_SIZE);
	put(avail, zero, PAGE_SIZE);
	put(used, zero, PAGE_SIZE);
	*q = (struct virtq){ .num = num, .ready = true, .desc = desc_at, .avail = avail, .used = used };
	assert_true(virtq_areas_ok(&vm, q));
}

void queue_init(struct virtq *q, u16 num)
{
	queue_init_at(q, num, Q_DESC, Q_AVAIL, Q_USED);
}

void put_desc(const struct virtq *q, u16 i, u64 addr, u32 len, u16 flags, u16 next)
{
	struct {
		u64 addr;
		u32 len;
		u16 flags, next;
	} d = { addr, len, flags, next };

	_Static_assert(sizeof(d) == 16, "a descriptor is 16 bytes");
	put(q->desc + 16 * (u64)i, &d, sizeof(d));
}

void offer(const struct virtq *q, u16 head)
{
	u16 idx = get16(q->avail + 2);

	put16(q->avail + 4 + 2 * (idx % q->num), head);
	put16(q->avail + 2, idx + 1);
}

void used_elem(const struct virtq *q, u16 k, u32 *id, u32 *len)
{
	u64 e = q->used + 4 + 8 * (u64)(k % q->num);

	*id = get32(e);
	*len = get32(e + 4);
}

/* ---- the virtio-mmio registers -------------------------------------------------- */

int acc(unsigned slot, u64 reg, unsigned size, bool write, u64 *val)
{
	return virtio_mmio_access(&vm, slot * VIRTIO_MMIO_SLOT + reg, size, write, val, 0);
}

u32 rd_at(unsigned slot, u64 reg)
{
	u64 v = 0xdeadbeefdeadbeefULL;

	assert_int_equal(acc(slot, reg, 4, false, &v), 0);
	assert_int_equal(v >> 32, 0); /* a 32-bit register: nothing above it */
	return (u32)v;
}

void wr_at(unsigned slot, u64 reg, u32 val)
{
	u64 v = val;

	assert_int_equal(acc(slot, reg, 4, true, &v), 0);
}

u32 rd(u64 reg)
{
	return rd_at(dev_slot, reg);
}

void wr(u64 reg, u32 val)
{
	wr_at(dev_slot, reg, val);
}

void wr64(u64 lo_reg, u64 val)
{
	wr(lo_reg, (u32)val);
	wr(lo_reg + 4, (u32)(val >> 32));
}

u32 negotiate(u64 feats)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, ACK);
	wr(R_STATUS, ACK | DRV);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (u32)feats);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, (u32)(feats >> 32));
	wr(R_STATUS, ACK | DRV | FOK);
	return rd(R_STATUS);
}

void set_queue(unsigned q, u32 num, u64 d, u64 a, u64 u)
{
	wr(R_QUEUE_SEL, q);
	wr(R_QUEUE_NUM, num);
	wr64(R_QUEUE_DESC_LO, d);
	wr64(R_QUEUE_DRIVER_LO, a);
	wr64(R_QUEUE_DEVICE_LO, u);
}

/* ---- the interrupt lines ------------------------------------------------------------ */

void vm_set_irq_level(struct vm *v, u32 intid, bool level)
{
	assert_ptr_equal(vm_get(v->id), v); /* one of the test's VMs */
	assert_true(intid >= VIRTIO_MMIO_FIRST_INTID && intid < NINTIDS);
	if (v != &vm)
		return; /* only vm's lines are kept */
	if (level && irq_level[intid] != 1)
		irq_rises[intid]++;
	irq_level[intid] = level;
}

/* ---- Quire's log -------------------------------------------------------------------- */

static void capture(char c)
{
	if (loglen + 1 < sizeof(logbuf))
		logbuf[loglen++] = c;
}

void log_capture(void)
{
	loglen = 0;
	console_set_output(capture);
}

unsigned log_count(const char *word)
{
	unsigned n = 0;

	logbuf[loglen] = 0;
	for (const char *p = logbuf; (p = strstr(p, word)); p++)
		n++;
	return n;
}
