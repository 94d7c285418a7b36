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
#endif
