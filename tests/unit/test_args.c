// SPDX-License-Identifier: MIT
/* The one number/duration parser (src/common/args.c) every program's flags
 * and the daemon's query strings go through. */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include "args.h"
#include "unit.h"

UNIT_TEST(test_whole_numbers)
{
	long v = -1;

	CHECK(!args_long(NULL, "--n", "42", 0, 100, &v) && v == 42);
	CHECK(!args_long(NULL, "--n", "0", 0, 100, &v) && v == 0);
	CHECK(args_long(NULL, "--n", "101", 0, 100, &v) == -EINVAL);
	CHECK(args_long(NULL, "--n", "-1", 0, 100, &v) == -EINVAL);
	CHECK(args_long(NULL, "--n", "4x", 0, 100, &v) == -EINVAL);
	CHECK(args_long(NULL, "--n", "", 0, 100, &v) == -EINVAL);
	CHECK(args_long(NULL, "--n", NULL, 0, 100, &v) == -EINVAL);
	CHECK(args_long(NULL, "--n", "99999999999999999999", 0, 100, &v) == -EINVAL);
	CHECK(v == 0);
}

UNIT_TEST(test_decimals)
{
	double v = 0;

	CHECK(!args_double(NULL, "--rate", "2.5", 0, 10, &v) && v == 2.5);
	CHECK(args_double(NULL, "--rate", "nan", 0, 10, &v) == -EINVAL);
	CHECK(args_double(NULL, "--rate", "11", 0, 10, &v) == -EINVAL);
	CHECK(args_double(NULL, "--rate", "1e", 0, 10, &v) == -EINVAL);
}

UNIT_TEST(test_durations)
{
	double v = 0;

	CHECK(!args_seconds(NULL, "w", "60", 0.001, 3600, &v) && v == 60);
	CHECK(!args_seconds(NULL, "w", "60s", 0.001, 3600, &v) && v == 60);
	CHECK(!args_seconds(NULL, "w", "5m", 0.001, 3600, &v) && v == 300);
	CHECK(!args_seconds(NULL, "w", "1h", 0.001, 3600, &v) && v == 3600);
	CHECK(!args_seconds(NULL, "w", "500ms", 0.001, 3600, &v) && v == 0.5);
	CHECK(args_seconds(NULL, "w", "2h", 0.001, 3600, &v) == -EINVAL);
	CHECK(args_seconds(NULL, "w", "0", 0.001, 3600, &v) == -EINVAL);
	CHECK(args_seconds(NULL, "w", "-5s", 0.001, 3600, &v) == -EINVAL);
	CHECK(args_seconds(NULL, "w", "5x", 0.001, 3600, &v) == -EINVAL);
	CHECK(args_seconds(NULL, "w", "s", 0.001, 3600, &v) == -EINVAL);
	CHECK(args_seconds(NULL, "w", "5mss", 0.001, 3600, &v) == -EINVAL);
}

/* An error names the flag however it was spelt on the command line. */
UNIT_TEST(test_flag_names)
{
	static const struct option opts[] = {
		{ "backlog", required_argument, NULL, 'b' },
		{ 0 },
	};
	char buf[32];

	CHECK(!strcmp(args_flag(opts, 'b', buf, sizeof(buf)), "--backlog"));
	CHECK(!strcmp(args_flag(opts, 'x', buf, sizeof(buf)), "-x"));
}
