/* SPDX-License-Identifier: MIT */
/* Types and constants shared by the BPF programs (bpf/) and the daemon (src/):
 * map keys and values, ring-buffer events, histogram layout. Plain types only. */
#ifndef CONNSCOPE_CONNSCOPE_H
#define CONNSCOPE_CONNSCOPE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Processes watched: the target and every descendant; a pre-forking server
 * rarely has more than a few hundred workers. */
#define CS_TARGETS_MAX 4096
/* Local ports with counters: ports the target listens on (or did). */
#define CS_PORTS_MAX 1024
/* The listen-port filter is an array over every port: the verifier inlines
 * array lookups, so every TCP state change on the machine is judged by one
 * load instead of a hash lookup. */
#define CS_PORT_SPACE 65536
/* Passive connections tracked from ESTABLISHED to CLOSE: above the ~19,000
 * sockets one process can hold here, with room for full accept queues. */
#define CS_CONNS_MAX 65536
/* Listening addresses of the target (netns, address as bound, port): what
 * makes a softirq-side event the target's. Every listen() it ever made. */
#define CS_LISTEN_ADDRS_MAX 1024
/* addresses of the target namespace's interfaces (a pod's IPs) */
#define CS_NETNS_ADDRS_MAX 64
/* (syscall, errno) pairs: ~30 syscalls x a handful of errnos. */
#define CS_SYSCALL_ERRORS_MAX 512
/* Slots of sk_rst_reason counted; the enum has 25 values on 6.18. */
#define CS_RST_REASONS_MAX 64
/* Before 6.10 (no enum): the slot of a passive reset, one answering a
 * segment (a stray ACK at a listener, a bad handshake), labelled
 * passive_reset; the target's own aborts stay in slot 0, not_specified. */
#define CS_RST_PASSIVE_BEFORE_6_10 62
/* log2 histogram of microseconds: slot i holds [2^i, 2^(i+1)) us, slot 0 also
 * holds 0; the last slot (2^31 us, ~36 min) takes everything above. */
#define CS_HIST_SLOTS 32
/* Ring buffer for one-by-one events (EMFILE, resets with 4-tuple, OOM). */
#define CS_RINGBUF_BYTES (256 * 1024)
/* At most one ring-buffer event per kind per this many ns; the counters stay
 * exact, only the per-event detail is sampled. */
#define CS_EVENT_MIN_GAP_NS (10ULL * 1000 * 1000)

/* Syscalls whose failures are counted; the BPF program for each passes its
 * index, so no architecture's syscall numbers are needed. */
enum cs_syscall {
	CS_SYS_ACCEPT,
	CS_SYS_ACCEPT4,
	CS_SYS_SOCKET,
	CS_SYS_SOCKETPAIR,
	CS_SYS_OPEN,
	CS_SYS_OPENAT,
	CS_SYS_OPENAT2,
	CS_SYS_CREAT,
	CS_SYS_DUP,
	CS_SYS_DUP2,
	CS_SYS_DUP3,
	CS_SYS_FCNTL,
	CS_SYS_PIPE,
	CS_SYS_PIPE2,
	CS_SYS_EPOLL_CREATE,
	CS_SYS_EPOLL_CREATE1,
	CS_SYS_EVENTFD,
	CS_SYS_EVENTFD2,
	CS_SYS_TIMERFD_CREATE,
	CS_SYS_SIGNALFD,
	CS_SYS_SIGNALFD4,
	CS_SYS_INOTIFY_INIT,
	CS_SYS_INOTIFY_INIT1,
	CS_SYS_MEMFD_CREATE,
	CS_SYS_PIDFD_OPEN,
	CS_SYS_CONNECT,  /* EADDRNOTAVAIL/EADDRINUSE: out of local ports */
	CS_SYS_BIND,
	CS_SYS_MAX,
};

/* Indexes of the global counters array. */
enum cs_counter {
	CS_CNT_RESETS_RECEIVED,
	CS_CNT_OOM_KILLS,
	CS_CNT_SYNACK_RETRANS,
	CS_CNT_CONNS_TABLE_FULL,  /* a connection not tracked: conns map full */
	CS_CNT_TARGETS_FULL,      /* a forked child not watched: targets map full */
	CS_CNT_EVENTS_DROPPED,    /* ring buffer full */
	CS_CNT_EVENTS_SAMPLED,    /* events not sent because of CS_EVENT_MIN_GAP_NS */
	CS_CNT_LISTEN_ADDRS_FULL, /* a listen() not known as the target's: listen_addrs full */
	CS_CNT_MAX,
};

/* The tracepoints whose program a softirq can interrupt on its own CPU:
 * each has a second program that stands in for a skipped run (bpf/,
 * nest_done). Indexes of the nest map, times CS_NEST_LEVELS. */
enum cs_nest_hook {
	CS_NEST_SET_STATE,
	CS_NEST_SEND_RESET,
	CS_NEST_RECEIVE_RESET,
	CS_NEST_KFREE_SKB,
	CS_NEST_MAX,
};

/* Contexts that can interrupt one another on a CPU, as told apart: the
 * task's, and an interrupt's (softirq or hardirq). */
#define CS_NEST_LEVELS 2

/* Per hook, context and CPU: the event the first program handled last (two
 * of its arguments), and the events the second stood in for. */
struct cs_nest {
	__u64 a;
	__u64 b;
	__u64 stood_in;
};

/* How a tracked connection ended, decided by its state transitions. */
enum cs_initiator {
	CS_INIT_LOCAL,   /* target sent FIN first (FIN_WAIT1) */
	CS_INIT_REMOTE,  /* peer sent FIN first (CLOSE_WAIT) */
	CS_INIT_RESET,   /* a reset was sent or received on it */
	CS_INIT_MAX,
};

struct cs_syscall_error_key {
	__u16 syscall; /* enum cs_syscall */
	__u16 err;     /* positive errno */
};

/* A listening address of the target. IPv4 is stored v4-mapped
 * (::ffff:a.b.c.d), so one key serves both families; the wildcard is
 * ::ffff:0.0.0.0 (IPv4) or :: (IPv6, dual-stack). netns is 0 when the
 * target's namespace is not known (then not compared). */
struct cs_listen_key {
	__u32 netns;
	__u16 port;   /* host order */
	__u16 pad;
	__u8 addr[16];
};

/* Values of the listen_addrs map. A stopped address is no longer the
 * target's for connections (a successor may bind it: never counted as the
 * old target), but resets to it still tell that clients found it closed. */
enum cs_listen_state {
	CS_LISTEN_NOW = 1,
	CS_LISTEN_STOPPED = 2,
};

/* Per local listen port; a per-CPU map value, summed in userspace. */
struct cs_port_stats {
	__u64 accepts;
	__u64 closed[CS_INIT_MAX];
	__u64 closed_before_accept; /* reached ESTABLISHED, closed while queued */
	__u64 accept_wait_slots[CS_HIST_SLOTS];
	__u64 accept_wait_sum_ns;
	__u64 accept_wait_count;
	__u64 duration_slots[CS_HIST_SLOTS];
	__u64 duration_sum_ns;
};

/* Per local port (the array index), shared by every CPU and mapped into the
 * daemon: the target's accepted connections it has not let go yet (its
 * close(), FIN_WAIT1 or LAST_ACK, or an abort or reset: when the server's
 * own count drops, not when the FIN exchange ends), and the highest that
 * count reached since the daemon last took it (an exchange with 0), so a
 * tick's peak is exact even when the tick falls between a close and the
 * accept it let in. */
struct cs_port_open {
	__s64 open;
	__u64 peak; /* 0: no accept since the daemon took it */
};

/* Per local listen port, the accept queue in time (one shared value, not
 * per-CPU: the timestamps must be the latest over all CPUs). All times are
 * CLOCK_MONOTONIC ns (bpf_ktime_get_ns). */
struct cs_queue_time {
	__u64 last_accept_ns;
	__u64 last_local_close_ns;  /* the app closed an accepted connection */
	__u64 full_since_ns;        /* queue seen full with no accept since; 0: not */
	__u64 full_total_ns;        /* closed spans full -> next accept */
	__u64 longest_gap_ns;       /* longest no-accept span that held a full queue */
	__u64 last_gap_ns;          /* the latest such span */
	__u64 gaps;                 /* how many spans ended */
	__u64 ack_drops;            /* handshake ACKs dropped: TCP_LISTEN_OVERFLOW */
	__u64 accepts_after_close;  /* accepts that followed a local close: see below */
	__u64 local_closes;         /* accepted connections the app closed */
	__u64 run_closes;           /* local closes of this run not yet followed by an accept */
	__u64 run_last_ns;          /* the run's latest close or counted accept */
};
/* A connection cap lets one in per close. An accept follows a close when it
 * comes in a run of closes and counted accepts with no pause of this long or
 * more, while the run has a close no earlier accept took: a server that
 * closes a batch and then accepts as many is counted whole, however long the
 * batch takes, but one accept per close only. */
#define CS_CAP_CLOSE_NS (5ULL * 1000 * 1000)

#define CS_CONN_ACCEPTED     0x1
#define CS_CONN_LOCAL_FIN    0x2
#define CS_CONN_REMOTE_FIN   0x4
#define CS_CONN_RESET        0x8
#define CS_CONN_WAIT_KNOWN   0x10 /* established_ns was seen */
#define CS_CONN_READ         0x20 /* the app read data from it after accept */
#define CS_CONN_GAVE_UP      0x40 /* peer left (FIN/RST) with its request unread */
#define CS_CONN_CLOSED       0x80 /* on_close counted it (accept may race it) */
#define CS_CONN_RELEASED     0x100 /* taken off cs_port_open.open */

/* An app close (FIN) before any read within this long of accept is a
 * rejection ("too many clients", auth failure); later it is an idle close. */
#define CS_REJECT_WINDOW_NS (1000ULL * 1000 * 1000)
/* An app close of a served connection after this long without traffic is an
 * idle (keep-alive timeout) close; sooner, it closes after answering. */
#define CS_IDLE_CLOSE_NS (100ULL * 1000 * 1000)

/* Slots of the per-CPU array serve_slots: a port takes slot port % this on
 * each CPU unless another port holds it, then the serve_stats hash. */
#define CS_SERVE_SLOTS 64

/* How the app served accepted connections, per local listen port; a per-CPU
 * map value (serve_slots, serve_stats), summed in userspace. */
struct cs_serve_stats {
	__u16 port;   /* in serve_slots: the port this CPU's slot counts for */
	__u16 pad[3];
	__u64 first_read_slots[CS_HIST_SLOTS]; /* accept -> the app's first data read */
	__u64 first_read_sum_ns;
	__u64 first_reads;
	__u64 closed_unread;  /* closed, by either side, never read by the app */
	__u64 gave_up;        /* peer sent data, then FIN/RST before the app read */
	__u64 rejected;       /* app FIN first, before any read, within CS_REJECT_WINDOW_NS */
	__u64 rejected_life_slots[CS_HIST_SLOTS]; /* accept -> the app's FIN, of the rejected */
	__u64 rejected_life_sum_ns;
	__u64 rejected_last_ns;        /* when the newest rejection on this CPU was */
	__u64 rejected_last_bytes_in;  /* its bytes received and sent */
	__u64 rejected_last_bytes_out;
	__u64 netfilter_drops; /* SYNs to the port dropped by netfilter (kfree_skb reason) */
	__u64 idle_closes;     /* app closed a served connection idle >= CS_IDLE_CLOSE_NS */
	__u64 idle_close_sum_ns;
	__u64 keepalive_resets; /* peer sent data (or RST) after the app's FIN */
	__u64 left_in_backlog;  /* peer closed (FIN) while queued, accepted after */
};

struct cs_conn {
	__u64 established_ns;
	__u64 accepted_ns;
	/* CS_CONN_*: set from syscall and softirq context at once (accept()
	 * on one CPU, the peer's FIN on another), so only by atomic OR; 64
	 * bits because BPF before -mcpu=v3 has no 32-bit atomic OR */
	__u64 flags;
	__u16 port;
	__u16 pad[3];
};

enum cs_event_kind {
	CS_EV_FD_ERROR,   /* EMFILE/ENFILE: syscall, err */
	CS_EV_RESET_SENT, /* reason, 4-tuple */
	CS_EV_OOM_KILL,   /* pid, comm */
	CS_EV_KINDS_BPF,
	/* raised by the daemon itself */
	CS_EV_LISTEN_OVERFLOW = CS_EV_KINDS_BPF,
	CS_EV_TARGET_EXIT,
	CS_EV_TARGET_RESTART, /* --follow: pid is the successor, count the old PID */
	CS_EV_KINDS,
};

struct cs_event {
	__u64 ts_ns;      /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 kind;       /* enum cs_event_kind */
	__u32 pid;
	__u16 syscall;    /* CS_EV_FD_ERROR */
	__u16 err;        /* CS_EV_FD_ERROR */
	__u32 reason;     /* CS_EV_RESET_SENT: enum sk_rst_reason */
	__u16 family;     /* AF_INET / AF_INET6 */
	__u16 sport;      /* local port, host order */
	__u16 dport;      /* remote port, host order */
	__u16 pad;
	__u8 saddr[16];   /* local address */
	__u8 daddr[16];   /* remote address */
	char comm[16];
};

#endif
