// SPDX-License-Identifier: MIT
/* JSON renderings for the HTTP API; the same numbers as /metrics. */
#include "json.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "netutil.h"

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		unsigned lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;

		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;

		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/* A copy of s with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD: cJSON copies bytes as they are, and a client's percent-decoded query
 * or a process name (comm) can be anything. Caller frees; NULL on ENOMEM. */
char *json_utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		size_t n = utf8_seq(p);

		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = 0;
	return out;
}

static void add_clean_string(cJSON *o, const char *name, const char *s)
{
	char *c = json_utf8_clean(s);

	cJSON_AddStringToObject(o, name, c ? c : "");
	free(c);
}

static const char *const initiators[CS_INIT_MAX] = { "local", "remote", "reset" };

static char *finish(cJSON *root)
{
	char *out = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	return out;
}

static void add_hist(cJSON *parent, const char *name, const struct cs_hist *h)
{
	cJSON *o = cJSON_AddObjectToObject(parent, name);
	cJSON *buckets = cJSON_AddArrayToObject(o, "buckets");
	uint64_t cum = 0;

	cJSON_AddNumberToObject(o, "count", (double)h->count);
	cJSON_AddNumberToObject(o, "sum_seconds", h->sum_ns / 1e9);
	for (int i = 0; i < CS_HIST_SLOTS; i++) {
		cJSON *bk;

		cum += h->slots[i];
		if (!h->slots[i])
			continue;
		bk = cJSON_CreateObject();
		if (i == CS_HIST_SLOTS - 1)
			cJSON_AddStringToObject(bk, "le", "+Inf");
		else
			cJSON_AddNumberToObject(bk, "le", (double)(1ULL << (i + 1)) / 1e6);
		cJSON_AddNumberToObject(bk, "cumulative", (double)cum);
		cJSON_AddItemToArray(buckets, bk);
	}
}

/* probes: each tracepoint and whether it runs on this kernel;
 * sources: whether each last read worked. */
static void add_coverage(cJSON *root, const struct cs_snapshot *s)
{
	cJSON *arr = cJSON_AddArrayToObject(root, "probes"), *o;

	for (int i = 0; i < s->n_probes; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "probe", s->probes[i].name);
		cJSON_AddStringToObject(o, "state", snapshot_probe_state_name(s->probes[i].state));
		if (s->probes[i].why[0])
			cJSON_AddStringToObject(o, "why", s->probes[i].why);
		cJSON_AddItemToArray(arr, o);
	}
	o = cJSON_AddObjectToObject(root, "sources_up");
	for (int i = 0; i < CS_SRC_MAX; i++)
		cJSON_AddBoolToObject(o, snapshot_source_name(i), s->source_up[i]);
}

char *json_snapshot(const struct cs_snapshot *s)
{
	cJSON *root = cJSON_CreateObject(), *t, *arr, *o;

	cJSON_AddNumberToObject(root, "time_unix_ms", (double)s->unix_ms);
	cJSON_AddNumberToObject(root, "uptime_seconds", s->mono_s - s->started_mono_s);
	t = cJSON_AddObjectToObject(root, "target");
	cJSON_AddNumberToObject(t, "pid", s->pid);
	add_clean_string(t, "comm", s->comm);
	cJSON_AddBoolToObject(t, "up", s->target_up);
	cJSON_AddNumberToObject(t, "restarts", (double)s->restarts);
	cJSON_AddNumberToObject(t, "processes", s->processes);
	cJSON_AddNumberToObject(t, "threads", s->threads);
	cJSON_AddNumberToObject(t, "resident_memory_bytes", (double)s->rss_bytes);
	cJSON_AddNumberToObject(t, "uptime_seconds", s->target_uptime_s);
	cJSON_AddStringToObject(t, "kernel", s->kernel);
	o = cJSON_AddObjectToObject(root, "fds");
	cJSON_AddNumberToObject(o, "pid", s->fd_pid);
	cJSON_AddNumberToObject(o, "open", s->open_fds);
	cJSON_AddNumberToObject(o, "soft_limit", s->fd_soft);
	cJSON_AddNumberToObject(o, "hard_limit", s->fd_hard);
	cJSON_AddNumberToObject(o, "peak", s->fd_peak);
	cJSON_AddNumberToObject(root, "somaxconn", s->somaxconn);
	cJSON_AddNumberToObject(root, "accepts_total", (double)s->accepts_total);
	arr = cJSON_AddArrayToObject(root, "processes");
	for (int i = 0; i < s->n_procs; i++) {
		const struct cs_proc_info *pi = &s->procs[i];

		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "pid", pi->pid);
		cJSON_AddStringToObject(o, "comm", pi->comm);
		cJSON_AddNumberToObject(o, "open_fds", pi->open_fds);
		cJSON_AddNumberToObject(o, "fd_soft_limit", pi->fd_soft);
		cJSON_AddNumberToObject(o, "fd_hard_limit", pi->fd_hard);
		cJSON_AddNumberToObject(o, "fd_peak", pi->fd_peak);
		cJSON_AddNumberToObject(o, "threads", pi->threads);
		cJSON_AddNumberToObject(o, "resident_memory_bytes", (double)pi->rss_bytes);
		cJSON_AddItemToArray(arr, o);
	}

	arr = cJSON_AddArrayToObject(root, "syscall_errors");
	for (int i = 0; i < s->n_syserr; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "syscall", names_syscall(s->syserr[i].syscall));
		cJSON_AddStringToObject(o, "errno", names_errno(s->syserr[i].err));
		cJSON_AddNumberToObject(o, "count", (double)s->syserr[i].count);
		cJSON_AddItemToArray(arr, o);
	}
	arr = cJSON_AddArrayToObject(root, "listeners");
	for (int i = 0; i < s->n_listeners; i++) {
		const struct cs_listener *l = &s->listeners[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "listener", l->label);
		cJSON_AddNumberToObject(o, "port", l->port);
		cJSON_AddNumberToObject(o, "accept_queue_length", l->queue_len);
		cJSON_AddNumberToObject(o, "accept_queue_limit", l->queue_limit);
		cJSON_AddNumberToObject(o, "listen_drops_total", (double)l->drops);
		cJSON_AddItemToArray(arr, o);
	}
	for (int i = 0; i < s->n_stopped_listeners; i++) {
		const struct cs_stopped_listener *l = &s->stopped_listeners[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "listener", l->label);
		cJSON_AddNumberToObject(o, "port", l->port);
		cJSON_AddNumberToObject(o, "stopped_at", l->stopped_at);
		cJSON_AddItemToArray(arr, o);
	}
	arr = cJSON_AddArrayToObject(root, "ports");
	for (int i = 0; i < s->n_ports; i++) {
		const struct cs_port *p = &s->ports[i];
		cJSON *c;

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "listener", p->label);
		cJSON_AddNumberToObject(o, "port", p->port);
		cJSON_AddNumberToObject(o, "accepts_total", (double)p->accepts);
		cJSON_AddNumberToObject(o, "connections_open", (double)p->open);
		c = cJSON_AddObjectToObject(o, "connections_closed_total");
		for (int k = 0; k < CS_INIT_MAX; k++)
			cJSON_AddNumberToObject(c, initiators[k], (double)p->closed[k]);
		cJSON_AddNumberToObject(o, "connections_closed_before_accept_total", (double)p->closed_before_accept);
		add_hist(o, "accept_wait_seconds", &p->accept_wait);
		add_hist(o, "connection_duration_seconds", &p->duration);
		add_hist(o, "rejected_lifetime_seconds", &p->serve.rejected_life);
		cJSON_AddNumberToObject(o, "connections_left_in_backlog_total", (double)p->serve.left_in_backlog);
		cJSON_AddItemToArray(arr, o);
	}
	o = cJSON_AddObjectToObject(root, "tcp_resets_sent_total");
	for (int i = 0; i < CS_RST_REASONS_MAX; i++)
		if (s->resets_sent[i] && names_rst_reason(i))
			cJSON_AddNumberToObject(o, names_rst_reason(i), (double)s->resets_sent[i]);
	cJSON_AddNumberToObject(root, "tcp_resets_received_total", (double)s->counters[CS_CNT_RESETS_RECEIVED]);
	cJSON_AddNumberToObject(root, "synack_retransmits_total", (double)s->counters[CS_CNT_SYNACK_RETRANS]);
	cJSON_AddNumberToObject(root, "oom_kills_total", (double)s->counters[CS_CNT_OOM_KILLS]);
	o = cJSON_AddObjectToObject(root, "netns_tcp_ext_total");
	if (s->have_tcp_ext)
		for (int i = 0; i < CS_TE_MAX; i++)
			cJSON_AddNumberToObject(o, names_tcp_ext(i), (double)s->tcp_ext[i]);
	o = cJSON_AddObjectToObject(root, "events_lost_total");
	cJSON_AddNumberToObject(o, "ringbuf_full", (double)s->counters[CS_CNT_EVENTS_DROPPED]);
	cJSON_AddNumberToObject(o, "conn_table_full", (double)s->counters[CS_CNT_CONNS_TABLE_FULL]);
	cJSON_AddNumberToObject(o, "targets_full", (double)s->counters[CS_CNT_TARGETS_FULL]);
	cJSON_AddNumberToObject(o, "listen_addrs_full", (double)s->counters[CS_CNT_LISTEN_ADDRS_FULL]);
	cJSON_AddNumberToObject(o, "procs_not_read", (double)s->procs_not_read);
	cJSON_AddNumberToObject(o, "probe_recursion", (double)s->probe_recursion_lost);
	cJSON_AddNumberToObject(root, "events_sampled_total", (double)s->counters[CS_CNT_EVENTS_SAMPLED]);
	o = cJSON_AddObjectToObject(root, "probe_runs_stood_in_total");
	for (unsigned h = 0; o && h < CS_NEST_MAX; h++)
		cJSON_AddNumberToObject(o, names_nest_hook(h), (double)s->probe_stood_in[h]);
	add_coverage(root, s);
	return finish(root);
}

char *json_diagnosis(const struct cs_diagnosis *d)
{
	cJSON *root = cJSON_CreateObject(), *arr;

	cJSON_AddStringToObject(root, "verdict", d->verdict);
	cJSON_AddStringToObject(root, "summary", d->summary);
	cJSON_AddNumberToObject(root, "window_seconds", d->window_seconds);
	arr = cJSON_AddArrayToObject(root, "causes");
	for (int i = 0; i < d->n_causes; i++) {
		const struct cs_cause *c = &d->causes[i];
		cJSON *o = cJSON_CreateObject(), *ev;

		cJSON_AddStringToObject(o, "cause", c->id);
		cJSON_AddStringToObject(o, "severity", c->severity);
		cJSON_AddNumberToObject(o, "score", c->score);
		cJSON_AddNumberToObject(o, "clients_affected", c->clients_affected);
		cJSON_AddStringToObject(o, "clients_how", c->clients_how);
		cJSON_AddStringToObject(o, "listener", c->listener);
		ev = cJSON_AddObjectToObject(o, "evidence");
		for (int j = 0; j < c->n_evidence; j++) {
			if (c->evidence[j].is_text)
				cJSON_AddStringToObject(ev, c->evidence[j].name, c->evidence[j].text);
			else
				cJSON_AddNumberToObject(ev, c->evidence[j].name, c->evidence[j].num);
		}
		cJSON_AddStringToObject(o, "explanation", c->explanation);
		cJSON_AddStringToObject(o, "fix", c->fix);
		cJSON_AddItemToArray(arr, o);
	}
	return finish(root);
}

/* What the live page charts beyond the totals: resets by reason, the fd
 * soft limit, and per listener. */
static void add_point_extra(cJSON *o, const struct cs_point *p)
{
	cJSON *r = cJSON_AddObjectToObject(o, "resets_sent_by_reason"), *arr;
	uint64_t named = p->resets_abort + p->resets_no_socket + p->resets_memory;

	cJSON_AddNumberToObject(r, "abort", (double)p->resets_abort);
	cJSON_AddNumberToObject(r, "no_socket", (double)p->resets_no_socket);
	cJSON_AddNumberToObject(r, "memory", (double)p->resets_memory);
	cJSON_AddNumberToObject(r, "other", p->resets_sent > named ? (double)(p->resets_sent - named) : 0);
	cJSON_AddNumberToObject(o, "fd_soft_limit", p->fd_soft);
	cJSON_AddBoolToObject(o, "target_up", p->target_up);
	arr = cJSON_AddArrayToObject(o, "listeners");
	for (int i = 0; i < p->n_listeners; i++) {
		const struct cs_point_listener *pl = &p->listeners[i];
		cJSON *l = cJSON_CreateObject();

		cJSON_AddStringToObject(l, "listener", pl->label);
		cJSON_AddNumberToObject(l, "accepts", (double)pl->accepts);
		cJSON_AddNumberToObject(l, "listen_drops", (double)pl->drops);
		cJSON_AddNumberToObject(l, "accept_queue_length", pl->queue_len);
		cJSON_AddNumberToObject(l, "accept_queue_limit", pl->queue_limit);
		cJSON_AddNumberToObject(l, "connections_open", pl->open);
		cJSON_AddNumberToObject(l, "connections_open_peak", pl->open_peak);
		cJSON_AddNumberToObject(l, "local_closes", (double)pl->local_closes);
		cJSON_AddNumberToObject(l, "accepts_after_close", (double)pl->accepts_after_close);
		cJSON_AddNumberToObject(l, "accept_wait_p50_seconds", pl->accept_wait_p50_s);
		cJSON_AddNumberToObject(l, "accept_wait_p99_seconds", pl->accept_wait_p99_s);
		cJSON_AddItemToArray(arr, l);
	}
}

char *json_history(const struct cs_point *pts, int n)
{
	cJSON *root = cJSON_CreateObject(), *arr;

	cJSON_AddNumberToObject(root, "points_count", n);
	cJSON_AddNumberToObject(root, "points_max", CS_HISTORY_POINTS);
	arr = cJSON_AddArrayToObject(root, "points");
	for (int i = 0; i < n; i++) {
		const struct cs_point *p = &pts[i];
		cJSON *o = cJSON_CreateObject(), *e;

		cJSON_AddNumberToObject(o, "time_unix_ms", (double)p->unix_ms);
		cJSON_AddNumberToObject(o, "seconds", p->seconds);
		cJSON_AddNumberToObject(o, "accepts", (double)p->accepts);
		e = cJSON_AddObjectToObject(o, "accept_errors");
		cJSON_AddNumberToObject(e, "EMFILE", (double)p->accept_emfile);
		cJSON_AddNumberToObject(e, "ENFILE", (double)p->accept_enfile);
		cJSON_AddNumberToObject(e, "other", (double)p->accept_other_errors);
		cJSON_AddNumberToObject(o, "fd_errors", (double)p->fd_errors);
		cJSON_AddNumberToObject(o, "listen_drops", (double)p->listen_drops);
		cJSON_AddNumberToObject(o, "resets_sent", (double)p->resets_sent);
		cJSON_AddNumberToObject(o, "resets_received", (double)p->resets_received);
		cJSON_AddNumberToObject(o, "closed_before_accept", (double)p->closed_before_accept);
		cJSON_AddNumberToObject(o, "open_fds", p->open_fds);
		cJSON_AddNumberToObject(o, "accept_queue_length", p->queue_len);
		cJSON_AddNumberToObject(o, "accept_queue_limit", p->queue_limit);
		add_point_extra(o, p);
		cJSON_AddItemToArray(arr, o);
	}
	return finish(root);
}

static const char *const event_kinds[CS_EV_KINDS] = {
	[CS_EV_FD_ERROR] = "fd_error",
	[CS_EV_RESET_SENT] = "reset_sent",
	[CS_EV_OOM_KILL] = "oom_kill",
	[CS_EV_LISTEN_OVERFLOW] = "listen_overflow",
	[CS_EV_TARGET_RESTART] = "target_restart",
	[CS_EV_TARGET_EXIT] = "target_exit",
};

char *json_events(const struct cs_event_rec *evs, int n)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char a[80];

	arr = cJSON_AddArrayToObject(root, "events");
	for (int i = 0; i < n; i++) {
		const struct cs_event_rec *r = &evs[i];
		const struct cs_event *e = &r->ev;
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "time_unix_ms", (double)r->unix_ms);
		cJSON_AddStringToObject(o, "kind", e->kind < CS_EV_KINDS ? event_kinds[e->kind] : "unknown");
		if (e->pid) /* 0: seen in softirq, where no process is evidence */
			cJSON_AddNumberToObject(o, "pid", e->pid);
		switch (e->kind) {
		case CS_EV_FD_ERROR:
			cJSON_AddStringToObject(o, "syscall", names_syscall(e->syscall));
			cJSON_AddStringToObject(o, "errno", names_errno(e->err));
			add_clean_string(o, "comm", e->comm);
			break;
		case CS_EV_RESET_SENT:
			cJSON_AddStringToObject(o, "reason", names_rst_reason(e->reason) ? names_rst_reason(e->reason) : "unknown");
			net_format_addr(e->family, e->saddr, e->sport, a, sizeof(a));
			cJSON_AddStringToObject(o, "local", a);
			net_format_addr(e->family, e->daddr, e->dport, a, sizeof(a));
			cJSON_AddStringToObject(o, "remote", a);
			break;
		case CS_EV_OOM_KILL:
		case CS_EV_TARGET_EXIT:
			add_clean_string(o, "comm", e->comm);
			break;
		case CS_EV_TARGET_RESTART:
			cJSON_AddStringToObject(o, "comm", e->comm);
			cJSON_AddNumberToObject(o, "previous_pid", (double)r->count);
			break;
		case CS_EV_LISTEN_OVERFLOW:
			cJSON_AddStringToObject(o, "listener", r->listener);
			cJSON_AddNumberToObject(o, "drops", (double)r->count);
			break;
		}
		cJSON_AddItemToArray(arr, o);
	}
	return finish(root);
}

char *json_error(const char *message)
{
	cJSON *root = cJSON_CreateObject();

	add_clean_string(root, "error", message);
	return finish(root);
}
