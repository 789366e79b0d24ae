// SPDX-License-Identifier: MIT
/* Cause rules. Each reads only kernel numbers (snapshot and history
 * deltas), never the name of a scenario, so they hold on any server. */
#include "diagnose.h"
#include "diagnose_conn.h"
#include "diagnose_rules.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cause_ids[] = {
	"target_exited", "oom_kill", "fd_exhaustion", "accept_queue_stalled",
	"accept_queue_slow", "syn_queue_overflow", "tcp_memory_pressure",
	"reset_no_listener", "reset_on_close", DIAGNOSE_CONN_CAUSE_IDS, "healthy", NULL,
};

const char *const *diagnose_cause_ids(void)
{
	return cause_ids;
}

/* Window totals the rules share. */
struct window {
	double seconds;
	uint64_t accepts, accept_emfile, accept_enfile, fd_errors;
	uint64_t listen_drops, listen_overflows, closed_before_accept;
	uint64_t resets_sent, resets_received, resets_abort, resets_no_socket, resets_memory;
	uint64_t syn_queue_drops, syncookies_sent, memory_pressures, oom_kills;
	double stalled_seconds;  /* time with no accept while a queue was full */
	double drop_seconds_accepting; /* time with drops and accepts */
	uint32_t max_queue_len, max_queue_limit;
	long max_open_fds;
};

static void sum_window(const struct cs_point *pts, int n, struct window *w)
{
	memset(w, 0, sizeof(*w));
	for (int i = 0; i < n; i++) {
		const struct cs_point *p = &pts[i];

		w->seconds += p->seconds;
		w->accepts += p->accepts;
		w->accept_emfile += p->accept_emfile;
		w->accept_enfile += p->accept_enfile;
		w->fd_errors += p->fd_errors;
		w->listen_drops += p->listen_drops;
		w->listen_overflows += p->listen_overflows;
		w->closed_before_accept += p->closed_before_accept;
		w->resets_sent += p->resets_sent;
		w->resets_received += p->resets_received;
		w->resets_abort += p->resets_abort;
		w->resets_no_socket += p->resets_no_socket;
		w->resets_memory += p->resets_memory;
		w->syn_queue_drops += p->syn_queue_drops;
		w->syncookies_sent += p->syncookies_sent;
		w->memory_pressures += p->memory_pressures;
		w->oom_kills += p->oom_kills;
		if (!p->accepts && p->queue_full && p->target_up)
			w->stalled_seconds += p->seconds;
		if (p->listen_drops && p->accepts)
			w->drop_seconds_accepting += p->seconds;
		if (p->open_fds > w->max_open_fds)
			w->max_open_fds = p->open_fds;
		if (p->queue_limit && (uint64_t)p->queue_len * (w->max_queue_limit ? w->max_queue_limit : 1) >=
					      (uint64_t)w->max_queue_len * p->queue_limit) {
			w->max_queue_len = p->queue_len;
			w->max_queue_limit = p->queue_limit;
		}
	}
}

struct cs_cause *add_cause(struct cs_diagnosis *d, const char *id, const char *sev, double score)
{
	struct cs_cause *c;

	if (d->n_causes >= CS_CAUSES_MAX)
		return NULL;
	c = &d->causes[d->n_causes++];
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->severity = sev;
	c->score = score;
	return c;
}

void evidence_num(struct cs_cause *c, const char *name, double v)
{
	struct cs_evidence *e;

	if (!c || c->n_evidence >= CS_EVIDENCE_MAX)
		return;
	e = &c->evidence[c->n_evidence++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	/* counts stay exact; rates and seconds read better to a tenth */
	e->num = v == (double)(long long)v ? v : round(v * 10) / 10;
}

void evidence_text(struct cs_cause *c, const char *name, const char *fmt, ...)
{
	struct cs_evidence *e;
	va_list ap;

	if (!c || c->n_evidence >= CS_EVIDENCE_MAX)
		return;
	e = &c->evidence[c->n_evidence++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->is_text = true;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/* What happened, in words a team lead acts on. */
void cause_explain(struct cs_cause *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->explanation, sizeof(c->explanation), fmt, ap);
	va_end(ap);
}

/* What to change. */
void cause_fix(struct cs_cause *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fix, sizeof(c->fix), fmt, ap);
	va_end(ap);
}

/* The target listener with the most drops (else the fullest). */
static const struct cs_listener *worst_listener(const struct cs_snapshot *s)
{
	const struct cs_listener *w = NULL;

	for (int i = 0; i < s->n_listeners; i++) {
		const struct cs_listener *l = &s->listeners[i];

		if (!w || l->drops > w->drops ||
		    (l->drops == w->drops && l->queue_len > w->queue_len))
			w = l;
	}
	return w;
}

static void rule_target(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c;

	if (!s->target_up) {
		c = add_cause(d, "target_exited", "critical", 100);
		evidence_num(c, "pid", s->pid);
		evidence_text(c, "comm", "%s", s->comm);
		evidence_num(c, "accepts_total", (double)s->accepts_total);
		if (c) {
			cause_explain(c, "The watched process %d (%s) exited; every connection it held "
			    "was closed and new ones are refused or reset.", s->pid, s->comm);
			cause_fix(c, "Find why it exited (its logs, exit status, OOM kills in dmesg), "
			    "restart it and attach connscope to the new PID.");
		}
	}
	if (w->oom_kills) {
		c = add_cause(d, "oom_kill", "critical", 98);
		evidence_num(c, "oom_kills", (double)w->oom_kills);
		evidence_num(c, "rss_bytes", (double)s->rss_bytes);
		if (c) {
			cause_explain(c, "The kernel OOM killer chose the target or one of its children "
			    "%llu time(s); its connections died with it.", (unsigned long long)w->oom_kills);
			cause_fix(c, "Give the service more memory (cgroup memory.max / container limit), "
			    "or cut per-connection memory (buffers, heap per session).");
		}
	}
}

static void syscall_breakdown(const struct cs_snapshot *s, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < s->n_syserr && off < len; i++) {
		const struct cs_syserr *e = &s->syserr[i];

		if (e->err != EMFILE && e->err != ENFILE)
			continue;
		off += snprintf(buf + off, len - off, "%s%s %s=%llu", off ? "," : "",
				names_syscall(e->syscall), names_errno(e->err),
				(unsigned long long)e->count);
	}
}

static void rule_fds(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	bool near = s->fd_soft > 0 && s->fd_peak * 10 >= s->fd_soft * 9;
	struct cs_cause *c;
	char by[128];

	if (!w->fd_errors && !near)
		return;
	c = add_cause(d, "fd_exhaustion", w->fd_errors ? "critical" : "warning", w->fd_errors ? 95 : 50);
	if (!c)
		return;
	syscall_breakdown(s, by, sizeof(by));
	evidence_num(c, "fd_errors", (double)w->fd_errors);
	evidence_num(c, "accept_emfile", (double)w->accept_emfile);
	evidence_num(c, "accept_enfile", (double)w->accept_enfile);
	evidence_text(c, "by_syscall", "%s", by[0] ? by : "none");
	evidence_num(c, "open_fds", (double)s->open_fds);
	evidence_num(c, "fd_peak", (double)s->fd_peak);
	evidence_num(c, "fd_soft_limit", (double)s->fd_soft);
	evidence_num(c, "fd_hard_limit", (double)s->fd_hard);
	evidence_num(c, "pid", s->fd_pid);
	if (w->fd_errors)
		cause_explain(c, "The target ran out of file descriptors: %llu syscalls failed with "
		    "EMFILE/ENFILE (%llu of them accept), open fds peaked at %ld against a soft limit "
		    "of %ld. While accept() fails, connections pile up in the accept queue and are "
		    "then dropped, so clients see timeouts; heap and thread views show nothing.",
		    (unsigned long long)w->fd_errors,
		    (unsigned long long)(w->accept_emfile + w->accept_enfile), s->fd_peak, s->fd_soft);
	else
		cause_explain(c, "Open fds peaked at %ld, at least 90%% of the soft limit %ld; the "
		    "next burst will fail with EMFILE.", s->fd_peak, s->fd_soft);
	cause_fix(c, "Raise the fd limit: ulimit -n / systemd LimitNOFILE= / the container's nofile "
	    "(hard limit now %ld), and the server's own cap if it has one; check for fd leaks "
	    "if open fds keep rising with a steady load.", s->fd_hard);
}

static void queue_evidence(struct cs_cause *c, const struct cs_snapshot *s, const struct window *w,
			   const struct cs_listener *l)
{
	if (l) {
		evidence_text(c, "listener", "%s", l->label);
		evidence_num(c, "queue_length", l->queue_len);
		evidence_num(c, "queue_limit", l->queue_limit);
		evidence_num(c, "listener_drops_total", (double)l->drops);
	}
	evidence_num(c, "listen_drops", (double)w->listen_drops);
	evidence_num(c, "listen_overflows_netns", (double)w->listen_overflows);
	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "accept_rate_per_second", w->seconds > 0 ? w->accepts / w->seconds : 0);
	evidence_num(c, "seconds_full_without_accepts", w->stalled_seconds);
	evidence_num(c, "max_queue_length", w->max_queue_len);
	evidence_num(c, "max_open_fds", w->max_open_fds);
	evidence_num(c, "closed_before_accept", (double)w->closed_before_accept);
	evidence_num(c, "somaxconn", s->somaxconn);
}

static void rule_queue(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	const struct cs_listener *l = worst_listener(s);
	bool fd_caused = w->accept_emfile + w->accept_enfile > 0;
	bool stalled = w->stalled_seconds >= 2 && w->stalled_seconds >= w->drop_seconds_accepting;
	bool clamped = l && s->somaxconn > 0 && l->queue_limit == (uint32_t)s->somaxconn;
	struct cs_cause *c;
	char clamp[160] = "";

	if (!w->listen_drops && w->stalled_seconds < 5)
		return;
	if (clamped)
		snprintf(clamp, sizeof(clamp), " The limit equals net.core.somaxconn=%d: the backlog "
			 "the server asked for may have been clamped to it.", s->somaxconn);
	if (stalled) {
		/* When accept() fails with EMFILE the stall is fd exhaustion's doing. */
		c = add_cause(d, "accept_queue_stalled", w->listen_drops ? (fd_caused ? "warning" : "critical") : "warning",
			      fd_caused ? 80 : (w->listen_drops ? 90 : 45));
		queue_evidence(c, s, w, l);
		if (!c)
			return;
		cause_explain(c, "The application stopped calling accept(): for %.1f s the accept queue of "
		    "%s was full (%u/%u at its peak) with no accept, and the kernel dropped %llu "
		    "connection attempts (SYNs and handshake ACKs). Clients whose final ACK was dropped "
		    "believe they connected and time out on their first request.%s%s",
		    w->stalled_seconds, l ? l->label : "its listener", w->max_queue_len,
		    w->max_queue_limit, (unsigned long long)w->listen_drops, clamp,
		    fd_caused ? " accept() was failing with EMFILE/ENFILE: see fd_exhaustion." : "");
		cause_fix(c, "Find what keeps the acceptor from accepting: an application connection cap "
		    "(Tomcat/Spring server.tomcat.max-connections, Jetty/Netty limits; the target held "
		    "up to %ld fds in this window, so a cap near that is the suspect), or a blocked "
		    "acceptor thread (thread dump of the acceptor). Raise the cap to what the host can "
		    "hold, and size the backlog (acceptCount) for bursts.", w->max_open_fds);
		return;
	}
	c = add_cause(d, "accept_queue_slow", "critical", fd_caused ? 78 : 85);
	queue_evidence(c, s, w, l);
	if (!c)
		return;
	cause_explain(c, "Connections arrive faster than the application accepts them: the accept "
	    "queue of %s (limit %u) overflowed and the kernel dropped %llu connection attempts while "
	    "the app kept accepting (%llu accepts, %.0f/s). Dropped SYNs retry after 1 s, 3 s, 7 s; "
	    "dropped handshake ACKs leave clients thinking they connected.%s",
	    l ? l->label : "its listener", l ? l->queue_limit : 0,
	    (unsigned long long)w->listen_drops, (unsigned long long)w->accepts,
	    w->seconds > 0 ? w->accepts / w->seconds : 0, clamp);
	cause_fix(c, "Give the queue room for the burst: raise the server's backlog (Tomcat acceptCount, "
	    "server.tomcat.accept-count, listen(fd, N)) and net.core.somaxconn (now %d) together; "
	    "add acceptor capacity (more acceptor threads, SO_REUSEPORT listeners) so accept keeps "
	    "up with the arrival rate.", s->somaxconn);
}

static void rule_syn(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c;

	(void)s;
	if (!w->syn_queue_drops && !w->syncookies_sent)
		return;
	c = add_cause(d, "syn_queue_overflow", "warning", 70);
	evidence_num(c, "syn_queue_drops", (double)w->syn_queue_drops);
	evidence_num(c, "syncookies_sent", (double)w->syncookies_sent);
	evidence_num(c, "synack_retransmits_total", (double)s->counters[CS_CNT_SYNACK_RETRANS]);
	if (!c)
		return;
	cause_explain(c, "The SYN (half-open) queue filled: %llu SYNs dropped and %llu answered with "
	    "syncookies in the target's network namespace (counts are namespace-wide).",
	    (unsigned long long)w->syn_queue_drops, (unsigned long long)w->syncookies_sent);
	cause_fix(c, "Raise net.ipv4.tcp_max_syn_backlog and the listen backlog; keep "
	    "net.ipv4.tcp_syncookies=1; if SYN-ACKs are retransmitted, check for loss on the path.");
}

static void rule_resets(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c;

	if (w->memory_pressures || w->resets_memory) {
		c = add_cause(d, "tcp_memory_pressure", "critical", 75);
		evidence_num(c, "memory_pressure_events", (double)w->memory_pressures);
		evidence_num(c, "resets_abort_on_memory", (double)w->resets_memory);
		if (c) {
			cause_explain(c, "TCP ran short of socket memory: %llu pressure/abort events in "
			    "the namespace, %llu resets sent by the target for lack of memory.",
			    (unsigned long long)w->memory_pressures, (unsigned long long)w->resets_memory);
			cause_fix(c, "Raise net.ipv4.tcp_mem (pages) or cut per-socket buffers "
			    "(tcp_rmem/tcp_wmem, SO_RCVBUF); read sockets promptly.");
		}
	}
	if (w->resets_no_socket) {
		c = add_cause(d, "reset_no_listener", "warning", 65);
		evidence_num(c, "resets_no_socket", (double)w->resets_no_socket);
		evidence_num(c, "listeners", s->n_listeners);
		if (c) {
			cause_explain(c, "The kernel answered %llu segments with a reset because nothing "
			    "listened on a port the target served (it closed its listener or restarted); "
			    "clients saw 'connection refused' or 'reset'.", (unsigned long long)w->resets_no_socket);
			cause_fix(c, "Keep the listener open across restarts (socket activation, SO_REUSEPORT "
			    "handover, a drain before stop); have load balancers health-check before sending.");
		}
	}
	if (w->resets_abort) {
		int i = names_rst_reason_index("tcp_abort_on_close");

		c = add_cause(d, "reset_on_close", "warning", 60);
		evidence_num(c, "resets_abort", (double)w->resets_abort);
		evidence_num(c, "resets_abort_on_close_total", i >= 0 ? (double)s->resets_sent[i] : 0);
		evidence_num(c, "tcp_abort_on_close_netns_total", (double)s->tcp_ext[CS_TE_ABORT_ON_CLOSE]);
		evidence_num(c, "accepts", (double)w->accepts);
		if (c) {
			cause_explain(c, "The application closed %llu connections with unread data (or "
			    "SO_LINGER 0), so the kernel sent RST instead of FIN; clients lose the response "
			    "in flight and report 'connection reset by peer'.", (unsigned long long)w->resets_abort);
			cause_fix(c, "Read the request fully before closing; on a graceful close, shutdown(SHUT_WR) "
			    "then drain the socket before close(); do not set SO_LINGER with a zero timeout.");
		}
	}
}

static void rule_healthy(const struct cs_snapshot *s, const struct window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c = add_cause(d, "healthy", "info", 0);
	const struct cs_listener *l = worst_listener(s);

	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "listen_drops", (double)w->listen_drops);
	evidence_num(c, "fd_errors", (double)w->fd_errors);
	evidence_num(c, "fd_peak", (double)s->fd_peak);
	evidence_num(c, "fd_soft_limit", (double)s->fd_soft);
	evidence_num(c, "fd_peak_percent_of_limit", s->fd_soft > 0 ? 100.0 * s->fd_peak / s->fd_soft : 0);
	evidence_num(c, "max_queue_length", w->max_queue_len);
	evidence_num(c, "queue_limit", l ? l->queue_limit : w->max_queue_limit);
	evidence_num(c, "resets_sent", (double)w->resets_sent);
	if (!c)
		return;
	cause_explain(c, "No cause found: %llu accepts, no listen drops, no EMFILE/ENFILE, no "
	    "aborting resets. Open fds peaked at %ld of a soft limit of %ld (%.0f%%); the accept "
	    "queue peaked at %u of %u. Limits seen were not reached.",
	    (unsigned long long)w->accepts, s->fd_peak, s->fd_soft,
	    s->fd_soft > 0 ? 100.0 * s->fd_peak / s->fd_soft : 0, w->max_queue_len,
	    l ? l->queue_limit : w->max_queue_limit);
	cause_fix(c, "Nothing to change on the server side; if clients still fail, look at the client "
	    "(its own fd and port limits) and the network between.");
}

static int by_score(const void *a, const void *b)
{
	const struct cs_cause *x = a, *y = b;

	return (x->score < y->score) - (x->score > y->score);
}

void diagnose(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
	      struct cs_diagnosis *d)
{
	struct window w;

	memset(d, 0, sizeof(*d));
	sum_window(pts, npts, &w);
	d->window_seconds = w.seconds;
	rule_target(s, &w, d);
	rule_fds(s, &w, d);
	rule_queue(s, &w, d);
	rule_syn(s, &w, d);
	rule_resets(s, &w, d);
	diagnose_conn(s, pts, npts, d);
	if (!d->n_causes && !diagnose_conn_unexplained(s, pts, npts, d))
		rule_healthy(s, &w, d);
	qsort(d->causes, d->n_causes, sizeof(d->causes[0]), by_score);
	d->verdict = d->causes[0].id;
}

bool diagnose_has(const struct cs_diagnosis *d, const char *id)
{
	for (int i = 0; i < d->n_causes; i++)
		if (!strcmp(d->causes[i].id, id))
			return true;
	return false;
}

void diagnose_render_text(const struct cs_diagnosis *d, struct sbuf *b)
{
	sbuf_printf(b, "verdict: %s (window %.0f s)\n", d->verdict, d->window_seconds);
	for (int i = 0; i < d->n_causes; i++) {
		const struct cs_cause *c = &d->causes[i];

		sbuf_printf(b, "\n%d. %s [%s, score %.0f]\n   evidence:", i + 1, c->id, c->severity, c->score);
		for (int j = 0; j < c->n_evidence; j++) {
			const struct cs_evidence *e = &c->evidence[j];

			if (e->is_text)
				sbuf_printf(b, " %s=%s", e->name, e->text);
			else
				sbuf_printf(b, " %s=%.15g", e->name, e->num);
		}
		sbuf_printf(b, "\n   why: %s\n   fix: %s\n", c->explanation, c->fix);
	}
}
