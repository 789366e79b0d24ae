/* SPDX-License-Identifier: MIT */
/* JSON (cJSON) renderings of the snapshot, diagnosis, history and events.
 * Each returns a malloc'd string the caller frees, or NULL on no memory. */
#ifndef CS_JSON_H
#define CS_JSON_H
#include "diagnose.h"
#include "events.h"
#include "history.h"
#include "snapshot.h"

char *json_snapshot(const struct cs_snapshot *s);
char *json_diagnosis(const struct cs_diagnosis *d);
char *json_history(const struct cs_point *pts, int n);
char *json_events(const struct cs_event_rec *evs, int n);
char *json_error(const char *message);
/* s with every byte outside valid UTF-8 replaced by U+FFFD; caller frees. */
char *json_utf8_clean(const char *s);
#endif
