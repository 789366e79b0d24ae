// SPDX-License-Identifier: MIT
/* libFuzzer target: WebSocket handshake and frame parsers shared by the load
 * client and the demo server (the bytes a peer sends). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char key[WS_KEY_LEN + 1];
	struct ws_frame f;
	uint8_t *buf;
	bool ok;
	long n;
	int status;

	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	ws_server_request((const char *)buf, size, key);
	ws_client_response((const char *)buf, size, "dGhlIHNhbXBsZSBub25jZQ==", &status, &ok);
	n = ws_frame_decode(buf, size, 65536, &f);
	if (n > (long)size || (n > 0 && (f.payload < buf || f.payload + f.len > buf + size)))
		abort(); /* a frame said to lie beyond the bytes given */
	free(buf);
	return 0;
}
