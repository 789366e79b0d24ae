// SPDX-License-Identifier: MIT
/* sock_diag reply parsing (src/daemon/sockdiag.c) over replies captured from
 * the kernel by tests/fixtures/capture_sockdiag.py. What `ss -lntm` printed
 * at capture time: 127.0.0.1:18080 Recv-Q 3 Send-Q 2 d6; [::1]:18443 Recv-Q 1
 * Send-Q 16 d0. */
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include "sockdiag.h"
#include "unit.h"

/* The capture script's netlink sequence number. */
#define CAPTURE_SEQ 7

static size_t load(const char *name, char *buf, size_t cap)
{
	char path[512];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", unit_fixtures(), name);
	f = fopen(path, "rb");
	if (!f)
		return 0;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

UNIT_TEST(test_ipv4_listener_full_queue_with_drops)
{
	static char buf[4096];
	struct cs_listener l[4];
	size_t len = load("sockdiag_v4.bin", buf, sizeof(buf));
	int n = 0;

	CHECK(len > 0);
	CHECK(sockdiag_parse_reply(buf, len, CAPTURE_SEQ, l, 4, &n) == 1);
	CHECK(n == 1);
	CHECK(!strcmp(l[0].label, "127.0.0.1:18080") && l[0].port == 18080 && l[0].family == AF_INET);
	CHECK(l[0].queue_len == 3 && l[0].queue_limit == 2 && l[0].drops == 6);
	CHECK(l[0].inode != 0);
}

UNIT_TEST(test_ipv6_listener)
{
	static char buf[4096];
	struct cs_listener l[4];
	size_t len = load("sockdiag_v6.bin", buf, sizeof(buf));
	int n = 0;

	CHECK(sockdiag_parse_reply(buf, len, CAPTURE_SEQ, l, 4, &n) == 1);
	CHECK(n == 1 && !strcmp(l[0].label, "[::1]:18443") && l[0].family == AF_INET6);
	CHECK(l[0].queue_len == 1 && l[0].queue_limit == 16 && l[0].drops == 0);
}

/* Another request's replies, a full output array, a cut message. */
UNIT_TEST(test_other_sequence_full_array_truncated)
{
	static char buf[4096];
	struct cs_listener l[1];
	size_t len = load("sockdiag_v4.bin", buf, sizeof(buf));
	int n = 0;

	CHECK(sockdiag_parse_reply(buf, len, CAPTURE_SEQ + 1, l, 1, &n) == 0 && n == 0);
	n = 1;
	CHECK(sockdiag_parse_reply(buf, len, CAPTURE_SEQ, l, 1, &n) == 1 && n == 1);
	n = 0;
	CHECK(sockdiag_parse_reply(buf, 40, CAPTURE_SEQ, l, 1, &n) == 0 && n == 0);
}
