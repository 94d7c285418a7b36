/*
 * Boot modules: guest kernels, initramfs, raw images and a VM config the
 * loader (U-Boot, QEMU's -device loader) put in RAM and described in the
 * host DT's /chosen, in the binding Xen's dom0less boot uses
 * (docs/config.md, "Boot modules"). A VM config names one as "module:NAME".
 */
#ifndef QUIRE_MODULES_H
#define QUIRE_MODULES_H
#include <quire/machine.h>
#include <quire/vmconfig.h>

#define MAX_MODULES 8
#define MODULE_NAME_MAX 16	/* quire,name: 1 to 15 of A-Z a-z 0-9 _ -, as VM names */
#define MODULE_PREFIX "module:" /* how a VM config's kernel or initramfs names a boot module */

enum module_kind { MODULE_RAW, MODULE_KERNEL, MODULE_RAMDISK, MODULE_CONFIG };

struct boot_module {
	char image[sizeof(MODULE_PREFIX) - 1 + MODULE_NAME_MAX]; /* "module:NAME", as configs write it */
	enum module_kind kind;
	struct region r;	/* in RAM, page-aligned start, kept out of the page pool */
	char node[48];		/* its node in the host DT */
	struct vmcfg_image img; /* as guest_find gives it: image, its bytes (Quire's map is the identity) */
};

/* The modules in use, after machine_from_fdt and machine_fit (refused ones are not here). */
extern struct boot_modules {
	struct boot_module mod[MAX_MODULES];
	unsigned n;
} boot_modules;

/*
 * Read /chosen's module nodes (chosen < 0: none): each is checked as
 * hostile, refused with a note naming node and property, and the good ones
 * reserved in m. A VM-config module becomes m->boot_module. Called by
 * machine_from_fdt after RAM, reservations and /chosen's linux,initrd-*.
 */
void modules_parse(const void *fdt, int chosen, struct machine *m);

/* machine_fit's part: modules outside the RAM left, or over Quire's own image, are refused. */
void modules_fit(struct machine *m, struct region image);

/* The module a config names ("module:NAME"), or NULL. */
const struct boot_module *module_find(const char *image);

/* Append the modules VMs may boot (not a config) to out[0..max) as images; how many. */
unsigned modules_images(struct vmcfg_image *out, unsigned max);

const char *module_kind_name(enum module_kind k);

/* core/machine*.c's, for modules.c: a "quire: host DT: " line, and RAM kept out of the pool. */
void machine_note(struct machine *m, const char *line);
void machine_reserve(struct machine *m, struct region r, const char *name);
#endif
