// SPDX-License-Identifier: MIT
/* Command-line and query-string numbers: one parser, one wording of errors. */
#include "args.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((format(printf, 3, 4)))
static int bad(const char *prog, const char *flag, const char *fmt, ...);

static int bad(const char *prog, const char *flag, const char *fmt, ...)
{
	va_list ap;

	if (!prog)
		return -EINVAL;
	fprintf(stderr, "%s: %s ", prog, flag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

int args_long(const char *prog, const char *flag, const char *v, long lo, long hi, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = v && *v ? strtol(v, &end, 10) : 0;
	if (!v || !*v || *end || errno || n < lo || n > hi)
		return bad(prog, flag, "%s: expected a whole number from %ld to %ld", v ? v : "", lo, hi);
	*out = n;
	return 0;
}

int args_double(const char *prog, const char *flag, const char *v, double lo, double hi,
		double *out)
{
	char *end;
	double n;

	n = v && *v ? strtod(v, &end) : 0;
	if (!v || !*v || *end || !(n >= lo && n <= hi))
		return bad(prog, flag, "%s: expected a number from %g to %g", v ? v : "", lo, hi);
	*out = n;
	return 0;
}

int args_seconds(const char *prog, const char *flag, const char *v, double lo, double hi,
		 double *out)
{
	double n = 0, mult = 1;
	char *end = NULL;

	if (v && *v)
		n = strtod(v, &end);
	if (end && end != v) {
		if (end[0] == 'm' && end[1] == 's')
			mult = 0.001, end += 2;
		else if (*end == 's')
			end++;
		else if (*end == 'm')
			mult = 60, end++;
		else if (*end == 'h')
			mult = 3600, end++;
	}
	if (!end || end == v || *end || !(n * mult >= lo && n * mult <= hi))
		return bad(prog, flag, "%s: expected seconds from %g to %g (e.g. 30, 500ms, 5m, 1h)",
			   v ? v : "", lo, hi);
	*out = n * mult;
	return 0;
}

const char *args_flag(const struct option *opts, int c, char *buf, int len)
{
	for (; opts && opts->name; opts++) {
		if (opts->val == c) {
			snprintf(buf, len, "--%s", opts->name);
			return buf;
		}
	}
	snprintf(buf, len, "-%c", c);
	return buf;
}
