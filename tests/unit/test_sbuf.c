// SPDX-License-Identifier: MIT
/* The renderers' growable text buffer (src/common/sbuf.c). */
#include <stdlib.h>
#include <string.h>
#include "sbuf.h"
#include "unit.h"

UNIT_TEST(test_grows_and_hands_over)
{
	struct sbuf b;
	size_t len = 0;
	char *text;

	sbuf_init(&b);
	for (int i = 0; i < 10000; i++)
		sbuf_printf(&b, "line %d\n", i);
	sbuf_append(&b, "end", 3);
	text = sbuf_take(&b, &len);
	CHECK(text && len == strlen(text));
	CHECK(text && !strncmp(text, "line 0\nline 1\n", 14));
	CHECK(text && !strcmp(text + len - 13, "line 9999\nend"));
	CHECK(b.len == 0);
	free(text);
	sbuf_free(&b);
}
