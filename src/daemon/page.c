// SPDX-License-Identifier: MIT
/* Maps URL paths to the page assets the Makefile embeds (page_assets.c). */
#include "page.h"
#include <string.h>

extern const unsigned char page_index_html[], page_page_js[], page_page_css[];
extern const size_t page_index_html_len, page_page_js_len, page_page_css_len;

static const struct {
	const char *path, *type;
	const unsigned char *data;
	const size_t *len; /* another file's size is not a constant expression; its address is */
} assets[] = {
	{ "/", "text/html; charset=utf-8", page_index_html, &page_index_html_len },
	{ "/page.js", "text/javascript; charset=utf-8", page_page_js, &page_page_js_len },
	{ "/page.css", "text/css; charset=utf-8", page_page_css, &page_page_css_len },
};

bool page_find(const char *url, struct page_asset *out)
{
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		if (!strcmp(url, assets[i].path)) {
			*out = (struct page_asset){ assets[i].type, assets[i].data, *assets[i].len };
			return true;
		}
	}
	return false;
}
