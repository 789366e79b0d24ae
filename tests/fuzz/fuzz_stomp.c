// SPDX-License-Identifier: MIT
/* libFuzzer target: the STOMP frame command and header parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[64], *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	stomp_command(buf, size, out, sizeof(out));
	stomp_header(buf, size, "destination", out, sizeof(out));
	stomp_header(buf, size, "content-length", out, 1);
	free(buf);
	return 0;
}
