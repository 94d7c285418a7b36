/*
 * Reading a VM config's properties strictly: each reader checks the type,
 * size and range and refuses with one sentence naming the node and the
 * property, so a misspelt or malformed property is never silently ignored.
 */
#include <stdarg.h>
#include <string.h>
#include <libfdt.h>
#include <quire/printf.h>
#include "vmconfig_priv.h"

int __printf(2, 3) vmcfg_fail(const struct ctx *x, const char *fmt, ...)
{
	int len = q_snprintf(x->err, x->errlen, "%s: ", x->path);
	va_list ap;

	if (len < 0 || (size_t)len >= x->errlen)
		return -1;
	va_start(ap, fmt);
	q_vsnprintf(x->err + len, x->errlen - len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The property, or NULL: *rc = 0 if it may be absent, else -1 with the error. */
const void *vmcfg_prop(const struct ctx *x, const char *name, bool required, int *len, int *rc)
{
	const void *p = fdt_getprop(x->fdt, x->node, name, len);

	*rc = 0;
	if (!p && required)
		*rc = vmcfg_fail(x, "missing required property '%s'", name);
	return p;
}

int vmcfg_get_u32(const struct ctx *x, const char *name, bool required, u32 min, u32 max, u32 *v)
{
	int len, rc;
	const fdt32_t *p = vmcfg_prop(x, name, required, &len, &rc);

	if (!p)
		return rc;
	if (len != 4)
		return vmcfg_fail(x, "property '%s' must be one 32-bit cell, not %d bytes", name, len);
	*v = fdt32_to_cpu(*p);
	if (*v < min || *v > max)
		return vmcfg_fail(x, "property '%s' must be %u to %u, not %u", name, min, max, *v);
	return 0;
}

int vmcfg_get_u64(const struct ctx *x, const char *name, u64 *v)
{
	int len, rc;
	const void *p = vmcfg_prop(x, name, false, &len, &rc);
	fdt64_t be;

	if (!p)
		return rc;
	if (len != 8)
		return vmcfg_fail(x, "property '%s' must be one 64-bit value (/bits/ 64 <n>), not %d bytes",
				  name, len);
	memcpy(&be, p, 8); /* property values are only 4-byte aligned */
	*v = fdt64_to_cpu(be);
	return 0;
}

int vmcfg_get_str(const struct ctx *x, const char *name, bool required, char *buf, size_t size)
{
	int len, rc;
	const char *p = vmcfg_prop(x, name, required, &len, &rc);

	if (!p)
		return rc;
	if (len < 1 || p[len - 1] != '\0')
		return vmcfg_fail(x, "property '%s' must be a NUL-terminated string", name);
	if (strlen(p) != (size_t)len - 1)
		return vmcfg_fail(x, "property '%s' must be one string, not a list", name);
	if (len == 1)
		return vmcfg_fail(x, "property '%s' must not be empty", name);
	if ((size_t)len > size)
		return vmcfg_fail(x, "property '%s' must be at most %zu characters, not %d", name, size - 1,
				  len - 1);
	memcpy(buf, p, len);
	return 0;
}

/* VM and share-domain names: 1..15 of [A-Za-z0-9_-], so they print and compare cleanly. */
bool vmcfg_good_name(const char *s, size_t len)
{
	if (len < 1 || len >= VMCFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Every property of the node must be in known[]; the error lists them. */
int vmcfg_known_props(const struct ctx *x, const char *const *known)
{
	int off;

	fdt_for_each_property_offset(off, x->fdt, x->node) {
		const char *name;
		char list[192];
		size_t used = 0;
		unsigned i;

		if (!fdt_getprop_by_offset(x->fdt, off, &name, NULL))
			return vmcfg_fail(x, "unreadable property");
		for (i = 0; known[i] && strcmp(known[i], name); i++)
			;
		if (known[i])
			continue;
		list[0] = '\0';
		for (i = 0; known[i] && used < sizeof(list); i++)
			used += q_snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					   known[i]);
		if (!known[0])
			return vmcfg_fail(x, "unknown property '%s' (this node takes none)", name);
		return vmcfg_fail(x, "unknown property '%s' (known: %s)", name, list);
	}
	return 0;
}

int vmcfg_no_children(const struct ctx *x)
{
	int child = fdt_first_subnode(x->fdt, x->node);

	if (child >= 0)
		return vmcfg_fail(x, "unknown child node '%s'", fdt_get_name(x->fdt, child, NULL));
	return 0;
}

/* An optional string property that must be one of names (n of them, quoted in "want"); its index in *out. */
int vmcfg_get_choice(const struct ctx *x, const char *prop, const char *const *names, unsigned n,
		     const char *want, unsigned *out)
{
	char v[VMCFG_NAME_MAX] = "";
	unsigned i;

	if (vmcfg_get_str(x, prop, false, v, sizeof(v)) < 0)
		return -1;
	if (!v[0])
		return 0; /* absent: vmcfg_get_str refuses empty strings */
	for (i = 0; i < n && strcmp(v, names[i]); i++)
		;
	if (i == n)
		return vmcfg_fail(x, "property '%s' must be %s, not \"%s\"", prop, want, v);
	*out = i;
	return 0;
}
