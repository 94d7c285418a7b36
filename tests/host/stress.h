/*
 * For the host tests whose threads check as they go (cmocka's asserts are
 * not for threads): FAIL counts an error and prints the first 20, each
 * prefixed with STRESS_NAME; CHECK fails when its condition does not hold.
 */
#ifndef STRESS_H
#define STRESS_H
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <quire/types.h>

static _Atomic unsigned errors;

#define FAIL(...)                                                         \
	do {                                                              \
		if (atomic_fetch_add(&errors, 1) < 20)                    \
			fprintf(stderr, STRESS_NAME ": " __VA_ARGS__);    \
	} while (0)

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			FAIL(__VA_ARGS__); \
	} while (0)

static inline u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}
#endif
