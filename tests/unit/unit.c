// SPDX-License-Identifier: MIT
/* Runs every registered unit test (or those whose name contains an
 * argument) and prints 'unit: N passed, N failed' for tests/harness/run.py. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"

#define UNIT_TESTS_MAX 256

struct unit_test {
	char module[32];
	const char *name;
	void (*fn)(void);
};

int unit_checks_failed;
static struct unit_test tests[UNIT_TESTS_MAX];
static int n_tests;

void unit_register(const char *file, const char *name, void (*fn)(void))
{
	const char *base = strrchr(file, '/');
	struct unit_test *t;
	size_t len;

	if (n_tests >= UNIT_TESTS_MAX) {
		fprintf(stderr, "unit: more than %d tests: raise UNIT_TESTS_MAX\n", UNIT_TESTS_MAX);
		exit(2);
	}
	t = &tests[n_tests++];
	base = base ? base + 1 : file;
	if (!strncmp(base, "test_", 5))
		base += 5;
	len = strcspn(base, ".");
	snprintf(t->module, sizeof(t->module), "%.*s", (int)len, base);
	t->name = name;
	t->fn = fn;
}

void unit_stderr(int on)
{
	static int saved = -1;
	int null;

	if (!on && saved < 0) {
		fflush(stderr);
		saved = dup(STDERR_FILENO);
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDERR_FILENO);
			close(null);
		}
	} else if (on && saved >= 0) {
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		saved = -1;
	}
}

const char *unit_fixtures(void)
{
	const char *dir = getenv("CS_FIXTURES");

	return dir ? dir : "tests/fixtures";
}

struct cs_snapshot *unit_snapshot(void)
{
	struct cs_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->target_up = true;
	s->pid = 42;
	s->fd_soft = 1024;
	s->fd_hard = 4096;
	s->somaxconn = 4096;
	s->n_listeners = 1;
	snprintf(s->listeners[0].label, CS_LABEL_LEN, "0.0.0.0:8080");
	s->listeners[0].port = 8080;
	s->listeners[0].queue_limit = 16;
	s->n_ports = 1;
	s->ports[0].port = 8080;
	snprintf(s->ports[0].label, CS_LABEL_LEN, "0.0.0.0:8080");
	return s;
}

int unit_points(struct cs_point *pts, int n, const uint64_t *acc, const uint64_t *drops,
		const uint32_t *qlen)
{
	struct cs_point_listener *l;
	double gap = 0;
	long open = 0;

	for (int i = 0; i < n; i++) {
		memset(&pts[i], 0, sizeof(pts[i]));
		pts[i].seconds = 1;
		pts[i].accepts = acc[i];
		pts[i].listen_drops = drops[i];
		pts[i].queue_len = qlen[i];
		pts[i].queue_limit = 16;
		pts[i].queue_full = qlen[i] >= 16;
		pts[i].target_up = true;
		pts[i].fd_pid = 42;
		pts[i].fd_soft = 1024;
		pts[i].open_fds = 10;
		/* one listener, 0.0.0.0:8080, holding every connection it accepts */
		pts[i].n_listeners = 1;
		l = &pts[i].listeners[0];
		snprintf(l->label, CS_LABEL_LEN, "0.0.0.0:8080");
		l->port = 8080;
		l->queue_len = qlen[i];
		l->queue_limit = 16;
		l->full = qlen[i] >= 16;
		l->drops = drops[i];
		l->accepts = acc[i];
		open += acc[i];
		l->open = open;
		l->open_peak = open;
		l->full_seconds = l->full ? 1 : 0;
		/* a slow acceptor: each accept waited 300 ms */
		l->accept_wait_count = acc[i];
		l->accept_wait_sum_s = 0.3 * acc[i];
		l->gap_seconds = l->full && !acc[i] ? (gap += 1) : (gap = 0);
	}
	return n;
}

static bool selected(const struct unit_test *t, int argc, char **argv)
{
	char full[128];

	if (argc < 2)
		return true;
	snprintf(full, sizeof(full), "%s.%s", t->module, t->name);
	for (int i = 1; i < argc; i++)
		if (strstr(full, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < n_tests; i++) {
		int before = unit_checks_failed;

		if (!selected(&tests[i], argc, argv))
			continue;
		tests[i].fn();
		if (unit_checks_failed == before) {
			passed++;
			printf("ok   unit.%s.%s\n", tests[i].module, tests[i].name);
		} else {
			failed++;
			printf("FAIL unit.%s.%s\n", tests[i].module, tests[i].name);
		}
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
