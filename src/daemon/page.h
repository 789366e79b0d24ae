/* SPDX-License-Identifier: MIT */
/* The live page at / and its script and style, embedded in the binary at
 * build time (src/daemon/page/ -> build/page_assets.c), so the page works
 * with no request leaving the machine. */
#ifndef CS_PAGE_H
#define CS_PAGE_H
#include <stdbool.h>
#include <stddef.h>

struct page_asset {
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};

/* Fills *out with the asset served at url; false when there is none. */
bool page_find(const char *url, struct page_asset *out);
#endif
