/* SPDX-License-Identifier: MIT */
/* WebSocket (RFC 6455) pieces the load client and the demo server share:
 * the upgrade handshake and frame encoding/decoding. SHA-1 and base64 come
 * from Nettle, not from here. */
#ifndef CS_WS_H
#define CS_WS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_KEY_LEN 24    /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
#define WS_OP_TEXT 0x1
#define WS_OP_CLOSE 0x8

/* A fresh Sec-WebSocket-Key (NUL-terminated). */
void ws_make_key(char key[WS_KEY_LEN + 1]);
/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
void ws_accept_for(const char *key, char out[WS_ACCEPT_LEN + 1]);
/* The client's upgrade request; returns its length or -1 if cap is short. */
int ws_client_request(char *buf, size_t cap, const char *host, const char *path, const char *key);
/* Parses the server's answer in buf[0..len). Returns 0 while incomplete,
 * else the header length; *status gets the HTTP status and *accept_ok
 * whether Sec-WebSocket-Accept matched key. */
int ws_client_response(const char *buf, size_t len, const char *key, int *status, bool *accept_ok);
/* Parses a client's upgrade request. Returns 0 while incomplete, -1 if it is
 * not a WebSocket upgrade, else the header length with key copied out. */
int ws_server_request(const char *buf, size_t len, char key[WS_KEY_LEN + 1]);
int ws_server_response(char *buf, size_t cap, const char *key);

/* Encodes one frame (FIN set); masked as clients must. Returns its length
 * or -1 if cap is short. */
int ws_frame_encode(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len, bool mask);

struct ws_frame {
	int opcode;
	bool fin;         /* last fragment of a message (RFC 6455 5.4) */
	uint8_t *payload; /* unmasked in place, inside the caller's buffer */
	size_t len;
};

/* Decodes the frame at buf[0..len). Returns the bytes it takes, 0 while
 * incomplete, -1 if malformed or over max_payload. */
long ws_frame_decode(uint8_t *buf, size_t len, size_t max_payload, struct ws_frame *f);
#endif
