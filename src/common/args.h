/* SPDX-License-Identifier: MIT */
/* The one parser of numbers and durations for every program's command line
 * and for the daemon's query strings: whole numbers, decimals, and durations
 * ("500ms", "60", "60s", "5m", "1h"), each with its range. */
#ifndef CS_ARGS_H
#define CS_ARGS_H
#include <getopt.h>
#include <stdbool.h>

/* Each parser returns 0, or -EINVAL when v is not a number in [lo, hi]. With
 * prog non-NULL it also prints one line naming the flag and the range:
 * "connscope: --interval abc: expected seconds from 0.1 to 60". With prog
 * NULL it prints nothing (query strings answer with their own 400). */
int args_long(const char *prog, const char *flag, const char *v, long lo, long hi, long *out);
int args_double(const char *prog, const char *flag, const char *v, double lo, double hi,
		double *out);
int args_seconds(const char *prog, const char *flag, const char *v, double lo, double hi,
		 double *out);
/* "--backlog" for the option whose val is c in a getopt_long table (so an
 * error names the flag however it was spelt: --backlog=x, --backlog x, -b x). */
const char *args_flag(const struct option *opts, int c, char *buf, int len);
#endif
