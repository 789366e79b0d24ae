// SPDX-License-Identifier: MIT
/* Renders the snapshot as Prometheus text: HELP and TYPE for every family,
 * base units, counters ending in _total, log2 histograms as real buckets. */
#include "prom.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP connscope_%s %s\n# TYPE connscope_%s %s\n", name, help, name, type);
}

/* Label values here are addresses, syscall and reason names; escape anyway. */
static void escaped(struct sbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sbuf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			sbuf_append(b, "\\n", 2);
		else
			sbuf_append(b, v, 1);
	}
}

static void sample_l(struct sbuf *b, const char *name, const char *lname, const char *lval, double v)
{
	sbuf_printf(b, "connscope_%s{%s=\"", name, lname);
	escaped(b, lval);
	sbuf_printf(b, "\"} %.17g\n", v);
}

static void sample(struct sbuf *b, const char *name, double v)
{
	sbuf_printf(b, "connscope_%s %.17g\n", name, v);
}

/* Slot i holds [2^i, 2^(i+1)) microseconds; the last slot is open-ended. */
static void histogram(struct sbuf *b, const char *name, const char *listener, const struct cs_hist *h)
{
	uint64_t cum = 0;

	for (int i = 0; i < CS_HIST_SLOTS - 1; i++) {
		cum += h->slots[i];
		sbuf_printf(b, "connscope_%s_bucket{listener=\"", name);
		escaped(b, listener);
		sbuf_printf(b, "\",le=\"%g\"} %llu\n", (double)(1ULL << (i + 1)) / 1e6,
			    (unsigned long long)cum);
	}
	sbuf_printf(b, "connscope_%s_bucket{listener=\"", name);
	escaped(b, listener);
	sbuf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
	sbuf_printf(b, "connscope_%s_sum{listener=\"", name);
	escaped(b, listener);
	sbuf_printf(b, "\"} %.9f\n", h->sum_ns / 1e9);
	sbuf_printf(b, "connscope_%s_count{listener=\"", name);
	escaped(b, listener);
	sbuf_printf(b, "\"} %llu\n", (unsigned long long)h->count);
}

static const char *const initiators[CS_INIT_MAX] = { "local", "remote", "reset" };

static void render_process(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "target_up", "gauge", "1 while the watched process runs, 0 once it exited.");
	sample(b, "target_up", s->target_up);
	family(b, "target_processes", "gauge", "Processes watched: the target and its descendants.");
	sample(b, "target_processes", s->processes);
	family(b, "target_restarts_total", "counter",
	       "Times the target exited and a successor took over its listeners (--follow).");
	sample(b, "target_restarts_total", (double)s->restarts);
	family(b, "open_fds", "gauge", "Open file descriptors of the target process nearest its limit.");
	sample(b, "open_fds", s->open_fds);
	family(b, "fd_limit", "gauge", "RLIMIT_NOFILE of that process (-1: unlimited).");
	sample_l(b, "fd_limit", "kind", "soft", s->fd_soft);
	sample_l(b, "fd_limit", "kind", "hard", s->fd_hard);
	family(b, "fd_peak", "gauge", "Highest open_fds seen since attach.");
	sample(b, "fd_peak", s->fd_peak);
	family(b, "threads", "gauge", "Threads of all target processes.");
	sample(b, "threads", s->threads);
	family(b, "resident_memory_bytes", "gauge", "Resident memory of all target processes.");
	sample(b, "resident_memory_bytes", (double)s->rss_bytes);
	family(b, "somaxconn", "gauge", "net.core.somaxconn in the target's network namespace.");
	sample(b, "somaxconn", s->somaxconn);
}

static uint64_t syserr_count(const struct cs_snapshot *s, int sys, int err)
{
	for (int i = 0; i < s->n_syserr; i++)
		if (s->syserr[i].syscall == sys && s->syserr[i].err == err)
			return s->syserr[i].count;
	return 0;
}

static void render_sockets(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "accepts_total", "counter", "Connections the target accepted since attach.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "accepts_total", "listener", s->ports[i].label, (double)s->ports[i].accepts);
	family(b, "syscall_errors_total", "counter",
	       "Failed syscalls of the target: accept errors by errno, and EMFILE/ENFILE from any fd-creating syscall.");
	/* EMFILE and ENFILE exist from the start at 0, so increase() sees the
	 * first burst; other errnos appear when they happen. */
	for (int sys = 0; sys < CS_SYS_MAX; sys++)
		for (int err = ENFILE; err <= EMFILE; err++) /* ENFILE 23, EMFILE 24 */
			sbuf_printf(b, "connscope_syscall_errors_total{syscall=\"%s\",errno=\"%s\"} %llu\n",
				    names_syscall(sys), names_errno(err),
				    (unsigned long long)syserr_count(s, sys, err));
	for (int i = 0; i < s->n_syserr; i++)
		if (s->syserr[i].err != ENFILE && s->syserr[i].err != EMFILE)
			sbuf_printf(b, "connscope_syscall_errors_total{syscall=\"%s\",errno=\"%s\"} %llu\n",
				    names_syscall(s->syserr[i].syscall), names_errno(s->syserr[i].err),
				    (unsigned long long)s->syserr[i].count);
	family(b, "accept_queue_length", "gauge", "Connections in the listener's accept queue, not yet accepted.");
	for (int i = 0; i < s->n_listeners; i++)
		sample_l(b, "accept_queue_length", "listener", s->listeners[i].label, s->listeners[i].queue_len);
	family(b, "accept_queue_limit", "gauge", "Accept queue limit: min(listen backlog, somaxconn).");
	for (int i = 0; i < s->n_listeners; i++)
		sample_l(b, "accept_queue_limit", "listener", s->listeners[i].label, s->listeners[i].queue_limit);
	family(b, "listen_drops_total", "counter", "Packets the listener dropped (sk_drops, ss -lntm d<N>): full accept queue.");
	for (int i = 0; i < s->n_listeners; i++)
		sample_l(b, "listen_drops_total", "listener", s->listeners[i].label, (double)s->listeners[i].drops);
	family(b, "connections_open", "gauge",
	       "Connections accepted since attach that the target has not closed (its close(), an abort or a reset ends one).");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_open", "listener", s->ports[i].label,
			 (double)s->ports[i].open);
	family(b, "connections_closed_total", "counter", "Accepted connections closed, by who ended them.");
	for (int i = 0; i < s->n_ports; i++)
		for (int k = 0; k < CS_INIT_MAX; k++) {
			sbuf_printf(b, "connscope_connections_closed_total{listener=\"");
			escaped(b, s->ports[i].label);
			sbuf_printf(b, "\",initiator=\"%s\"} %llu\n", initiators[k],
				    (unsigned long long)s->ports[i].closed[k]);
		}
	family(b, "connections_closed_before_accept_total", "counter",
	       "Connections that completed the handshake but closed before the application accepted them.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_closed_before_accept_total", "listener", s->ports[i].label,
			 (double)s->ports[i].closed_before_accept);
	family(b, "accept_wait_seconds", "histogram", "Time from handshake completion to accept().");
	for (int i = 0; i < s->n_ports; i++)
		histogram(b, "accept_wait_seconds", s->ports[i].label, &s->ports[i].accept_wait);
	family(b, "connection_duration_seconds", "histogram", "Lifetime of accepted connections, accept to close.");
	for (int i = 0; i < s->n_ports; i++)
		histogram(b, "connection_duration_seconds", s->ports[i].label, &s->ports[i].duration);
}

/* Wall-clock seconds of a kernel CLOCK_MONOTONIC timestamp, 0 if never. */
static double unix_seconds(const struct cs_snapshot *s, uint64_t mono_ns)
{
	if (!mono_ns)
		return 0;
	return s->unix_ms / 1e3 - ((double)s->mono_ns - (double)mono_ns) / 1e9;
}

/* The accept queue in time, measured by the kernel (queue_time map). */
static void render_queue_time(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "accept_queue_full_seconds_total", "counter",
	       "Time the accept queue was full with no accept, ended at the next accept.");
	for (int i = 0; i < s->n_ports; i++) {
		const struct cs_port *p = &s->ports[i];
		uint64_t ns = p->qt.full_total_ns;

		if (p->qt.full_since_ns && p->qt.full_since_ns < s->mono_ns)
			ns += s->mono_ns - p->qt.full_since_ns;
		sample_l(b, "accept_queue_full_seconds_total", "listener", p->label, ns / 1e9);
	}
	family(b, "accept_queue_longest_gap_seconds", "gauge",
	       "Longest time with no accept while the accept queue was full, since attach.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "accept_queue_longest_gap_seconds", "listener", s->ports[i].label,
			 s->ports[i].qt.longest_gap_ns / 1e9);
	family(b, "last_accept_timestamp_seconds", "gauge", "When the application last accepted (0: not since attach).");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "last_accept_timestamp_seconds", "listener", s->ports[i].label,
			 unix_seconds(s, s->ports[i].qt.last_accept_ns));
	family(b, "last_local_close_timestamp_seconds", "gauge",
	       "When the application last closed an accepted connection (0: not since attach).");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "last_local_close_timestamp_seconds", "listener", s->ports[i].label,
			 unix_seconds(s, s->ports[i].qt.last_local_close_ns));
	if (!s->ack_drops_exact)
		return;
	family(b, "listen_ack_drops_total", "counter",
	       "Handshake ACKs dropped for a full accept queue (kfree_skb TCP_LISTEN_OVERFLOW): clients that believe they connected.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "listen_ack_drops_total", "listener", s->ports[i].label, (double)s->ports[i].qt.ack_drops);
}

/* Did the app serve what it accepted (first read, unread, abandoned, rejected)? */
static void render_serving(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "first_read_wait_seconds", "histogram", "Time from accept() to the app's first read of data from the connection.");
	for (int i = 0; i < s->n_ports; i++)
		histogram(b, "first_read_wait_seconds", s->ports[i].label, &s->ports[i].serve.first_read_wait);
	family(b, "connections_unread", "gauge", "Connections accepted since attach, open, and never read by the app.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_unread", "listener", s->ports[i].label, (double)snapshot_port_unread(&s->ports[i]));
	family(b, "connections_abandoned_unread_total", "counter",
	       "Accepted connections whose peer sent data, then closed or reset before the app read it.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_abandoned_unread_total", "listener", s->ports[i].label,
			 (double)s->ports[i].serve.gave_up);
	family(b, "connections_rejected_total", "counter",
	       "Accepted connections the app closed (FIN) within 1 s without reading them.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_rejected_total", "listener", s->ports[i].label,
			 (double)s->ports[i].serve.rejected);
	family(b, "rejected_lifetime_seconds", "histogram",
	       "Of the rejected connections: time from accept() to the app's close (FIN).");
	for (int i = 0; i < s->n_ports; i++)
		histogram(b, "rejected_lifetime_seconds", s->ports[i].label, &s->ports[i].serve.rejected_life);
	family(b, "connections_left_in_backlog_total", "counter",
	       "Connections the app accepted after their peer had closed them while queued: clients that gave up in the backlog.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "connections_left_in_backlog_total", "listener", s->ports[i].label,
			 (double)s->ports[i].serve.left_in_backlog);
	family(b, "netfilter_drops_total", "counter",
	       "SYNs to the listener that netfilter dropped (a firewall rule, a full conntrack table).");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "netfilter_drops_total", "listener", s->ports[i].label,
			 (double)s->ports[i].serve.netfilter_drops);
	family(b, "keepalive_resets_total", "counter",
	       "Resets on connections the app had closed first: the peer still sent on them (the keep-alive race).");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "keepalive_resets_total", "listener", s->ports[i].label,
			 (double)s->ports[i].serve.keepalive_resets);
	family(b, "idle_closes_total", "counter", "Served connections the app closed after 100 ms or more without traffic.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "idle_closes_total", "listener", s->ports[i].label, (double)s->ports[i].serve.idle_closes);
	family(b, "idle_close_idle_seconds_total", "counter",
	       "Idle time before those closes, summed: divided by idle_closes_total, the server's keep-alive timeout.");
	for (int i = 0; i < s->n_ports; i++)
		sample_l(b, "idle_close_idle_seconds_total", "listener", s->ports[i].label,
			 s->ports[i].serve.idle_close_sum_ns / 1e9);
	if (s->conntrack.have) {
		family(b, "conntrack_entries", "gauge", "nf_conntrack entries in the target's namespace, and the table's limit.");
		sample_l(b, "conntrack_entries", "kind", "used", (double)s->conntrack.entries);
		sample_l(b, "conntrack_entries", "kind", "max", (double)s->conntrack.max);
		family(b, "conntrack_drops_total", "counter",
		       "nf_conntrack statistics of the target's namespace: packets dropped, entries evicted early, inserts failed.");
		sample_l(b, "conntrack_drops_total", "kind", "drop", (double)s->conntrack.drop);
		sample_l(b, "conntrack_drops_total", "kind", "early_drop", (double)s->conntrack.early_drop);
		sample_l(b, "conntrack_drops_total", "kind", "insert_failed", (double)s->conntrack.insert_failed);
	}
	family(b, "connections_close_wait", "gauge",
	       "Connections on the target's listen ports in CLOSE_WAIT: the peer closed, the app did not "
	       "(read once a peer gave up on an unread connection).");
	if (s->have_close_wait)
		sample(b, "connections_close_wait", s->close_wait);
}

static void render_tcp(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "tcp_resets_sent_total", "counter", "TCP resets sent on the target's listen ports, by kernel sk_rst_reason.");
	for (int i = 0; i < CS_RST_REASONS_MAX; i++) {
		const char *name = names_rst_reason(i);

		if (!name || !strcmp(name, "max"))
			continue;
		if (s->resets_sent[i] || strncmp(name, "mptcp", 5))
			sample_l(b, "tcp_resets_sent_total", "reason", name, (double)s->resets_sent[i]);
	}
	family(b, "tcp_resets_received_total", "counter", "TCP resets received on the target's connections.");
	sample(b, "tcp_resets_received_total", (double)s->counters[CS_CNT_RESETS_RECEIVED]);
	family(b, "synack_retransmits_total", "counter", "SYN-ACKs retransmitted by the target's listeners.");
	sample(b, "synack_retransmits_total", (double)s->counters[CS_CNT_SYNACK_RETRANS]);
	family(b, "oom_kills_total", "counter", "OOM kills of the target or a descendant.");
	sample(b, "oom_kills_total", (double)s->counters[CS_CNT_OOM_KILLS]);
	family(b, "netns_tcp_ext_total", "counter", "TcpExt counters of the target's network namespace (nstat).");
	if (s->have_tcp_ext)
		for (int i = 0; i < CS_TE_MAX; i++)
			sample_l(b, "netns_tcp_ext_total", "counter", names_tcp_ext(i), (double)s->tcp_ext[i]);
}

/* What is watched: a 0 elsewhere means "nothing happened" only where the
 * probe and the source behind it are up. */
static void render_coverage(const struct cs_snapshot *s, struct sbuf *b)
{
	family(b, "probe_active", "gauge",
	       "1 if the tracepoint is attached on this kernel (in full or reduced form), 0 if not; "
	       "why: /api/v1/snapshot probes.");
	for (int i = 0; i < s->n_probes; i++)
		sample_l(b, "probe_active", "probe", s->probes[i].name,
			 s->probes[i].state != CS_PROBE_UNAVAILABLE);
	family(b, "probe_reduced", "gauge",
	       "1 if the tracepoint runs in an older, reduced form on this kernel (e.g. resets without a reason).");
	for (int i = 0; i < s->n_probes; i++)
		sample_l(b, "probe_reduced", "probe", s->probes[i].name,
			 s->probes[i].state == CS_PROBE_REDUCED);
	family(b, "source_up", "gauge", "1 if the last read of this source worked, 0 if it failed (its numbers read 0).");
	for (int i = 0; i < CS_SRC_MAX; i++)
		sample_l(b, "source_up", "source", snapshot_source_name(i), s->source_up[i]);
}

void prom_render(const struct cs_snapshot *s, const struct cs_diagnosis *d,
		 const struct prom_extra *x, struct sbuf *b)
{
	const char *const *id;

	family(b, "build_info", "gauge", "connscope version.");
	sbuf_printf(b, "connscope_build_info{version=\"%s\"} 1\n", CS_VERSION);
	render_process(s, b);
	render_sockets(s, b);
	render_queue_time(s, b);
	render_serving(s, b);
	render_tcp(s, b);
	render_coverage(s, b);
	family(b, "events_lost_total", "counter", "Detail connscope could not keep, by kind; never silent.");
	sample_l(b, "events_lost_total", "kind", "ringbuf_full", (double)s->counters[CS_CNT_EVENTS_DROPPED]);
	sample_l(b, "events_lost_total", "kind", "conn_table_full", (double)s->counters[CS_CNT_CONNS_TABLE_FULL]);
	sample_l(b, "events_lost_total", "kind", "targets_full", (double)s->counters[CS_CNT_TARGETS_FULL]);
	sample_l(b, "events_lost_total", "kind", "listen_addrs_full", (double)s->counters[CS_CNT_LISTEN_ADDRS_FULL]);
	sample_l(b, "events_lost_total", "kind", "procs_not_read", (double)s->procs_not_read);
	sample_l(b, "events_lost_total", "kind", "probe_recursion", (double)s->probe_recursion_lost);
	family(b, "events_sampled_total", "counter",
	       "Per-event details not sent (at most one per kind per 10 ms); their counts are exact.");
	sample(b, "events_sampled_total", (double)s->counters[CS_CNT_EVENTS_SAMPLED]);
	family(b, "events_total", "counter", "Per-event details received from the kernel.");
	sample(b, "events_total", (double)x->events_seen);
	family(b, "diagnosis", "gauge", "1 for each cause the diagnosis over the last 60 s names.");
	for (id = diagnose_cause_ids(); *id; id++)
		sample_l(b, "diagnosis", "cause", *id, diagnose_has(d, *id));
	family(b, "bpf_map_bytes", "gauge", "Kernel memory reserved by connscope's BPF maps.");
	sample(b, "bpf_map_bytes", (double)x->map_bytes);
	family(b, "scrape_duration_seconds", "gauge", "Time this scrape spent reading the kernel.");
	sample(b, "scrape_duration_seconds", x->scrape_seconds);
}
