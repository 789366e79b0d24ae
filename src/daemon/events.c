// SPDX-License-Identifier: MIT
/* Bounded ring of recent events for /api/v1/events. */
#include "events.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events {
	pthread_mutex_t lock;
	struct cs_event_rec ring[CS_EVENTS_KEPT];
	uint64_t total;   /* ever pushed; ring index is total % KEPT */
};

int events_new(struct events **out)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	pthread_mutex_init(&ev->lock, NULL);
	*out = ev;
	return 0;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

void events_push(struct events *ev, const struct cs_event_rec *r)
{
	pthread_mutex_lock(&ev->lock);
	ev->ring[ev->total % CS_EVENTS_KEPT] = *r;
	ev->total++;
	pthread_mutex_unlock(&ev->lock);
}

void events_push_bpf(struct events *ev, const struct cs_event *e)
{
	struct cs_event_rec r;
	struct timespec mono, real;

	memset(&r, 0, sizeof(r));
	r.ev = *e;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	/* bpf_ktime_get_ns is CLOCK_MONOTONIC */
	r.unix_ms = (int64_t)real.tv_sec * 1000 + real.tv_nsec / 1000000 -
		    ((int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec - (int64_t)e->ts_ns) / 1000000;
	events_push(ev, &r);
}

int events_copy(struct events *ev, struct cs_event_rec *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&ev->lock);
	for (uint64_t i = ev->total; i > 0 && n < max && ev->total - i < CS_EVENTS_KEPT; i--)
		out[n++] = ev->ring[(i - 1) % CS_EVENTS_KEPT];
	pthread_mutex_unlock(&ev->lock);
	return n;
}

