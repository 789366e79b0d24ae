// SPDX-License-Identifier: MIT
/* libFuzzer target: the number and duration parser behind every flag and
 * every query value (?window=, ?seconds=, ?limit=). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	double d;
	long l;

	if (!v)
		return 0;
	memcpy(v, data, size);
	v[size] = 0; /* query values arrive NUL-terminated, maybe with bytes after */
	args_long(NULL, NULL, v, 1, 100000, &l);
	args_long(NULL, NULL, v, -9223372036854775807L - 1, 9223372036854775807L, &l);
	args_double(NULL, NULL, v, -1e308, 1e308, &d);
	if (!args_seconds(NULL, NULL, v, 1e-3, 86400, &d) && !(d >= 1e-3 && d <= 86400))
		abort(); /* accepted out of its range */
	free(v);
	return 0;
}
