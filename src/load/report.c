// SPDX-License-Identifier: MIT
/* connscope-load's report: each step's outcomes, latency percentiles by
 * phase, achieved rate and connscope's verdict, then the total; as text for
 * people or as JSON (--json) for scripts. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "load.h"

static const char *const outcome_names[LOAD_OUT_MAX] = {
	[LOAD_OUT_OK] = "ok", [LOAD_OUT_CONNECTED] = "connected", [LOAD_OUT_REFUSED] = "refused",
	[LOAD_OUT_RESET] = "reset", [LOAD_OUT_TIMEOUT] = "timeout", [LOAD_OUT_HTTP_ERROR] = "http_error",
	[LOAD_OUT_WS_BAD_ACCEPT] = "ws_bad_accept", [LOAD_OUT_STOMP_ERROR] = "stomp_error",
	[LOAD_OUT_CLOSED] = "closed", [LOAD_OUT_CLIENT_EMFILE] = "client_emfile",
	[LOAD_OUT_EADDRNOTAVAIL] = "eaddrnotavail", [LOAD_OUT_OTHER] = "other",
};
static const char *const phase_names[LOAD_PH_MAX] = {
	[LOAD_PH_CONNECT] = "connect", [LOAD_PH_UPGRADE] = "upgrade", [LOAD_PH_STOMP] = "stomp_connect",
	[LOAD_PH_REPLY] = "reply", [LOAD_PH_SETTLE] = "settle", [LOAD_PH_HOLD] = "hold",
};
static const char *const lat_names[LAT_MAX] = {
	[LAT_CONNECT] = "connect", [LAT_UPGRADE] = "upgrade", [LAT_STOMP] = "stomp_connect",
	[LAT_REPLY] = "reply", [LAT_TOTAL] = "total",
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, long n, double p)
{
	long i;

	if (!n)
		return 0;
	i = (long)ceil(p / 100 * n) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Milliseconds to the microsecond: the clock's noise is coarser than that. */
static double us(double ms)
{
	return round(ms * 1000) / 1000;
}

static double achieved(const struct load_stats *st)
{
	return st->opened > 1 && st->t_last > st->t_first ? (st->opened - 1) / (st->t_last - st->t_first) : 0;
}

/* The total over every step, latencies concatenated; 0 or -ENOMEM. */
static int total_of(const struct load *l, struct load_stats *t)
{
	long cap = 0;

	memset(t, 0, sizeof(*t));
	for (int s = 0; s < l->cfg->nsteps; s++)
		cap += l->cfg->step_conns[s];
	for (int i = 0; i < LAT_MAX; i++) {
		t->lat[i] = calloc(cap + 1, sizeof(double));
		if (!t->lat[i])
			return -ENOMEM;
	}
	for (int s = 0; s < l->cfg->nsteps; s++) {
		const struct load_stats *st = &l->steps[s];

		if (!t->opened || (st->opened && st->t_first < t->t_first))
			t->t_first = st->t_first;
		if (st->t_last > t->t_last)
			t->t_last = st->t_last;
		t->opened += st->opened;
		for (int i = 0; i < LOAD_OUT_MAX; i++)
			t->outcomes[i] += st->outcomes[i];
		for (int i = 0; i < LOAD_PH_MAX; i++)
			t->timeouts[i] += st->timeouts[i];
		t->lost_in_hold += st->lost_in_hold;
		t->messages += st->messages;
		if (!t->stomp_error[0])
			memcpy(t->stomp_error, st->stomp_error, sizeof(t->stomp_error));
		for (int i = 0; i < LAT_MAX; i++) {
			memcpy(t->lat[i] + t->nlat[i], st->lat[i], st->nlat[i] * sizeof(double));
			t->nlat[i] += st->nlat[i];
		}
	}
	return 0;
}

static void sort_lat(struct load_stats *st)
{
	for (int i = 0; i < LAT_MAX; i++)
		qsort(st->lat[i], st->nlat[i], sizeof(double), cmp_double);
}

static void json_stats(cJSON *o, const struct load_stats *st)
{
	cJSON *x = cJSON_AddObjectToObject(o, "outcomes");

	for (int i = 0; i < LOAD_OUT_MAX; i++)
		cJSON_AddNumberToObject(x, outcome_names[i], st->outcomes[i]);
	x = cJSON_AddObjectToObject(o, "timeouts_by_step");
	for (int i = 0; i < LOAD_PH_HOLD; i++)
		cJSON_AddNumberToObject(x, phase_names[i], st->timeouts[i]);
	cJSON_AddNumberToObject(o, "lost_while_held", st->lost_in_hold);
	cJSON_AddNumberToObject(o, "messages_received", st->messages);
	if (st->stomp_error[0])
		cJSON_AddStringToObject(o, "stomp_error_message", st->stomp_error);
	x = cJSON_AddObjectToObject(o, "latency_ms");
	for (int i = 0; i < LAT_MAX; i++) {
		cJSON *p = cJSON_AddObjectToObject(x, lat_names[i]);
		long n = st->nlat[i];

		cJSON_AddNumberToObject(p, "count", n);
		cJSON_AddNumberToObject(p, "p50", us(pct(st->lat[i], n, 50)));
		cJSON_AddNumberToObject(p, "p90", us(pct(st->lat[i], n, 90)));
		cJSON_AddNumberToObject(p, "p99", us(pct(st->lat[i], n, 99)));
		cJSON_AddNumberToObject(p, "max", us(n ? st->lat[i][n - 1] : 0));
	}
}

static void text_stats(FILE *f, const struct load_stats *st, long conns)
{
	for (int i = 0; i < LOAD_OUT_MAX; i++) {
		if (!st->outcomes[i] && i != LOAD_OUT_OK)
			continue;
		fprintf(f, "  %-14s %8ld  %5.1f%%", outcome_names[i], st->outcomes[i],
			100.0 * st->outcomes[i] / (conns ? conns : 1));
		if (i == LOAD_OUT_CONNECTED)
			fprintf(f, "  TCP handshake done on the client's side only: proves nothing when the\n"
				"%34sserver's accept queue drops handshake ACKs (send --message to know)", "");
		if (i == LOAD_OUT_TIMEOUT) {
			fprintf(f, "  (waiting for:");
			for (int s = 0; s < LOAD_PH_HOLD; s++)
				if (st->timeouts[s])
					fprintf(f, " %s %ld", phase_names[s], st->timeouts[s]);
			fprintf(f, ")");
		}
		if (i == LOAD_OUT_STOMP_ERROR)
			fprintf(f, "  ERROR frame, message: %s", st->stomp_error);
		if (i == LOAD_OUT_CLIENT_EMFILE)
			fprintf(f, "  the CLIENT ran out of fds: add --workers N (each has its own limit)");
		if (i == LOAD_OUT_EADDRNOTAVAIL)
			fprintf(f, "  the CLIENT ran out of local ports: add --source 127.0.0.1-127.0.0.16");
		fprintf(f, "\n");
	}
	if (st->lost_in_hold)
		fprintf(f, "  %-14s %8ld  answered, then closed by the server before --hold ended\n",
			"lost_in_hold", st->lost_in_hold);
	if (st->messages)
		fprintf(f, "  %-14s %8ld  STOMP MESSAGE frames received\n", "messages", st->messages);
	fprintf(f, "  latency ms          count      p50      p90      p99      max\n");
	for (int i = 0; i < LAT_MAX; i++)
		if (st->nlat[i])
			fprintf(f, "  %-14s %9ld %8.2f %8.2f %8.2f %8.2f\n", lat_names[i], st->nlat[i],
				pct(st->lat[i], st->nlat[i], 50), pct(st->lat[i], st->nlat[i], 90),
				pct(st->lat[i], st->nlat[i], 99), st->lat[i][st->nlat[i] - 1]);
}

/* The verdict and the top cause's evidence, whatever cause ids the daemon has. */
static void text_verdict(FILE *f, const cJSON *d)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "verdict");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window_seconds");
	const cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "causes"), 0);
	const cJSON *e;

	fprintf(f, "  connscope verdict: %s (window %.1f s)\n", cJSON_IsString(v) ? v->valuestring : "?",
		cJSON_IsNumber(w) ? w->valuedouble : 0);
	/* the daemon's one sentence for a person, where it has one */
	v = cJSON_GetObjectItemCaseSensitive(d, "summary");
	if (cJSON_IsString(v) && v->valuestring[0])
		fprintf(f, "    %s\n", v->valuestring);
	if (!top)
		return;
	v = cJSON_GetObjectItemCaseSensitive(top, "cause");
	w = cJSON_GetObjectItemCaseSensitive(top, "severity");
	fprintf(f, "    top cause: %s [%s]\n    evidence:", cJSON_IsString(v) ? v->valuestring : "?",
		cJSON_IsString(w) ? w->valuestring : "?");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(top, "evidence")) {
		if (cJSON_IsNumber(e))
			fprintf(f, " %s=%.15g", e->string, e->valuedouble);
		else if (cJSON_IsString(e))
			fprintf(f, " %s=%s", e->string, e->valuestring);
	}
	fprintf(f, "\n");
}

static const char *mode_name(const struct load_cfg *cfg)
{
	if (cfg->stomp)
		return cfg->stomp_mode == LOAD_STOMP_RECEIPT ? "websocket+stomp, RECEIPT required" :
		       cfg->stomp_mode == LOAD_STOMP_SUBSCRIBE ? "websocket+stomp, MESSAGE required" :
								  "websocket+stomp, no ERROR within --settle";
	return cfg->ws_path ? "websocket" : cfg->message[0] ? "tcp+reply" : "tcp, connect only";
}

static void report_json(struct load *l, struct load_stats *t, FILE *f)
{
	const struct load_cfg *cfg = l->cfg;
	cJSON *root = cJSON_CreateObject(), *steps;
	long conns = 0;
	char *out;

	for (int s = 0; s < cfg->nsteps; s++)
		conns += cfg->step_conns[s];
	cJSON_AddStringToObject(root, "target", cfg->target);
	cJSON_AddStringToObject(root, "mode", mode_name(cfg));
	cJSON_AddNumberToObject(root, "connections", conns);
	cJSON_AddNumberToObject(root, "rate", cfg->rates[0]);
	cJSON_AddNumberToObject(root, "achieved_rate", round(achieved(t) * 10) / 10);
	cJSON_AddNumberToObject(root, "duration_seconds", l->t_end - l->t_start);
	cJSON_AddNumberToObject(root, "workers", cfg->workers);
	cJSON_AddNumberToObject(root, "sources", cfg->nsources);
	json_stats(root, t);
	steps = cJSON_AddArrayToObject(root, "steps");
	for (int s = 0; s < cfg->nsteps; s++) {
		const struct load_stats *st = &l->steps[s];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "rate", cfg->rates[s]);
		cJSON_AddNumberToObject(o, "connections", cfg->step_conns[s]);
		cJSON_AddNumberToObject(o, "achieved_rate", round(achieved(st) * 10) / 10);
		cJSON_AddNumberToObject(o, "duration_seconds", st->t_done - st->t_start);
		json_stats(o, st);
		if (l->diag[s])
			cJSON_AddItemToObject(o, "diagnosis", cJSON_Duplicate(l->diag[s], true));
		cJSON_AddItemToArray(steps, o);
	}
	out = cJSON_PrintUnformatted(root);
	if (out)
		fprintf(f, "%s\n", out);
	free(out);
	cJSON_Delete(root);
}

void load_report(struct load *l, bool json, FILE *f)
{
	const struct load_cfg *cfg = l->cfg;
	struct load_stats t;
	long conns = 0;

	for (int s = 0; s < cfg->nsteps; s++) {
		sort_lat(&l->steps[s]);
		conns += cfg->step_conns[s];
	}
	if (total_of(l, &t)) {
		fprintf(stderr, "connscope-load: out of memory for the report\n");
		goto cleanup;
	}
	sort_lat(&t);
	if (json) {
		report_json(l, &t, f);
		goto cleanup;
	}
	fprintf(f, "connscope-load: %s, %ld connections (%s), %.1f s", cfg->target, conns, mode_name(cfg),
		l->t_end - l->t_start);
	if (cfg->workers > 1)
		fprintf(f, ", %d workers", cfg->workers);
	if (cfg->nsources)
		fprintf(f, ", %ld source addresses", cfg->nsources);
	fprintf(f, "\n");
	for (int s = 0; s < cfg->nsteps; s++) {
		const struct load_stats *st = &l->steps[s];

		if (cfg->nsteps > 1)
			fprintf(f, "step %d: %g/s for %g s: %ld connections, achieved %.1f/s\n", s + 1, cfg->rates[s],
				cfg->step_seconds, cfg->step_conns[s], achieved(st));
		else
			fprintf(f, "rate %g/s: %ld connections, achieved %.1f/s\n", cfg->rates[s], cfg->step_conns[s],
				achieved(st));
		if (cfg->rates[s] > 0 && achieved(st) < 0.95 * cfg->rates[s] && !(s == 0 && cfg->ramp > 0))
			fprintf(f, "  the CLIENT fell behind the rate: %s\n", cfg->nsources > 1 ?
				"it lacks CPU (add --workers, or run it on another host)" :
				"connect() slows down as the source address's ephemeral ports\n"
				"  fill up (add --source 127.0.0.1-127.0.0.16), or it lacks CPU (--workers)");
		text_stats(f, st, cfg->step_conns[s]);
		if (l->diag[s])
			text_verdict(f, l->diag[s]);
	}
	if (cfg->nsteps > 1) {
		fprintf(f, "total: %d steps, %ld connections\n", cfg->nsteps, conns);
		text_stats(f, &t, conns);
	}
cleanup:
	for (int i = 0; i < LAT_MAX; i++)
		free(t.lat[i]);
}
