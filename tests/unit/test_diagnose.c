// SPDX-License-Identifier: MIT
/* Diagnosis rules over hand-made history points (src/daemon/diagnose.c);
 * each cause is also made for real by tests/test_diagnosis*.py. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "diagnose.h"
#include "unit.h"

UNIT_TEST(test_rules)
{
	struct cs_snapshot *s = unit_snapshot();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pts[8];
	uint64_t steady[8] = { 50, 50, 50, 50, 50, 50, 50, 50 }, none[8] = { 0 };
	uint64_t drops[8] = { 0, 40, 60, 60, 30, 0, 0, 0 };
	uint64_t cap[8] = { 30, 0, 0, 0, 0, 0, 0, 0 };
	uint32_t full[8] = { 17, 17, 17, 17, 17, 17, 17, 17 }, low[8] = { 2, 17, 17, 17, 9, 0, 0, 0 };

	diagnose(s, pts, unit_points(pts, 8, steady, none, (uint32_t[8]){ 0 }), d);
	CHECK(!strcmp(d->verdict, "healthy"));
	diagnose(s, pts, unit_points(pts, 8, steady, drops, low), d);
	CHECK(!strcmp(d->verdict, "accept_queue_slow"));
	diagnose(s, pts, unit_points(pts, 8, cap, drops, full), d);
	CHECK(!strcmp(d->verdict, "accept_queue_stalled"));
	/* EMFILE on accept explains a stall: fd exhaustion ranks first */
	pts[2].accept_emfile = pts[2].fd_errors = 12;
	s->n_syserr = 1;
	s->syserr[0] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT4, .err = EMFILE, .count = 12 };
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "fd_exhaustion"));
	CHECK(diagnose_has(d, "accept_queue_stalled"));
	s->target_up = false;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "target_exited"));
	/* fds near the limit without errors: a warning, not a failure */
	s->target_up = true;
	s->n_syserr = 0;
	s->fd_peak = 1000;
	diagnose(s, pts, unit_points(pts, 8, steady, none, (uint32_t[8]){ 0 }), d);
	CHECK(!strcmp(d->verdict, "fd_exhaustion") && !strcmp(d->causes[0].severity, "warning"));
	pts[3].resets_abort = 7;
	diagnose(s, pts, 8, d);
	CHECK(diagnose_has(d, "reset_on_close"));
	/* namespace TCP memory pressure (tcp_mem is machine-wide: no real-kernel test) */
	pts[5].memory_pressures = 3;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "tcp_memory_pressure"));
	CHECK(d->causes[0].n_evidence >= 1 && d->causes[0].evidence[0].num == 3);
	free(s);
	free(d);
}
