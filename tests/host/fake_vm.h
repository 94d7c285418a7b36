/*
 * Stand-ins for the console tests (conmux, monitor): VM slots with states
 * and the lifecycle calls, the vPL011's input side, and a screen that
 * captures what the console prints.
 */
#ifndef FAKE_VM_H
#define FAKE_VM_H
#include <stddef.h>
#include <quire/vcpu.h>
#include <quire/vm.h>

#define FAKE_RX_MAX 8192

/* Slot i holds VM id i + 1 when fake_vms[i].id is set. */
extern struct vm fake_vms[MAX_VMS];
extern struct vcpu fake_vcpus[MAX_VMS][MAX_VCPUS]; /* fake_vm_add gives a VM two, with empty exit profiles */
extern enum vm_state fake_state[MAX_VMS];
/* What vpl011_input got, per VM, and whether its FIFO has room. */
extern char fake_rx[MAX_VMS][FAKE_RX_MAX];
extern size_t fake_nrx[MAX_VMS];
extern bool fake_room[MAX_VMS];
/* If not 0, what the next lifecycle call returns instead of acting. */
extern int fake_fail_rc;
/* Lifecycle calls, e.g. "pause:alpha restart:beta/cpu3 ". */
extern char fake_calls[512];
/* What pool_free_pages() answers. */
extern u32 fake_free_pages;
/* Calls of console_input_resume(). */
extern unsigned fake_input_resumed;

/* The pages of the last share_set_rate (-1: none). */
extern int fake_rate_set;

/* Empty every slot and forget every call and byte. */
void fake_vm_reset(void);
/* Fill slot id with a running VM named name (256 MiB, 2 vCPUs, 128 MiB limit). */
struct vm *fake_vm_add(unsigned id, const char *name);

/* The screen: console output since the last screen_clear(), NUL-terminated. */
extern char screen[1 << 20];
extern size_t nscreen;
void screen_clear(void);
/* Send console output to the screen and start from a clean line. */
void screen_attach(void);

/* fake_balloon.c: only the VM named "ballooned" has a balloon; the target last set. */
extern u32 fake_balloon_target;
#endif
