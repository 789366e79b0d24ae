// SPDX-License-Identifier: MIT
/* Rules on what the app did with the connections it accepted: accepted and
 * left unread (a worker pool or event loop too busy to serve), closed at
 * once unread (a rejection); on its own outbound connections (no local port
 * left); and clients that failed with no known cause. */
#include "diagnose_conn.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "diagnose_rules.h"

/* Window sums of the serving counters (history points). */
struct conn_window {
	double seconds;
	uint64_t accepts, first_reads, gave_up, closed_unread, rejected;
	uint64_t resets_received, closed_before_accept, synack_retrans, abort_on_timeout;
	uint64_t port_errors, netfilter_drops, conntrack_drops, keepalive_resets, idle_closes;
	uint64_t max_unread;
	uint32_t max_close_wait;
};

static void conn_window_sum(const struct cs_point *pts, int n, struct conn_window *w)
{
	memset(w, 0, sizeof(*w));
	for (int i = 0; i < n; i++) {
		const struct cs_point *p = &pts[i];

		w->seconds += p->seconds;
		w->accepts += p->accepts;
		w->first_reads += p->first_reads;
		w->gave_up += p->gave_up_unread;
		w->closed_unread += p->closed_unread;
		w->rejected += p->rejected;
		w->resets_received += p->resets_received;
		w->closed_before_accept += p->closed_before_accept;
		w->synack_retrans += p->synack_retrans;
		w->abort_on_timeout += p->abort_on_timeout;
		w->port_errors += p->port_errors;
		w->netfilter_drops += p->netfilter_drops;
		w->conntrack_drops += p->conntrack_drops;
		w->keepalive_resets += p->keepalive_resets;
		w->idle_closes += p->idle_closes;
		if (p->unread > w->max_unread)
			w->max_unread = p->unread;
		if (p->close_wait > w->max_close_wait)
			w->max_close_wait = p->close_wait;
	}
}

/* The port with the most of what `of` counts (since attach), NULL if none. */
static const struct cs_port *port_most(const struct cs_snapshot *s, uint64_t (*of)(const struct cs_port *))
{
	const struct cs_port *best = NULL;

	for (int i = 0; i < s->n_ports; i++)
		if (of(&s->ports[i]) && (!best || of(&s->ports[i]) > of(best)))
			best = &s->ports[i];
	return best;
}

static uint64_t port_gave_up(const struct cs_port *p)
{
	return p->serve.gave_up;
}

static uint64_t port_rejected(const struct cs_port *p)
{
	return p->serve.rejected;
}

static uint64_t port_netfilter(const struct cs_port *p)
{
	return p->serve.netfilter_drops;
}

static uint64_t port_keepalive(const struct cs_port *p)
{
	return p->serve.keepalive_resets;
}

static uint64_t unread_total(const struct cs_snapshot *s)
{
	uint64_t n = 0;

	for (int i = 0; i < s->n_ports; i++)
		n += snapshot_port_unread(&s->ports[i]);
	return n;
}

static void set_clients(struct cs_cause *c, double n, const char *how, const struct cs_port *p)
{
	if (!c)
		return;
	c->clients_affected = n;
	snprintf(c->clients_how, sizeof(c->clients_how), "%s", how);
	if (p)
		snprintf(c->listener, sizeof(c->listener), "%s", p->label);
}

static double hist_mean_s(const struct cs_hist *h)
{
	return h->count ? h->sum_ns / 1e9 / h->count : 0;
}

/* The median of a log2 histogram at bucket resolution: the upper bound of the
 * slot (slot i holds [2^i, 2^(i+1)) us) that holds the ceil(count/2)-th
 * smallest sample. Not interpolated: the true median lies in that slot,
 * below this bound, and a reader can check it against the buckets. */
static double hist_median_upper_s(const struct cs_hist *h)
{
	uint64_t rank = (h->count + 1) / 2, cum = 0;

	if (!h->count)
		return 0;
	for (int i = 0; i < CS_HIST_SLOTS; i++) {
		cum += h->slots[i];
		if (cum >= rank)
			return (double)(1ULL << (i + 1)) / 1e6;
	}
	return (double)(1ULL << CS_HIST_SLOTS) / 1e6;
}

/* Clients sent a request and left before the app read it: the app accepts
 * but does not serve (workers all busy, a blocked event loop, a lock). */
static void rule_not_served(const struct cs_snapshot *s, const struct conn_window *w, struct cs_diagnosis *d)
{
	const struct cs_port *p = port_most(s, port_gave_up);
	struct cs_cause *c;

	if (!w->gave_up)
		return;
	c = add_cause(d, "accepted_not_served", "critical", 72);
	if (!c)
		return;
	set_clients(c, (double)w->gave_up, "peers that sent a request and closed or reset it before the app read it", p);
	evidence_text(c, "listener", "%s", p ? p->label : "");
	evidence_num(c, "peers_gave_up_before_read", (double)w->gave_up);
	evidence_num(c, "accepted_unread_now", (double)unread_total(s));
	evidence_num(c, "accepted_unread_max", (double)w->max_unread);
	evidence_num(c, "closed_unread", (double)w->closed_unread);
	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "first_reads", (double)w->first_reads);
	evidence_num(c, "first_read_wait_mean_seconds", p ? hist_mean_s(&p->serve.first_read_wait) : 0);
	evidence_num(c, "close_wait_now", s->close_wait);
	evidence_num(c, "close_wait_oldest_seconds", s->close_wait_oldest_s);
	evidence_num(c, "resets_received", (double)w->resets_received);
	evidence_num(c, "threads", (double)s->threads);
	cause_explain(c, "The application accepts connections but does not serve them: %llu clients "
	    "sent a request on %s and closed or reset the connection before the app read a byte. "
	    "%llu accepted connections are open and unread now, %u sit in CLOSE_WAIT (the peer "
	    "left, the app never closed; the oldest has waited %.0f s), with %ld threads. The queue "
	    "in front of the workers, not the kernel's accept queue, is where clients wait.",
	    (unsigned long long)w->gave_up, p ? p->label : "its listener",
	    (unsigned long long)unread_total(s), s->close_wait, s->close_wait_oldest_s, s->threads);
	cause_fix(c, "Give the server enough workers for the load (Tomcat maxThreads / "
	    "server.tomcat.threads.max, Jetty/Undertow worker threads, a thread pool size), or take "
	    "blocking calls (database, remote calls, locks, sleeps) off the I/O threads; cap accepted "
	    "connections to what the workers can serve (maxConnections) so the excess waits in the "
	    "backlog or is refused fast; take a thread dump to see what the workers block on.");
}

/* The app closes what it accepted, unread, at once: a "too many clients"
 * limit, an authentication or TLS failure, a handler that fails. */
static void rule_rejected(const struct cs_snapshot *s, const struct conn_window *w, struct cs_diagnosis *d)
{
	const struct cs_port *p = port_most(s, port_rejected);
	struct cs_cause *c;
	double life;

	if (!w->rejected)
		return;
	c = add_cause(d, "rejected_after_accept", "warning", 62);
	if (!c)
		return;
	set_clients(c, (double)w->rejected, "connections the app closed unread within 1 s of accept", p);
	life = p ? hist_median_upper_s(&p->serve.rejected_life) : 0;
	evidence_text(c, "listener", "%s", p ? p->label : "");
	evidence_num(c, "rejected", (double)w->rejected);
	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "rejected_percent_of_accepts", w->accepts ? 100.0 * w->rejected / w->accepts : 0);
	/* since attach, at the histogram's resolution (see hist_median_upper_s) */
	evidence_num_exact(c, "median_lifetime_seconds", life);
	evidence_num(c, "last_rejected_bytes_in", p ? (double)p->serve.rejected_last_bytes_in : 0);
	evidence_num(c, "last_rejected_bytes_out", p ? (double)p->serve.rejected_last_bytes_out : 0);
	evidence_num(c, "accepted_unread_now", (double)unread_total(s));
	cause_explain(c, "The application accepted %llu connections on %s and closed them again "
	    "within a second without reading anything (%.0f%% of %llu accepts; half of them lived "
	    "under %.6f s, the median's histogram bucket bound; the last one got %llu bytes out). Clients connected, then got an error line or "
	    "an empty answer: a connection limit in the app, an authentication or TLS failure, or a "
	    "handler that fails at once.",
	    (unsigned long long)w->rejected, p ? p->label : "its listener",
	    w->accepts ? 100.0 * w->rejected / w->accepts : 0, (unsigned long long)w->accepts, life,
	    p ? (unsigned long long)p->serve.rejected_last_bytes_out : 0ULL);
	cause_fix(c, "Read the server's log for what it answered; raise the application's own client "
	    "limit (max clients, maxConnections, a rate limiter) to what the host can hold, or let the "
	    "excess wait in the listen backlog instead of accepting and closing it; fix the TLS or "
	    "auth configuration clients fail on.");
}

/* The target as a client ran out of local ports for its outbound
 * connections (a proxy, a gateway, a service calling its database). */
static void rule_ports(const struct cs_snapshot *s, const struct conn_window *w, struct cs_diagnosis *d)
{
	int range = s->port_range_high >= s->port_range_low && s->port_range_low > 0 ?
		    s->port_range_high - s->port_range_low + 1 : 0;
	struct cs_cause *c;

	if (!w->port_errors)
		return;
	c = add_cause(d, "ephemeral_ports_exhausted", "critical", 88);
	if (!c)
		return;
	set_clients(c, (double)w->port_errors, "outbound connect/bind calls that found no local port", NULL);
	evidence_num(c, "port_errors", (double)w->port_errors);
	evidence_num(c, "connect_eaddrnotavail", (double)snapshot_port_errors(s, CS_SYS_CONNECT, EADDRNOTAVAIL));
	evidence_num(c, "connect_eaddrinuse", (double)snapshot_port_errors(s, CS_SYS_CONNECT, EADDRINUSE));
	evidence_num(c, "bind_eaddrinuse", (double)snapshot_port_errors(s, CS_SYS_BIND, EADDRINUSE));
	evidence_num(c, "bind_eaddrnotavail", (double)snapshot_port_errors(s, CS_SYS_BIND, EADDRNOTAVAIL));
	evidence_text(c, "ip_local_port_range", "%d %d", s->port_range_low, s->port_range_high);
	evidence_num(c, "local_ports_in_range", range);
	evidence_num(c, "time_wait_netns", s->time_wait);
	cause_explain(c, "The target could not find a free local port for its own outbound "
	    "connections: %llu connect()/bind() calls failed with EADDRNOTAVAIL/EADDRINUSE. "
	    "net.ipv4.ip_local_port_range is %d-%d (%d ports) and %u sockets sit in TIME_WAIT in "
	    "its namespace, each holding a port for 60 s after a close. Requests that needed an "
	    "upstream connection failed.",
	    (unsigned long long)w->port_errors, s->port_range_low, s->port_range_high, range, s->time_wait);
	cause_fix(c, "Reuse upstream connections (HTTP keep-alive, a connection pool to the database "
	    "or upstream) instead of one connection per request; widen net.ipv4.ip_local_port_range; "
	    "set IP_BIND_ADDRESS_NO_PORT before bind() to a source address; add upstream addresses "
	    "or source IPs (each 4-tuple needs its own port only per destination).");
}

/* SYNs dropped by netfilter before TCP saw them: a firewall rule, or the
 * conntrack table full ("nf_conntrack: table full, dropping packet"). */
static void rule_netfilter(const struct cs_snapshot *s, const struct conn_window *w, struct cs_diagnosis *d)
{
	const struct cs_port *p = port_most(s, port_netfilter);
	const struct cs_conntrack *ct = &s->conntrack;
	struct cs_cause *c;

	if (!w->netfilter_drops && !w->conntrack_drops)
		return;
	c = add_cause(d, "netfilter_drop", "critical", 86);
	if (!c)
		return;
	set_clients(c, (double)w->netfilter_drops,
		    "SYNs to the target's ports netfilter dropped (each retry counts again)", p);
	evidence_text(c, "listener", "%s", p ? p->label : "");
	evidence_num(c, "syns_dropped_by_netfilter", (double)w->netfilter_drops);
	evidence_num(c, "syns_dropped_total", p ? (double)p->serve.netfilter_drops : 0);
	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "conntrack_drops", (double)w->conntrack_drops);
	evidence_num(c, "conntrack_entries", ct->have ? (double)ct->entries : 0);
	evidence_num(c, "conntrack_max", ct->have ? (double)ct->max : 0);
	evidence_num(c, "conntrack_early_drop_total", (double)ct->early_drop);
	evidence_num(c, "conntrack_insert_failed_total", (double)ct->insert_failed);
	cause_explain(c, "Netfilter dropped %llu SYNs to %s before TCP saw them (%llu accepts got "
	    "through), and conntrack counted %llu drops/early drops/failed inserts in the target's "
	    "namespace (%llu of %llu entries in use). Clients retry after 1 s, 3 s, 7 s and time out; "
	    "the server sees nothing: no queue, no drops on its listener.",
	    (unsigned long long)w->netfilter_drops, p ? p->label : "its listeners",
	    (unsigned long long)w->accepts, (unsigned long long)w->conntrack_drops,
	    ct->have ? (unsigned long long)ct->entries : 0ULL, ct->have ? (unsigned long long)ct->max : 0ULL);
	cause_fix(c, "Find the rule that drops (iptables -L -v -n, nft list ruleset: its packet counter "
	    "moves with these drops) and allow the service port; if conntrack is full, raise "
	    "net.netfilter.nf_conntrack_max and nf_conntrack_buckets, shorten its timeouts "
	    "(nf_conntrack_tcp_timeout_time_wait, _established), or exempt the service port from "
	    "tracking (a NOTRACK / notrack rule in the raw table).");
}

/* The server closes idle keep-alive connections and clients send on them
 * just after: each such request is answered with a reset. */
static void rule_keepalive(const struct cs_snapshot *s, const struct conn_window *w, struct cs_diagnosis *d)
{
	const struct cs_port *p = port_most(s, port_keepalive);
	double idle = p && p->serve.idle_closes ? p->serve.idle_close_sum_ns / 1e9 / p->serve.idle_closes : 0;
	struct cs_cause *c;

	if (!w->keepalive_resets)
		return;
	c = add_cause(d, "keepalive_race", "warning", 58);
	if (!c)
		return;
	set_clients(c, (double)w->keepalive_resets,
		    "requests sent on connections the server had already closed, answered with a reset", p);
	evidence_text(c, "listener", "%s", p ? p->label : "");
	evidence_num(c, "resets_after_server_close", (double)w->keepalive_resets);
	evidence_num(c, "idle_closes", (double)w->idle_closes);
	evidence_num(c, "idle_before_close_mean_seconds", idle);
	evidence_num(c, "accepts", (double)w->accepts);
	cause_explain(c, "The server closes keep-alive connections after about %.1f s idle (measured "
	    "over %llu idle closes on %s), and clients sent %llu requests on connections it had just "
	    "closed: each was answered with a reset, so the client saw 'connection reset' or an "
	    "empty reply on a request it believed went out on a good connection.",
	    idle, (unsigned long long)w->idle_closes, p ? p->label : "its listener",
	    (unsigned long long)w->keepalive_resets);
	cause_fix(c, "Make the client's idle timeout for pooled connections shorter than the server's "
	    "keep-alive timeout (%.1f s here), or the server's longer than the client's and any load "
	    "balancer's; retry idempotent requests once on a reset of a reused connection.", idle);
}

void diagnose_conn(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
		   struct cs_diagnosis *d)
{
	struct conn_window w;

	conn_window_sum(pts, npts, &w);
	rule_not_served(s, &w, d);
	rule_rejected(s, &w, d);
	rule_ports(s, &w, d);
	rule_netfilter(s, &w, d);
	rule_keepalive(s, &w, d);
}

bool diagnose_conn_unexplained(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
			       struct cs_diagnosis *d)
{
	struct conn_window w;
	struct cs_cause *c;
	uint64_t failed;

	conn_window_sum(pts, npts, &w);
	/* what clients of this server lost: handshakes the server retried,
	 * connections abandoned in the queue, resets from peers, all on the
	 * target's own sockets (TCPAbortOnTimeout is namespace-wide: evidence) */
	failed = w.closed_before_accept + w.resets_received + w.synack_retrans;
	if (!failed)
		return false;
	c = add_cause(d, "unexplained_failures", "warning", 1);
	if (!c)
		return false;
	set_clients(c, (double)(w.closed_before_accept + w.resets_received),
		    "connections closed before accept plus resets received", NULL);
	evidence_num(c, "accepts", (double)w.accepts);
	evidence_num(c, "closed_before_accept", (double)w.closed_before_accept);
	evidence_num(c, "resets_received", (double)w.resets_received);
	evidence_num(c, "synack_retransmits", (double)w.synack_retrans);
	evidence_num(c, "tcp_abort_on_timeout_netns", (double)w.abort_on_timeout);
	evidence_num(c, "listeners", s->n_listeners);
	cause_explain(c, "Clients failed but no known cause explains it: %llu connections closed "
	    "before the app accepted them, %llu resets received from peers, %llu SYN-ACKs "
	    "retransmitted (the client's ACK never came) and %llu connections timed out in the "
	    "namespace, against %llu accepts. The server's own limits were not reached.",
	    (unsigned long long)w.closed_before_accept, (unsigned long long)w.resets_received,
	    (unsigned long long)w.synack_retrans, (unsigned long long)w.abort_on_timeout,
	    (unsigned long long)w.accepts);
	cause_fix(c, "Look at the path and the client: packet loss or a middlebox between them "
	    "(SYN-ACK retransmits, timeouts), client-side timeouts shorter than the server's "
	    "response time (resets, closes before accept), and the client's own fd and port limits.");
	return true;
}
