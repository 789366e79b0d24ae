// SPDX-License-Identifier: MIT
/* The connection-level rules (src/daemon/diagnose_conn.c): each names its
 * cause from its own counter and nothing else; failures nobody explains are
 * unexplained, not healthy. Each is also made for real by
 * tests/test_diagnosis_conn.py. */
#include <stdlib.h>
#include <string.h>
#include "diagnose.h"
#include "unit.h"

UNIT_TEST(test_conn_rules)
{
	struct cs_snapshot *s = unit_snapshot();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pt = { .seconds = 1, .accepts = 10, .target_up = true };

	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "healthy"));
	pt.gave_up_unread = 4;
	s->ports[0].serve.gave_up = 4;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "accepted_not_served") && d->causes[0].clients_affected == 4 &&
	      !strcmp(d->causes[0].listener, "0.0.0.0:8080"));
	pt.gave_up_unread = 0;
	pt.rejected = 3;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "rejected_after_accept") && d->n_causes == 1);
	pt.rejected = 0;
	pt.port_errors = 7;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "ephemeral_ports_exhausted") && d->causes[0].clients_affected == 7);
	pt.port_errors = 0;
	pt.conntrack_drops = 2;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "netfilter_drop"));
	pt.conntrack_drops = 0;
	pt.closed_before_accept = 5;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "unexplained_failures") && d->causes[0].clients_affected == 5);
	free(s);
	free(d);
}
