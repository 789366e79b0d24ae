/* SPDX-License-Identifier: MIT */
/* The BPF side seen from userspace: load and attach the tracepoint programs,
 * tell them the target's processes and listen ports, read their counters into
 * a snapshot, and pass ring-buffer events on. */
#ifndef CS_PROBES_H
#define CS_PROBES_H
#include <stdbool.h>
#include "snapshot.h"

struct probes;
typedef void (*probes_event_fn)(const struct cs_event *e, void *arg);

/* Checks BTF and privileges, mounts tracefs if needed, loads and attaches.
 * netns_ino: inode of the target's network namespace (0: any). Prints what
 * failed and what to do. 0 or -errno. */
int probes_new(uint32_t netns_ino, bool verbose, probes_event_fn fn, void *arg, struct probes **out);
void probes_free(struct probes *p);
int probes_add_target(struct probes *p, int tgid);
int probes_add_port(struct probes *p, uint16_t port);
/* Marks l's address and port as the target's (a listener it held at attach). */
int probes_add_listener(struct probes *p, const struct cs_listener *l);
/* The target namespace's own addresses (sockdiag_addresses), when it is not
 * connscope's: netfilter drops on the way to them in another namespace are
 * the target's. Replaces the set. 0 or -errno. */
int probes_set_netns_addrs(struct probes *p, const uint8_t (*addrs)[16], int n);
bool probes_has_port(struct probes *p, uint16_t port);
/* Drops targets whose process is gone; fills out[0..max) with the live ones
 * and returns their count. */
int probes_targets(struct probes *p, int *out, int max);
/* Reads every counter map into s (accepts, errors, resets, ports, counters)
 * and the state of each probe. 0, or -errno if a map could not be read. */
int probes_read(struct probes *p, struct cs_snapshot *s);
/* A tick saw the listener on port full: starts its full span at mono_ns
 * (CLOCK_MONOTONIC ns) unless one is running; *since_ns gets the span's
 * start. 0 or -errno. */
int probes_mark_queue_full(struct probes *p, uint16_t port, uint64_t mono_ns, uint64_t *since_ns);
/* Delivers pending ring-buffer events; waits up to timeout_ms. */
int probes_poll(struct probes *p, int timeout_ms);
/* Bytes of kernel memory the maps hold (for the benchmark and /metrics). */
uint64_t probes_map_bytes(struct probes *p);
#endif
