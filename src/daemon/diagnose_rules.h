/* SPDX-License-Identifier: MIT */
/* The helpers diagnose.c gives the rule files beside it (diagnose_conn.c):
 * add a cause, its evidence, its explanation and its fix. */
#ifndef CS_DIAGNOSE_RULES_H
#define CS_DIAGNOSE_RULES_H
#include "diagnose.h"

/* A new cause in d (NULL when CS_CAUSES_MAX are there; the others accept NULL). */
struct cs_cause *add_cause(struct cs_diagnosis *d, const char *id, const char *sev, double score);
void evidence_num(struct cs_cause *c, const char *name, double v);
__attribute__((format(printf, 3, 4)))
void evidence_text(struct cs_cause *c, const char *name, const char *fmt, ...);
/* What happened, in words a team lead acts on. */
__attribute__((format(printf, 2, 3)))
void cause_explain(struct cs_cause *c, const char *fmt, ...);
/* What to change. */
__attribute__((format(printf, 2, 3)))
void cause_fix(struct cs_cause *c, const char *fmt, ...);
#endif
