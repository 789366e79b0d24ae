/* SPDX-License-Identifier: MIT */
/* Least privilege: which capabilities attaching needs (checked up front, the
 * missing one named), and giving up the rest once attached: capabilities,
 * no_new_privs, an optional --user, a seccomp allowlist. */
#ifndef CS_PRIVS_H
#define CS_PRIVS_H
#include <stdbool.h>
#include <sys/types.h>

struct privs_opts {
	const char *user; /* --user NAME, or NULL to keep the uid */
	uid_t uid;
	gid_t gid;
	/* Keep what attaching later needs, for --follow: CAP_BPF, CAP_PERFMON,
	 * CAP_SYS_ADMIN (setns into a restarted server's netns), and the
	 * perf_event_open and setns syscalls in the seccomp filter. */
	bool keep_attach;
	bool seccomp; /* false: --no-seccomp */
};

/* Looks up opts->user (before any drop: NSS reads files). 0 or -errno. */
int privs_resolve_user(struct privs_opts *opts);
/* 0 when the effective set has every capability attaching to pid needs;
 * otherwise prints the missing ones and what each is for, -EPERM. */
int privs_check_attach(int pid, const struct privs_opts *opts);
/* After attach and before any thread starts (capabilities are per thread):
 * switch user, keep only the steady-state capabilities, no_new_privs, seccomp. */
int privs_drop(const struct privs_opts *opts);
#endif
