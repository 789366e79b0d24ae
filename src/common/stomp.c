// SPDX-License-Identifier: MIT
/* Minimal STOMP framing for the load client and the demo server. */
#define _GNU_SOURCE
#include "stomp.h"
#include <stdio.h>
#include <string.h>

int stomp_frame(char *buf, size_t cap, const char *command, const char *headers, const char *body)
{
	int n = snprintf(buf, cap, "%s\n%s\n%s", command, headers ? headers : "", body ? body : "");

	if (n < 0 || (size_t)n + 1 > cap)
		return -1;
	buf[n] = '\0';
	return n + 1;
}

int stomp_command(const char *buf, size_t len, char *out, size_t cap)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n;

	while (len && (*buf == '\n' || *buf == '\r')) /* heart-beats */
		buf++, len--;
	nl = memchr(buf, '\n', len);
	if (!nl || nl == buf)
		return -1;
	n = nl - buf;
	if (n && buf[n - 1] == '\r')
		n--;
	if (n >= cap)
		return -1;
	memcpy(out, buf, n);
	out[n] = '\0';
	return 0;
}

int stomp_header(const char *buf, size_t len, const char *name, char *out, size_t cap)
{
	const char *p = memchr(buf, '\n', len), *end = buf + len;
	size_t nlen = strlen(name);

	while (p && ++p < end && *p != '\n') {
		const char *eol = memchr(p, '\n', end - p);

		if (!eol)
			return -1;
		if ((size_t)(eol - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == ':') {
			size_t n = eol - p - nlen - 1;

			if (n >= cap)
				return -1;
			memcpy(out, p + nlen + 1, n);
			out[n] = '\0';
			return 0;
		}
		p = eol;
	}
	return -1;
}
