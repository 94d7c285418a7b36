/* Quire's own formatter: a subset of C99 printf, shared by hypervisor and host tests. */
#ifndef QUIRE_PRINTF_H
#define QUIRE_PRINTF_H
#include <stdarg.h>
#include <quire/types.h>

/* Supports %d %i %u %x %X %p %s %c %% with '-', '0', width, precision for %s and l/ll/z. */
int q_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int q_snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
#endif
