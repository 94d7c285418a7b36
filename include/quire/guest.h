/* Guest images carried inside quire.bin. */
#ifndef QUIRE_GUEST_H
#define QUIRE_GUEST_H
#include <quire/types.h>

struct guest_image {
	const char *name;
	const u8 *data;
	u64 size;
};

/* Provided by the build (arch/arm64/guest_images.S); ends with a NULL name. */
extern const struct guest_image guest_images[];

const struct guest_image *guest_find(const char *name);
#endif
