/* Time for core code: the arch's counter, as microseconds. */
#ifndef QUIRE_CLOCK_H
#define QUIRE_CLOCK_H
#include <quire/types.h>

/* Microseconds since the counter started (about when the machine did). */
u64 clock_us(void);
/* The counter, and its frequency (for figures finer than a microsecond). */
u64 clock_ticks(void);
u64 clock_freq(void);
/* Counter ticks as microseconds. */
u64 clock_ticks_us(u64 ticks);
#endif
