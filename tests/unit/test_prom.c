// SPDX-License-Identifier: MIT
/* Prometheus text rendering of a snapshot (src/daemon/prom.c). */
#include <stdlib.h>
#include <string.h>
#include "diagnose.h"
#include "prom.h"
#include "sbuf.h"
#include "unit.h"

UNIT_TEST(test_prom)
{
	struct cs_snapshot *s = unit_snapshot();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct prom_extra x = { 0 };
	struct cs_point pt = { .seconds = 1, .accepts = 3, .target_up = true };
	struct sbuf b;
	char *text;

	s->ports[0].accepts = 3;
	s->ports[0].accept_wait.slots[0] = 2;  /* < 2 us */
	s->ports[0].accept_wait.slots[CS_HIST_SLOTS - 1] = 1;
	s->ports[0].accept_wait.count = 3;
	snprintf(s->listeners[0].label, CS_LABEL_LEN, "a\"b");
	diagnose(s, &pt, 1, d);
	sbuf_init(&b);
	prom_render(s, d, &x, &b);
	text = sbuf_take(&b, NULL);
	CHECK(text && strstr(text, "connscope_accepts_total{listener=\"0.0.0.0:8080\"} 3\n"));
	CHECK(text && strstr(text, "connscope_accept_wait_seconds_bucket{listener=\"0.0.0.0:8080\",le=\"2e-06\"} 2\n"));
	CHECK(text && strstr(text, "connscope_accept_wait_seconds_bucket{listener=\"0.0.0.0:8080\",le=\"+Inf\"} 3\n"));
	CHECK(text && strstr(text, "connscope_accept_queue_limit{listener=\"a\\\"b\"} 16\n"));
	CHECK(text && strstr(text, "connscope_diagnosis{cause=\"healthy\"} 1\n"));
	CHECK(text && strstr(text, "# TYPE connscope_accept_wait_seconds histogram\n"));
	free(text);
	free(s);
	free(d);
}
