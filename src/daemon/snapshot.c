// SPDX-License-Identifier: MIT
/* Sums over a snapshot that the renderers and the diagnosis share. */
#include "snapshot.h"
#include <stddef.h>
#include <errno.h>

uint64_t snapshot_listen_drops(const struct cs_snapshot *s)
{
	uint64_t n = 0;

	for (int i = 0; i < s->n_listeners; i++)
		n += s->listeners[i].drops;
	return n;
}

uint64_t snapshot_resets_sent(const struct cs_snapshot *s)
{
	uint64_t n = 0;

	for (int i = 0; i < CS_RST_REASONS_MAX; i++)
		n += s->resets_sent[i];
	return n;
}

/* Failures with err (EMFILE...) over every syscall; err 0 means any errno. */
uint64_t snapshot_fd_errors(const struct cs_snapshot *s, int err)
{
	uint64_t n = 0;

	for (int i = 0; i < s->n_syserr; i++)
		if (!err || s->syserr[i].err == err)
			n += s->syserr[i].count;
	return n;
}

uint64_t snapshot_accept_errors(const struct cs_snapshot *s, int err)
{
	uint64_t n = 0;

	for (int i = 0; i < s->n_syserr; i++) {
		const struct cs_syserr *e = &s->syserr[i];

		if (e->syscall != CS_SYS_ACCEPT && e->syscall != CS_SYS_ACCEPT4)
			continue;
		if (!err || e->err == err)
			n += e->count;
	}
	return n;
}

const struct cs_port *snapshot_port(const struct cs_snapshot *s, uint16_t port)
{
	for (int i = 0; i < s->n_ports; i++)
		if (s->ports[i].port == port)
			return &s->ports[i];
	return NULL;
}

const char *snapshot_source_name(enum cs_source src)
{
	static const char *const names[CS_SRC_MAX] = {
		[CS_SRC_SOCK_DIAG] = "sock_diag",
		[CS_SRC_PROCFS] = "procfs",
		[CS_SRC_TCP_EXT] = "tcp_ext",
		[CS_SRC_BPF] = "bpf",
	};

	return (unsigned)src < CS_SRC_MAX ? names[src] : "unknown";
}

const char *snapshot_probe_state_name(enum cs_probe_state state)
{
	switch (state) {
	case CS_PROBE_ACTIVE:
		return "active";
	case CS_PROBE_REDUCED:
		return "reduced";
	case CS_PROBE_UNAVAILABLE:
		return "unavailable";
	}
	return "unknown";
}

uint64_t snapshot_port_unread(const struct cs_port *p)
{
	uint64_t done = p->serve.first_read_wait.count + p->serve.closed_unread + p->serve.left_in_backlog;

	return p->accepts > done ? p->accepts - done : 0;
}

uint64_t snapshot_port_errors(const struct cs_snapshot *s, int syscall, int err)
{
	uint64_t n = 0;

	for (int i = 0; i < s->n_syserr; i++) {
		const struct cs_syserr *e = &s->syserr[i];

		if (e->syscall != CS_SYS_CONNECT && e->syscall != CS_SYS_BIND)
			continue;
		if ((syscall < 0 || e->syscall == syscall) &&
		    (err ? e->err == err : e->err == EADDRNOTAVAIL || e->err == EADDRINUSE))
			n += e->count;
	}
	return n;
}
