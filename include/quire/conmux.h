/*
 * The console multiplexer: one physical UART shared by Quire and every VM.
 * Each VM's output is prefixed, line by line, with its name; typed input
 * goes to one VM at a time or to Quire's monitor, and Ctrl-A pressed three
 * times moves it on (docs/console.md).
 */
#ifndef QUIRE_CONMUX_H
#define QUIRE_CONMUX_H
#include <quire/types.h>

struct vm;

#define CONMUX_ESCAPE 0x01 /* Ctrl-A */

/* A byte a VM wrote to its console (its UART, or QUIRE_HC_PUTC). */
void conmux_vm_output(struct vm *vm, char c);
/* The VM stopped or restarts: print what it left unfinished and forget it. */
void conmux_vm_reset(struct vm *vm);
/* A byte typed on the physical console (interrupt context, on CPU `cpu`). */
void conmux_input(char c, unsigned cpu);
/* Move bytes held for the VM with the input into its FIFO while it has room (UART interrupt). */
void conmux_input_drain(void);
/*
 * Before the VMs are created, for a single VM (boot argument
 * quire.console=raw): its lines go out as it wrote them, with no prefix,
 * for tools that parse a guest's console.
 */
void conmux_raw(void);
/*
 * After the VMs are created: input goes to the first VM (or the monitor if
 * none), or to the monitor if `monitor` (boot argument quire.input=monitor).
 */
void conmux_start(bool monitor);
#endif
