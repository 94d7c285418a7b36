/*
 * printk: format into a per-call buffer, then write it under the console
 * lock so lines from different CPUs never interleave.
 */
#include <stdarg.h>
#include <quire/console.h>
#include <quire/printf.h>
#include <quire/spinlock.h>

static console_putc_fn console_putc;
static spinlock_t console_lock = SPINLOCK_INIT;
/* Off until the MMU is on: exclusives need Normal memory. Only one CPU runs then. */
static bool locking;

void console_enable_locking(void)
{
	locking = true;
}

void console_set_output(console_putc_fn putc)
{
	console_putc = putc;
}

static void emit(const char *s)
{
	if (!console_putc)
		return;
	for (; *s; s++) {
		if (*s == '\n')
			console_putc('\r');
		console_putc(*s);
	}
}

void console_write(const char *s)
{
	if (!locking) {
		emit(s);
		return;
	}
	spin_lock(&console_lock);
	emit(s);
	spin_unlock(&console_lock);
}

void console_write_crash(const char *s)
{
	bool locked = locking && spin_lock_bounded(&console_lock, 1UL << 24);

	emit(s);
	if (locked)
		spin_unlock(&console_lock);
}

void printk(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	q_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf);
}
