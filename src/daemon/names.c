// SPDX-License-Identifier: MIT
/* Kernel numbers to label strings, in one place for every renderer. */
#define _GNU_SOURCE
#include "names.h"
#include <bpf/btf.h>
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const syscall_names[CS_SYS_MAX] = {
	[CS_SYS_ACCEPT] = "accept",
	[CS_SYS_ACCEPT4] = "accept4",
	[CS_SYS_SOCKET] = "socket",
	[CS_SYS_SOCKETPAIR] = "socketpair",
	[CS_SYS_OPEN] = "open",
	[CS_SYS_OPENAT] = "openat",
	[CS_SYS_OPENAT2] = "openat2",
	[CS_SYS_CREAT] = "creat",
	[CS_SYS_DUP] = "dup",
	[CS_SYS_DUP2] = "dup2",
	[CS_SYS_DUP3] = "dup3",
	[CS_SYS_FCNTL] = "fcntl",
	[CS_SYS_PIPE] = "pipe",
	[CS_SYS_PIPE2] = "pipe2",
	[CS_SYS_EPOLL_CREATE] = "epoll_create",
	[CS_SYS_EPOLL_CREATE1] = "epoll_create1",
	[CS_SYS_EVENTFD] = "eventfd",
	[CS_SYS_EVENTFD2] = "eventfd2",
	[CS_SYS_TIMERFD_CREATE] = "timerfd_create",
	[CS_SYS_SIGNALFD] = "signalfd",
	[CS_SYS_SIGNALFD4] = "signalfd4",
	[CS_SYS_INOTIFY_INIT] = "inotify_init",
	[CS_SYS_INOTIFY_INIT1] = "inotify_init1",
	[CS_SYS_MEMFD_CREATE] = "memfd_create",
	[CS_SYS_PIDFD_OPEN] = "pidfd_open",
	[CS_SYS_CONNECT] = "connect",
	[CS_SYS_BIND] = "bind",
};

static const char *const tcp_ext_names[CS_TE_MAX] = {
	[CS_TE_LISTEN_OVERFLOWS] = "ListenOverflows",
	[CS_TE_LISTEN_DROPS] = "ListenDrops",
	[CS_TE_ABORT_ON_CLOSE] = "TCPAbortOnClose",
	[CS_TE_ABORT_ON_DATA] = "TCPAbortOnData",
	[CS_TE_ABORT_ON_MEMORY] = "TCPAbortOnMemory",
	[CS_TE_ABORT_ON_LINGER] = "TCPAbortOnLinger",
	[CS_TE_ABORT_ON_TIMEOUT] = "TCPAbortOnTimeout",
	[CS_TE_REQQ_FULL_DROP] = "TCPReqQFullDrop",
	[CS_TE_REQQ_FULL_DO_COOKIES] = "TCPReqQFullDoCookies",
	[CS_TE_SYNCOOKIES_SENT] = "SyncookiesSent",
	[CS_TE_SYNCOOKIES_RECV] = "SyncookiesRecv",
	[CS_TE_SYNCOOKIES_FAILED] = "SyncookiesFailed",
	[CS_TE_MEMORY_PRESSURES] = "TCPMemoryPressures",
	[CS_TE_BACKLOG_DROP] = "TCPBacklogDrop",
};

static char *rst_names[CS_RST_REASONS_MAX];
/* the kernel names reset reasons (enum sk_rst_reason, 6.10+) */
static bool rst_enum;

#define RST_PREFIX "SK_RST_REASON_"

int names_init(void)
{
	const struct btf_enum *v;
	const struct btf_type *t;
	struct btf *btf;
	int id, i, n;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno;
	id = btf__find_by_name_kind(btf, "sk_rst_reason", BTF_KIND_ENUM);
	if (id < 0) {
		/* kernels before 6.10 pass no reason: an abort is "not_specified",
		 * a reset answering a segment "passive_reset" (the BPF side tells) */
		btf__free(btf);
		return 0;
	}
	rst_enum = true;
	t = btf__type_by_id(btf, id);
	v = btf_enum(t);
	n = btf_vlen(t);
	for (i = 0; i < n; i++, v++) {
		const char *name = btf__name_by_offset(btf, v->name_off);
		char *label, *p;

		if (v->val < 0 || v->val >= CS_RST_REASONS_MAX || !name)
			continue;
		if (!strncmp(name, RST_PREFIX, strlen(RST_PREFIX)))
			name += strlen(RST_PREFIX);
		label = strdup(name);
		if (!label) {
			btf__free(btf);
			return -ENOMEM;
		}
		for (p = label; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		free(rst_names[v->val]);
		rst_names[v->val] = label;
	}
	btf__free(btf);
	return 0;
}

const char *names_syscall(unsigned idx)
{
	return idx < CS_SYS_MAX ? syscall_names[idx] : "unknown";
}

static const char *const nest_hook_names[CS_NEST_MAX] = {
	[CS_NEST_SET_STATE] = "inet_sock_set_state",
	[CS_NEST_SEND_RESET] = "tcp_send_reset",
	[CS_NEST_RECEIVE_RESET] = "tcp_receive_reset",
	[CS_NEST_KFREE_SKB] = "kfree_skb",
};

const char *names_nest_hook(unsigned idx)
{
	return idx < CS_NEST_MAX ? nest_hook_names[idx] : "unknown";
}

const char *names_errno(int err)
{
	static char unnamed[256][8];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	if (err < 0 || err > 255)
		return "EUNKNOWN";
	if (!unnamed[err][0])
		snprintf(unnamed[err], sizeof(unnamed[err]), "E%d", err);
	return unnamed[err];
}

const char *names_rst_reason(unsigned reason)
{
	if (reason >= CS_RST_REASONS_MAX)
		return NULL;
	if (!rst_names[reason] && reason == 0)
		return "not_specified";
	if (!rst_enum && reason == CS_RST_PASSIVE_BEFORE_6_10)
		return "passive_reset";
	return rst_names[reason];
}

int names_rst_reason_index(const char *label)
{
	for (int i = 0; i < CS_RST_REASONS_MAX; i++)
		if (names_rst_reason(i) && !strcmp(names_rst_reason(i), label))
			return i;
	return -1;
}

const char *names_tcp_ext(unsigned idx)
{
	return idx < CS_TE_MAX ? tcp_ext_names[idx] : "unknown";
}
