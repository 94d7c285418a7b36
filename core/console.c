/*
 * printk: format into a per-call buffer, then write it under the console
 * lock so lines from different CPUs never interleave. VMs print through the
 * same lock (core/conmux.c), and the screen remembers whose unfinished line
 * the cursor is on, so nobody's text lands inside anybody else's line.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <quire/console.h>
#include <quire/printf.h>
#include <quire/spinlock.h>

static console_putc_fn console_putc;
static spinlock_t lock = SPINLOCK_INIT;
/* Off until the MMU is on: exclusives need Normal memory. Only one CPU runs then. */
static bool locking;
/* Written under the lock; atomic so the monitor may peek without it. */
static _Atomic unsigned owner = CONSOLE_NOBODY;

void console_enable_locking(void)
{
	locking = true;
}

void console_set_output(console_putc_fn putc)
{
	console_putc = putc;
}

void console_lock(void)
{
	if (locking)
		spin_lock(&lock);
}

void console_unlock(void)
{
	if (locking)
		spin_unlock(&lock);
}

unsigned console_line_owner(void)
{
	return atomic_load_explicit(&owner, memory_order_relaxed);
}

static void raw(char c)
{
	if (console_putc)
		console_putc(c);
}

void console_put(unsigned who, char c)
{
	unsigned o = console_line_owner();

	if (o != who && o != CONSOLE_NOBODY) {
		raw('\r');
		raw('\n');
	}
	raw(c);
	atomic_store_explicit(&owner, c == '\n' ? CONSOLE_NOBODY : who, memory_order_relaxed);
}

void console_puts(unsigned who, const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			console_put(who, '\r');
		console_put(who, *s);
	}
}

void console_write(const char *s)
{
	console_lock();
	console_puts(CONSOLE_QUIRE, s);
	console_unlock();
}

void console_write_crash(const char *s)
{
	bool locked = locking && spin_lock_bounded(&lock, 1UL << 24);

	console_puts(CONSOLE_QUIRE, s);
	if (locked)
		spin_unlock(&lock);
}

void printk(const char *fmt, ...)
{
	char buf[512]; /* the longest lines: a refused VM config with its reason */
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf);
}
