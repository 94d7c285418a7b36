#ifndef QUIRE_BANNER_H
#define QUIRE_BANNER_H
#include <quire/machine.h>

struct boot_info {
	const char *platform;
	unsigned el;
	unsigned entry_el;
	unsigned cpus_online;
	paddr_t image_base;
	u64 image_size;
	paddr_t fdt;
};

/* The boot banner, as text, into buf; returns its length (snprintf-style). */
int banner_format(char *buf, size_t size, const struct machine *m, const struct boot_info *b);
#endif
