// SPDX-License-Identifier: MIT
/* Per-tick deltas and the history ring (src/daemon/history.c). */
#include <errno.h>
#include <stdlib.h>
#include "history.h"
#include "unit.h"

UNIT_TEST(test_history_point)
{
	struct cs_snapshot *a = unit_snapshot(), *b = unit_snapshot();
	struct cs_point p;

	a->mono_s = 10;
	b->mono_s = 11;
	a->accepts_total = 5;
	b->accepts_total = 12;
	a->listeners[0].drops = 3;
	b->listeners[0].drops = 10;
	b->listeners[0].queue_len = 17;
	b->n_syserr = 1;
	b->syserr[0] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT4, .err = EMFILE, .count = 9 };
	history_point(a, b, &p);
	CHECK(p.accepts == 7);
	CHECK(p.listen_drops == 7);
	CHECK(p.accept_emfile == 9);
	CHECK(p.fd_errors == 9);
	CHECK(p.seconds == 1);
	CHECK(p.queue_full);
	/* a listener that went away makes no negative delta */
	b->n_listeners = 0;
	history_point(a, b, &p);
	CHECK(p.listen_drops == 0);
	free(a);
	free(b);
}

UNIT_TEST(test_history_ring)
{
	struct cs_point p = { .seconds = 1 }, *out;
	struct history *h = NULL;
	int n;

	CHECK(!history_new(&h));

	for (int i = 0; i < CS_HISTORY_POINTS + 10; i++) {
		p.accepts = i;
		history_push(h, &p);
	}
	n = history_copy(h, 0, &out);
	CHECK(n == CS_HISTORY_POINTS);
	CHECK(out[0].accepts == 10 && out[n - 1].accepts == CS_HISTORY_POINTS + 9);
	free(out);
	n = history_copy(h, 5, &out);
	CHECK(n == 5);
	CHECK(out[4].accepts == CS_HISTORY_POINTS + 9);
	free(out);
	history_free(h);
}
