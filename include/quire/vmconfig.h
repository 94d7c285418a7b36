/*
 * VMs to start, from the host DT's /chosen/bootargs (a stop-gap until VM
 * configuration device trees): each `vm=<guest>:<vcpus>:<mem MiB>:<quota pages>:<arg>`.
 */
#ifndef QUIRE_VMCONFIG_H
#define QUIRE_VMCONFIG_H
#include <quire/types.h>

struct vm_config {
	char guest[16];
	unsigned vcpus;
	u64 mem_mib;
	u32 quota; /* pages */
	u64 arg;   /* the guest's x0 */
};

/* Parse every vm= word; returns how many (<= max), or -1 with a message in err. */
int vmconfig_parse(const char *bootargs, struct vm_config *out, unsigned max, char *err, size_t errlen);
/* Is `word` (e.g. "quire.bench=pool") among the bootargs? */
bool bootargs_has(const char *bootargs, const char *word);
#endif
