/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition (format 0.0.4) of a snapshot and its diagnosis. */
#ifndef CS_PROM_H
#define CS_PROM_H
#include "diagnose.h"
#include "sbuf.h"
#include "snapshot.h"

#define CS_VERSION "0.1.0"

struct prom_extra {
	double scrape_seconds;  /* time spent building the snapshot for this scrape */
	uint64_t map_bytes;     /* kernel memory of the BPF maps */
	uint64_t events_seen;   /* events delivered to /api/v1/events */
};

void prom_render(const struct cs_snapshot *s, const struct cs_diagnosis *d,
		 const struct prom_extra *x, struct sbuf *b);
#endif
