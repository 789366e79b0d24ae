// SPDX-License-Identifier: MIT
/* Reads /proc for the target: fds, limits, threads, RSS, descendants, socket
 * inodes, and TcpExt counters of the target's network namespace. */
#define _GNU_SOURCE
#include "procfs.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where /proc is: the real one, or a fixture tree in the unit tests. */
static char proc_root[256] = "/proc";

void procfs_set_root(const char *root)
{
	snprintf(proc_root, sizeof(proc_root), "%s", root);
}

static int count_fds(int pid, long *out)
{
	char path[320];
	struct dirent *de;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/fd", proc_root, pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	*out = n;
	return 0;
}

static int read_limits(int pid, long *soft, long *hard)
{
	char path[320], line[256];
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/limits", proc_root, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char s[32], h[32];

		if (strncmp(line, "Max open files", 14))
			continue;
		if (sscanf(line + 14, "%31s %31s", s, h) == 2) {
			*soft = strcmp(s, "unlimited") ? atol(s) : -1;
			*hard = strcmp(h, "unlimited") ? atol(h) : -1;
			err = 0;
		}
		break;
	}
	fclose(f);
	return err;
}

static int read_status(int pid, struct cs_proc *out)
{
	char path[320], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Name:", 5)) {
			sscanf(line + 5, " %31s", out->comm);
		} else if (!strncmp(line, "Threads:", 8)) {
			out->threads = atol(line + 8);
		} else if (!strncmp(line, "VmRSS:", 6)) {
			out->rss_bytes = strtoull(line + 6, NULL, 10) * 1024; /* kB */
		}
	}
	fclose(f);
	return 0;
}

int procfs_tgid(int pid)
{
	char path[320], line[128];
	int tgid = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = atoi(line + 5);
			break;
		}
	fclose(f);
	return tgid;
}

static int read_stat_tail(int pid, char *buf, size_t len, char **tail);

/* State (field 3) and utime+stime (fields 14, 15) of /proc/PID/stat. */
static int read_cpu(int pid, struct cs_proc *out)
{
	unsigned long long ut, st;
	char buf[1024], *p;
	int err;

	err = read_stat_tail(pid, buf, sizeof(buf), &p);
	if (err)
		return err;
	if (sscanf(p, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &out->state, &ut, &st) != 3)
		return -EIO;
	out->cpu_ticks = ut + st;
	return 0;
}

int procfs_read_process(int pid, struct cs_proc *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = read_status(pid, out);
	if (err)
		return err;
	err = read_cpu(pid, out);
	if (err)
		return err;
	err = read_limits(pid, &out->fd_soft, &out->fd_hard);
	if (err)
		return err;
	return count_fds(pid, &out->open_fds);
}

/* Fields after "(comm)" in /proc/PID/stat, which may itself hold spaces. */
static int read_stat_tail(int pid, char *buf, size_t len, char **tail)
{
	char path[320];
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	*tail = p + 2; /* field 3, state */
	return 0;
}

int procfs_start_time(int pid, uint64_t *out)
{
	char buf[1024], *p;
	int err, field;

	err = read_stat_tail(pid, buf, sizeof(buf), &p);
	if (err)
		return err;
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -EIO;
	*out = strtoull(p, NULL, 10);
	return 0;
}

static int read_ppid(int pid)
{
	char buf[1024], *p;
	int ppid;

	if (read_stat_tail(pid, buf, sizeof(buf), &p))
		return -1;
	if (sscanf(p, "%*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

int procfs_descendants(int pid, int *out, int max)
{
	int *pids = NULL, *ppids = NULL, n = 0, cap = 0, found = 0;
	struct dirent *de;
	bool grew = true;
	DIR *d;

	d = opendir(proc_root);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = atoi(de->d_name);
		if (n == cap) {
			int ncap = cap ? cap * 2 : 1024;
			int *a = realloc(pids, ncap * sizeof(int));
			int *b = a ? realloc(ppids, ncap * sizeof(int)) : NULL;

			if (a)
				pids = a;
			if (!a || !b) {
				free(pids);
				closedir(d);
				return -ENOMEM;
			}
			ppids = b;
			cap = ncap;
		}
		pids[n] = p;
		ppids[n] = read_ppid(p);
		n++;
	}
	closedir(d);
	/* Grow the set until no process has a parent in it (trees are shallow). */
	while (grew && found < max) {
		grew = false;
		for (int i = 0; i < n && found < max; i++) {
			bool parent_in = ppids[i] == pid, self_in = false;

			for (int j = 0; j < found && !parent_in; j++)
				parent_in = out[j] == ppids[i];
			for (int j = 0; j < found && !self_in; j++)
				self_in = out[j] == pids[i];
			if (parent_in && !self_in && pids[i] != pid) {
				out[found++] = pids[i];
				grew = true;
			}
		}
	}
	free(pids);
	free(ppids);
	return found;
}

int procfs_socket_inodes(int pid, int (*fn)(uint64_t inode, void *arg), void *arg)
{
	char path[320], link[64];
	struct dirent *de;
	int dfd, ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/fd", proc_root, pid);
	d = opendir(path);
	if (!d)
		return -errno;
	dfd = dirfd(d);
	while (!ret && (de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		if (n <= 8)
			continue;
		link[n] = '\0';
		if (strncmp(link, "socket:[", 8))
			continue;
		ret = fn(strtoull(link + 8, NULL, 10), arg);
	}
	closedir(d);
	return ret;
}

/* /proc/PID/net/netstat holds pairs of lines: "TcpExt: Name Name ..." then
 * "TcpExt: 1 2 ...". */
int procfs_read_tcp_ext(int pid, uint64_t vals[CS_TE_MAX])
{
	char path[320], *names = NULL, *values = NULL;
	size_t ncap = 0, vcap = 0;
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/net/netstat", proc_root, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&names, &ncap, f) > 0 && getline(&values, &vcap, f) > 0) {
		char *sn, *sv, *n, *v;

		if (strncmp(names, "TcpExt:", 7))
			continue;
		memset(vals, 0, sizeof(uint64_t) * CS_TE_MAX);
		n = strtok_r(names + 7, " \n", &sn);
		v = strtok_r(values + 7, " \n", &sv);
		while (n && v) {
			for (int i = 0; i < CS_TE_MAX; i++)
				if (!strcmp(n, names_tcp_ext(i)))
					vals[i] = strtoull(v, NULL, 10);
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
		err = 0;
		break;
	}
	free(names);
	free(values);
	fclose(f);
	return err;
}
