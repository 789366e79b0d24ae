/* SPDX-License-Identifier: MIT */
/* Listening TCP sockets of the target's network namespace over sock_diag
 * netlink: accept queue length and limit, and sk_drops per listener. */
#ifndef CS_SOCKDIAG_H
#define CS_SOCKDIAG_H
#include <stdbool.h>
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
/* The namespace's interface addresses but loopback, 16 bytes each (IPv4
 * as ::ffff:a.b.c.d), into out[0..max). Returns the count or -errno. */
int sockdiag_addresses(struct sockdiag *sd, uint8_t (*out)[16], int max);
/* net.ipv4.ip_local_port_range of the namespace at start (-1 -1 if unread). */
void sockdiag_port_range(const struct sockdiag *sd, int *low, int *high);
/* TCP sockets in state (TCP_CLOSE_WAIT...) whose local port is_port()
 * accepts (every one if is_port is NULL): their count and, if oldest_s is
 * not NULL, the longest time since any of them received data. 0 or -errno. */
int sockdiag_state(struct sockdiag *sd, int state, bool (*is_port)(uint16_t port, void *arg), void *arg,
		   uint32_t *count, double *oldest_s);
#endif
