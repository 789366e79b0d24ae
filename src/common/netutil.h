/* SPDX-License-Identifier: MIT */
/* Socket helpers shared by connscope, connscope-load and the demo server:
 * "ADDR:PORT" parsing, listening sockets with clear errors, fd limits. */
#ifndef CS_NETUTIL_H
#define CS_NETUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "127.0.0.1:80", "[::1]:80", "localhost:80". Prints what is wrong (what
 * names the option, e.g. "--listen") and returns -EINVAL. */
int net_parse_hostport(const char *what, const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* A bound, listening socket (SO_REUSEADDR) or -errno, with the reason
 * printed ("127.0.0.1:9477 is in use: pick another with --listen"). */
int net_listen(const char *what, const char *addr, int backlog, bool nonblock);
/* "127.0.0.1:80" / "[::1]:80" from a raw address (struct in_addr / in6_addr). */
void net_format_addr(int family, const void *addr, uint16_t port, char *buf, size_t len);
/* "127.0.0.1:9477" / "[::1]:9477": the address fd is bound to (port 0 resolved). */
void net_format_local(int fd, char *buf, size_t len);
/* Raises the soft RLIMIT_NOFILE to want (<= 0: the hard limit); returns the
 * soft limit now in force. */
long net_raise_nofile(long want);
#endif
