/* Parsing of vm= words in the bootargs; strict, since a wrong VM is worse than none. */
#include <string.h>
#include <quire/printf.h>
#include <quire/vm.h>
#include <quire/vmconfig.h>

static bool parse_u64(const char **s, u64 *v)
{
	const char *p = *s;
	u64 x = 0;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (~0UL - 9) / 10)
			return false;
		x = x * 10 + (*p - '0');
	}
	*s = p;
	*v = x;
	return true;
}

static int parse_one(const char *w, size_t len, struct vm_config *c, char *err, size_t errlen)
{
	const char *p = w + 3, *end = w + len, *colon = memchr(p, ':', end - p);
	u64 v[4];

	if (!colon || colon == p || (size_t)(colon - p) >= sizeof(c->guest))
		goto bad;
	memcpy(c->guest, p, colon - p);
	c->guest[colon - p] = '\0';
	p = colon;
	for (int i = 0; i < 4; i++) {
		if (p >= end || *p++ != ':' || !parse_u64(&p, &v[i]))
			goto bad;
	}
	if (p != end)
		goto bad;
	if (v[0] < 1 || v[0] > MAX_VCPUS) {
		q_snprintf(err, errlen, "'%.*s': vCPUs must be 1 to %d", (int)len, w, MAX_VCPUS);
		return -1;
	}
	if (v[1] < 1 || v[1] > (1UL << 19)) {
		q_snprintf(err, errlen, "'%.*s': memory must be 1 MiB to 512 GiB", (int)len, w);
		return -1;
	}
	if (v[2] < 1 || v[2] > 0xffffffffUL) {
		q_snprintf(err, errlen, "'%.*s': quota must be 1 to 2^32-1 pages", (int)len, w);
		return -1;
	}
	c->vcpus = v[0];
	c->mem_mib = v[1];
	c->quota = v[2];
	c->arg = v[3];
	return 0;
bad:
	q_snprintf(err, errlen, "'%.*s' is not vm=<guest>:<vcpus>:<mem MiB>:<quota pages>:<arg>",
		   (int)len, w);
	return -1;
}

int vmconfig_parse(const char *s, struct vm_config *out, unsigned max, char *err, size_t errlen)
{
	unsigned n = 0;

	while (*s) {
		size_t len;

		while (*s == ' ' || *s == '\t')
			s++;
		for (len = 0; s[len] && s[len] != ' ' && s[len] != '\t'; len++)
			;
		if (len >= 3 && !strncmp(s, "vm=", 3)) {
			if (n == max) {
				q_snprintf(err, errlen, "more than %u VMs", max);
				return -1;
			}
			if (parse_one(s, len, &out[n], err, errlen))
				return -1;
			n++;
		}
		s += len;
	}
	return n;
}

bool bootargs_has(const char *s, const char *word)
{
	size_t wl = strlen(word);

	while (*s) {
		size_t len;

		while (*s == ' ' || *s == '\t')
			s++;
		for (len = 0; s[len] && s[len] != ' ' && s[len] != '\t'; len++)
			;
		if (len == wl && !strncmp(s, word, wl))
			return true;
		s += len;
	}
	return false;
}
