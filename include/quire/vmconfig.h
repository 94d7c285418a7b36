/*
 * VM configuration: a device tree (dts/vms/, docs/config.md) parsed and
 * checked by the same code at build time (tools/vmcheck, on the host) and at
 * boot (Quire). A config is accepted whole or refused whole.
 */
#ifndef QUIRE_VMCONFIG_H
#define QUIRE_VMCONFIG_H
#include <quire/types.h>

#define VMCFG_MAX_VMS 8
#define VMCFG_MAX_VCPUS 8
#define VMCFG_MAX_CPUS 8
#define VMCFG_NAME_MAX 16	  /* with the NUL */
#define VMCFG_BOOTARGS_MAX 256	  /* with the NUL */
#define VMCFG_IMAGE_MAX 24	  /* an image name with the NUL: "module:" and a 15-character boot module name */
#define VMCFG_IPA_BITS 39	  /* the guest-physical space Quire gives every VM */
#define VMCFG_RAM_BASE 0x40000000UL /* default memory-base, as on QEMU virt */
#define VMCFG_SCAN_PAGES 64	  /* default share-scan-pages */
#define VMCFG_CPUS_ALL 0xffffffffu /* default affinity: every CPU the machine has */
#define VMCFG_DT_MAX (64UL << 10) /* a Linux guest's DT slot at the RAM base */
#define VMCFG_BALLOON_SLOT 0	  /* the virtio-mmio slot of a VM's balloon */
#define VMCFG_DISK_SLOT 1	  /* ... of its disk */
#define VMCFG_NET_SLOT 2	  /* ... of its network device */
#define VMCFG_DISK_NAME_MAX 37	  /* a GPT partition name with the NUL (36 UTF-16 code units, ASCII here) */
#define VMCFG_DISK_MIN_MIB 1	  /* default disk-min-mib */

enum vm_sharing { SHARE_OFF, SHARE_ZERO, SHARE_SELF, SHARE_DOMAIN };
/* What a VM at its resident limit does when its swap space is full. */
enum vm_swap_full { SWAP_FULL_STOP, SWAP_FULL_WAIT };

struct vm_config {
	char name[VMCFG_NAME_MAX];	/* the node name under /vms */
	unsigned vcpus;
	u64 mem_base, mem_size;		/* guest RAM, bytes */
	u64 resident_limit;		/* bytes of guest RAM it may hold in machine pages */
	u64 resident_min;		/* ... of which the machine keeps this much for it (less only with swap) */
	char kernel[VMCFG_IMAGE_MAX];	/* image names: carried in quire.bin, or "module:NAME", a boot module */
	char initramfs[VMCFG_IMAGE_MAX]; /* "" if none */
	char bootargs[VMCFG_BOOTARGS_MAX];
	bool bootargs_set; /* the config has bootargs (perhaps ""); if not, Linux guests get Quire's default */
	u32 cpus;			/* affinity: bit i = physical CPU i may run its vCPUs;
					   VMCFG_CPUS_ALL if the config names none */
	u64 arg;			/* bare (non-Linux) images: x0 at entry */
	enum vm_sharing sharing;
	char share_domain[VMCFG_NAME_MAX];
	u32 scan_pages;			/* sharing scanner: pages per slice */
	u64 swap_limit;			/* bytes of swap space */
	enum vm_swap_full swap_full;
	bool balloon;			/* a virtio-balloon in virtio-mmio slot VMCFG_BALLOON_SLOT */
	bool balloon_oom;		/* ... offering deflate on OOM (Linux then keeps MemTotal as it is) */
	char disk[VMCFG_DISK_NAME_MAX];	/* the host disk's GPT partition it gets as its virtio-blk disk; "" none */
	bool disk_ro;			/* ... read-only */
	u64 disk_min;			/* ... which must hold at least this many bytes */
	bool blocks;			/* sequential faults may map 2 MiB blocks (and quire.blocks=off is not given) */
	bool net;			/* a virtio-net device, a port of Quire's switch */
	u8 mac[6];			/* ... its address: net-mac, or one made from the VM's name */
};

struct gpt;

/* An image the build carries, as the checker needs it (name, bytes). */
struct vmcfg_image {
	const char *name;
	const u8 *data;
	u64 size;
};

/* What the configuration is checked against. */
struct vmcfg_limits {
	unsigned cpus;		/* physical CPUs that can run vCPUs */
	u64 machine_pages;	/* pages the VMM pool can hand to VMs */
	const struct vmcfg_image *images; /* ends with a NULL name */
	bool swap;		/* there is a swap disk: VMs with swap are guaranteed only their resident-min */
	bool modules_later;	/* the build: boot modules are not known, VMs naming one are checked at boot */
	bool disk_known;	/* the host disk's partitions are known (at boot; vmcheck --disk) */
	const struct gpt *disk;	/* ... its partition table; NULL: no table, or no disk */
};

/* Device windows of the guest platform (docs/guest-platform.md): RAM may not overlap them. */
struct vmcfg_window {
	u64 base, size;
	const char *what;
};
extern const struct vmcfg_window vmcfg_windows[]; /* ends with a NULL what */

/*
 * Parse a VM-config FDT into out[0..max). The blob must be 8-byte aligned
 * and the caller makes sure its fdt_totalsize() bytes are readable. Returns the number of VMs (>= 1), or -1
 * with one clear sentence in err naming the node and property at fault.
 * *machine_mib gets the root's machine-memory-mib (0 if absent).
 */
int vmconfig_parse(const void *fdt, struct vm_config *out, unsigned max, u32 *machine_mib,
		   char *err, size_t errlen);
/* Check parsed VMs against what this machine and build have: 0, or -1 with err. */
int vmconfig_check(const struct vm_config *c, unsigned n, const struct vmcfg_limits *lim, char *err,
		   size_t errlen);

/*
 * At boot, before vmconfig_check: a VM whose kernel or initramfs is a boot
 * module ("module:NAME") that is absent or does not suit it, or whose disk
 * partition the host disk lacks or cannot give, is taken out of c[0..n),
 * refused alone, as no build could check it; one line for each in msg
 * ("quire: VM not started: ..."). Returns how many VMs are left.
 */
unsigned vmconfig_drop_vms(struct vm_config *c, unsigned n, const struct vmcfg_limits *lim, char *msg,
				  size_t msglen);
/* Does this image name a boot module ("module:NAME")? */
bool vmconfig_is_module(const char *image);

/*
 * The pages a VM may hold: its resident limit plus the most stage-2 table
 * pages its RAM can need (level 1 root, one level-2 table per GiB, one
 * level-3 table per 2 MiB) and the tables of its device mappings.
 */
u32 vmconfig_quota_pages(const struct vm_config *c);
/* Pages of its limit the machine need not keep for a VM that swaps: limit less resident-min. */
static inline u32 vmconfig_overcommit_pages(const struct vm_config *c)
{
	return c->swap_limit && c->resident_min < c->resident_limit ? (c->resident_limit - c->resident_min) >> 12 : 0;
}
/* The pages the machine keeps for it: its quota, less the above if there is a swap disk. */
u32 vmconfig_guaranteed_pages(const struct vm_config *c, bool swap);

/* Where a Linux guest's pieces go (arm64 boot protocol); shared by the checker and the loader. */
struct linux_layout {
	u64 dtb, kernel, initrd; /* guest-physical addresses */
};
/*
 * Lay out a Linux Image (its 64-byte header in hdr, size bytes) and an
 * initramfs of initrd_size bytes (0: none, out->initrd = 0) in c's RAM.
 * 0, or -1 with err.
 */
int linux_layout(const struct vm_config *c, const u8 *hdr, u64 size, u64 initrd_size,
		 struct linux_layout *out, char *err, size_t errlen);
/* Is this an arm64 Linux Image (header magic)? */
bool is_linux_image(const u8 *data, u64 size);

/*
 * What a VM's kernel image is, by its first bytes (docs/guest-platform.md):
 * an arm64 Linux Image (its header's magic), a Quire test guest (the marker
 * below), an ELF (AArch64, little-endian, 64-bit), or else a raw binary.
 * Linux, ELF and raw images are booted as QEMU's -kernel boots them.
 */
enum image_kind { IMAGE_LINUX, IMAGE_TEST_GUEST, IMAGE_ELF, IMAGE_RAW };
/* A Quire test guest: these 8 bytes at offset 8, after a branch over them (tests/guests/start.S). */
#define IMAGE_TEST_GUEST_MAGIC "QUIRE-TG"
#define IMAGE_TEST_GUEST_MAGIC_OFF 8
#define IMAGE_RAW_OFFSET 0x80000UL /* a raw binary's place in RAM, as QEMU's KERNEL64_LOAD_ADDR */
#define IMAGE_MAX_PHDRS 64	   /* program headers an ELF may have */
#define IMAGE_MAX_SEGMENTS 16	   /* ... of which loadable ones */

/* A piece of the image put in guest RAM: filesz bytes from offset, then zeroes up to memsz. */
struct image_segment {
	u64 ipa, offset, filesz, memsz;
};

/* Where everything goes, and the first vCPU's entry state. */
struct image_layout {
	enum image_kind kind;
	u64 entry, x0;	     /* x0 = the DT (Linux, raw), arg (test guest), 0 (ELF, as QEMU) */
	u64 dtb, dtb_room;   /* the guest DT's place and the most it may take; 0: none */
	u64 initrd;	     /* 0: none */
	u64 loaded;	     /* bytes written before the first instruction, at most (the resident-limit check) */
	unsigned nseg;	     /* segments, in address order, not overlapping */
	struct image_segment seg[IMAGE_MAX_SEGMENTS];
};

enum image_kind image_kind(const u8 *data, u64 size);
const char *image_kind_name(enum image_kind kind);
/*
 * Lay out c's kernel image (size bytes at data) and an initramfs of
 * initrd_size bytes (0: none) in c's RAM, refusing what the kind cannot
 * take (an initramfs for an ELF, bootargs or an initramfs for a test guest,
 * arg for anything but a test guest). Every ELF field is checked: its
 * segments lie in the file and in RAM and do not overlap. 0, or -1 with err
 * naming the VM and the reason.
 */
int image_layout(const struct vm_config *c, const u8 *data, u64 size, u64 initrd_size,
		 struct image_layout *out, char *err, size_t errlen);

/* Is `word` (e.g. "quire.novm") among the bootargs? */
bool bootargs_has(const char *bootargs, const char *word);
/* The decimal value of the first "key" (ending in '=') word in bootargs: 1; 0 if none; -1 if not a number. */
int bootargs_u64(const char *bootargs, const char *key, u64 *val);
#endif
