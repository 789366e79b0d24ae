// SPDX-License-Identifier: MIT
/* WebSocket handshake and framing (src/common/ws.c) against RFC 6455's own
 * examples, so a bug shared by client and server cannot pass unseen. */
#include <string.h>
#include "unit.h"
#include "ws.h"

/* RFC 6455 section 1.3: the sample nonce and the accept value it must give. */
UNIT_TEST(test_accept_key_rfc6455_example)
{
	char out[WS_ACCEPT_LEN + 1];

	ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out);
	CHECK(!strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

/* RFC 6455 section 5.7: "Hello", unmasked and masked with 37 fa 21 3d. */
UNIT_TEST(test_decode_rfc6455_frames)
{
	uint8_t plain[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_frame f;

	CHECK(ws_frame_decode(plain, sizeof(plain), 100, &f) == (long)sizeof(plain));
	CHECK(f.opcode == WS_OP_TEXT && f.fin && f.len == 5 && !memcmp(f.payload, "Hello", 5));
	CHECK(ws_frame_decode(masked, sizeof(masked), 100, &f) == (long)sizeof(masked));
	CHECK(f.opcode == WS_OP_TEXT && f.fin && f.len == 5 && !memcmp(f.payload, "Hello", 5));
}

/* RFC 6455 section 5.7: a fragmented unmasked text message "Hel" + "lo". */
UNIT_TEST(test_decode_fragmented_message)
{
	uint8_t frames[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
	struct ws_frame f;
	long n;

	n = ws_frame_decode(frames, sizeof(frames), 100, &f);
	CHECK(n == 5 && f.opcode == WS_OP_TEXT && !f.fin && f.len == 3 && !memcmp(f.payload, "Hel", 3));
	CHECK(ws_frame_decode(frames + n, sizeof(frames) - n, 100, &f) == 4);
	CHECK(f.opcode == 0 && f.fin && f.len == 2 && !memcmp(f.payload, "lo", 2));
}

/* Encode then decode, masked and not, at each length encoding (7-bit,
 * 16-bit, 64-bit); every prefix shorter than the frame is "incomplete". */
UNIT_TEST(test_round_trip_every_length_form)
{
	static uint8_t payload[70000], buf[70016];
	size_t lens[] = { 0, 1, 125, 126, 65535, 65536, 70000 };
	struct ws_frame f;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	for (size_t m = 0; m < 2; m++) {
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			int n = ws_frame_encode(buf, sizeof(buf), WS_OP_TEXT, payload, lens[k], m);

			CHECK(n > 0);
			CHECK(ws_frame_decode(buf, n - 1, sizeof(payload), &f) == 0);
			CHECK(ws_frame_decode(buf, n, sizeof(payload), &f) == n);
			CHECK(f.len == lens[k] && !memcmp(f.payload, payload, lens[k]));
		}
	}
	CHECK(ws_frame_encode(buf, 10, WS_OP_TEXT, payload, 100, false) == -1);
}

UNIT_TEST(test_decode_rejects_oversized_payload)
{
	uint8_t buf[16];
	struct ws_frame f;
	int n = ws_frame_encode(buf, sizeof(buf), WS_OP_TEXT, "0123456789", 10, true);

	CHECK(ws_frame_decode(buf, n, 9, &f) == -1);
}

/* The client's request parsed by the server side, and the server's answer
 * parsed by the client side, key checked against the RFC example. */
UNIT_TEST(test_handshake_both_sides)
{
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	char req[512], resp[512], got[WS_KEY_LEN + 1];
	int n, status = 0;
	bool ok = false;

	n = ws_client_request(req, sizeof(req), "127.0.0.1:8080", "/ws", key);
	CHECK(n > 0);
	CHECK(ws_server_request(req, n - 2, got) == 0); /* blank line missing: incomplete */
	CHECK(ws_server_request(req, n, got) == n && !strcmp(got, key));
	CHECK(ws_server_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, got) == -1);
	n = ws_server_response(resp, sizeof(resp), key);
	CHECK(n > 0 && strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	CHECK(ws_client_response(resp, n, key, &status, &ok) == n && status == 101 && ok);
	CHECK(ws_client_response(resp, n, "AAAAAAAAAAAAAAAAAAAAAA==", &status, &ok) == n && !ok);
}
