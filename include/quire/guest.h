/* Guest images carried inside quire.bin. */
#ifndef QUIRE_GUEST_H
#define QUIRE_GUEST_H
#include <quire/types.h>

#include <quire/vmconfig.h>

/* The images are what the config checker looks at (struct vmcfg_image: name, bytes). */

/* Provided by the build (arch/arm64/guest_images.S); ends with a NULL name. */
extern const struct vmcfg_image guest_images[];

const struct vmcfg_image *guest_find(const char *name);
#endif
