#ifndef QUIRE_LIBC_STDLIB_H
#define QUIRE_LIBC_STDLIB_H
#include <stddef.h>
unsigned long strtoul(const char *s, char **end, int base);
#endif
