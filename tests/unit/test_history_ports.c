// SPDX-License-Identifier: MIT
/* Per-listener series in the history (history.c) and their JSON (json.c),
 * which the live page charts. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "history.h"
#include "json.h"
#include "unit.h"

UNIT_TEST(test_history_point_ports)
{
	struct cs_snapshot *a = unit_snapshot(), *b = unit_snapshot();
	struct cs_point p;

	a->mono_s = 10;
	b->mono_s = 11;
	a->ports[0].accepts = 10;
	b->ports[0].accepts = 30;
	b->ports[0].closed[0] = 5;
	b->ports[0].open = 25;
	b->ports[0].open_peak = 27;
	a->listeners[0].drops = 3;
	b->listeners[0].drops = 10;
	b->listeners[0].queue_len = 12;
	/* 10 accepts waited 8-16 us, 10 waited 1024-2048 us in this tick */
	a->ports[0].accept_wait.slots[3] = 4;
	a->ports[0].accept_wait.count = 4;
	b->ports[0].accept_wait.slots[3] = 14;
	b->ports[0].accept_wait.slots[10] = 10;
	b->ports[0].accept_wait.count = 24;
	history_point(a, b, &p);
	CHECK(p.n_listeners == 1);
	CHECK(!strcmp(p.listeners[0].label, "0.0.0.0:8080"));
	CHECK(p.listeners[0].accepts == 20);
	CHECK(p.listeners[0].drops == 7);
	CHECK(p.listeners[0].open == 25 && p.listeners[0].open_peak == 27);
	CHECK(p.listeners[0].queue_len == 12 && p.listeners[0].queue_limit == 16);
	/* p50: the 10th of 20 samples, the top of the 8-16 us slot */
	CHECK(fabs(p.listeners[0].accept_wait_p50_s - 16e-6) < 1e-12);
	/* p99: 19.8 of 20, 9.8/10 into the 1024-2048 us slot */
	CHECK(fabs(p.listeners[0].accept_wait_p99_s - (1024 + 1024 * 0.98) * 1e-6) < 1e-12);
	/* no accepts in the tick: no quantile */
	history_point(b, b, &p);
	CHECK(p.listeners[0].accept_wait_p50_s == 0 && p.listeners[0].accepts == 0);
	free(a);
	free(b);
}

UNIT_TEST(test_json_history_listeners)
{
	struct cs_point pt = { .seconds = 1, .resets_sent = 9, .resets_abort = 4, .resets_no_socket = 2,
			       .fd_soft = 1024, .n_listeners = 1 };
	cJSON *root, *pnt, *l;
	char *text;

	snprintf(pt.listeners[0].label, sizeof(pt.listeners[0].label), "127.0.0.1:80");
	pt.listeners[0].drops = 7;
	pt.listeners[0].accept_wait_p99_s = 0.002;
	text = json_history(&pt, 1);
	root = cJSON_Parse(text);
	pnt = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "points"), 0);
	l = cJSON_GetArrayItem(cJSON_GetObjectItem(pnt, "listeners"), 0);
	CHECK(l && !strcmp(cJSON_GetObjectItem(l, "listener")->valuestring, "127.0.0.1:80"));
	CHECK(l && cJSON_GetObjectItem(l, "listen_drops")->valuedouble == 7);
	CHECK(l && cJSON_GetObjectItem(l, "accept_wait_p99_seconds")->valuedouble == 0.002);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(pnt, "resets_sent_by_reason"), "other")->valuedouble == 3);
	CHECK(cJSON_GetObjectItem(pnt, "fd_soft_limit")->valuedouble == 1024);
	cJSON_Delete(root);
	free(text);
}
