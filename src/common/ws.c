// SPDX-License-Identifier: MIT
/* WebSocket handshake and framing for connscope-load and the demo server. */
#define _GNU_SOURCE
#include "ws.h"
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_make_key(char key[WS_KEY_LEN + 1])
{
	uint8_t raw[16];

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)random();
	base64_encode_raw(key, sizeof(raw), raw);
	key[WS_KEY_LEN] = '\0';
}

void ws_accept_for(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	uint8_t digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx ctx;

	sha1_init(&ctx);
	sha1_update(&ctx, strlen(key), (const uint8_t *)key);
	sha1_update(&ctx, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
	sha1_digest(&ctx, sizeof(digest), digest);
	base64_encode_raw(out, sizeof(digest), digest);
	out[WS_ACCEPT_LEN] = '\0';
}

int ws_client_request(char *buf, size_t cap, const char *host, const char *path, const char *key)
{
	int n = snprintf(buf, cap,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
			 "Sec-WebSocket-Protocol: v12.stomp\r\n\r\n", path, host, key);

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Value of header name in an HTTP head (case-insensitive), copied to out. */
static bool header_value(const char *head, size_t len, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	const char *p = head, *end = head + len;

	while (p < end) {
		const char *eol = memmem(p, end - p, "\r\n", 2);

		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			size_t n;

			while (v < eol && *v == ' ')
				v++;
			n = eol - v < (long)cap - 1 ? (size_t)(eol - v) : cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p = eol + 2;
	}
	return false;
}

int ws_client_response(const char *buf, size_t len, const char *key, int *status, bool *accept_ok)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	char want[WS_ACCEPT_LEN + 1], got[64];

	if (!end)
		return 0;
	/* by hand, not sscanf: buf need not be NUL-terminated (a fuzzed
	 * response without one made sscanf's strlen read past it) */
	*status = -1;
	if (end - buf >= 12 && !memcmp(buf, "HTTP/1.", 7) && buf[8] == ' ' &&
	    buf[9] >= '1' && buf[9] <= '5' && buf[10] >= '0' && buf[10] <= '9' &&
	    buf[11] >= '0' && buf[11] <= '9')
		*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	ws_accept_for(key, want);
	*accept_ok = header_value(buf, end - buf + 2, "Sec-WebSocket-Accept", got, sizeof(got)) &&
		     !strcmp(got, want);
	return end - buf + 4;
}

int ws_server_request(const char *buf, size_t len, char key[WS_KEY_LEN + 1])
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	char v[64];

	if (!end)
		return len > 8192 ? -1 : 0;
	if (strncmp(buf, "GET ", 4) || !header_value(buf, end - buf + 2, "Upgrade", v, sizeof(v)) ||
	    strcasecmp(v, "websocket") ||
	    !header_value(buf, end - buf + 2, "Sec-WebSocket-Key", v, sizeof(v)) ||
	    strlen(v) != WS_KEY_LEN)
		return -1;
	memcpy(key, v, WS_KEY_LEN + 1);
	return end - buf + 4;
}

int ws_server_response(char *buf, size_t cap, const char *key)
{
	char accept[WS_ACCEPT_LEN + 1];
	int n;

	ws_accept_for(key, accept);
	n = snprintf(buf, cap,
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n", accept);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int ws_frame_encode(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len, bool mask)
{
	size_t hdr = 2 + (len > 65535 ? 8 : len > 125 ? 2 : 0) + (mask ? 4 : 0);
	uint8_t key[4] = { 0 };
	size_t i = 2;

	if (hdr + len > cap)
		return -1;
	out[0] = 0x80 | (opcode & 0x0f);
	if (len > 65535) {
		out[1] = 127;
		for (int b = 7; b >= 0; b--)
			out[i++] = (uint8_t)(len >> (8 * b));
	} else if (len > 125) {
		out[1] = 126;
		out[i++] = (uint8_t)(len >> 8);
		out[i++] = (uint8_t)len;
	} else {
		out[1] = (uint8_t)len;
	}
	if (mask) {
		out[1] |= 0x80;
		if (getrandom(key, sizeof(key), GRND_NONBLOCK) != sizeof(key))
			memset(key, 0x5a, sizeof(key));
		memcpy(out + i, key, 4);
		i += 4;
	}
	for (size_t j = 0; j < len; j++)
		out[i + j] = ((const uint8_t *)payload)[j] ^ key[j & 3];
	return (int)(i + len);
}

long ws_frame_decode(uint8_t *buf, size_t len, size_t max_payload, struct ws_frame *f)
{
	size_t i = 2, plen;
	uint8_t *key = NULL;

	if (len < 2)
		return 0;
	plen = buf[1] & 0x7f;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (size_t)buf[2] << 8 | buf[3];
		i = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int b = 0; b < 8; b++)
			plen = plen << 8 | buf[2 + b];
		i = 10;
	}
	if (plen > max_payload)
		return -1;
	if (buf[1] & 0x80) {
		if (len < i + 4)
			return 0;
		key = buf + i;
		i += 4;
	}
	if (len < i + plen)
		return 0;
	f->opcode = buf[0] & 0x0f;
	f->fin = buf[0] & 0x80;
	f->payload = buf + i;
	f->len = plen;
	if (key)
		for (size_t j = 0; j < plen; j++)
			f->payload[j] ^= key[j & 3];
	return (long)(i + plen);
}
