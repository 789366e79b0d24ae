/* SPDX-License-Identifier: MIT */
/* The HTTP API (libmicrohttpd): /metrics, /api/v1/{snapshot,diagnosis,
 * history,events}, /healthz and a landing page. */
#ifndef CS_HTTP_H
#define CS_HTTP_H
#include "collector.h"

struct http;

/* Parses "ADDR:PORT", "[V6]:PORT" into a bound, listening socket; prints
 * what failed ("127.0.0.1:9477 is in use"). Returns the fd or -errno. */
int http_bind(const char *listen_addr);
struct webconfig;

/* Serves on fd (taken over) from a thread of its own, with TLS and basic auth
 * when wc (kept, not owned) says so. 0 or -errno. */
int http_new(int fd, struct collector *c, struct webconfig *wc, struct http **out);
void http_free(struct http *h);
#endif
