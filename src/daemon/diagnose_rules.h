/* SPDX-License-Identifier: MIT */
/* What a file of cause rules needs (diagnose.c, and any rule file it calls):
 * window totals over the history points, and helpers that add a cause and
 * its evidence. The ranking by clients affected happens once, in diagnose(). */
#ifndef CS_DIAGNOSE_RULES_H
#define CS_DIAGNOSE_RULES_H
#include "diagnose.h"

/* The rule files beside diagnose.c: diagnose_conn.c. */

/* Process-wide totals of the window the rules share. */
struct cs_window {
	double seconds;
	uint64_t accepts, accept_emfile, accept_enfile, fd_errors;
	uint64_t listen_drops, listen_overflows, closed_before_accept;
	uint64_t resets_sent, resets_received, resets_abort, resets_no_socket, resets_memory;
	uint64_t syn_queue_drops, syncookies_sent, memory_pressures, oom_kills;
	uint32_t max_queue_len, max_queue_limit;
	/* the process nearest its own fd limit, at the tick it was nearest */
	int fd_pid;
	long fd_open, fd_soft;
};

/* A new cause in d, NULL when CS_CAUSES_MAX causes are there already (the
 * helpers below accept NULL). add_cause leaves clients_affected at 0 for
 * the rule to set. */
struct cs_cause *cause_add(struct cs_diagnosis *d, const char *id, const char *severity,
			   double score, double clients_affected);
struct cs_cause *add_cause(struct cs_diagnosis *d, const char *id, const char *sev, double score);
__attribute__((format(printf, 2, 3)))
void cause_clients_how(struct cs_cause *c, const char *fmt, ...);
void evidence_num(struct cs_cause *c, const char *name, double v);
/* Not rounded: for a value whose digits all mean something (a bucket bound). */
void evidence_num_exact(struct cs_cause *c, const char *name, double v);
__attribute__((format(printf, 3, 4)))
void evidence_text(struct cs_cause *c, const char *name, const char *fmt, ...);
/* What happened, in words a team lead acts on. */
__attribute__((format(printf, 2, 3)))
void cause_explain(struct cs_cause *c, const char *fmt, ...);
/* What to change. */
__attribute__((format(printf, 2, 3)))
void cause_fix(struct cs_cause *c, const char *fmt, ...);
#endif
