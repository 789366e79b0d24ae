// SPDX-License-Identifier: MIT
/* libFuzzer target: the sock_diag dump reply parser (netlink messages with
 * inet_diag_msg and rtattrs), as one recv() would hand it over. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sockdiag.h"

#define MAX_LISTENERS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_listener out[MAX_LISTENERS];
	void *buf;
	int n = 0;

	if (size > 32768) /* dump_family's recv buffer */
		return 0;
	/* netlink messages are 4-byte aligned in the kernel's buffer */
	buf = aligned_alloc(8, size ? (size + 7) & ~(size_t)7 : 8);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* seq 1: the seed corpus uses it; other seqs are skipped like stale replies */
	sockdiag_parse_reply(buf, size, 1, out, MAX_LISTENERS, &n);
	if (n < 0 || n > MAX_LISTENERS)
		abort();
	free(buf);
	return 0;
}
