// SPDX-License-Identifier: MIT
/* The bounded events list (src/daemon/events.c): newest first, the oldest
 * overwritten once CS_EVENTS_KEPT are held, BPF timestamps to wall clock. */
#include <stdlib.h>
#include <time.h>
#include "events.h"
#include "unit.h"

UNIT_TEST(test_newest_first_and_bounded)
{
	static struct cs_event_rec out[CS_EVENTS_KEPT + 5];
	struct cs_event_rec r = { 0 };
	struct events *ev = NULL;
	int n;

	CHECK(!events_new(&ev));
	CHECK(events_copy(ev, out, 10) == 0);
	for (int i = 0; i < CS_EVENTS_KEPT + 3; i++) {
		r.count = i;
		events_push(ev, &r);
	}
	n = events_copy(ev, out, CS_EVENTS_KEPT + 5);
	CHECK(n == CS_EVENTS_KEPT);
	CHECK(out[0].count == CS_EVENTS_KEPT + 2 && out[n - 1].count == 3);
	CHECK(events_copy(ev, out, 2) == 2 && out[1].count == CS_EVENTS_KEPT + 1);
	events_free(ev);
}

/* A BPF event stamped 1.5 s ago (CLOCK_MONOTONIC) is dated 1.5 s before now. */
UNIT_TEST(test_bpf_timestamp_to_wall_clock)
{
	struct cs_event e = { .kind = CS_EV_FD_ERROR };
	struct cs_event_rec out;
	struct timespec mono, real;
	struct events *ev = NULL;
	int64_t now_ms, diff;

	CHECK(!events_new(&ev));
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	e.ts_ns = (uint64_t)mono.tv_sec * 1000000000ULL + mono.tv_nsec - 1500000000ULL;
	now_ms = (int64_t)real.tv_sec * 1000 + real.tv_nsec / 1000000;
	events_push_bpf(ev, &e);
	CHECK(events_copy(ev, &out, 1) == 1);
	diff = now_ms - out.unix_ms;
	CHECK(diff >= 1500 && diff < 1600);
	CHECK(out.ev.kind == CS_EV_FD_ERROR);
	events_free(ev);
}
