/*
 * Shared by the VM config parser (vmconfig.c), its property readers
 * (vmconfig_props.c) and the checks (vmconfig_check.c).
 */
#ifndef CORE_VMCONFIG_PRIV_H
#define CORE_VMCONFIG_PRIV_H
#include <quire/vmconfig.h>

#define MODULE_PREFIX "module:" /* include/quire/modules.h: tools/vmcheck has no machine.h */

/* Where we are in the tree, so every error can name the node. */
struct ctx {
	const void *fdt;
	int node;
	const char *path;
	char *err;
	size_t errlen;
};

/* The error, "<node>: " and the sentence, in x->err; returns -1. */
int __printf(2, 3) vmcfg_fail(const struct ctx *x, const char *fmt, ...);
const void *vmcfg_prop(const struct ctx *x, const char *name, bool required, int *len, int *rc);
/* Typed readers: 0 if the property is good or may be absent (and is), else -1 with the error. */
int vmcfg_get_u32(const struct ctx *x, const char *name, bool required, u32 min, u32 max, u32 *v);
int vmcfg_get_u64(const struct ctx *x, const char *name, u64 *v);
int vmcfg_get_str(const struct ctx *x, const char *name, bool required, char *buf, size_t size);
int vmcfg_get_choice(const struct ctx *x, const char *prop, const char *const *names, unsigned n,
		     const char *want, unsigned *out);
bool vmcfg_good_name(const char *s, size_t len);
int vmcfg_known_props(const struct ctx *x, const char *const *known);
int vmcfg_no_children(const struct ctx *x);
#endif
