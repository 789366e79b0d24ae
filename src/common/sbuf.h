/* SPDX-License-Identifier: MIT */
/* A growable text buffer for the renderers (Prometheus text, plain-text
 * diagnosis). Allocation failure is remembered and reported once at the end. */
#ifndef CS_SBUF_H
#define CS_SBUF_H
#include <stddef.h>
#include <stdbool.h>

struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	bool oom;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
__attribute__((format(printf, 2, 3))) void sbuf_printf(struct sbuf *b, const char *fmt, ...);
void sbuf_append(struct sbuf *b, const char *s, size_t n);
/* Hands the data to the caller (who frees it); the buffer is empty after. */
char *sbuf_take(struct sbuf *b, size_t *len);
#endif
