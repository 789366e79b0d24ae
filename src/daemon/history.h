/* SPDX-License-Identifier: MIT */
/* Per-tick deltas of the key counters for the last ~15 minutes, the input of
 * /api/v1/history and of the diagnosis. Thread-safe. */
#ifndef CS_HISTORY_H
#define CS_HISTORY_H
#include <stdbool.h>
#include <stdint.h>
#include "snapshot.h"

/* 15 minutes of one-second ticks. */
#define CS_HISTORY_POINTS 900

/* Listeners kept per point, the first ones sock_diag lists; more than a
 * server has, and 900 points of them stay under 2 MB. */
#define CS_POINT_LISTENERS 8

/* One listener over one interval: its queue, its drops, its accepts, in
 * time (the diagnosis judges each listener on these; the live page charts
 * them). */
struct cs_point_listener {
	char label[CS_LABEL_LEN];
	uint16_t port;
	bool full;               /* at or past its limit at the end */
	uint32_t queue_len, queue_limit;
	uint64_t drops;          /* sk_drops delta (packets: SYNs and ACKs) */
	uint64_t ack_drops;      /* handshake ACKs dropped, counted by the kernel */
	uint64_t accepts;        /* of its port */
	uint64_t local_closes;   /* accepted connections the app closed */
	uint64_t accepts_after_close; /* accepts right after such a close */
	long open;               /* accepted and not let go by the target, at the end */
	long open_peak;          /* the most open at any moment of the interval */
	double full_seconds;     /* time the queue was full in the interval */
	double gap_seconds;      /* longest no-accept span with a full queue
				  * running at the end or ended in the interval */
	double accept_wait_sum_s;/* time this interval's accepts had waited */
	uint64_t accept_wait_count;
	/* of this interval's accepts, from the log2 slots; 0 without any */
	double accept_wait_p50_s, accept_wait_p99_s;
};

struct cs_point {
	int64_t unix_ms;
	double seconds;          /* length of the interval this point covers */
	/* deltas over the interval */
	uint64_t accepts;
	uint64_t accept_emfile, accept_enfile, accept_other_errors;
	uint64_t fd_errors;      /* EMFILE+ENFILE from any syscall */
	uint64_t listen_drops;   /* sum of listeners' sk_drops */
	uint64_t resets_sent, resets_received;
	uint64_t resets_abort;   /* tcp_abort_on_close/_data/_linger, disconnect_with_data */
	uint64_t resets_no_socket;
	uint64_t resets_memory;  /* tcp_abort_on_memory */
	uint64_t closed_before_accept;
	uint64_t listen_overflows; /* netns TcpExt ListenOverflows */
	uint64_t syn_queue_drops;  /* TcpExt TCPReqQFullDrop */
	uint64_t syncookies_sent;
	uint64_t memory_pressures; /* TcpExt TCPMemoryPressures + TCPAbortOnMemory */
	uint64_t oom_kills;
	/* serving accepted connections (serve_stats), over every port */
	uint64_t first_reads, gave_up_unread, closed_unread, rejected;
	uint64_t synack_retrans;   /* on the target's listeners */
	uint64_t abort_on_timeout; /* netns TcpExt TCPAbortOnTimeout */
	uint64_t port_errors;      /* connect/bind EADDRNOTAVAIL+EADDRINUSE by the target */
	uint64_t netfilter_drops;  /* SYNs to the target's ports netfilter dropped */
	uint64_t conntrack_drops;  /* nf_conntrack drop + early_drop + insert_failed */
	uint64_t keepalive_resets; /* resets on connections the app had closed */
	uint64_t idle_closes;      /* app closes of served connections after idling */
	/* levels at the end of the interval */
	long open_fds;           /* of fd_pid, the process nearest its own limit */
	long fd_soft;            /* fd_pid's soft limit at this tick */
	int fd_pid;
	double cpu_seconds;      /* CPU time all target processes got */
	int stopped_processes;   /* target processes stopped (SIGSTOP) at the end */
	int n_listeners;
	struct cs_point_listener listeners[CS_POINT_LISTENERS];
	uint32_t queue_len;      /* of the listener nearest its limit */
	uint32_t queue_limit;
	bool queue_full;         /* some listener at or past its limit */
	uint64_t unread;         /* accepted, open, never read */
	uint32_t close_wait;
	bool target_up;
};

struct history;

/* 0 or -ENOMEM; *out freed by history_free. */
int history_new(struct history **out);
void history_free(struct history *h);
/* The point between two snapshots (prev may be a zeroed one at attach). */
void history_point(const struct cs_snapshot *prev, const struct cs_snapshot *cur,
		   struct cs_point *out);
void history_push(struct history *h, const struct cs_point *p);
/* Copies the points of the last `seconds` (all if <= 0), oldest first, into a
 * malloc'd array the caller frees, with room for one more point (the live
 * one a diagnosis appends). Returns the count, or -ENOMEM. */
int history_copy(struct history *h, double seconds, struct cs_point **out);
#endif
