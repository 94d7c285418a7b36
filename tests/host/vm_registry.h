/* vm_get() for host tests of core code that looks VMs up by id (sharing): tests register theirs. */
#ifndef VM_REGISTRY_H
#define VM_REGISTRY_H
#include <quire/vm.h>

/* Slot id - 1 answers vm_get(id); NULL = no VM. */
extern struct vm *registry[MAX_VMS];
#endif
