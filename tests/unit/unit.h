/* SPDX-License-Identifier: MIT */
/* The unit-test harness: CHECK() records a failed condition, UNIT_TEST(name)
 * defines a test that registers itself, and the fixtures several modules'
 * tests share (a snapshot with one listener, one-second history points). */
#ifndef CS_UNIT_H
#define CS_UNIT_H
#include <stdint.h>
#include <stdio.h>
#include "history.h"
#include "snapshot.h"

extern int unit_checks_failed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			unit_checks_failed++;                                    \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                \
	} while (0)

void unit_register(const char *module, const char *name, void (*fn)(void));

/* A test function that registers itself before main() runs; the module is
 * the file's name (test_ws.c -> "ws"). */
#define UNIT_TEST(name)                                                          \
	static void name(void);                                                  \
	__attribute__((constructor)) static void register_##name(void)           \
	{                                                                        \
		unit_register(__FILE__, #name, name);                            \
	}                                                                        \
	static void name(void)

/* Fixtures: the directory of checked-in files (tests/fixtures), a snapshot of
 * a live target with one listener 0.0.0.0:8080 (limit 16), and n one-second
 * points with the given accepts, drops and queue lengths (limit 16). */
const char *unit_fixtures(void);
/* Silences stderr (off) for code that prints its errors, and restores it. */
void unit_stderr(int on);
struct cs_snapshot *unit_snapshot(void);
int unit_points(struct cs_point *pts, int n, const uint64_t *acc, const uint64_t *drops,
		const uint32_t *qlen);
#endif
