/* SPDX-License-Identifier: MIT */
/* Builds the snapshot: once per tick (feeding history and events) and fresh
 * for a scrape. Owns the probes, the sock_diag socket, history and events. */
#ifndef CS_COLLECTOR_H
#define CS_COLLECTOR_H
#include <stdbool.h>
#include "clock.h"
#include "events.h"
#include "history.h"
#include "snapshot.h"

struct collector;

/* Attaches to pid (the process, if pid names one of its threads) and its
 * descendants. Prints what failed; 0 or -errno. */
int collector_new(int pid, bool verbose, struct collector **out);
void collector_free(struct collector *c);
/* --follow: once every target process exited, attach to a successor (the
 * process named comm, the PID in pidfile, or by default the one listening
 * where the target listened). comm or pidfile imply on. */
void collector_set_follow(struct collector *c, bool on, const char *comm, const char *pidfile);
/* Waits for ring-buffer events up to timeout_ms. */
int collector_poll(struct collector *c, int timeout_ms);
/* One tick: a new snapshot, a history point, overflow and exit events.
 * Returns true when the target exited at this tick. */
bool collector_tick(struct collector *c);
/* Copies the newest snapshot; with max_age_s >= 0, first rebuilds it when
 * older than that (a scrape wants fresh numbers, not last second's). */
void collector_snapshot(struct collector *c, struct cs_snapshot *out, double max_age_s);
/* Like collector_snapshot, and also the point from the last tick to this
 * snapshot, so a diagnosis sees the numbers /metrics shows, not last tick's. */
void collector_snapshot_live(struct collector *c, struct cs_snapshot *out, double max_age_s,
			     struct cs_point *live);
struct history *collector_history(struct collector *c);
struct events *collector_events(struct collector *c);
uint64_t collector_map_bytes(struct collector *c);
#endif
