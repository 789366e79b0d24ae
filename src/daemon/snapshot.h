/* SPDX-License-Identifier: MIT */
/* One immutable picture of the target per tick: what the probes counted,
 * what /proc and sock_diag said. Renderers and the diagnosis read only this
 * (and history/events), never the kernel. */
#ifndef CS_SNAPSHOT_H
#define CS_SNAPSHOT_H
#include <stdbool.h>
#include <stdint.h>
#include "connscope/connscope.h"
#include "names.h"

/* Listening sockets of the target shown; more than any real server has. */
#define CS_LISTENERS_MAX 64
/* Distinct local listen ports with counters. */
#define CS_PORTS_SHOWN_MAX 64
#define CS_SYSERR_SHOWN_MAX 128
#define CS_LABEL_LEN 64

struct cs_hist {
	uint64_t slots[CS_HIST_SLOTS];
	uint64_t count;
	uint64_t sum_ns;
};

/* A listening socket of the target, as sock_diag reports it. */
struct cs_listener {
	char label[CS_LABEL_LEN]; /* "0.0.0.0:8080", "[::]:8080" */
	int family;
	uint16_t port;
	uint64_t inode;
	uint8_t addr[16];     /* as bound: IPv6, or IPv4 in the first 4 bytes */
	uint32_t queue_len;   /* sk_ack_backlog: accepted by TCP, not by the app */
	uint32_t queue_limit; /* sk_max_ack_backlog: min(backlog, somaxconn) */
	uint64_t drops;       /* sk_drops: what ss -lntm prints as d<N> */
};

/* An address the target stopped listening on (close() of its listener, or
 * its exit), until it listens there again; from the probes. */
struct cs_stopped_listener {
	char label[CS_LABEL_LEN]; /* as struct cs_listener's */
	uint16_t port;
	double stopped_at;        /* wall clock, unix seconds */
};

/* How the app served what it accepted on one port (serve_stats). */
struct cs_serve {
	struct cs_hist first_read_wait;
	uint64_t closed_unread, gave_up, rejected;
	struct cs_hist rejected_life; /* accept -> the app's FIN, of the rejected */
	uint64_t left_in_backlog; /* accepted after the peer closed it in the queue */
	uint64_t rejected_last_bytes_in, rejected_last_bytes_out;
	uint64_t netfilter_drops; /* SYNs to this port netfilter dropped */
	uint64_t idle_closes, idle_close_sum_ns; /* app closes after >= 100 ms idle */
	uint64_t keepalive_resets; /* resets on connections the app had closed */
};

/* /proc/PID/net/stat/nf_conntrack summed over CPUs, and nf_conntrack_max. */
struct cs_conntrack {
	bool have;
	uint64_t entries, max;
	uint64_t drop, early_drop, insert_failed;
};

/* Counters by local listen port, from the probes. */
struct cs_port {
	uint16_t port;
	char label[CS_LABEL_LEN]; /* the first listener on that port, or "*:PORT" */
	uint64_t accepts;
	uint64_t closed[CS_INIT_MAX];
	uint64_t closed_before_accept;
	/* accepted and not let go by the target (see cs_port_open), now, and
	 * the most since the last history tick (the collector carries it
	 * across the snapshots between two ticks) */
	uint64_t open;
	uint64_t open_peak;
	struct cs_hist accept_wait;
	struct cs_hist duration;
	struct cs_queue_time qt; /* the accept queue in time (kernel clock) */
	struct cs_serve serve;
};

/* One target process as /proc shows it. Every target process is read (the
 * BPF targets map holds at most CS_TARGETS_MAX, and so does this array). */
struct cs_proc_info {
	int pid;
	char comm[32];
	long open_fds;
	long fd_soft;
	long fd_hard;
	long fd_peak;      /* highest open_fds of this process seen at any tick */
	long threads;
	uint64_t rss_bytes;
};

struct cs_syserr {
	uint16_t syscall; /* enum cs_syscall */
	uint16_t err;
	uint64_t count;
};

/* Tracepoints watched: one entry per tracepoint, whichever program form the
 * running kernel took (see probes.c). */
#define CS_PROBES_MAX 64
#define CS_PROBE_NAME_LEN 40
#define CS_PROBE_WHY_LEN 160

enum cs_probe_state {
	CS_PROBE_ACTIVE,      /* full form */
	CS_PROBE_REDUCED,     /* an older form of the tracepoint: less detail */
	CS_PROBE_UNAVAILABLE, /* not attached: the kernel lacks it or refused it */
};

struct cs_probe {
	char name[CS_PROBE_NAME_LEN]; /* the tracepoint: "tcp_send_reset", "sys_exit_accept4" */
	uint8_t state;                /* enum cs_probe_state */
	char why[CS_PROBE_WHY_LEN];   /* what is missing and why; "" when active */
};

/* What the daemon reads besides the probes; each says whether its last read
 * worked, so a 0 elsewhere is never mistaken for "nothing happened". */
enum cs_source {
	CS_SRC_SOCK_DIAG, /* listeners' queues and drops */
	CS_SRC_PROCFS,    /* fds, limits, threads, memory */
	CS_SRC_TCP_EXT,   /* /proc/PID/net/netstat TcpExt */
	CS_SRC_BPF,       /* the probes' maps */
	CS_SRC_MAX,
};

struct cs_snapshot {
	uint64_t seq;
	double mono_s;     /* CLOCK_MONOTONIC seconds when taken */
	int64_t unix_ms;   /* wall clock when taken */
	double started_mono_s;

	int pid;
	bool target_up;    /* any target process alive (not the first PID alone) */
	uint64_t restarts; /* --follow: successors attached to */
	uint64_t open_at_exit; /* connections it held when it was last seen up (its last exit) */
	int processes;     /* the target and its live descendants */
	char comm[32];
	double target_uptime_s; /* since the target process started */
	char kernel[65];        /* uname release */

	/* /proc, for the process with the most fds relative to its limit */
	int fd_pid;
	long open_fds;
	long fd_soft;
	long fd_hard;
	long fd_peak;      /* highest open_fds seen at any tick */
	long threads;      /* all target processes */
	uint64_t rss_bytes;/* all target processes */
	int somaxconn;     /* of the target's network namespace, this tick */
	int syncookies;    /* net.ipv4.tcp_syncookies there, this tick */
	/* CPU time of all target processes (utime+stime), and how many were
	 * stopped (state T/t: SIGSTOP, a debugger) at this tick */
	double cpu_seconds;
	int stopped_processes;
	bool ack_drops_exact; /* ports' qt.ack_drops counted (kfree_skb has rx_sk) */
	uint64_t mono_ns;  /* mono_s in ns, the clock of the qt timestamps */
	int n_procs;
	struct cs_proc_info procs[CS_TARGETS_MAX];
	uint64_t procs_not_read; /* alive but /proc unreadable, summed over ticks */
	/* runs of connscope's programs the kernel skipped because the same program
	 * was running on that CPU (a softirq interrupting it) and no second program
	 * stood in for: their events are lost */
	uint64_t probe_recursion_lost;
	/* runs a second program handled because the kernel skipped the first,
	 * by enum cs_nest_hook */
	uint64_t probe_stood_in[CS_NEST_MAX];

	/* probes */
	uint64_t accepts_total;
	int n_syserr;
	struct cs_syserr syserr[CS_SYSERR_SHOWN_MAX];
	uint64_t resets_sent[CS_RST_REASONS_MAX];
	uint64_t counters[CS_CNT_MAX];
	uint64_t ringbuf_events;
	int n_ports;
	struct cs_port ports[CS_PORTS_SHOWN_MAX];

	/* sock_diag */
	int ports_closed;  /* ports the target listened on with no listener now */
	int n_listeners;
	struct cs_listener listeners[CS_LISTENERS_MAX];
	/* the probes' listen_stopped: no longer listening, since when */
	int n_stopped_listeners;
	struct cs_stopped_listener stopped_listeners[CS_LISTENERS_MAX];

	/* /proc/PID/net/netstat TcpExt, as the kernel counts them (what nstat -a shows) */
	bool have_tcp_ext;
	uint64_t tcp_ext[CS_TE_MAX];

	int n_probes;
	struct cs_probe probes[CS_PROBES_MAX];
	bool source_up[CS_SRC_MAX];
	/* sock_diag: connections on the target's listen ports in CLOSE_WAIT
	 * (peer closed, app did not), and the longest any waited since its
	 * peer's last data (tcpi_last_data_recv); read only once a peer gave
	 * up on an unread connection (have_close_wait) */
	bool have_close_wait;
	uint32_t close_wait;
	double close_wait_oldest_s;
	/* the target as a client: net.ipv4.ip_local_port_range, and TIME_WAIT
	 * sockets in the namespace (read only after a connect/bind port error) */
	int port_range_low, port_range_high;
	uint32_t time_wait;
	struct cs_conntrack conntrack;

	double collect_seconds; /* what building this snapshot took */
};

/* Sums that several readers need. */
uint64_t snapshot_listen_drops(const struct cs_snapshot *s);
uint64_t snapshot_resets_sent(const struct cs_snapshot *s);
uint64_t snapshot_fd_errors(const struct cs_snapshot *s, int err);
uint64_t snapshot_accept_errors(const struct cs_snapshot *s, int err);
/* The probes' counters for the port of listener l, or NULL. */
const struct cs_port *snapshot_port(const struct cs_snapshot *s, uint16_t port);
const char *snapshot_source_name(enum cs_source src);
const char *snapshot_probe_state_name(enum cs_probe_state state);
/* connect()/bind() by the target that found no local port (EADDRNOTAVAIL,
 * EADDRINUSE); syscall is CS_SYS_CONNECT, CS_SYS_BIND, or -1 for both. */
uint64_t snapshot_port_errors(const struct cs_snapshot *s, int syscall, int err);
/* Accepted since attach, open, and never read by the app. */
uint64_t snapshot_port_unread(const struct cs_port *p);

#endif
