/* SPDX-License-Identifier: MIT */
/* CLOCK_MONOTONIC in seconds, for every program in the tree. */
#ifndef CS_CLOCK_H
#define CS_CLOCK_H
#include <time.h>

static inline double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
#endif
