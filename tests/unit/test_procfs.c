// SPDX-License-Identifier: MIT
/* The /proc parsers (src/daemon/procfs.c) over checked-in fixtures under
 * tests/fixtures/proc: a threaded process with an fd limit, workers whose
 * limits are "unlimited", a comm with spaces and parentheses, sockets among
 * the fds, and a netstat file from a kernel without some TcpExt fields. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "procfs.h"
#include "unit.h"

static void use_fixtures(void)
{
	char root[256];

	snprintf(root, sizeof(root), "%s/proc", unit_fixtures());
	procfs_set_root(root);
}

UNIT_TEST(test_process_status_limits_fds)
{
	struct cs_proc p;

	use_fixtures();
	CHECK(!procfs_read_process(4242, &p));
	CHECK(!strcmp(p.comm, "java"));
	CHECK(p.threads == 57);
	CHECK(p.rss_bytes == 812344ULL * 1024);
	CHECK(p.fd_soft == 8192 && p.fd_hard == 524288);
	CHECK(p.open_fds == 7);
	/* stat: state S, utime 345 + stime 67 ticks, past a comm with ") " */
	CHECK(p.state == 'S' && p.cpu_ticks == 345 + 67);
	CHECK(!procfs_read_process(4243, &p));
	CHECK(p.fd_soft == -1 && p.fd_hard == -1); /* "unlimited" */
	CHECK(procfs_read_process(5, &p) == -ENOENT);
	procfs_set_root("/proc");
}

UNIT_TEST(test_stat_fields_past_a_comm_with_parens)
{
	uint64_t start = 0;

	use_fixtures();
	CHECK(!procfs_start_time(4242, &start) && start == 98765);
	CHECK(procfs_tgid(4243) == 4243);
	procfs_set_root("/proc");
}

UNIT_TEST(test_descendants_whole_tree_only)
{
	int out[8], n;

	use_fixtures();
	n = procfs_descendants(4242, out, 8);
	CHECK(n == 2);
	CHECK(n == 2 && ((out[0] == 4243 && out[1] == 4244) || (out[0] == 4244 && out[1] == 4243)));
	CHECK(procfs_descendants(4244, out, 8) == 0);
	procfs_set_root("/proc");
}

static int collect_inode(uint64_t inode, void *arg)
{
	uint64_t *seen = arg;

	seen[seen[0] + 1] = inode;
	seen[0]++;
	return seen[0] >= 4;
}

UNIT_TEST(test_socket_inodes)
{
	uint64_t seen[6] = { 0 };

	use_fixtures();
	CHECK(!procfs_socket_inodes(4242, collect_inode, seen));
	CHECK(seen[0] == 2);
	CHECK((seen[1] == 31337 && seen[2] == 31338) || (seen[1] == 31338 && seen[2] == 31337));
	procfs_set_root("/proc");
}

/* Values come from the fixture's own numbers; fields an older kernel lacks read 0. */
UNIT_TEST(test_tcp_ext_today_and_older_kernel)
{
	uint64_t v[CS_TE_MAX];

	use_fixtures();
	CHECK(!procfs_read_tcp_ext(4242, v));
	CHECK(v[CS_TE_LISTEN_OVERFLOWS] == 1022 && v[CS_TE_LISTEN_DROPS] == 1023);
	CHECK(v[CS_TE_REQQ_FULL_DROP] == 1079 && v[CS_TE_ABORT_ON_CLOSE] == 1055);
	CHECK(v[CS_TE_SYNCOOKIES_SENT] == 1000 && v[CS_TE_BACKLOG_DROP] == 1072);
	CHECK(!procfs_read_tcp_ext(77, v));
	CHECK(v[CS_TE_LISTEN_OVERFLOWS] == 2022 && v[CS_TE_ABORT_ON_CLOSE] == 2055);
	CHECK(v[CS_TE_REQQ_FULL_DROP] == 0 && v[CS_TE_MEMORY_PRESSURES] == 0);
	CHECK(procfs_read_tcp_ext(4243, v) == -ENOENT);
	procfs_set_root("/proc");
}

/* Conntrack cannot be filled without a host-wide sysctl (nf_conntrack_max is
 * one for the machine), so its statistics parser is checked on fixtures: a
 * 6.x file of a full table (two CPUs) and an older layout. */
UNIT_TEST(test_conntrack_stats)
{
	struct cs_conntrack ct;

	use_fixtures();
	CHECK(!procfs_read_conntrack(4242, &ct));
	CHECK(ct.have && ct.entries == 1000 && ct.drop == 8 && ct.early_drop == 2 && ct.insert_failed == 2);
	CHECK(!procfs_read_conntrack(77, &ct));
	CHECK(ct.entries == 65534 && ct.drop == 255 && ct.early_drop == 16 && ct.insert_failed == 10);
	CHECK(procfs_read_conntrack(4243, &ct) == -ENOENT && !ct.have);
	procfs_set_root("/proc");
}
