// SPDX-License-Identifier: MIT
/* libFuzzer target: the /proc text parsers (status, limits, stat,
 * net/netstat), over whatever bytes a file could hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t vals[CS_TE_MAX], start;
	struct cs_proc p;
	long soft, hard;
	char *buf;
	int ppid;

	if (size >= PROCFS_NETSTAT_BYTES)
		return 0; /* the readers never pass more */
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	memset(&p, 0, sizeof(p));
	procfs_parse_status(buf, &p);
	if (memchr(p.comm, 0, sizeof(p.comm)) == NULL)
		abort(); /* comm left unterminated */
	procfs_parse_limits(buf, &soft, &hard);
	procfs_parse_stat(buf, &ppid, &start);
	procfs_parse_tcp_ext(buf, vals);
	free(buf);
	return 0;
}
