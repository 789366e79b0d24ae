// SPDX-License-Identifier: MIT
/* Cause rules. Each reads only kernel numbers (snapshot and history
 * deltas), never the name of a scenario, so they hold on any server. Queue
 * causes are judged per listener; the verdict is the cause that cost the
 * most clients in the window. */
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
	"target_exited", "oom_kill", "fd_exhaustion", "connection_cap", "accept_queue_stalled",
	"accept_queue_slow", "backlog_too_small", "syn_queue_overflow", "tcp_memory_pressure",
	"reset_no_listener", "reset_on_close", DIAGNOSE_CONN_CAUSE_IDS, "healthy", NULL,
};

const char *const *diagnose_cause_ids(void)
{
	return cause_ids;
}

/* A no-accept span this long while the queue is full is no longer a burst
 * being drained: the app stopped taking connections. */
#define GAP_STALL_SECONDS 1.0
/* Accept waits below this are an app that drains its queue at once. */
#define FAST_ACCEPT_WAIT_SECONDS 0.02
/* Most accepts at a full queue right after a local close: a cap. Measured
 * (6.18 and the emulated 6.1 guest): caps under churn 74-100% (CPU contention
 * breaks some runs of closes and accepts), slow acceptors 0-1%. */
#define CAP_AFTER_CLOSE_FRACTION 0.5

static void sum_window(const struct cs_point *pts, int n, struct cs_window *w)
{
	double worst = -1;

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
		/* each tick's ratio is one process against its own limit then */
		if (p->fd_soft > 0 && (double)p->open_fds / p->fd_soft > worst) {
			worst = (double)p->open_fds / p->fd_soft;
			w->fd_pid = p->fd_pid;
			w->fd_open = p->open_fds;
			w->fd_soft = p->fd_soft;
		}
		if (p->queue_limit && (uint64_t)p->queue_len * (w->max_queue_limit ? w->max_queue_limit : 1) >=
					      (uint64_t)w->max_queue_len * p->queue_limit) {
			w->max_queue_len = p->queue_len;
			w->max_queue_limit = p->queue_limit;
		}
	}
}

/* One listener over the window. */
struct lwin {
	char label[CS_LABEL_LEN];
	uint16_t port;
	uint32_t queue_len, queue_limit; /* latest */
	uint64_t drops, ack_drops, accepts, local_closes;
	double full_seconds, gap_seconds;
	int full_ticks, stall_ticks;     /* stall: full, no accept, no local close */
	double stall_seconds, stall_cpu_seconds;
	int stall_stopped_ticks;
	long open_peak;
	double wait_sum_s;
	uint64_t wait_count;
	/* open connections at the ticks the queue was full */
	long plateau;                    /* the value seen at most of them */
	int plateau_ticks;
	double plateau_seconds;
	uint64_t plateau_drops;
	uint64_t plateau_accepts, plateau_after_close;
};

static struct lwin *lwin_get(struct lwin *ls, int *n, const struct cs_point_listener *pl)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(ls[i].label, pl->label))
			return &ls[i];
	if (*n >= CS_LISTENERS_MAX)
		return NULL;
	memset(&ls[*n], 0, sizeof(ls[0]));
	memcpy(ls[*n].label, pl->label, sizeof(ls[0].label));
	ls[*n].port = pl->port;
	return &ls[(*n)++];
}

static const struct cs_point_listener *point_listener(const struct cs_point *p, const char *label)
{
	for (int i = 0; i < p->n_listeners; i++)
		if (!strcmp(p->listeners[i].label, label))
			return &p->listeners[i];
	return NULL;
}

/* Tick peaks this close are the same plateau: a server may accept the next
 * before it closes the last, or let a few go and take a few more. */
static long plateau_slack(long open)
{
	return open / 100 > 1 ? open / 100 : 1;
}

/* Accepts in the tick of b that took the place of a connection let go, not
 * those that raised the open count: a server that reaches its cap while
 * the queue is already full accepted its last ones at the plateau without
 * any close. */
static uint64_t replacing_accepts(const struct cs_point_listener *before, const struct cs_point_listener *b)
{
	long rise = b->open - before->open;

	if (rise <= 0)
		return b->accepts;
	return b->accepts > (uint64_t)rise ? b->accepts - (uint64_t)rise : 0;
}

/* The most open connections a tick held (its exact peak, not a sample that
 * may fall between a close and the accept it let in) that the queue was
 * full at most often (within plateau_slack), and what happened at it:
 * ticks, time, drops, accepts and those right after a close (ticks that
 * began full and at the plateau only: in the tick that climbs to it, the
 * accepts that did not raise the count were of connections their clients
 * had already left, not ones that took the place of a connection let go). */
static void find_plateau(const struct cs_point *pts, int n, struct lwin *l)
{
	int best_exact = 0;

	for (int i = 0; i < n; i++) {
		const struct cs_point_listener *a = point_listener(&pts[i], l->label);
		int ticks = 0, exact = 0;
		uint64_t drops = 0, acc = 0, after = 0;
		double secs = 0;

		if (!a || !a->full || a->open_peak <= 0)
			continue;
		for (int j = 0; j < n; j++) {
			const struct cs_point_listener *b = point_listener(&pts[j], l->label);
			const struct cs_point_listener *before = j ? point_listener(&pts[j - 1], l->label) : NULL;

			if (!b || !b->full || labs(b->open_peak - a->open_peak) > plateau_slack(a->open_peak))
				continue;
			ticks++;
			exact += b->open_peak == a->open_peak;
			secs += pts[j].seconds;
			drops += b->drops;
			if (before && before->full &&
			    labs(before->open - a->open_peak) <= plateau_slack(a->open_peak)) {
				uint64_t in = replacing_accepts(before, b);

				acc += in;
				after += b->accepts_after_close < in ? b->accepts_after_close : in;
			}
		}
		if (ticks > l->plateau_ticks || (ticks == l->plateau_ticks && exact > best_exact) ||
		    (ticks == l->plateau_ticks && exact == best_exact && a->open_peak > l->plateau)) {
			l->plateau = a->open_peak;
			l->plateau_ticks = ticks;
			l->plateau_seconds = secs;
			l->plateau_drops = drops;
			l->plateau_accepts = acc;
			l->plateau_after_close = after;
			best_exact = exact;
		}
	}
}

static int sum_listeners(const struct cs_point *pts, int n, struct lwin *ls)
{
	int nl = 0;

	for (int i = 0; i < n; i++) {
		const struct cs_point *p = &pts[i];

		for (int k = 0; k < p->n_listeners; k++) {
			const struct cs_point_listener *pl = &p->listeners[k];
			struct lwin *l = lwin_get(ls, &nl, pl);

			if (!l)
				continue;
			l->queue_len = pl->queue_len;
			l->queue_limit = pl->queue_limit;
			l->drops += pl->drops;
			l->ack_drops += pl->ack_drops;
			l->accepts += pl->accepts;
			l->local_closes += pl->local_closes;
			l->full_seconds += pl->full_seconds;
			l->wait_sum_s += pl->accept_wait_sum_s;
			l->wait_count += pl->accept_wait_count;
			if (pl->gap_seconds > l->gap_seconds)
				l->gap_seconds = pl->gap_seconds;
			if (pl->open_peak > l->open_peak)
				l->open_peak = pl->open_peak;
			if (!pl->full)
				continue;
			l->full_ticks++;
			if (!pl->accepts && !pl->local_closes && p->target_up) {
				l->stall_ticks++;
				l->stall_seconds += p->seconds;
				l->stall_cpu_seconds += p->cpu_seconds;
				if (p->stopped_processes)
					l->stall_stopped_ticks++;
			}
		}
	}
	for (int i = 0; i < nl; i++)
		find_plateau(pts, n, &ls[i]);
	return nl;
}

struct cs_cause *cause_add(struct cs_diagnosis *d, const char *id, const char *sev, double score,
			   double clients)
{
	struct cs_cause *c;

	if (d->n_causes >= CS_CAUSES_MAX)
		return NULL;
	c = &d->causes[d->n_causes++];
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->severity = sev;
	c->score = score;
	c->clients_affected = clients;
	return c;
}

struct cs_cause *add_cause(struct cs_diagnosis *d, const char *id, const char *sev, double score)
{
	return cause_add(d, id, sev, score, 0);
}

void cause_clients_how(struct cs_cause *c, const char *fmt, ...)
{
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(c->clients_how, sizeof(c->clients_how), fmt, ap);
	va_end(ap);
}

void evidence_num_exact(struct cs_cause *c, const char *name, double v)
{
	struct cs_evidence *e;

	if (!c || c->n_evidence >= CS_EVIDENCE_MAX)
		return;
	e = &c->evidence[c->n_evidence++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->num = v;
}

void evidence_num(struct cs_cause *c, const char *name, double v)
{
	/* counts stay exact; rates and seconds read better to a hundredth */
	evidence_num_exact(c, name, v == (double)(long long)v ? v : round(v * 100) / 100);
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

void cause_explain(struct cs_cause *c, const char *fmt, ...)
{
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(c->explanation, sizeof(c->explanation), fmt, ap);
	va_end(ap);
}

void cause_fix(struct cs_cause *c, const char *fmt, ...)
{
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(c->fix, sizeof(c->fix), fmt, ap);
	va_end(ap);
}

static void cause_listener(struct cs_cause *c, const char *label)
{
	if (c)
		snprintf(c->listener, sizeof(c->listener), "%s", label);
}

/* Connections accepted and not let go, over all ports: what dies with the
 * process (once it exited: what it held when last seen up). */
static double open_connections(const struct cs_snapshot *s)
{
	double n = 0;

	if (!s->target_up)
		return (double)s->open_at_exit;
	for (int i = 0; i < s->n_ports; i++)
		n += (double)s->ports[i].open;
	return n;
}

static void rule_target(const struct cs_snapshot *s, const struct cs_window *w, struct cs_diagnosis *d)
{
	double open = open_connections(s);
	struct cs_cause *c;

	if (!s->target_up) {
		c = cause_add(d, "target_exited", "critical", 100, open);
		cause_clients_how(c, "connections it held when it exited (accepted since attach, not closed by it)");
		evidence_num(c, "pid", s->pid);
		evidence_text(c, "comm", "%s", s->comm);
		evidence_num(c, "accepts_total", (double)s->accepts_total);
		evidence_num(c, "connections_open", open);
		cause_explain(c, "The watched process %d (%s) exited; every connection it held "
		    "was closed and new ones are refused or reset.", s->pid, s->comm);
		cause_fix(c, "Find why it exited (its logs, exit status, OOM kills in dmesg), "
		    "restart it and attach connscope to the new PID.");
	}
	if (w->oom_kills) {
		c = cause_add(d, "oom_kill", "critical", 98, open > 0 ? open : (double)w->oom_kills);
		cause_clients_how(c, "connections open at the kill (accepted since attach), at least one per kill");
		evidence_num(c, "oom_kills", (double)w->oom_kills);
		evidence_num(c, "rss_bytes", (double)s->rss_bytes);
		cause_explain(c, "The kernel OOM killer chose the target or one of its children "
		    "%llu time(s); its connections died with it.", (unsigned long long)w->oom_kills);
		cause_fix(c, "Give the service more memory (cgroup memory.max / container limit), "
		    "or cut per-connection memory (buffers, heap per session).");
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

/* Per process against its own limit, read at every tick: a limit raised or
 * lowered at runtime counts from then on, and a master at 1024 with
 * workers at 65535 is not compared with the workers' fds. */
static void rule_fds(const struct cs_snapshot *s, const struct cs_window *w, struct cs_diagnosis *d)
{
	bool near = w->fd_soft > 0 && w->fd_open * 10 >= w->fd_soft * 9;
	uint64_t enfile = snapshot_fd_errors(s, ENFILE);
	struct cs_cause *c;
	char by[128];

	if (!w->fd_errors && !near)
		return;
	/* a failed accept is a connection not taken; any other failed fd is a
	 * request that failed: one client each */
	c = cause_add(d, "fd_exhaustion", w->fd_errors ? "critical" : "warning", w->fd_errors ? 95 : 50,
		      (double)w->fd_errors);
	cause_clients_how(c, "syscalls failed with EMFILE/ENFILE, one request or connection each");
	syscall_breakdown(s, by, sizeof(by));
	evidence_num(c, "fd_errors", (double)w->fd_errors);
	evidence_num(c, "accept_emfile", (double)w->accept_emfile);
	evidence_num(c, "accept_enfile", (double)w->accept_enfile);
	evidence_text(c, "by_syscall", "%s", by[0] ? by : "none");
	evidence_num(c, "pid", w->fd_pid);
	evidence_num(c, "open_fds", (double)w->fd_open);
	evidence_num(c, "fd_peak", (double)w->fd_open);
	evidence_num(c, "fd_soft_limit", (double)w->fd_soft);
	evidence_num(c, "fd_hard_limit", (double)s->fd_hard);
	if (w->fd_errors)
		cause_explain(c, "The target ran out of file descriptors: %llu syscalls failed with "
		    "EMFILE/ENFILE (%llu of them accept); process %d held %ld fds against its own soft "
		    "limit of %ld. While accept() fails, connections pile up in the accept queue and are "
		    "then dropped, so clients see timeouts; heap and thread views show nothing.",
		    (unsigned long long)w->fd_errors,
		    (unsigned long long)(w->accept_emfile + w->accept_enfile), w->fd_pid, w->fd_open,
		    w->fd_soft);
	else
		cause_explain(c, "Process %d held %ld fds, at least 90%% of its own soft limit %ld; "
		    "the next burst will fail with EMFILE.", w->fd_pid, w->fd_open, w->fd_soft);
	if (enfile && w->fd_errors)
		cause_fix(c, "ENFILE: the whole host's file table is full, not this process's limit: "
		    "raise fs.file-max (sysctl -w fs.file-max=N, now see /proc/sys/fs/file-nr) and find "
		    "the process holding most files; for EMFILE raise ulimit -n / LimitNOFILE= (process "
		    "%d: soft %ld, hard %ld).", w->fd_pid, w->fd_soft, s->fd_hard);
	else
		cause_fix(c, "Raise the fd limit of process %d (soft %ld now): ulimit -n / systemd "
		    "LimitNOFILE= / the container's nofile / prlimit --nofile, and the server's own cap "
		    "if it has one (nginx worker_rlimit_nofile); check for fd leaks if open fds keep "
		    "rising with a steady load.", w->fd_pid, w->fd_soft);
}

/* Clients behind a listener's drops. A dropped handshake ACK (counted by
 * the kernel where kfree_skb names the listener) is a client that believes
 * it connected; it ACKs again at each SYN-ACK retransmission, so this
 * count is an upper bound. A dropped SYN is retried after 1, 3, 7 s, so one client
 * that keeps meeting a full queue is dropped once per try: the SYN drops
 * are divided by the tries a client makes while the queue stays full. */
static double queue_clients(const struct cs_snapshot *s, const struct lwin *l, uint64_t *syn_drops,
			    char *how, size_t len)
{
	uint64_t ack = s->ack_drops_exact ? l->ack_drops : 0;
	double tries = 1 + floor(log2(1 + l->full_seconds));

	/* measured on 6.18: a dropped ACK counts twice in sk_drops (the
	 * listener's tcp_listendrop and the packet's sk_drops_add), once in
	 * TcpExt ListenDrops */
	*syn_drops = l->drops > 2 * ack ? l->drops - 2 * ack : 0;
	if (s->ack_drops_exact)
		snprintf(how, len, "%llu handshake ACKs dropped (kernel count) + SYNs dropped / %.0f "
			 "tries per client in %.1f s full (estimate)", (unsigned long long)ack, tries,
			 l->full_seconds);
	else
		snprintf(how, len, "listener drops / %.0f SYN tries per client in %.1f s full "
			 "(estimate: this kernel does not name ACK drops)", tries, l->full_seconds);
	return (double)ack + ceil((double)*syn_drops / tries);
}

/* Since attach: connections on the port accepted after their peer had
 * closed them in the queue, clients that gave up waiting in the backlog. */
static uint64_t left_in_backlog(const struct cs_snapshot *s, uint16_t port)
{
	for (int i = 0; i < s->n_ports; i++)
		if (s->ports[i].port == port)
			return s->ports[i].serve.left_in_backlog;
	return 0;
}

static void queue_evidence(struct cs_cause *c, const struct cs_snapshot *s, const struct cs_window *w,
			   const struct lwin *l, uint64_t syn_drops)
{
	evidence_text(c, "listener", "%s", l->label);
	evidence_num(c, "queue_length", l->queue_len);
	evidence_num(c, "queue_limit", l->queue_limit);
	evidence_num(c, "listen_drops", (double)l->drops);
	evidence_num(c, "syn_drops", (double)syn_drops);
	if (s->ack_drops_exact)
		evidence_num(c, "ack_drops", (double)l->ack_drops);
	evidence_num(c, "accepts", (double)l->accepts);
	evidence_num(c, "accept_rate_per_second", w->seconds > 0 ? l->accepts / w->seconds : 0);
	evidence_num(c, "accept_wait_mean_seconds", l->wait_count ? l->wait_sum_s / l->wait_count : 0);
	evidence_num(c, "seconds_full", l->full_seconds);
	evidence_num(c, "longest_gap_seconds", l->gap_seconds);
	evidence_num(c, "local_closes", (double)l->local_closes);
	evidence_num(c, "connections_open_peak", (double)l->open_peak);
	evidence_num(c, "syncookies_sent_netns", (double)w->syncookies_sent);
	evidence_num(c, "somaxconn", s->somaxconn);
	evidence_num(c, "left_in_backlog", (double)left_in_backlog(s, l->port));
}

static void clamp_note(const struct cs_snapshot *s, const struct lwin *l, char *buf, size_t len)
{
	buf[0] = '\0';
	if (s->somaxconn > 0 && l->queue_limit == (uint32_t)s->somaxconn)
		snprintf(buf, len, " The limit equals net.core.somaxconn=%d: the backlog the server "
			 "asked for may have been clamped to it.", s->somaxconn);
}

/* One queue cause for one listener whose queue overflowed or stood full. */
static void rule_queue_listener(const struct cs_snapshot *s, const struct cs_window *w,
				const struct lwin *l, struct cs_diagnosis *d)
{
	bool fd_caused = w->accept_emfile + w->accept_enfile > 0;
	bool no_progress = l->gap_seconds >= GAP_STALL_SECONDS && l->stall_ticks > 0;
	bool plateau = l->plateau > 0 && l->open_peak <= l->plateau + plateau_slack(l->plateau) &&
		       l->plateau_ticks >= 2;
	bool after_close = l->plateau_accepts == 0 ||
			   l->plateau_after_close >= CAP_AFTER_CLOSE_FRACTION * l->plateau_accepts;
	double wait = l->wait_count ? l->wait_sum_s / l->wait_count : 0;
	double clients;
	uint64_t syn_drops;
	struct cs_cause *c;
	char how[128], clamp[160];

	clients = queue_clients(s, l, &syn_drops, how, sizeof(how));
	clamp_note(s, l, clamp, sizeof(clamp));
	if (no_progress && l->stall_stopped_ticks) {
		c = cause_add(d, "accept_queue_stalled", "critical", 90, clients);
		cause_listener(c, l->label);
		cause_clients_how(c, "%s", how);
		queue_evidence(c, s, w, l, syn_drops);
		evidence_num(c, "seconds_full_without_accepts", l->stall_seconds);
		evidence_num(c, "cpu_seconds_during_stall", l->stall_cpu_seconds);
		evidence_text(c, "process_state", "stopped");
		cause_explain(c, "The server was stopped (SIGSTOP or a debugger): for %.1f s it accepted "
		    "nothing on %s while the accept queue stood full (%u/%u) and got %.2f s of CPU time, "
		    "so it was not running at all; the kernel dropped %llu packets of about %.0f clients.%s",
		    l->gap_seconds, l->label, l->queue_len, l->queue_limit, l->stall_cpu_seconds,
		    (unsigned long long)l->drops, clients, clamp);
		cause_fix(c, "Find who stopped it (a debugger, job control, a supervisor sending SIGSTOP, "
		    "a cgroup freezer) and resume it; a stop under load drops every client for its length.");
		return;
	}
	if (plateau && after_close && !fd_caused) {
		long headroom = w->fd_soft > 0 ? w->fd_soft - w->fd_open : -1;
		char accepted[96];

		c = cause_add(d, "connection_cap", "critical", 88, clients);
		cause_listener(c, l->label);
		cause_clients_how(c, "%s", how);
		evidence_num(c, "plateau_connections", (double)l->plateau);
		evidence_num(c, "seconds_at_plateau", l->plateau_seconds);
		evidence_num(c, "drops_at_plateau", (double)l->plateau_drops);
		evidence_num(c, "accepts_at_plateau", (double)l->plateau_accepts);
		evidence_num(c, "accepts_right_after_a_close", (double)l->plateau_after_close);
		evidence_num(c, "fd_headroom", (double)headroom);
		queue_evidence(c, s, w, l, syn_drops);
		if (l->plateau_accepts)
			snprintf(accepted, sizeof(accepted), "accepted mostly right after closing one (%llu of %llu "
				 "accepts there)", (unsigned long long)l->plateau_after_close,
				 (unsigned long long)l->plateau_accepts);
		else
			snprintf(accepted, sizeof(accepted), "accepted none while it held them");
		cause_explain(c, "The server stopped accepting at %ld open connections on %s: its accept "
		    "queue (%u) stood full for %.1f s while it held exactly %ld, and it %s. That is the "
		    "application's own connection cap; about %.0f clients were dropped (%llu packets).%s",
		    l->plateau, l->label, l->queue_limit, l->plateau_seconds, l->plateau, accepted,
		    clients, (unsigned long long)l->drops, clamp);
		cause_fix(c, "Raise the application's connection limit, now %ld: Tomcat maxConnections / "
		    "server.tomcat.max-connections, Jetty/Netty connection limits, nginx worker_connections, "
		    "a proxy's maxconn. %s Otherwise add instances; a larger backlog only delays the drops.",
		    l->plateau, headroom > 0 ? "The process has fd headroom for more (see fd_headroom)." :
		    "Raise the fd limit with it: the process is near its own fd limit.");
		return;
	}
	if (no_progress) {
		bool ran = l->stall_cpu_seconds >= 0.2 * l->stall_seconds;

		c = cause_add(d, "accept_queue_stalled", fd_caused ? "warning" : "critical", fd_caused ? 80 : 90,
			      clients);
		cause_listener(c, l->label);
		cause_clients_how(c, "%s", how);
		queue_evidence(c, s, w, l, syn_drops);
		evidence_num(c, "seconds_full_without_accepts", l->stall_seconds);
		evidence_num(c, "cpu_seconds_during_stall", l->stall_cpu_seconds);
		evidence_text(c, "process_state", ran ? "running" : "sleeping");
		cause_explain(c, "The application made no progress on %s: for %.1f s it neither accepted "
		    "nor closed a connection while the accept queue stood full (%u/%u); it %s. The kernel "
		    "dropped %llu packets of about %.0f clients.%s%s",
		    l->label, l->gap_seconds, l->queue_len, l->queue_limit,
		    ran ? "kept using CPU meanwhile: a stop-the-world pause or a busy loop" :
		    "got almost no CPU time: a blocked or deadlocked acceptor",
		    (unsigned long long)l->drops, clients, clamp,
		    fd_caused ? " accept() was failing with EMFILE/ENFILE: see fd_exhaustion." : "");
		cause_fix(c, "%s", ran ? "Find the pause: GC logs (stop-the-world), a CPU profile of the "
		    "acceptor during the gap; tune the collector or the heap." :
		    "Take a thread dump during the gap and see what the acceptor waits on (a lock, a full "
		    "worker pool, a blocking call on the accept path).");
		return;
	}
	if (l->gap_seconds < GAP_STALL_SECONDS && wait < FAST_ACCEPT_WAIT_SECONDS) {
		c = cause_add(d, "backlog_too_small", "warning", 70, clients);
		cause_listener(c, l->label);
		cause_clients_how(c, "%s", how);
		queue_evidence(c, s, w, l, syn_drops);
		cause_explain(c, "Bursts of connections are larger than the accept queue of %s (%u): the "
		    "application drains it within milliseconds (mean accept wait %.1f ms, longest full "
		    "span %.2f s) but each burst overflows it first, and the kernel dropped %llu packets "
		    "of about %.0f clients, who retry after 1 s.%s",
		    l->label, l->queue_limit, wait * 1e3, l->gap_seconds, (unsigned long long)l->drops,
		    clients, clamp);
		cause_fix(c, "Raise the listen backlog to the largest burst (Tomcat acceptCount, "
		    "listen(fd, N), nginx listen ... backlog=N) and net.core.somaxconn (now %d) with it; "
		    "the acceptor keeps up, more acceptor threads will not help.", s->somaxconn);
		return;
	}
	c = cause_add(d, "accept_queue_slow", "critical", fd_caused ? 78 : 85, clients);
	cause_listener(c, l->label);
	cause_clients_how(c, "%s", how);
	queue_evidence(c, s, w, l, syn_drops);
	cause_explain(c, "Connections arrive faster than the application accepts them on %s: the accept "
	    "queue (limit %u) stood full for %.1f s while the app kept accepting (%llu accepts, %.0f/s, "
	    "each waiting %.0f ms on average), and the kernel dropped %llu packets of about %.0f "
	    "clients. Dropped SYNs retry after 1 s, 3 s, 7 s; dropped handshake ACKs leave clients "
	    "thinking they connected.%s",
	    l->label, l->queue_limit, l->full_seconds, (unsigned long long)l->accepts,
	    w->seconds > 0 ? l->accepts / w->seconds : 0, wait * 1e3, (unsigned long long)l->drops,
	    clients, clamp);
	cause_fix(c, "Add acceptor capacity so accept keeps up with the arrival rate: more acceptor "
	    "threads, SO_REUSEPORT listeners, less work on the accept path; a larger backlog "
	    "(acceptCount, with net.core.somaxconn, now %d) only absorbs bursts.", s->somaxconn);
}

static void rule_queue(const struct cs_snapshot *s, const struct cs_window *w, const struct lwin *ls,
		       int nl, struct cs_diagnosis *d)
{
	for (int i = 0; i < nl; i++)
		if (ls[i].drops || ls[i].gap_seconds >= 2 * GAP_STALL_SECONDS)
			rule_queue_listener(s, w, &ls[i], d);
}

/* The SYN queue proper: requests dropped for a full SYN queue while no
 * accept queue was full (that cause's cookies are in its evidence). */
static void rule_syn(const struct cs_snapshot *s, const struct cs_window *w, const struct lwin *ls,
		     int nl, struct cs_diagnosis *d)
{
	struct cs_cause *c;

	for (int i = 0; i < nl; i++)
		if (ls[i].full_ticks || ls[i].full_seconds > 0)
			return;
	/* cookies alone dropped nothing: with tcp_syncookies=1 they answer a
	 * full SYN queue, with 2 they answer every SYN */
	if (!w->syn_queue_drops)
		return;
	c = cause_add(d, "syn_queue_overflow", "warning", 70, (double)w->syn_queue_drops);
	cause_clients_how(c, "SYNs dropped for a full SYN queue (TcpExt TCPReqQFullDrop, namespace-wide)");
	evidence_num(c, "syn_queue_drops", (double)w->syn_queue_drops);
	evidence_num(c, "syncookies_sent", (double)w->syncookies_sent);
	evidence_num(c, "tcp_syncookies", s->syncookies);
	evidence_num(c, "synack_retransmits_total", (double)s->counters[CS_CNT_SYNACK_RETRANS]);
	cause_explain(c, "The SYN (half-open) queue filled while the accept queues had room: %llu SYNs "
	    "dropped in the target's network namespace, handshakes that do not complete (a SYN flood, "
	    "or clients whose ACKs are lost).", (unsigned long long)w->syn_queue_drops);
	if (s->syncookies == 0)
		cause_fix(c, "Turn on net.ipv4.tcp_syncookies=1 (off now): a full SYN queue then answers "
		    "with cookies instead of dropping; raise the listen backlog and "
		    "net.ipv4.tcp_max_syn_backlog too.");
	else
		cause_fix(c, "tcp_syncookies=%d is on, yet SYNs were dropped: raise the listen backlog "
		    "(it bounds the SYN queue) and net.ipv4.tcp_max_syn_backlog; if SYN-ACKs are "
		    "retransmitted, look for loss on the path.", s->syncookies);
}

/* The listener the target closed last, and how long ago: where the refused
 * clients were going. */
static void evidence_stopped_listener(const struct cs_snapshot *s, struct cs_cause *c)
{
	const struct cs_stopped_listener *last = NULL;

	for (int i = 0; i < s->n_stopped_listeners; i++)
		if (!last || s->stopped_listeners[i].stopped_at > last->stopped_at)
			last = &s->stopped_listeners[i];
	if (!last)
		return;
	evidence_text(c, "stopped_listener", "%s", last->label);
	evidence_num(c, "seconds_since_listener_stopped", s->unix_ms / 1e3 - last->stopped_at);
}

static void rule_resets(const struct cs_snapshot *s, const struct cs_window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c;

	if (w->memory_pressures || w->resets_memory) {
		c = cause_add(d, "tcp_memory_pressure", "critical", 75, (double)w->resets_memory);
		cause_clients_how(c, "connections reset for lack of memory");
		evidence_num(c, "memory_pressure_events", (double)w->memory_pressures);
		evidence_num(c, "resets_abort_on_memory", (double)w->resets_memory);
		cause_explain(c, "TCP ran short of socket memory: %llu pressure/abort events in "
		    "the namespace, %llu resets sent by the target for lack of memory.",
		    (unsigned long long)w->memory_pressures, (unsigned long long)w->resets_memory);
		cause_fix(c, "Raise net.ipv4.tcp_mem (pages) or cut per-socket buffers "
		    "(tcp_rmem/tcp_wmem, SO_RCVBUF); read sockets promptly.");
	}
	/* With the listener up, such resets answer late segments of connections
	 * already gone (after aborts, or TIME_WAIT skipped): not a closed port. */
	if (w->resets_no_socket && s->ports_closed) {
		c = cause_add(d, "reset_no_listener", "warning", 65, (double)w->resets_no_socket);
		cause_clients_how(c, "resets sent to a port with no listener, one per refused connect");
		evidence_num(c, "resets_no_socket", (double)w->resets_no_socket);
		evidence_num(c, "listeners", s->n_listeners);
		evidence_num(c, "ports_without_listener", s->ports_closed);
		evidence_stopped_listener(s, c);
		cause_explain(c, "The kernel answered %llu segments with a reset because nothing "
		    "listened on a port the target served (it closed its listener or restarted); "
		    "clients saw 'connection refused' or 'reset'.", (unsigned long long)w->resets_no_socket);
		cause_fix(c, "Keep the listener open across restarts (socket activation, SO_REUSEPORT "
		    "handover, a drain before stop); have load balancers health-check before sending.");
	}
	if (w->resets_abort) {
		int i = names_rst_reason_index("tcp_abort_on_close");

		c = cause_add(d, "reset_on_close", "warning", 60, (double)w->resets_abort);
		cause_clients_how(c, "connections the app aborted with a reset");
		evidence_num(c, "resets_abort", (double)w->resets_abort);
		evidence_num(c, "resets_abort_on_close_total", i >= 0 ? (double)s->resets_sent[i] : 0);
		evidence_num(c, "tcp_abort_on_close_netns_total", (double)s->tcp_ext[CS_TE_ABORT_ON_CLOSE]);
		evidence_num(c, "accepts", (double)w->accepts);
		cause_explain(c, "The application closed %llu connections with unread data (or "
		    "SO_LINGER 0), so the kernel sent RST instead of FIN; clients lose the response "
		    "in flight and report 'connection reset by peer'.", (unsigned long long)w->resets_abort);
		cause_fix(c, "Read the request fully before closing; on a graceful close, shutdown(SHUT_WR) "
		    "then drain the socket before close(); do not set SO_LINGER with a zero timeout.");
	}
}

static void rule_healthy(const struct cs_snapshot *s, const struct cs_window *w, struct cs_diagnosis *d)
{
	struct cs_cause *c = cause_add(d, "healthy", "info", 0, 0);
	uint32_t limit = s->n_listeners ? s->listeners[0].queue_limit : w->max_queue_limit;

	cause_clients_how(c, "no failure seen");
	evidence_num(c, "accepts", (double)w->accepts);
	evidence_num(c, "listen_drops", (double)w->listen_drops);
	evidence_num(c, "fd_errors", (double)w->fd_errors);
	evidence_num(c, "fd_peak", (double)w->fd_open);
	evidence_num(c, "fd_soft_limit", (double)w->fd_soft);
	evidence_num(c, "fd_peak_percent_of_limit", w->fd_soft > 0 ? 100.0 * w->fd_open / w->fd_soft : 0);
	evidence_num(c, "max_queue_length", w->max_queue_len);
	evidence_num(c, "queue_limit", limit);
	evidence_num(c, "resets_sent", (double)w->resets_sent);
	/* with the listener up: late segments of connections already gone */
	evidence_num(c, "resets_no_socket", (double)w->resets_no_socket);
	evidence_num(c, "syncookies_sent_netns", (double)w->syncookies_sent);
	cause_explain(c, "No cause found: %llu accepts, no listen drops, no EMFILE/ENFILE, no "
	    "aborting resets. Open fds peaked at %ld of a soft limit of %ld (%.0f%%); the accept "
	    "queue peaked at %u of %u. Limits seen were not reached.",
	    (unsigned long long)w->accepts, w->fd_open, w->fd_soft,
	    w->fd_soft > 0 ? 100.0 * w->fd_open / w->fd_soft : 0, w->max_queue_len, limit);
	cause_fix(c, "Nothing to change on the server side; if clients still fail, look at the client "
	    "(its own fd and port limits) and the network between.");
}

/* The costliest first; severity (score) breaks ties. A target that exited
 * comes first: nothing serves any client any more. */
static int by_clients(const void *a, const void *b)
{
	const struct cs_cause *x = a, *y = b;
	bool xe = !strcmp(x->id, "target_exited"), ye = !strcmp(y->id, "target_exited");

	if (xe != ye)
		return xe ? -1 : 1;
	if (x->clients_affected != y->clients_affected)
		return (x->clients_affected < y->clients_affected) - (x->clients_affected > y->clients_affected);
	return (x->score < y->score) - (x->score > y->score);
}

/* A numeric evidence value, or 0. */
static double evidence_get(const struct cs_cause *c, const char *name)
{
	for (int i = 0; i < c->n_evidence; i++)
		if (!c->evidence[i].is_text && !strcmp(c->evidence[i].name, name))
			return c->evidence[i].num;
	return 0;
}

/* 8192 -> "8,192" */
static void thousands(double v, char *buf, size_t len)
{
	char raw[32];
	int n, o = 0;

	n = snprintf(raw, sizeof(raw), "%.0f", v);
	for (int i = 0; i < n && o + 2 < (int)len; i++) {
		if (i && raw[i - 1] != '-' && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
}

static void summarize(struct cs_diagnosis *d)
{
	const struct cs_cause *c = &d->causes[0];
	const char *l = c->listener[0] ? c->listener : "its listener";
	char n[32], cl[32];

	thousands(evidence_get(c, "plateau_connections"), n, sizeof(n));
	thousands(c->clients_affected, cl, sizeof(cl));
	if (!strcmp(c->id, "connection_cap"))
		snprintf(d->summary, sizeof(d->summary), "Clients failed because the server stopped "
			 "accepting at %s open connections: the application's connection cap.", n);
	else if (!strcmp(c->id, "accept_queue_stalled"))
		snprintf(d->summary, sizeof(d->summary), "Clients failed because the server stopped "
			 "accepting connections on %s altogether for a while: a stalled acceptor.", l);
	else if (!strcmp(c->id, "accept_queue_slow"))
		snprintf(d->summary, sizeof(d->summary), "Clients failed because connections arrived "
			 "faster than the server accepts them on %s: a slow acceptor.", l);
	else if (!strcmp(c->id, "backlog_too_small"))
		snprintf(d->summary, sizeof(d->summary), "Clients failed because bursts of connections "
			 "overflowed the accept queue of %s: the listen backlog is too small.", l);
	else if (!strcmp(c->id, "fd_exhaustion"))
		snprintf(d->summary, sizeof(d->summary), "%s because the server ran out of file "
			 "descriptors.", c->clients_affected ? "Requests failed" : "Clients are about to fail");
	else if (!strcmp(c->id, "healthy"))
		snprintf(d->summary, sizeof(d->summary), "No server-side failure seen: the server "
			 "accepted every connection that reached it.");
	else
		snprintf(d->summary, sizeof(d->summary), "About %s clients failed: %s.", cl, c->id);
}

void diagnose(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
	      struct cs_diagnosis *d)
{
	struct lwin *ls = calloc(CS_LISTENERS_MAX, sizeof(*ls));
	struct cs_window w;
	int nl = 0;

	memset(d, 0, sizeof(*d));
	sum_window(pts, npts, &w);
	if (ls)
		nl = sum_listeners(pts, npts, ls);
	d->window_seconds = w.seconds;
	rule_target(s, &w, d);
	rule_fds(s, &w, d);
	rule_queue(s, &w, ls, nl, d);
	rule_syn(s, &w, ls, nl, d);
	rule_resets(s, &w, d);
	free(ls);
	diagnose_conn(s, pts, npts, d);
	if (!d->n_causes && !diagnose_conn_unexplained(s, pts, npts, d))
		rule_healthy(s, &w, d);
	qsort(d->causes, d->n_causes, sizeof(d->causes[0]), by_clients);
	d->verdict = d->causes[0].id;
	summarize(d);
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
	sbuf_printf(b, "%s\n\nverdict: %s (window %.0f s)\n", d->summary, d->verdict, d->window_seconds);
	for (int i = 0; i < d->n_causes; i++) {
		const struct cs_cause *c = &d->causes[i];

		sbuf_printf(b, "\n%d. %s%s%s [%s, %.0f clients: %s]\n   evidence:", i + 1, c->id,
			    c->listener[0] ? " on " : "", c->listener, c->severity, c->clients_affected,
			    c->clients_how);
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
