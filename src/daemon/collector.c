// SPDX-License-Identifier: MIT
/* The one place the kernel is read: probes, /proc and sock_diag into one
 * snapshot, under one lock, per tick or per scrape. */
#define _GNU_SOURCE
#include "collector.h"
#include "errmsg.h"
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "probes.h"
#include "procfs.h"
#include "sockdiag.h"

/* Listener inodes remembered as the target's, or as checked and not its. */
#define INODES_KEPT 256
/* Processes whose /proc entries are read per tick (fds, limits, memory). */
#define PROCS_READ_MAX 256

struct inode_set {
	uint64_t v[INODES_KEPT];
	int n;
};

struct collector {
	pthread_mutex_t lock;
	int pid;
	uint64_t start_time;
	bool exited;
	struct probes *probes;
	struct sockdiag *sockdiag;
	struct history *history;
	struct events *events;
	struct inode_set owned, not_owned;
	uint16_t served[CS_LISTENERS_MAX]; /* ports the target's listeners had */
	int n_served;
	struct cs_snapshot cur;       /* newest */
	struct cs_snapshot tick_prev; /* at the last tick, for history deltas */
	uint64_t seq;
	bool source_said[CS_SRC_MAX]; /* its failure is on stderr already */
	long fd_peak;
	double started;
};

static int64_t unix_ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The target's age and the kernel release, for the live page's header. */
static void target_uptime(struct collector *c, struct cs_snapshot *s)
{
	struct timespec boot;
	struct utsname u;

	/* /proc/PID/stat starttime counts clock ticks since boot */
	if (!clock_gettime(CLOCK_BOOTTIME, &boot))
		s->target_uptime_s = boot.tv_sec + boot.tv_nsec / 1e9 -
				     (double)c->start_time / sysconf(_SC_CLK_TCK);
	if (!s->kernel[0] && !uname(&u))
		snprintf(s->kernel, sizeof(s->kernel), "%s", u.release);
}

static bool inode_set_has(const struct inode_set *s, uint64_t ino)
{
	for (int i = 0; i < s->n; i++)
		if (s->v[i] == ino)
			return true;
	return false;
}

static void inode_set_add(struct inode_set *s, uint64_t ino)
{
	if (inode_set_has(s, ino))
		return;
	if (s->n == INODES_KEPT) { /* forget the oldest */
		memmove(s->v, s->v + 1, sizeof(s->v[0]) * (INODES_KEPT - 1));
		s->n--;
	}
	s->v[s->n++] = ino;
}

/* Inode of PID's network namespace, 0 if it cannot be read. */
static uint32_t netns_inode(int pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return stat(path, &st) ? 0 : (uint32_t)st.st_ino;
}

static void on_bpf_event(const struct cs_event *e, void *arg)
{
	events_push_bpf(arg, e);
}

struct inode_match {
	uint64_t want;         /* one inode to find, or 0 */
	struct inode_set *all; /* or collect every socket inode */
};

static int match_inode(uint64_t ino, void *arg)
{
	struct inode_match *m = arg;

	if (m->all) {
		inode_set_add(m->all, ino);
		return 0;
	}
	return ino == m->want;
}

/* Does any target process hold this socket inode? */
static bool target_holds(uint64_t ino, const int *pids, int npids)
{
	struct inode_match m = { .want = ino };

	for (int i = 0; i < npids; i++)
		if (procfs_socket_inodes(pids[i], match_inode, &m) == 1)
			return true;
	return false;
}

/* Keeps only the target's listeners; learns new ones (a listen() after
 * attach puts its port in the probes' map, see on_listen in the BPF code). */
static void filter_listeners(struct collector *c, struct cs_snapshot *s, const int *pids, int npids)
{
	int n = 0;

	for (int i = 0; i < s->n_listeners; i++) {
		struct cs_listener *l = &s->listeners[i];
		bool mine = inode_set_has(&c->owned, l->inode);

		if (!mine && !inode_set_has(&c->not_owned, l->inode) && probes_has_port(c->probes, l->port)) {
			mine = target_holds(l->inode, pids, npids);
			inode_set_add(mine ? &c->owned : &c->not_owned, l->inode);
		}
		if (mine)
			s->listeners[n++] = *l;
	}
	s->n_listeners = n;
}

/* Ports the target listened on and listens on no more: a reset "no
 * socket" there is a closed port, elsewhere a late segment. */
static void count_closed_ports(struct collector *c, struct cs_snapshot *s)
{
	s->ports_closed = 0;
	for (int j = 0; j < s->n_listeners; j++) {
		bool known = false;

		for (int i = 0; i < c->n_served && !known; i++)
			known = c->served[i] == s->listeners[j].port;
		if (!known && c->n_served < CS_LISTENERS_MAX)
			c->served[c->n_served++] = s->listeners[j].port;
	}
	for (int i = 0; i < c->n_served; i++) {
		bool up = false;

		for (int j = 0; j < s->n_listeners && !up; j++)
			up = s->listeners[j].port == c->served[i];
		s->ports_closed += !up;
	}
}

/* Names each port's counters after its listener; a listener that has not
 * accepted yet gets zeroed counters, so its series exist from attach. */
static void label_ports(struct cs_snapshot *s)
{
	for (int j = 0; j < s->n_listeners && s->n_ports < CS_PORTS_SHOWN_MAX; j++) {
		bool known = false;

		for (int i = 0; i < s->n_ports && !known; i++)
			known = s->ports[i].port == s->listeners[j].port;
		if (!known) {
			memset(&s->ports[s->n_ports], 0, sizeof(s->ports[0]));
			s->ports[s->n_ports++].port = s->listeners[j].port;
		}
	}
	for (int i = 0; i < s->n_ports; i++) {
		struct cs_port *p = &s->ports[i];

		snprintf(p->label, sizeof(p->label), "*:%u", p->port);
		for (int j = 0; j < s->n_listeners; j++) {
			if (s->listeners[j].port == p->port) {
				memcpy(p->label, s->listeners[j].label, sizeof(p->label));
				break;
			}
		}
	}
}

static bool is_listen_port(uint16_t port, void *arg)
{
	const struct cs_snapshot *s = arg;

	for (int i = 0; i < s->n_listeners; i++)
		if (s->listeners[i].port == port)
			return true;
	return false;
}

static bool port_errors_seen(const struct cs_snapshot *s)
{
	for (int i = 0; i < s->n_syserr; i++)
		if (s->syserr[i].syscall == CS_SYS_CONNECT || s->syserr[i].syscall == CS_SYS_BIND)
			return true;
	return false;
}

static bool peers_gave_up(const struct cs_snapshot *s)
{
	for (int i = 0; i < s->n_ports; i++)
		if (s->ports[i].serve.gave_up)
			return true;
	return false;
}

/* A dump by state walks the namespace's whole established hash (262,144
 * buckets here: a millisecond a dump, more than the rest of a tick), so
 * CLOSE_WAIT is read only once peers gave up on unread connections, and
 * TIME_WAIT once the target failed to find a local port: when a rule needs
 * them as evidence. */
static void read_sockets(struct collector *c, struct cs_snapshot *s)
{
	sockdiag_port_range(c->sockdiag, &s->port_range_low, &s->port_range_high);
	s->have_close_wait = peers_gave_up(s) &&
			     !sockdiag_state(c->sockdiag, TCP_CLOSE_WAIT, is_listen_port, s, &s->close_wait,
					     &s->close_wait_oldest_s);
	if (!s->have_close_wait)
		s->close_wait = 0;
	if (!port_errors_seen(s) ||
	    sockdiag_state(c->sockdiag, TCP_TIME_WAIT, NULL, NULL, &s->time_wait, NULL))
		s->time_wait = 0;
}

static bool target_alive(struct collector *c)
{
	uint64_t st;

	return !procfs_start_time(c->pid, &st) && st == c->start_time;
}

/* Records whether a source's read worked. A failure is said once on stderr
 * (again only after the source came back and failed anew), with what reads 0
 * because of it; connscope_source_up says it on every scrape. */
static void source_result(struct collector *c, struct cs_snapshot *s, enum cs_source src, int err)
{
	static const char *const what[CS_SRC_MAX] = {
		[CS_SRC_SOCK_DIAG] = "listener queues, limits and drops",
		[CS_SRC_PROCFS] = "open fds, limits, threads and memory",
		[CS_SRC_TCP_EXT] = "the namespace's TcpExt counters",
		[CS_SRC_BPF] = "the probes' counters",
	};
	const char *hint = "";

	s->source_up[src] = !err;
	if (!err) {
		c->source_said[src] = false;
		return;
	}
	if (c->source_said[src])
		return;
	c->source_said[src] = true;
	/* inet_diag answers ENOENT when it has no handler for TCP and the
	 * kernel could not load one */
	if (src == CS_SRC_SOCK_DIAG && (err == -ENOENT || err == -EPROTONOSUPPORT))
		hint = " (the tcp_diag/inet_diag modules are missing and cannot be loaded: modprobe tcp_diag)";
	errmsg(err, "%s source failed: %s%s; %s read 0 (connscope_source_up{source=\"%s\"} 0)",
	       snapshot_source_name(src), strerror(-err), hint, what[src], snapshot_source_name(src));
}

/* 0 if at least one target process was read; else the first error. */
static int read_processes(struct collector *c, struct cs_snapshot *s, const int *pids, int npids)
{
	double worst = -1;
	int err = -ENOENT, read = 0;

	s->threads = 0;
	s->rss_bytes = 0;
	s->cpu_seconds = 0;
	s->stopped_processes = 0;
	for (int i = 0; i < npids; i++) {
		struct cs_proc pr;
		double ratio;

		int e = procfs_read_process(pids[i], &pr);

		if (e) {
			if (e != -ENOENT) /* gone between listing and reading: no failure */
				err = e;
			continue;
		}
		read++;
		s->threads += pr.threads;
		s->rss_bytes += pr.rss_bytes;
		s->cpu_seconds += (double)pr.cpu_ticks / (double)sysconf(_SC_CLK_TCK);
		if (pr.state == 'T' || pr.state == 't')
			s->stopped_processes++;
		if (pids[i] == c->pid)
			memcpy(s->comm, pr.comm, sizeof(s->comm));
		ratio = pr.fd_soft > 0 ? (double)pr.open_fds / pr.fd_soft : 0;
		if (ratio > worst) {
			worst = ratio;
			s->fd_pid = pids[i];
			s->open_fds = pr.open_fds;
			s->fd_soft = pr.fd_soft;
			s->fd_hard = pr.fd_hard;
		}
	}
	if (s->open_fds > c->fd_peak)
		c->fd_peak = s->open_fds;
	s->fd_peak = c->fd_peak;
	return read ? 0 : err;
}

/* A listener seen full starts a span the kernel closes at the next accept
 * (SYN drops leave no kernel trace of their own). */
static void mark_full_queues(struct collector *c, struct cs_snapshot *s)
{
	for (int i = 0; i < s->n_listeners; i++) {
		const struct cs_listener *l = &s->listeners[i];
		struct cs_port *p = (struct cs_port *)snapshot_port(s, l->port);
		uint64_t since;

		if (!l->queue_limit || l->queue_len < l->queue_limit)
			continue;
		if (probes_mark_queue_full(c->probes, l->port, s->mono_ns, &since))
			continue;
		if (p && (!p->qt.full_since_ns || since < p->qt.full_since_ns))
			p->qt.full_since_ns = since;
	}
}

/* Builds c->cur from the kernel. Called with the lock held. */
static void collect(struct collector *c)
{
	struct cs_snapshot *s = &c->cur;
	int pids[PROCS_READ_MAX], npids;
	double t0 = mono_now();
	int n;

	s->seq = ++c->seq;
	s->unix_ms = unix_ms_now();
	if (!c->exited)
		target_uptime(c, s);
	s->started_mono_s = c->started;
	s->pid = c->pid;
	npids = probes_targets(c->probes, pids, PROCS_READ_MAX);
	if (!c->exited && !target_alive(c))
		c->exited = true;
	s->target_up = !c->exited;
	/* Once the target is gone, /proc and sock_diag keep their last numbers. */
	if (s->target_up) {
		s->processes = npids;
		source_result(c, s, CS_SRC_PROCFS, read_processes(c, s, pids, npids));
		n = procfs_read_tcp_ext(c->pid, s->tcp_ext);
		s->have_tcp_ext = !n;
		source_result(c, s, CS_SRC_TCP_EXT, n);
		procfs_read_conntrack(c->pid, &s->conntrack);
		n = sockdiag_listeners(c->sockdiag, s->listeners, CS_LISTENERS_MAX);
		source_result(c, s, CS_SRC_SOCK_DIAG, n < 0 ? n : 0);
		s->n_listeners = n < 0 ? 0 : n;
		filter_listeners(c, s, pids, npids);
		count_closed_ports(c, s);
		s->somaxconn = sockdiag_somaxconn(c->sockdiag);
		s->syncookies = sockdiag_syncookies(c->sockdiag);
	} else {
		s->processes = 0;
	}
	source_result(c, s, CS_SRC_BPF, probes_read(c->probes, s));
	if (s->target_up)
		read_sockets(c, s); /* after the probes: it asks what they saw */
	label_ports(s);
	s->mono_s = mono_now();
	s->mono_ns = (uint64_t)(s->mono_s * 1e9);
	mark_full_queues(c, s);
	s->collect_seconds = s->mono_s - t0;
}

static int attach_tree(struct collector *c)
{
	int kids[PROCS_READ_MAX], n, err;
	struct inode_set socks = { .n = 0 };
	struct inode_match m = { .all = &socks };
	struct cs_listener ls[CS_LISTENERS_MAX];

	err = probes_add_target(c->probes, c->pid);
	if (err)
		return err;
	n = procfs_descendants(c->pid, kids, PROCS_READ_MAX);
	for (int i = 0; i < n; i++) {
		/* started as `server & connscope --pid $$`: never watch ourselves */
		if (kids[i] == getpid()) {
			kids[i--] = kids[--n];
			continue;
		}
		probes_add_target(c->probes, kids[i]);
	}
	/* listeners that exist already: match sock_diag inodes with the fds */
	procfs_socket_inodes(c->pid, match_inode, &m);
	for (int i = 0; i < n; i++)
		procfs_socket_inodes(kids[i], match_inode, &m);
	n = sockdiag_listeners(c->sockdiag, ls, CS_LISTENERS_MAX);
	for (int i = 0; i < n; i++) {
		if (!inode_set_has(&socks, ls[i].inode))
			continue;
		inode_set_add(&c->owned, ls[i].inode);
		err = probes_add_port(c->probes, ls[i].port);
		if (err)
			return err;
	}
	return 0;
}

int collector_new(int pid, bool verbose, struct collector **out)
{
	struct collector *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	err = procfs_tgid(pid);
	if (err > 0 && err != pid) {
		fprintf(stderr, "connscope: %d is a thread of process %d; watching %d\n", pid, err, err);
		pid = err;
	}
	c->pid = pid;
	c->started = mono_now();
	err = procfs_start_time(pid, &c->start_time);
	if (err) {
		err = errmsg(err, "PID %d does not exist", pid);
		goto cleanup;
	}
	err = history_new(&c->history);
	if (!err)
		err = events_new(&c->events);
	if (err)
		goto cleanup;
	err = probes_new(netns_inode(pid), verbose, on_bpf_event, c->events, &c->probes);
	if (err)
		goto cleanup;
	err = names_init();
	if (err) {
		fprintf(stderr, "connscope: cannot read kernel BTF: %s\n", strerror(-err));
		goto cleanup;
	}
	err = sockdiag_new(pid, &c->sockdiag);
	if (err)
		goto cleanup;
	err = attach_tree(c);
	if (err) {
		fprintf(stderr, "connscope: cannot watch PID %d: %s\n", pid, strerror(-err));
		goto cleanup;
	}
	collect(c);
	c->tick_prev = c->cur;
	*out = c;
	return 0;
cleanup:
	collector_free(c);
	return err;
}

void collector_free(struct collector *c)
{
	if (!c)
		return;
	probes_free(c->probes);
	sockdiag_free(c->sockdiag);
	history_free(c->history);
	events_free(c->events);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int collector_poll(struct collector *c, int timeout_ms)
{
	return probes_poll(c->probes, timeout_ms);
}

static void push_overflow_events(struct collector *c, const struct cs_snapshot *prev,
				 const struct cs_snapshot *cur)
{
	for (int i = 0; i < cur->n_listeners; i++) {
		const struct cs_listener *l = &cur->listeners[i];
		uint64_t before = l->drops;
		struct cs_event_rec r;

		for (int j = 0; j < prev->n_listeners; j++)
			if (prev->listeners[j].inode == l->inode)
				before = prev->listeners[j].drops;
		if (l->drops <= before)
			continue;
		memset(&r, 0, sizeof(r));
		r.unix_ms = cur->unix_ms;
		r.ev.kind = CS_EV_LISTEN_OVERFLOW;
		r.ev.pid = cur->pid;
		r.ev.sport = l->port;
		snprintf(r.listener, sizeof(r.listener), "%s", l->label);
		r.count = l->drops - before;
		events_push(c->events, &r);
	}
}

bool collector_tick(struct collector *c)
{
	struct cs_point pt;
	bool was_up, exited_now;

	pthread_mutex_lock(&c->lock);
	was_up = c->tick_prev.target_up;
	collect(c);
	history_point(&c->tick_prev, &c->cur, &pt);
	history_push(c->history, &pt);
	push_overflow_events(c, &c->tick_prev, &c->cur);
	exited_now = was_up && !c->cur.target_up;
	if (exited_now) {
		struct cs_event_rec r;

		memset(&r, 0, sizeof(r));
		r.unix_ms = c->cur.unix_ms;
		r.ev.kind = CS_EV_TARGET_EXIT;
		r.ev.pid = c->pid;
		memcpy(r.ev.comm, c->cur.comm, sizeof(r.ev.comm));
		events_push(c->events, &r);
	}
	c->tick_prev = c->cur;
	pthread_mutex_unlock(&c->lock);
	return exited_now;
}

void collector_snapshot_live(struct collector *c, struct cs_snapshot *out, double max_age_s,
			     struct cs_point *live)
{
	pthread_mutex_lock(&c->lock);
	if (max_age_s >= 0 && mono_now() - c->cur.mono_s > max_age_s)
		collect(c);
	*out = c->cur;
	if (live)
		history_point(&c->tick_prev, &c->cur, live);
	pthread_mutex_unlock(&c->lock);
}

void collector_snapshot(struct collector *c, struct cs_snapshot *out, double max_age_s)
{
	collector_snapshot_live(c, out, max_age_s, NULL);
}

struct history *collector_history(struct collector *c)
{
	return c->history;
}

struct events *collector_events(struct collector *c)
{
	return c->events;
}

uint64_t collector_map_bytes(struct collector *c)
{
	return probes_map_bytes(c->probes);
}
