// SPDX-License-Identifier: MIT
/* Error lines on stderr with the program's name in front. */
#include "errmsg.h"
#include <stdarg.h>
#include <stdio.h>

static const char *program = "connscope";

void errmsg_set_program(const char *name)
{
	program = name;
}

int errmsg(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return err;
}
