// SPDX-License-Identifier: MIT
/* Sums over a snapshot shared by renderers and diagnosis (src/daemon/snapshot.c). */
#include <errno.h>
#include <stdlib.h>
#include "snapshot.h"
#include "unit.h"

UNIT_TEST(test_sums)
{
	struct cs_snapshot *s = unit_snapshot();

	s->n_listeners = 2;
	s->listeners[0].drops = 5;
	s->listeners[1].drops = 7;
	s->resets_sent[0] = 2;
	s->resets_sent[CS_RST_REASONS_MAX - 1] = 3;
	s->n_syserr = 3;
	s->syserr[0] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT4, .err = EMFILE, .count = 4 };
	s->syserr[1] = (struct cs_syserr){ .syscall = CS_SYS_OPENAT, .err = EMFILE, .count = 6 };
	s->syserr[2] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT, .err = ENOBUFS, .count = 1 };
	CHECK(snapshot_listen_drops(s) == 12);
	CHECK(snapshot_resets_sent(s) == 5);
	CHECK(snapshot_fd_errors(s, EMFILE) == 10);
	CHECK(snapshot_fd_errors(s, 0) == 11);
	CHECK(snapshot_accept_errors(s, EMFILE) == 4);
	CHECK(snapshot_accept_errors(s, 0) == 5);
	free(s);
}
