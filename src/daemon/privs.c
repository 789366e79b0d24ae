// SPDX-License-Identifier: MIT
/* Capabilities by name rather than the uid: what attaching needs, and the
 * steady state after it (reading another user's /proc/PID/fd each tick), then
 * no_new_privs and a seccomp allowlist of the syscalls the running daemon
 * makes (found by running the ASan build under strace -f across the tests). */
#define _GNU_SOURCE
#include "privs.h"
#include <errno.h>
#include "errmsg.h"
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct need {
	int cap;
	const char *name, *why;
};

static const struct need attach_caps[] = {
	{ CAP_BPF, "CAP_BPF", "loading the BPF programs and maps" },
	{ CAP_PERFMON, "CAP_PERFMON", "attaching tracepoints and reading kernel memory from BPF" },
	{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "entering the target's network namespace for sock_diag" },
	{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "reading /proc/PID/fd of another user's process" },
	{ CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "listing /proc/PID/fd (mode 0500) of another user" },
};

/* What each tick still needs: counting the target's open fds. */
static const int steady_caps[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
/* What --follow needs on top, to load into and enter a restarted server. */
static const int attach_later_caps[] = { CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN };
/* What --user needs until the switch. */
static const struct need user_caps[] = {
	{ CAP_SETUID, "CAP_SETUID", "--user: switching the uid" },
	{ CAP_SETGID, "CAP_SETGID", "--user: switching the gid and groups" },
};

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

static bool has_cap(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

int privs_resolve_user(struct privs_opts *opts)
{
	struct passwd *pw;

	if (!opts->user)
		return 0;
	errno = 0;
	pw = getpwnam(opts->user);
	if (!pw) {
		errmsg(0, "--user %s: %s", opts->user,
			errno ? strerror(errno) : "no such user");
		return errno ? -errno : -ENOENT;
	}
	opts->uid = pw->pw_uid;
	opts->gid = pw->pw_gid;
	return 0;
}

static void add_missing(char *buf, size_t cap, size_t *n, const struct need *c)
{
	int w = snprintf(buf + *n, cap - *n, "%s%s (%s)", *n ? ", " : "", c->name, c->why);

	if (w > 0)
		*n = *n + w < cap ? *n + w : cap - 1;
}

int privs_check_attach(int pid, const struct privs_opts *opts)
{
	struct __user_cap_data_struct data[2];
	char missing[1024] = "";
	size_t i, n = 0;
	struct stat st;
	char path[64];
	bool other_user;
	int err = caps_get(data);

	if (err) {
		errmsg(0, "cannot read own capabilities: %s", strerror(-err));
		return err;
	}
	/* ptrace and DAC checks pass for a target of our own uid without them */
	snprintf(path, sizeof(path), "/proc/%d", pid);
	other_user = stat(path, &st) || st.st_uid != (opts->user ? opts->uid : geteuid());
	for (i = 0; i < sizeof(attach_caps) / sizeof(attach_caps[0]); i++) {
		const struct need *c = &attach_caps[i];

		if (has_cap(data, c->cap) || (!other_user && (c->cap == CAP_SYS_PTRACE ||
							     c->cap == CAP_DAC_READ_SEARCH)))
			continue;
		add_missing(missing, sizeof(missing), &n, c);
	}
	for (i = 0; opts->user && i < sizeof(user_caps) / sizeof(user_caps[0]); i++)
		if (!has_cap(data, user_caps[i].cap))
			add_missing(missing, sizeof(missing), &n, &user_caps[i]);
	if (!n)
		return 0;
	/* one line, every missing capability named with what needs it */
	errmsg(0, "attaching needs root or capabilities; missing %s "
		"(grant them with setpriv --ambient-caps or systemd AmbientCapabilities=; "
		"README: Security)", missing);
	return -EPERM;
}

static int seccomp_install(bool keep_attach)
{
	/* The running daemon: HTTP (epoll, sockets, GnuTLS), the tick (/proc,
	 * bpf map reads, sock_diag netlink, the ring buffer), threads and memory
	 * (glibc, ASan/UBSan's allocator and reports), the post-mortem. */
	static const int allowed[] = {
		SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
		SCMP_SYS(pwrite64), SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(close), SCMP_SYS(lseek),
		SCMP_SYS(fstat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
		SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(access),
		SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(fcntl), SCMP_SYS(ioctl), SCMP_SYS(dup),
		SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(pipe2), SCMP_SYS(eventfd2),
		SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
		SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
		SCMP_SYS(epoll_pwait2), SCMP_SYS(socket), SCMP_SYS(accept), SCMP_SYS(accept4),
		SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
		SCMP_SYS(shutdown), SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt),
		SCMP_SYS(getsockopt), SCMP_SYS(bind), SCMP_SYS(bpf), SCMP_SYS(mmap), SCMP_SYS(munmap),
		SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(mincore),
		SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
		SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid),
		SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
		SCMP_SYS(getegid), SCMP_SYS(tgkill), SCMP_SYS(kill), SCMP_SYS(rt_sigaction),
		SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
		SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
		SCMP_SYS(gettimeofday), SCMP_SYS(getrandom), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64),
		SCMP_SYS(setrlimit), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(uname),
		SCMP_SYS(sysinfo), SCMP_SYS(getcwd), SCMP_SYS(capget), SCMP_SYS(restart_syscall),
		SCMP_SYS(prctl), SCMP_SYS(arch_prctl), SCMP_SYS(personality), SCMP_SYS(membarrier),
		SCMP_SYS(times), SCMP_SYS(getrusage), SCMP_SYS(sched_getparam),
		SCMP_SYS(sched_getscheduler), SCMP_SYS(getpriority), SCMP_SYS(getdents),
		SCMP_SYS(wait4), SCMP_SYS(waitid),
#ifdef __SANITIZE_ADDRESS__
		/* LeakSanitizer stops the threads with ptrace for its exit check;
		 * with CAP_SYS_PTRACE kept, the production build must not have it. */
		SCMP_SYS(ptrace),
#endif
		/* libmicrohttpd sends file-backed responses with it */
		SCMP_SYS(sendfile),
	};
	/* --follow attaches again later: tracepoint links and the new netns */
	static const int attach_later[] = { SCMP_SYS(perf_event_open), SCMP_SYS(setns) };
	scmp_filter_ctx ctx;
	size_t i;
	int err = 0;

	/* EPERM rather than a kill: a path we missed fails with a message, and
	 * the monitor stays up during the incident it is watching. */
	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return -ENOMEM;
	for (i = 0; !err && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (allowed[i] >= 0) /* __NR_ numbers this architecture lacks are negative */
			err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	for (i = 0; !err && keep_attach && i < sizeof(attach_later) / sizeof(attach_later[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, attach_later[i], 0);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}

static void caps_add(struct __user_cap_data_struct data[2], const int *caps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		data[caps[i] / 32].permitted |= 1u << (caps[i] % 32);
}

int privs_drop(const struct privs_opts *opts)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } }, have[2];
	size_t i;
	int cap, err;

	caps_add(data, steady_caps, sizeof(steady_caps) / sizeof(steady_caps[0]));
	if (opts->keep_attach)
		caps_add(data, attach_later_caps, sizeof(attach_later_caps) / sizeof(attach_later_caps[0]));
	/* Only what we have can be kept: a target of our own uid needed no ptrace caps. */
	err = caps_get(have);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		data[i].permitted &= have[i].permitted;
		data[i].effective = data[i].permitted;
	}
	/* Before the uid switch, which clears the effective set and with it the
	 * CAP_SETPCAP this needs; without it the bounding set stays, and
	 * no_new_privs makes it moot anyway. */
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (!(data[cap / 32].permitted & (1u << (cap % 32))))
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (opts->user) {
		/* keep the permitted set across the uid switch; capset trims it below */
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(1, &opts->gid) ||
		    setresgid(opts->gid, opts->gid, opts->gid) ||
		    setresuid(opts->uid, opts->uid, opts->uid)) {
			err = -errno;
			errmsg(0, "--user %s: switching to uid %u failed: %s", opts->user,
				(unsigned)opts->uid, strerror(-err));
			return err;
		}
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data)) {
		err = -errno;
		errmsg(0, "dropping capabilities failed: %s", strerror(-err));
		return err;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		err = -errno;
		errmsg(0, "setting no_new_privs failed: %s", strerror(-err));
		return err;
	}
	if (!opts->seccomp)
		return 0;
	err = seccomp_install(opts->keep_attach);
	if (err)
		errmsg(0, "installing the seccomp filter failed: %s "
			"(--no-seccomp runs without it)", strerror(-err));
	return err;
}
