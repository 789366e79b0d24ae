// SPDX-License-Identifier: MIT
/* Socket helpers shared by the daemon, the load client and the demo server. */
#define _GNU_SOURCE
#include "netutil.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int net_parse_hostport(const char *what, const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
	const char *colon = strrchr(s, ':');
	char host[256], *end;
	size_t hlen;
	long port;
	int rc;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host)) {
		fprintf(stderr, "%s: %s %s: expected ADDR:PORT, e.g. 127.0.0.1:9477\n", program_invocation_short_name, what, s);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 0 || port > 65535) {
		fprintf(stderr, "%s: %s %s: port must be 0-65535\n", program_invocation_short_name, what, s);
		return -EINVAL;
	}
	hlen = colon - s;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else if (strchr(host, ':')) {
		fprintf(stderr, "%s: %s %s: write IPv6 addresses as [ADDR]:PORT\n", program_invocation_short_name, what, s);
		return -EINVAL;
	} else if (strspn(host, "0123456789.") == hlen) {
		hints.ai_family = AF_INET;
		hints.ai_flags |= AI_NUMERICHOST;
	}
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc) {
		fprintf(stderr, "%s: %s %s: '%s' is not an IPv4 address, [IPv6] address or host name (%s)\n", program_invocation_short_name, what, s, host, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int net_listen(const char *what, const char *addr, int backlog, bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err, one = 1;

	err = net_parse_hostport(what, addr, &ss, &len);
	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: socket for %s: %s\n", program_invocation_short_name, addr, strerror(-err));
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
		err = errno;
		fprintf(stderr, "%s: cannot listen on %s: %s%s\n", program_invocation_short_name, addr, strerror(err),
			err == EADDRINUSE ? " (another process uses it; pick another with --listen)" :
			err == EADDRNOTAVAIL ? " (no such local address)" :
			err == EACCES ? " (ports below 1024 need root)" : "");
		close(fd);
		return -err;
	}
	return fd;
}

void net_format_addr(int family, const void *addr, uint16_t port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, addr, a, sizeof(a));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "%s:%u", a, port);
}

void net_format_local(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(buf, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		net_format_addr(AF_INET6, &s6->sin6_addr, ntohs(s6->sin6_port), buf, len);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		net_format_addr(AF_INET, &s4->sin_addr, ntohs(s4->sin_port), buf, len);
	}
}

long net_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (want <= 0 || (rl.rlim_max != RLIM_INFINITY && (rlim_t)want > rl.rlim_max))
		want = rl.rlim_max == RLIM_INFINITY ? 1 << 20 : (long)rl.rlim_max;
	if ((rlim_t)want > rl.rlim_cur) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			return -errno;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long)rl.rlim_cur;
}
