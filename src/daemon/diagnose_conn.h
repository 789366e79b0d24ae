/* SPDX-License-Identifier: MIT */
/* Rules about what the app did with connections it accepted (served them,
 * rejected them), its own outbound connections (local ports), and the
 * verdict when clients failed for no known cause. */
#ifndef CS_DIAGNOSE_CONN_H
#define CS_DIAGNOSE_CONN_H
#include <stdbool.h>
#include "diagnose.h"

/* The ids these rules can name, for diagnose_cause_ids(). */
#define DIAGNOSE_CONN_CAUSE_IDS "accepted_not_served", "rejected_after_accept", \
	"ephemeral_ports_exhausted", "netfilter_drop", "keepalive_race", "unexplained_failures"

/* Adds the causes of this file that the snapshot and history points show. */
void diagnose_conn(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
		   struct cs_diagnosis *d);
/* When no cause was found: adds unexplained_failures and returns true if
 * clients still failed on the server's side (handshakes that never
 * completed or were abandoned, resets received); false if none did. */
bool diagnose_conn_unexplained(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
			       struct cs_diagnosis *d);
#endif
