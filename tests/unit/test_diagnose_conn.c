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

static double evidence(const struct cs_cause *c, const char *name)
{
	for (int i = 0; i < c->n_evidence; i++)
		if (!strcmp(c->evidence[i].name, name))
			return c->evidence[i].num;
	return -1;
}

/* The median lifetime of rejected connections is the upper bound of the
 * bucket that holds the ceil(n/2)-th smallest, exact (not rounded). */
UNIT_TEST(test_rejected_median_lifetime)
{
	struct cs_snapshot *s = unit_snapshot();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pt = { .seconds = 1, .accepts = 10, .rejected = 3, .target_up = true };
	struct cs_hist *h = &s->ports[0].serve.rejected_life;

	s->ports[0].serve.rejected = 3;
	h->slots[3] = 1;  /* [8, 16) us */
	h->slots[11] = 2; /* [2048, 4096) us: holds the 2nd of 3 */
	h->count = 3;
	h->sum_ns = 7000000;
	diagnose(s, &pt, 1, d);
	CHECK(!strcmp(d->verdict, "rejected_after_accept"));
	CHECK(evidence(&d->causes[0], "median_lifetime_seconds") == 0.004096);
	CHECK(evidence(&d->causes[0], "mean_lifetime_seconds") == -1);
	CHECK(strstr(d->causes[0].explanation, "under 0.004096 s"));
	h->slots[3] = 2; /* 4 samples: the 2nd is in [8, 16) us */
	h->count = 4;
	diagnose(s, &pt, 1, d);
	CHECK(evidence(&d->causes[0], "median_lifetime_seconds") == 0.000016);
	free(s);
	free(d);
}
