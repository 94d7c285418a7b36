/*
 * What core code asks of the rest of Quire about VMs, for host tests of the
 * violation handler, sharing and swap: vm_get() answers from a registry
 * the tests fill in; stopping, reaping, kicks and logging are recorded.
 */
#ifndef VM_REGISTRY_H
#define VM_REGISTRY_H
#include <quire/vm.h>

/* Slot id - 1 answers vm_get(id); NULL = no VM. */
extern struct vm *registry[MAX_VMS];
/* Calls so far: vm_power_off, vm_reap, vcpu_kick, vm_log_once. */
extern _Atomic unsigned long registry_power_offs, registry_reaps, registry_kicks, registry_logs;
/* The fake clock_us() (tests may move it). */
extern _Atomic u64 registry_now_us;
#endif
