/*
 * What the virtio host tests share (test_virtq.c, test_virtio_mmio.c,
 * test_virtio_balloon.c; test_discard.c takes the machine and its VMs
 * from here too):
 * a machine (a page pool over host memory, sharing with one image page,
 * a swap disk if asked for), VMs on it with 16 MiB of RAM under the real
 * stage-2 walker on the fake arch; the driver's side of guest memory and
 * of split virtqueues in it; the virtio-mmio registers as a driver
 * reaches them; the interrupt lines and Quire's log as the tests look at
 * them. Every call asserts that what a driver may expect to work works
 * (cmocka).
 */
#ifndef VIRTIO_HELPERS_H
#define VIRTIO_HELPERS_H
#include <stddef.h>
#include <quire/virtio.h>
#include <quire/vm.h>

#define MACH_BASE 0x80000000UL
#define IMG_BASE 0x20000000UL /* an image: machine memory outside the pool */
#define RAM GUEST_RAM_BASE
#define RAM_SIZE MiB(16)
#define RAM_END (RAM + RAM_SIZE)
#define PG(n) (RAM + (u64)(n) * PAGE_SIZE)

/* The usual rings: descriptor table in page 0 (256 * 16 bytes fit), driver area in page 1, device area in page 2. */
#define Q_DESC PG(0)
#define Q_AVAIL PG(1)
#define Q_USED PG(2)
#define BUF(n) PG(8 + (n)) /* buffers from page 8 */

/* ---- the machine and its VMs ------------------------------------------------ */

extern struct pool pool;
extern u32 total;		  /* machine pages in the pool */
extern u8 img_orig[PAGE_SIZE];	  /* the image page's bytes */
extern struct vm vm;		  /* the VM under test: the driver-side helpers below reach its memory */

/* A pool of `pages` machine pages and sharing over it, with one image page (the zero page is taken). */
void setup_machine(u32 pages);
/* A swap disk of `pages` 4 KiB slots whose requests wait for fake_blk_complete, and swap over it. */
void setup_swap_disk(u32 pages);
/* VM id in *v (registered for vm_get): RAM at RAM, RAM_SIZE bytes; its pool quota; sharing pol. */
void setup_vm(struct vm *v, u8 id, u32 quota, enum vm_sharing pol);
/* v swaps: a resident limit of limit pages (its guarantee too), and slots pages of swap space (0: none). */
void setup_vm_swap(struct vm *v, u32 limit, u32 slots);
/* cmocka teardown: the disk's requests completed, every registered VM torn down, the machine gone. */
int teardown(void **state);

/* ---- guest memory, the driver's side ---------------------------------------- */

/* Write len bytes into v's memory at ipa (gmem_copy, which must work; its buffer goes both ways, hence no const). */
void put_in(struct vm *v, u64 ipa, const void *p, u64 len);
/* The same in vm, and reading it back. */
void put(u64 ipa, const void *p, u64 len);
void get(u64 ipa, void *p, u64 len);
void put16(u64 ipa, u16 v);
u16 get16(u64 ipa);
u32 get32(u64 ipa);

/* ---- split virtqueues, the driver's side -------------------------------------- */

/*
 * A queue of num entries as a driver sets one up in vm, its three areas
 * zeroed (a whole page each from where they start), indices 0; *q holds
 * where they are (and is ready, for a test that drives it directly).
 */
void queue_init_at(struct virtq *q, u16 num, u64 desc, u64 avail, u64 used);
/* The same on the usual rings (Q_DESC, Q_AVAIL, Q_USED). */
void queue_init(struct virtq *q, u16 num);
/* Descriptor i of q's table. */
void put_desc(const struct virtq *q, u16 i, u64 addr, u32 len, u16 flags, u16 next);
/* Make chain head available: the ring entry, then avail->idx. */
void offer(const struct virtq *q, u16 head);
/* The used ring's entry k: id and len. */
void used_elem(const struct virtq *q, u16 k, u32 *id, u32 *len);

/* ---- the virtio-mmio registers, as a driver knows them (virtio 1.x, 4.2.2) ---- */

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_VENDOR_ID 0x00c
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_DRIVER_LO 0x090
#define R_QUEUE_DRIVER_HI 0x094
#define R_QUEUE_DEVICE_LO 0x0a0
#define R_QUEUE_DEVICE_HI 0x0a4
#define R_SHM_LEN_LO 0x0b0
#define R_CONFIG_GEN 0x0fc
#define R_CONFIG 0x100

#define MAGIC 0x74726976u
#define VENDOR 0x554d4551u

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK
#define NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET
#define V1 (1UL << VIRTIO_F_VERSION_1)

/* The slot rd, wr, wr64, negotiate and set_queue talk to. */
extern unsigned dev_slot;

/* vm's access to register reg of slot: virtio_mmio_access's answer. */
int acc(unsigned slot, u64 reg, unsigned size, bool write, u64 *val);
/* 32-bit accesses that must work. */
u32 rd_at(unsigned slot, u64 reg);
void wr_at(unsigned slot, u64 reg, u32 val);
u32 rd(u64 reg);
void wr(u64 reg, u32 val);
/* A 64-bit register pair, low half first. */
void wr64(u64 lo_reg, u64 val);
/* Reset, then the driver's steps up to FEATURES_OK with feats: the status read back. */
u32 negotiate(u64 feats);
/* Queue q's size and areas. */
void set_queue(unsigned q, u32 num, u64 d, u64 a, u64 u);

/* ---- the interrupt lines (vm_set_irq_level: vm's are kept, other VMs' only checked) ---- */

#define INTID(s) (VIRTIO_MMIO_FIRST_INTID + (s))
#define NINTIDS (VIRTIO_MMIO_FIRST_INTID + VIRTIO_MMIO_SLOTS)
extern int irq_level[NINTIDS];		/* the last level set; -1 never set */
extern unsigned irq_rises[NINTIDS];	/* low (or never set) to high */

/* ---- Quire's log ------------------------------------------------------------------ */

extern size_t loglen;
/* From now on, capture what Quire prints (forgetting what was captured). */
void log_capture(void);
/* How often word occurs in what was captured. */
unsigned log_count(const char *word);
#endif
