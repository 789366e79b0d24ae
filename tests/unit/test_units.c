// SPDX-License-Identifier: MIT
/* Unit tests of connscope's pure parts: history deltas, diagnosis rules,
 * Prometheus and JSON rendering. The kernel-facing parts are tested against
 * the real kernel in tests/test_*.py. Prints 'N passed, N failed'. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diagnose.h"
#include "history.h"
#include "json.h"
#include "prom.h"
#include "sbuf.h"

static int passed, failed, checks_failed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			checks_failed++;                                         \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                \
	} while (0)

/* One test per function: it passes when none of its checks failed. */
#define RUN(fn)                                                                  \
	do {                                                                     \
		int before = checks_failed;                                      \
		fn();                                                            \
		if (checks_failed == before) {                                   \
			passed++;                                                \
			printf("ok   unit.%s\n", #fn);                           \
		} else {                                                         \
			failed++;                                                \
			printf("FAIL unit.%s\n", #fn);                           \
		}                                                                \
	} while (0)

static struct cs_snapshot *snap(void)
{
	struct cs_snapshot *s = calloc(1, sizeof(*s));

	s->target_up = true;
	s->pid = 42;
	s->fd_soft = 1024;
	s->fd_hard = 4096;
	s->somaxconn = 4096;
	s->n_listeners = 1;
	snprintf(s->listeners[0].label, CS_LABEL_LEN, "0.0.0.0:8080");
	s->listeners[0].port = 8080;
	s->listeners[0].queue_limit = 16;
	s->n_ports = 1;
	s->ports[0].port = 8080;
	snprintf(s->ports[0].label, CS_LABEL_LEN, "0.0.0.0:8080");
	return s;
}

/* Ticks of one second: accepts and drops per tick, queue length each. */
static int make_points(struct cs_point *pts, int n, const uint64_t *acc, const uint64_t *drops,
		       const uint32_t *qlen)
{
	struct cs_point_listener *l;
	double gap = 0;
	long open = 0;

	for (int i = 0; i < n; i++) {
		memset(&pts[i], 0, sizeof(pts[i]));
		pts[i].seconds = 1;
		pts[i].accepts = acc[i];
		pts[i].listen_drops = drops[i];
		pts[i].queue_len = qlen[i];
		pts[i].queue_limit = 16;
		pts[i].queue_full = qlen[i] >= 16;
		pts[i].target_up = true;
		pts[i].fd_pid = 42;
		pts[i].fd_soft = 1024;
		pts[i].open_fds = 10;
		pts[i].n_listeners = 1;
		l = &pts[i].listeners[0];
		snprintf(l->label, CS_LABEL_LEN, "0.0.0.0:8080");
		l->port = 8080;
		l->queue_len = qlen[i];
		l->queue_limit = 16;
		l->full = qlen[i] >= 16;
		l->drops = drops[i];
		l->accepts = acc[i];
		open += acc[i];
		l->open = open;
		l->full_seconds = l->full ? 1 : 0;
		/* a slow acceptor: each accept waited 300 ms */
		l->accept_wait_count = acc[i];
		l->accept_wait_sum_s = 0.3 * acc[i];
		l->gap_seconds = l->full && !acc[i] ? (gap += 1) : (gap = 0);
	}
	return n;
}

static void test_history_point(void)
{
	struct cs_snapshot *a = snap(), *b = snap();
	struct cs_point p;

	a->mono_s = 10;
	b->mono_s = 11;
	a->accepts_total = 5;
	b->accepts_total = 12;
	a->listeners[0].drops = 3;
	b->listeners[0].drops = 10;
	b->listeners[0].queue_len = 17;
	b->n_syserr = 1;
	b->syserr[0] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT4, .err = 24, .count = 9 };
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

static void test_history_ring(void)
{
	struct history *h = NULL;

	history_new(&h);
	struct cs_point p = { .seconds = 1 }, *out;
	int n;

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

static void test_rules(void)
{
	struct cs_snapshot *s = snap();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pts[8];
	uint64_t steady[8] = { 50, 50, 50, 50, 50, 50, 50, 50 }, none[8] = { 0 };
	uint64_t drops[8] = { 0, 40, 60, 60, 30, 0, 0, 0 };
	uint64_t cap[8] = { 30, 0, 0, 0, 0, 0, 0, 0 };
	uint32_t full[8] = { 17, 17, 17, 17, 17, 17, 17, 17 }, low[8] = { 2, 17, 17, 17, 9, 0, 0, 0 };

	diagnose(s, pts, make_points(pts, 8, steady, none, (uint32_t[8]){ 0 }), d);
	CHECK(!strcmp(d->verdict, "healthy"));
	diagnose(s, pts, make_points(pts, 8, steady, drops, low), d);
	CHECK(!strcmp(d->verdict, "accept_queue_slow"));
	CHECK(!strcmp(d->causes[0].listener, "0.0.0.0:8080") && d->causes[0].clients_affected > 0);
	/* the app holds 30 and takes no more: a connection cap at 30 */
	diagnose(s, pts, make_points(pts, 8, cap, drops, full), d);
	CHECK(!strcmp(d->verdict, "connection_cap"));
	CHECK(strstr(d->summary, "stopped accepting at 30 open connections"));
	/* the same, with the process stopped: stalled */
	for (int i = 1; i < 8; i++)
		pts[i].stopped_processes = 1;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "accept_queue_stalled"));
	/* 12 EMFILE on accept cost fewer clients than the overflow */
	pts[2].accept_emfile = pts[2].fd_errors = 12;
	s->n_syserr = 1;
	s->syserr[0] = (struct cs_syserr){ .syscall = CS_SYS_ACCEPT4, .err = 24, .count = 12 };
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "accept_queue_stalled"));
	CHECK(diagnose_has(d, "fd_exhaustion") && d->causes[1].clients_affected == 12);
	s->target_up = false;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "target_exited"));
	/* fds near the process's own limit without errors: a warning */
	s->target_up = true;
	s->n_syserr = 0;
	make_points(pts, 8, steady, none, (uint32_t[8]){ 0 });
	pts[4].open_fds = 1000;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "fd_exhaustion") && !strcmp(d->causes[0].severity, "warning"));
	/* ... against that tick's limit: raised at runtime, no warning */
	pts[4].fd_soft = 65536;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "healthy"));
	pts[3].resets_abort = 7;
	diagnose(s, pts, 8, d);
	CHECK(!strcmp(d->verdict, "reset_on_close") && d->causes[0].clients_affected == 7);
	/* namespace TCP memory pressure (tcp_mem is machine-wide: no real-kernel test) */
	pts[5].memory_pressures = 3;
	diagnose(s, pts, 8, d);
	CHECK(diagnose_has(d, "tcp_memory_pressure"));
	/* resets to no socket while the listener is up: not a closed port */
	pts[6].resets_no_socket = 5;
	diagnose(s, pts, 8, d);
	CHECK(!diagnose_has(d, "reset_no_listener"));
	s->ports_closed = 1;
	diagnose(s, pts, 8, d);
	CHECK(diagnose_has(d, "reset_no_listener"));
	free(s);
	free(d);
}

static void test_prom(void)
{
	struct cs_snapshot *s = snap();
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

static void test_json(void)
{
	struct cs_snapshot *s = snap();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pt = { .seconds = 2, .accepts = 5, .target_up = true };
	cJSON *root;
	char *text;

	diagnose(s, &pt, 1, d);
	text = json_diagnosis(d);
	root = cJSON_Parse(text);
	CHECK(root && !strcmp(cJSON_GetObjectItem(root, "verdict")->valuestring, "healthy"));
	CHECK(root && cJSON_GetObjectItem(root, "window_seconds")->valuedouble == 2);
	CHECK(root && cJSON_GetArraySize(cJSON_GetObjectItem(root, "causes")) == 1);
	cJSON_Delete(root);
	free(text);
	text = json_history(&pt, 1);
	root = cJSON_Parse(text);
	CHECK(root && cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "points"), 0),
					  "accepts")->valuedouble == 5);
	cJSON_Delete(root);
	free(text);
	free(s);
	free(d);
}

int main(void)
{
	RUN(test_history_point);
	RUN(test_history_ring);
	RUN(test_rules);
	RUN(test_prom);
	RUN(test_json);
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
