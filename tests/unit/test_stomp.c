// SPDX-License-Identifier: MIT
/* STOMP 1.2 frames (src/common/stomp.c): building, reading the command and
 * headers, heart-beat newlines, partial and malformed frames. */
#include <string.h>
#include "stomp.h"
#include "unit.h"

UNIT_TEST(test_build_and_parse_frame)
{
	char buf[256], v[64];
	int n = stomp_frame(buf, sizeof(buf), "SEND", "destination:/app/loc\nreceipt:r-1\n", "{}");

	CHECK(n == (int)strlen("SEND\ndestination:/app/loc\nreceipt:r-1\n\n{}") + 1);
	CHECK(buf[n - 1] == '\0');
	CHECK(!stomp_command(buf, n, v, sizeof(v)) && !strcmp(v, "SEND"));
	CHECK(!stomp_header(buf, n, "receipt", v, sizeof(v)) && !strcmp(v, "r-1"));
	CHECK(!stomp_header(buf, n, "destination", v, sizeof(v)) && !strcmp(v, "/app/loc"));
	CHECK(stomp_header(buf, n, "dest", v, sizeof(v)) == -1);
	CHECK(stomp_header(buf, n, "content-type", v, sizeof(v)) == -1);
	CHECK(stomp_frame(buf, 8, "SEND", "destination:/x\n", "") == -1);
}

UNIT_TEST(test_heartbeats_and_crlf)
{
	const char f[] = "\n\r\nCONNECTED\r\nversion:1.2\r\n\r\n";
	char v[32];

	CHECK(!stomp_command(f, sizeof(f), v, sizeof(v)) && !strcmp(v, "CONNECTED"));
}

UNIT_TEST(test_partial_and_malformed)
{
	char v[8];

	CHECK(stomp_command("CONNECT", 7, v, sizeof(v)) == -1);  /* no end of line yet */
	CHECK(stomp_command("\n\n", 2, v, sizeof(v)) == -1);      /* heart-beats only */
	CHECK(stomp_command("DISCONNECTED\n", 13, v, sizeof(v)) == -1); /* longer than out */
	CHECK(stomp_header("SEND\nreceipt:r", 14, "receipt", v, sizeof(v)) == -1); /* cut header */
}
