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

/* Reads path whole into buf (NUL-terminated, at most cap - 1 bytes). */
static int read_text(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += n;
	n = n < 0 ? -errno : 0;
	close(fd);
	buf[len] = '\0';
	return n;
}

static int read_limits(int pid, long *soft, long *hard)
{
	char path[320], buf[4096];
	int err;

	snprintf(path, sizeof(path), "%s/%d/limits", proc_root, pid);
	err = read_text(path, buf, sizeof(buf));
	return err ? err : procfs_parse_limits(buf, soft, hard);
}

static int read_status(int pid, struct cs_proc *out)
{
	char path[320], buf[8192];
	int err;

	snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
	err = read_text(path, buf, sizeof(buf));
	if (!err)
		procfs_parse_status(buf, out);
	return err;
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

/* State and CPU time of /proc/PID/stat. */
static int read_cpu(int pid, struct cs_proc *out)
{
	char path[320], buf[1024];
	int err;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
	err = read_text(path, buf, sizeof(buf));
	return err ? err : procfs_parse_stat_cpu(buf, &out->state, &out->cpu_ticks);
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

static int read_stat(int pid, int *ppid, uint64_t *start_time)
{
	char path[320], buf[1024];
	int err;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
	err = read_text(path, buf, sizeof(buf));
	return err ? err : procfs_parse_stat(buf, ppid, start_time);
}

int procfs_start_time(int pid, uint64_t *out)
{
	int ppid;

	return read_stat(pid, &ppid, out);
}

static int read_ppid(int pid)
{
	uint64_t start;
	int ppid;

	return read_stat(pid, &ppid, &start) ? -1 : ppid;
}

int procfs_ppid(int pid)
{
	return read_ppid(pid);
}

bool procfs_alive(int pid)
{
	char path[64], line[256], state = 0;
	long threads = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "State:", 6))
			sscanf(line + 6, " %c", &state);
		else if (!strncmp(line, "Threads:", 8))
			threads = atol(line + 8);
	}
	fclose(f);
	/* A zombie process has closed its fds and freed its memory: nothing to
	 * read. A zombie leader whose other threads still run (its main thread
	 * called pthread_exit) is a live process: Threads counts them. */
	if (state == 'Z' || state == 'X')
		return threads > 1;
	return state != 0;
}

int procfs_comm(int pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int procfs_find(bool (*match)(int pid, void *arg), void *arg, int *out, int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while (n < max && (de = readdir(d))) {
		int p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = atoi(de->d_name);
		if (match(p, arg))
			out[n++] = p;
	}
	closedir(d);
	return n;
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
	char path[320], *buf = malloc(PROCFS_NETSTAT_BYTES);
	int err;

	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%d/net/netstat", proc_root, pid);
	err = read_text(path, buf, PROCFS_NETSTAT_BYTES);
	if (!err)
		err = procfs_parse_tcp_ext(buf, vals);
	free(buf);
	return err;
}

/* The line after each newline in buf, or NULL at the end. */
static const char *next_line(const char *p)
{
	p = strchr(p, '\n');
	return p && p[1] ? p + 1 : NULL;
}

int procfs_parse_limits(const char *buf, long *soft, long *hard)
{
	const char *line;

	for (line = buf; line; line = next_line(line)) {
		char s[32], h[32];

		if (strncmp(line, "Max open files", 14))
			continue;
		if (sscanf(line + 14, "%31s %31s", s, h) != 2)
			return -EIO;
		*soft = strcmp(s, "unlimited") ? atol(s) : -1;
		*hard = strcmp(h, "unlimited") ? atol(h) : -1;
		return 0;
	}
	return -ENOENT;
}

void procfs_parse_status(const char *buf, struct cs_proc *out)
{
	const char *line;

	for (line = buf; line; line = next_line(line)) {
		if (!strncmp(line, "Name:", 5))
			sscanf(line + 5, " %31s", out->comm);
		else if (!strncmp(line, "Threads:", 8))
			out->threads = atol(line + 8);
		else if (!strncmp(line, "VmRSS:", 6))
			out->rss_bytes = strtoull(line + 6, NULL, 10) * 1024; /* kB */
	}
}

int procfs_parse_stat(const char *buf, int *ppid, uint64_t *start_time)
{
	/* the last ')' ends the comm, whatever the comm holds */
	const char *p = strrchr(buf, ')');
	int field;

	if (!p || p[1] != ' ' || sscanf(p + 2, "%*c %d", ppid) != 1)
		return -EIO;
	p += 2; /* field 3, state */
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || !*p)
		return -EIO;
	*start_time = strtoull(p, NULL, 10);
	return 0;
}

int procfs_parse_stat_cpu(const char *buf, char *state, uint64_t *cpu_ticks)
{
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;

	if (!p || p[1] != ' ' ||
	    sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", state, &ut, &st) != 3)
		return -EIO;
	*cpu_ticks = ut + st;
	return 0;
}

/* Pairs of lines: "TcpExt: Name Name ..." then "TcpExt: 1 2 ...". */
int procfs_parse_tcp_ext(const char *buf, uint64_t vals[CS_TE_MAX])
{
	const char *names, *values;

	for (names = buf; names && (values = next_line(names)); names = next_line(values)) {
		const char *n = names + 7, *v = values + 7;

		if (strncmp(names, "TcpExt:", 7) || strncmp(values, "TcpExt:", 7))
			continue;
		memset(vals, 0, sizeof(uint64_t) * CS_TE_MAX);
		for (;;) {
			size_t nl, vl;

			n += strspn(n, " ");
			v += strspn(v, " ");
			nl = strcspn(n, " \n");
			vl = strcspn(v, " \n");
			if (!nl || !vl)
				break;
			for (int i = 0; i < CS_TE_MAX; i++)
				if (strlen(names_tcp_ext(i)) == nl && !strncmp(n, names_tcp_ext(i), nl))
					vals[i] = strtoull(v, NULL, 10);
			n += nl;
			v += vl;
		}
		return 0;
	}
	return -ENOENT;
}

int procfs_parse_conntrack(FILE *f, struct cs_conntrack *out)
{
	enum { COL_ENTRIES, COL_DROP, COL_EARLY_DROP, COL_INSERT_FAILED, COLS };
	static const char *const want[COLS] = { "entries", "drop", "early_drop", "insert_failed" };
	int col[COLS] = { -1, -1, -1, -1 }, rows = 0;
	char *line = NULL, *save, *tok;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (getline(&line, &cap, f) <= 0) {
		free(line);
		return -ENOENT;
	}
	/* columns by name: kernels add and drop some (searched, chainlength) */
	tok = strtok_r(line, " \t\n", &save);
	for (int i = 0; tok; i++, tok = strtok_r(NULL, " \t\n", &save))
		for (int c = 0; c < COLS; c++)
			if (!strcmp(tok, want[c]))
				col[c] = i;
	while (getline(&line, &cap, f) > 0) {
		uint64_t v[COLS] = { 0 };

		tok = strtok_r(line, " \t\n", &save);
		for (int i = 0; tok; i++, tok = strtok_r(NULL, " \t\n", &save))
			for (int c = 0; c < COLS; c++)
				if (col[c] == i)
					v[c] = strtoull(tok, NULL, 16);
		if (!rows++)
			out->entries = v[COL_ENTRIES];
		out->drop += v[COL_DROP];
		out->early_drop += v[COL_EARLY_DROP];
		out->insert_failed += v[COL_INSERT_FAILED];
	}
	free(line);
	out->have = rows > 0;
	return rows > 0 ? 0 : -ENOENT;
}

int procfs_read_conntrack(int pid, struct cs_conntrack *out)
{
	char path[320];
	FILE *f;
	int err;

	snprintf(path, sizeof(path), "%s/%d/net/stat/nf_conntrack", proc_root, pid);
	f = fopen(path, "re");
	if (!f) {
		memset(out, 0, sizeof(*out));
		return -errno;
	}
	err = procfs_parse_conntrack(f, out);
	fclose(f);
	if (err)
		return err;
	/* the limit is one for the machine; every namespace shows it */
	f = fopen("/proc/sys/net/netfilter/nf_conntrack_max", "re");
	if (f) {
		if (fscanf(f, "%llu", (unsigned long long *)&out->max) != 1)
			out->max = 0;
		fclose(f);
	}
	return 0;
}
