/*
 * A VM's swap set-up from its config, and how its vCPUs wait for the disk:
 * swap_gen counts what may end a wait, swap_wake kicks the waiters. How swap
 * works, and which file does what: swap_priv.h.
 */
#include <quire/console.h>
#include <quire/vcpu.h>
#include "swap_priv.h"

void swap_vm_init(struct vm *vm)
{
	struct vm_swap *s = &vm->swap;

	s->quota = MIN(vm->cfg.swap_limit / PAGE_SIZE, (u64)~0u);
	s->hand = vm->ram_base.bits;
	s->on = s->quota && swap_enabled();
	if (s->on) {
		vm->pool.data_limit = vm->cfg.resident_limit / PAGE_SIZE;
		/* Past resident-min the machine may run short: then it evicts below its limit. */
		vmpool_overcommit(&vm->pool, vm->pool.quota - vmconfig_overcommit_pages(&vm->cfg));
	} else if (s->quota)
		printk("quire: %s: swap-mib is set but there is no swap disk: its resident limit is a hard "
		       "limit\n", vm->name);
}

bool swap_vm_idle(struct vm *vm)
{
	return !atomic_load(&vm->swap.inflight);
}

u64 swap_gen(void)
{
	return atomic_load(&sw.gen);
}

void swap_wake(void)
{
	atomic_fetch_add(&sw.gen, 1);
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = vm_get(id);

		for (unsigned k = 0; vm && k < vm->nvcpus; k++)
			if (vm->vcpu[k] && atomic_load(&vm->vcpu[k]->io_wait))
				vcpu_kick(vm->vcpu[k]);
	}
}
