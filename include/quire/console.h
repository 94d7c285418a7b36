/* The hypervisor console: one output device, shared by all CPUs under a lock. */
#ifndef QUIRE_CONSOLE_H
#define QUIRE_CONSOLE_H
#include <quire/types.h>

typedef void (*console_putc_fn)(char c);

void console_set_output(console_putc_fn putc);
void console_enable_locking(void);
/* Writes s as one unit: no other CPU's output lands inside it. */
void console_write(const char *s);
/* For crash reports: takes the lock if it can, writes anyway if its holder died. */
void console_write_crash(const char *s);
void printk(const char *fmt, ...) __printf(1, 2);

/*
 * The screen's open line, shared with the console multiplexer (core/conmux.c,
 * docs/console.md): the unfinished line the cursor is on belongs to whoever
 * printed it, and anyone else who prints ends it ("\r\n") first. Writers are
 * VMs (their id, 1..), Quire, or the monitor's prompt line.
 */
#define CONSOLE_QUIRE 0u
#define CONSOLE_MONITOR 0xfeu
#define CONSOLE_NOBODY 0xffu /* no open line: the cursor is at the start of a line */

void console_lock(void);
void console_unlock(void);
/* Who printed the open line (lock held to act on the answer). */
unsigned console_line_owner(void);
/* Lock held: put c raw as who's output, first ending anyone else's open line. */
void console_put(unsigned who, char c);
/* Lock held: put s as who's output, each "\n" as "\r\n". */
void console_puts(unsigned who, const char *s);
#endif
