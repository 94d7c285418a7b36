#include "vm_registry.h"

struct vm *registry[MAX_VMS];

struct vm *vm_get(unsigned id)
{
	return id >= 1 && id <= MAX_VMS ? registry[id - 1] : NULL;
}
