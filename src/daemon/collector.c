// SPDX-License-Identifier: MIT
/* The one place the kernel is read: probes, /proc and sock_diag into one
 * snapshot, under one lock, per tick or per scrape. */
#define _GNU_SOURCE
#include "collector.h"
#include "errmsg.h"
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
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
	bool cur_is_tick;             /* cur is also tick_prev: no collect since the tick */
	struct cs_snapshot tick_prev; /* at the last tick, for history deltas */
	uint64_t seq;
	uint64_t procs_not_read;
	uint64_t restarts;
	uint64_t open_at_exit;
	uint32_t netns;
	bool own_netns; /* the target shares connscope's network namespace */
	/* the label each port's counters were last shown under: a listener that
	 * closed (or a target that exited) never renames its series */
	struct cs_port labels[CS_PORTS_SHOWN_MAX];
	int n_labels;
	struct {
		bool on;
		const char *comm;
		const char *pidfile;
	} follow;
	int pids[CS_TARGETS_MAX];          /* the live targets, per collect */
	struct fd_peak { int pid; long peak; } peaks[CS_TARGETS_MAX]; /* last tick's, by PID */
	bool source_said[CS_SRC_MAX]; /* its failure is on stderr already */
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

/* A target in a namespace of its own (a pod): its addresses, so that SYNs to
 * them dropped by netfilter on the way (the node's DNAT and filter rules, in
 * another namespace) are its own. A failure keeps the last set. */
static void update_netns_addrs(struct collector *c)
{
	uint8_t addrs[CS_NETNS_ADDRS_MAX][16];
	int n = sockdiag_addresses(c->sockdiag, addrs, CS_NETNS_ADDRS_MAX);

	if (n >= 0)
		probes_set_netns_addrs(c->probes, (const uint8_t (*)[16])addrs, n);
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
static void add_zeroed_port(struct cs_snapshot *s, uint16_t port)
{
	bool known = false;

	for (int i = 0; i < s->n_ports && !known; i++)
		known = s->ports[i].port == port;
	if (!known && s->n_ports < CS_PORTS_SHOWN_MAX) {
		memset(&s->ports[s->n_ports], 0, sizeof(s->ports[0]));
		s->ports[s->n_ports++].port = port;
	}
}

static void label_ports(struct collector *c, struct cs_snapshot *s)
{
	for (int j = 0; j < s->n_listeners; j++)
		add_zeroed_port(s, s->listeners[j].port);
	/* a series once shown stays, under its label, after its listener closed */
	for (int k = 0; k < c->n_labels; k++)
		add_zeroed_port(s, c->labels[k].port);
	for (int i = 0; i < s->n_ports; i++) {
		struct cs_port *p = &s->ports[i];

		int k;

		snprintf(p->label, sizeof(p->label), "*:%u", p->port);
		for (k = 0; k < c->n_labels && c->labels[k].port != p->port; k++)
			;
		if (k < c->n_labels)
			memcpy(p->label, c->labels[k].label, sizeof(p->label));
		for (int j = 0; j < s->n_listeners; j++) {
			if (s->listeners[j].port == p->port) {
				memcpy(p->label, s->listeners[j].label, sizeof(p->label));
				break;
			}
		}
		if (k == c->n_labels && c->n_labels < CS_PORTS_SHOWN_MAX)
			c->n_labels++;
		if (k < c->n_labels) {
			c->labels[k].port = p->port;
			memcpy(c->labels[k].label, p->label, sizeof(p->label));
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

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
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

/* Reads every target process into s->procs (sorted by PID). A process's
 * fd_peak is its own: one peak over processes with different limits once
 * showed a peak above the hard limit of the process it was shown with. The
 * top-level fd fields are the process nearest its soft limit. 0 if at
 * least one target process was read; else the first error. */
static int read_processes(struct collector *c, struct cs_snapshot *s, int *pids, int npids)
{
	double worst = -1;
	int prev = 0, nprev = s->n_procs, err = -ENOENT, read = 0;

	for (int i = 0; i < nprev; i++) {
		c->peaks[i].pid = s->procs[i].pid;
		c->peaks[i].peak = s->procs[i].fd_peak;
	}
	qsort(pids, npids, sizeof(pids[0]), cmp_int);
	s->threads = 0;
	s->rss_bytes = 0;
	s->n_procs = 0;
	s->cpu_seconds = 0;
	s->stopped_processes = 0;
	for (int i = 0; i < npids && s->n_procs < CS_TARGETS_MAX; i++) {
		struct cs_proc_info *pi = &s->procs[s->n_procs];
		long peak = 0;
		struct cs_proc pr;
		double ratio;
		int e;

		/* the last tick's peaks are sorted by PID too: walk them alongside */
		while (prev < nprev && c->peaks[prev].pid < pids[i])
			prev++;
		if (prev < nprev && c->peaks[prev].pid == pids[i])
			peak = c->peaks[prev].peak;
		e = procfs_read_process(pids[i], &pr);
		if (e) {
			if (e != -ENOENT) /* gone between listing and reading: no failure */
				err = e;
			if (kill(pids[i], 0) == 0)
				c->procs_not_read++;
			continue;
		}
		read++;
		pi->pid = pids[i];
		memcpy(pi->comm, pr.comm, sizeof(pi->comm));
		pi->open_fds = pr.open_fds;
		pi->fd_soft = pr.fd_soft;
		pi->fd_hard = pr.fd_hard;
		pi->fd_peak = pr.open_fds > peak ? pr.open_fds : peak;
		pi->threads = pr.threads;
		pi->rss_bytes = pr.rss_bytes;
		s->n_procs++;
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
			s->fd_peak = pi->fd_peak;
		}
	}
	s->procs_not_read = c->procs_not_read;
	return read ? 0 : err;
}

/* Keeps the target processes that live: not zombies (their fds and memory
 * are gone, reading them would replace the last numbers with zeros), and
 * not a reused PID in place of the first. Returns their count. */
static int live_targets(struct collector *c, int *pids, int n)
{
	int live = 0;

	for (int i = 0; i < n; i++)
		if (procfs_alive(pids[i]) && (pids[i] != c->pid || target_alive(c)))
			pids[live++] = pids[i];
	return live;
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

/* A port's open_peak is the most it held since the last tick: the kernel's
 * peak since the last read, the open count now, and what the snapshots
 * since the tick saw (at the tick itself: its open count, where the new
 * interval starts). */
struct open_carry {
	uint16_t port;
	uint64_t peak;
};

static int open_peaks_save(const struct collector *c, struct open_carry *keep)
{
	const struct cs_snapshot *s = &c->cur;

	for (int i = 0; i < s->n_ports; i++) {
		keep[i].port = s->ports[i].port;
		keep[i].peak = c->cur_is_tick ? s->ports[i].open : s->ports[i].open_peak;
	}
	return s->n_ports;
}

static void open_peaks_carry(struct cs_snapshot *s, const struct open_carry *keep, int n)
{
	for (int i = 0; i < s->n_ports; i++) {
		struct cs_port *p = &s->ports[i];

		if (p->open > p->open_peak)
			p->open_peak = p->open;
		for (int k = 0; k < n; k++)
			if (keep[k].port == p->port && keep[k].peak > p->open_peak)
				p->open_peak = keep[k].peak;
	}
}

/* What the target held just before it exited: its exit closes every
 * connection (open drops to 0), so the most open in this tick and the one
 * before, per port (the exit may have begun in the previous tick). */
static uint64_t open_before_exit(const struct collector *c)
{
	const struct cs_snapshot *now = &c->cur, *prev = &c->tick_prev;
	uint64_t n = 0;

	for (int i = 0; i < now->n_ports; i++) {
		uint64_t most = now->ports[i].open_peak;

		for (int k = 0; k < prev->n_ports; k++)
			if (prev->ports[k].port == now->ports[i].port && prev->ports[k].open_peak > most)
				most = prev->ports[k].open_peak;
		n += most;
	}
	return n;
}

/* Builds c->cur from the kernel. Called with the lock held. */
static void collect(struct collector *c)
{
	struct open_carry keep[CS_PORTS_SHOWN_MAX];
	int nkeep = open_peaks_save(c, keep);
	struct cs_snapshot *s = &c->cur;
	int *pids = c->pids, npids;
	double t0 = mono_now();
	int n;

	s->seq = ++c->seq;
	s->unix_ms = unix_ms_now();
	if (!c->exited)
		target_uptime(c, s);
	s->started_mono_s = c->started;
	s->pid = c->pid;
	s->restarts = c->restarts;
	npids = live_targets(c, pids, probes_targets(c->probes, pids, CS_TARGETS_MAX));
	/* Collection lasts while any target process lives: a launcher that
	 * exits leaves the descendants that serve behind. */
	if (!c->exited && !npids) {
		c->exited = true;
		c->open_at_exit = open_before_exit(c);
	}
	s->open_at_exit = c->open_at_exit;
	s->target_up = !c->exited;
	/* Once the target is gone, /proc and sock_diag keep their last numbers. */
	if (s->target_up) {
		s->processes = npids;
		source_result(c, s, CS_SRC_PROCFS, read_processes(c, s, pids, npids));
		n = procfs_read_tcp_ext(pids[0], s->tcp_ext);
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
		if (!c->own_netns)
			update_netns_addrs(c);
	} else {
		s->processes = 0;
	}
	source_result(c, s, CS_SRC_BPF, probes_read(c->probes, s));
	open_peaks_carry(s, keep, nkeep);
	c->cur_is_tick = false;
	if (s->target_up)
		read_sockets(c, s); /* after the probes: it asks what they saw */
	label_ports(c, s);
	s->mono_s = mono_now();
	s->mono_ns = (uint64_t)(s->mono_s * 1e9);
	mark_full_queues(c, s);
	s->collect_seconds = s->mono_s - t0;
}

static int attach_tree(struct collector *c)
{
	int *kids = c->pids, n, err;
	struct inode_set socks = { .n = 0 };
	struct inode_match m = { .all = &socks };
	struct cs_listener ls[CS_LISTENERS_MAX];

	err = probes_add_target(c->probes, c->pid);
	if (err)
		return err;
	n = procfs_descendants(c->pid, kids, CS_TARGETS_MAX);
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
		err = probes_add_listener(c->probes, &ls[i]);
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
	c->netns = netns_inode(pid);
	c->own_netns = c->netns == netns_inode(getpid());
	err = probes_new(c->netns, verbose, on_bpf_event, c->events, &c->probes);
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
	c->cur_is_tick = true;
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

void collector_set_follow(struct collector *c, bool on, const char *comm, const char *pidfile)
{
	c->follow.on = on || comm || pidfile;
	c->follow.comm = comm;
	c->follow.pidfile = pidfile;
}

/* A successor must live in the target's network namespace: the probes
 * filter on that one, fixed at load. */
static bool successor_ok(struct collector *c, int pid)
{
	return pid > 0 && pid != getpid() && procfs_alive(pid) && netns_inode(pid) == c->netns;
}

static bool match_comm(int pid, void *arg)
{
	struct collector *c = arg;
	char comm[32];

	return !procfs_comm(pid, comm, sizeof(comm)) && !strcmp(comm, c->follow.comm) &&
	       successor_ok(c, pid);
}

struct holder_match {
	struct collector *c;
	uint64_t inode;
};

static bool match_holder(int pid, void *arg)
{
	struct holder_match *h = arg;

	return pid != getpid() && target_holds(h->inode, &pid, 1) && successor_ok(h->c, pid);
}

/* Of pids, one whose parent is not among them: a pre-forking server's
 * master rather than one of its workers. */
static int topmost(const int *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int ppid = procfs_ppid(pids[i]);
		bool parent_in = false;

		for (int j = 0; j < n && !parent_in; j++)
			parent_in = pids[j] == ppid;
		if (!parent_in)
			return pids[i];
	}
	return n ? pids[0] : 0;
}

static int pidfile_pid(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "re");
	int pid = 0;

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		pid = atoi(buf);
	fclose(f);
	return pid;
}

static bool same_address(const struct cs_listener *a, const struct cs_listener *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* The process that took over from the exited target, 0 if none yet: the PID
 * in --pidfile, a process named --comm, or by default the process that now
 * holds a listener on an address and port the target listened on. */
static int find_successor(struct collector *c)
{
	struct cs_listener ls[CS_LISTENERS_MAX];
	int *found = c->pids, n;

	if (c->follow.pidfile) {
		n = pidfile_pid(c->follow.pidfile);
		return successor_ok(c, n) ? n : 0;
	}
	if (c->follow.comm) {
		n = procfs_find(match_comm, c, found, CS_TARGETS_MAX);
		return n > 0 ? topmost(found, n) : 0;
	}
	n = sockdiag_listeners(c->sockdiag, ls, CS_LISTENERS_MAX);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < c->cur.n_listeners; j++) {
			struct holder_match h = { .c = c, .inode = ls[i].inode };
			int held;

			if (!same_address(&ls[i], &c->cur.listeners[j]))
				continue;
			held = procfs_find(match_holder, &h, found, CS_TARGETS_MAX);
			if (held > 0)
				return topmost(found, held);
		}
	}
	return 0;
}

/* Watches pid from now on, as the same target: same labels, counters that
 * go on, an event naming both PIDs. 0 or -errno. */
static int attach_successor(struct collector *c, int pid)
{
	int old = c->pid, err;
	uint64_t old_start = c->start_time;
	struct cs_event_rec r;

	c->pid = pid;
	err = procfs_start_time(pid, &c->start_time);
	if (!err)
		err = attach_tree(c);
	if (err) {
		c->pid = old;
		c->start_time = old_start;
		return err;
	}
	c->exited = false;
	c->restarts++;
	memset(&r, 0, sizeof(r));
	r.unix_ms = unix_ms_now();
	r.ev.kind = CS_EV_TARGET_RESTART;
	r.ev.pid = pid;
	r.count = old;
	procfs_comm(pid, r.ev.comm, sizeof(r.ev.comm));
	events_push(c->events, &r);
	fprintf(stderr, "connscope: PID %d took over from PID %d; watching it (restart %llu)\n", pid, old,
		(unsigned long long)c->restarts);
	return 0;
}

bool collector_tick(struct collector *c)
{
	struct cs_point pt;
	bool was_up, exited_now;
	int next;

	pthread_mutex_lock(&c->lock);
	was_up = c->tick_prev.target_up;
	if (c->exited && c->follow.on && (next = find_successor(c)) > 0)
		attach_successor(c, next);
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
	c->cur_is_tick = true;
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
