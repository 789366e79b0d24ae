/* SPDX-License-Identifier: MIT */
/* Recent notable events (EMFILE/ENFILE, resets with 4-tuple, OOM kills,
 * listen-overflow bursts, target exit), newest first, bounded. Thread-safe. */
#ifndef CS_EVENTS_H
#define CS_EVENTS_H
#include <stdint.h>
#include "connscope/connscope.h"

/* Kept in memory; older ones are overwritten (and counted). */
#define CS_EVENTS_KEPT 512

struct cs_event_rec {
	int64_t unix_ms;
	struct cs_event ev;   /* kind, pid, syscall/err, reason, 4-tuple, comm */
	char listener[64];    /* CS_EV_LISTEN_OVERFLOW */
	uint64_t count;       /* CS_EV_LISTEN_OVERFLOW: drops in that second;
			       * CS_EV_TARGET_RESTART: the PID that exited */
};

struct events;

/* 0 or -ENOMEM; *out freed by events_free. */
int events_new(struct events **out);
void events_free(struct events *ev);
/* Converts the BPF monotonic timestamp to wall-clock time and stores it. */
void events_push_bpf(struct events *ev, const struct cs_event *e);
void events_push(struct events *ev, const struct cs_event_rec *r);
/* Copies up to max newest-first into out; returns the count. */
int events_copy(struct events *ev, struct cs_event_rec *out, int max);
#endif
