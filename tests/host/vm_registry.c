#include <stdarg.h>
#include <stdio.h>
#include <quire/vcpu.h>
#include "vm_registry.h"

struct vm *registry[MAX_VMS];
_Atomic unsigned long registry_power_offs, registry_reaps, registry_kicks, registry_logs;
_Atomic u64 registry_now_us;

struct vm *vm_get(unsigned id)
{
	return id >= 1 && id <= MAX_VMS ? registry[id - 1] : NULL;
}

bool vm_power_off(struct vm *vm, const char *how)
{
	(void)how;
	if (atomic_exchange(&vm->off, true))
		return false;
	atomic_fetch_add(&registry_power_offs, 1);
	return true;
}

void vm_reap(struct vm *vm, unsigned cpu)
{
	(void)vm;
	(void)cpu;
	atomic_fetch_add(&registry_reaps, 1);
}

void vcpu_kick(struct vcpu *v)
{
	(void)v;
	atomic_fetch_add(&registry_kicks, 1);
}

void vm_log_once(struct vm *vm, unsigned kind, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_or(&vm->logged, 1u << kind) & (1u << kind))
		return;
	atomic_fetch_add(&registry_logs, 1);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

u64 clock_ticks(void)
{
	return atomic_load(&registry_now_us) * 62;
}

u64 clock_freq(void)
{
	return 62500000;
}

u64 clock_ticks_us(u64 ticks)
{
	return ticks / 62;
}

u64 clock_us(void)
{
	return atomic_fetch_add(&registry_now_us, 1);
}
