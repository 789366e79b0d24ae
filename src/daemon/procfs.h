/* SPDX-License-Identifier: MIT */
/* What /proc says about the target: processes, fds and limits, memory,
 * socket inodes, and its network namespace's TcpExt counters. */
#ifndef CS_PROCFS_H
#define CS_PROCFS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "names.h"
#include "snapshot.h"

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
/* Parent of PID, -1 if it cannot be read. */
int procfs_ppid(int pid);
/* PID exists and is not a zombie (whose fds and memory are gone); a zombie
 * leader with threads still running counts as alive. */
bool procfs_alive(int pid);
/* /proc/PID/comm without its newline. 0 or -errno. */
int procfs_comm(int pid, char *buf, size_t len);
/* Every PID on the machine for which match() is true, up to max; the count
 * or -errno. */
int procfs_find(bool (*match)(int pid, void *arg), void *arg, int *out, int max);
/* Every live descendant of pid (not pid itself) into out; returns the count. */
int procfs_descendants(int pid, int *out, int max);
/* Calls fn for each socket inode among PID's fds; stops early if fn returns
 * nonzero and returns that value. 0 or -errno otherwise. */
int procfs_socket_inodes(int pid, int (*fn)(uint64_t inode, void *arg), void *arg);
/* nf_conntrack statistics (/proc/PID/net/stat/nf_conntrack: a header of
 * names, then one row of hex numbers per CPU): entries, drop, early_drop,
 * insert_failed summed (entries is the same global count in every row, so
 * it is taken once). 0, or -ENOENT when conntrack is not loaded. */
int procfs_parse_conntrack(FILE *f, struct cs_conntrack *out);
int procfs_read_conntrack(int pid, struct cs_conntrack *out);
/* Fills vals (indexed by enum cs_tcp_ext) from /proc/PID/net/netstat. */
int procfs_read_tcp_ext(int pid, uint64_t vals[CS_TE_MAX]);

/* The parsers of the readers above, over text already read (NUL-terminated):
 * fixtures and the fuzzers call them directly. */
/* /proc/PID/net/netstat is about 3 KiB today; room for kernels to add more. */
#define PROCFS_NETSTAT_BYTES (64 * 1024)
/* "Max open files" of /proc/PID/limits; -1 for unlimited. 0, -ENOENT, -EIO. */
int procfs_parse_limits(const char *buf, long *soft, long *hard);
/* Name, Threads and VmRSS of /proc/PID/status into out (other fields kept). */
void procfs_parse_status(const char *buf, struct cs_proc *out);
/* TcpExt of /proc/PID/net/netstat into vals; -ENOENT without a TcpExt pair. */
int procfs_parse_tcp_ext(const char *buf, uint64_t vals[CS_TE_MAX]);
/* PPID and start time (fields 4 and 22) of a /proc/PID/stat line; the comm
 * in parentheses may hold spaces and ')'. 0 or -EIO. */
int procfs_parse_stat(const char *buf, int *ppid, uint64_t *start_time);
/* State (field 3) and utime+stime in clock ticks (fields 14, 15) of a
 * /proc/PID/stat line. 0 or -EIO. */
int procfs_parse_stat_cpu(const char *buf, char *state, uint64_t *cpu_ticks);
#endif
