/* SPDX-License-Identifier: MIT */
/* What /proc says about the target: processes, fds and limits, memory,
 * socket inodes, and its network namespace's TcpExt counters. */
#ifndef CS_PROCFS_H
#define CS_PROCFS_H
#include <stdbool.h>
#include <stdint.h>
#include "names.h"

struct cs_proc {
	long open_fds;
	long fd_soft;
	long fd_hard;
	long threads;
	uint64_t rss_bytes;
	char comm[32];
	char state;          /* R, S, D, T (stopped), t (traced), Z */
	uint64_t cpu_ticks;  /* utime + stime, in USER_HZ ticks */
};

/* Reads ROOT/PID/... instead of /proc/PID/... (the unit tests' fixtures). */
void procfs_set_root(const char *root);
/* 0, -ENOENT if the PID does not exist, -errno otherwise. */
int procfs_read_process(int pid, struct cs_proc *out);
/* The process (thread group) PID belongs to: PID itself unless it names a
 * thread (a TID from top -H or a thread dump). -errno if it does not exist. */
int procfs_tgid(int pid);
/* Start time of PID in clock ticks (field 22 of stat): tells a reused PID. */
int procfs_start_time(int pid, uint64_t *out);
/* Every live descendant of pid (not pid itself) into out; returns the count. */
int procfs_descendants(int pid, int *out, int max);
/* Calls fn for each socket inode among PID's fds; stops early if fn returns
 * nonzero and returns that value. 0 or -errno otherwise. */
int procfs_socket_inodes(int pid, int (*fn)(uint64_t inode, void *arg), void *arg);
/* Fills vals (indexed by enum cs_tcp_ext) from /proc/PID/net/netstat. */
int procfs_read_tcp_ext(int pid, uint64_t vals[CS_TE_MAX]);
#endif
