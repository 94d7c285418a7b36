/*
 * Quire's monitor: a command line on the console, for listing VMs, their
 * memory counters, and pausing, resuming, killing or restarting them. The
 * console multiplexer gives it the input (Ctrl-A three times; docs/console.md)
 * and serializes its calls.
 */
#ifndef QUIRE_MONITOR_H
#define QUIRE_MONITOR_H

#define MONITOR_PROMPT "quire> "
#define MONITOR_LINE 80 /* longest command line, with the NUL: typing stops there */

/* The input came to the monitor: start an empty line and show the prompt. */
void monitor_enter(void);
/* A byte typed while the monitor has the input (interrupt context, on CPU cpu). */
void monitor_input(char c, unsigned cpu);
/* Run one command line, as Enter does (without the prompt). */
void monitor_run(const char *line, unsigned cpu);
#endif
