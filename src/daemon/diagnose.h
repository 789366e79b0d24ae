/* SPDX-License-Identifier: MIT */
/* Rules over a snapshot and its history that name why connections fail:
 * ranked causes, each with the numbers that prove it and what to change. */
#ifndef CS_DIAGNOSE_H
#define CS_DIAGNOSE_H
#include <stdbool.h>
#include "history.h"
#include "sbuf.h"
#include "snapshot.h"

#define CS_CAUSES_MAX 16
#define CS_EVIDENCE_MAX 28

struct cs_evidence {
	char name[40];
	bool is_text;
	double num;
	char text[128];
};

struct cs_cause {
	const char *id;        /* one of diagnose_cause_ids() */
	const char *severity;  /* "critical", "warning", "info" */
	double score;          /* ranks causes: higher first */
	/* Clients this cause cost in the window, and how that was counted
	 * ("SYNs dropped at the listener, retransmissions removed"). */
	double clients_affected;
	char clients_how[128];
	char listener[64];     /* the listener it concerns, "" for the process */
	int n_evidence;
	struct cs_evidence evidence[CS_EVIDENCE_MAX];
	char explanation[640];
	char fix[640];
};

struct cs_diagnosis {
	const char *verdict;   /* top cause id, or "healthy" */
	char summary[320];     /* one sentence a team lead acts on */
	double window_seconds; /* what the history points covered */
	int n_causes;
	struct cs_cause causes[CS_CAUSES_MAX]; /* ranked; "healthy" alone when none */
};

/* NULL-terminated list of every cause id (for the connscope_diagnosis gauge). */
const char *const *diagnose_cause_ids(void);
void diagnose(const struct cs_snapshot *s, const struct cs_point *pts, int npts,
	      struct cs_diagnosis *out);
bool diagnose_has(const struct cs_diagnosis *d, const char *id);
/* Plain text for a terminal (?format=text, the post-mortem). */
void diagnose_render_text(const struct cs_diagnosis *d, struct sbuf *b);
#endif
