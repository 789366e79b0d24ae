/* SPDX-License-Identifier: MIT */
/* Listening TCP sockets of the target's network namespace over sock_diag
 * netlink: accept queue length and limit, and sk_drops per listener. */
#ifndef CS_SOCKDIAG_H
#define CS_SOCKDIAG_H
#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"

struct sockdiag;

/* Opens a sock_diag socket inside PID's network namespace, and that
 * namespace's somaxconn and tcp_syncookies. 0 or -errno; *out freed by
 * sockdiag_free. */
int sockdiag_new(int pid, struct sockdiag **out);
void sockdiag_free(struct sockdiag *sd);
/* The namespace's net.core.somaxconn / net.ipv4.tcp_syncookies now; -1 if
 * unreadable. */
int sockdiag_somaxconn(const struct sockdiag *sd);
int sockdiag_syncookies(const struct sockdiag *sd);
/* Every TCP listener (IPv4 and IPv6) in the namespace into out[0..max).
 * Returns the count or -errno. */
int sockdiag_listeners(struct sockdiag *sd, struct cs_listener *out, int max);
/* One recv()'s worth of a SOCK_DIAG_BY_FAMILY dump answer to request seq:
 * listeners appended to out at *n (up to max). 1 at NLMSG_DONE, 0 when more
 * is to come, -errno on NLMSG_ERROR or a malformed message. */
int sockdiag_parse_reply(const void *buf, size_t len, uint32_t seq, struct cs_listener *out,
			 int max, int *n);
#endif
