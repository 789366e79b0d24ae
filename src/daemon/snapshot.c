// SPDX-License-Identifier: MIT
/* Sums over a snapshot that the renderers and the diagnosis share. */
#include "snapshot.h"
#include <stddef.h>

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
