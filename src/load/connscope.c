// SPDX-License-Identifier: MIT
/* The smallest HTTP client connscope-load needs: one HTTP/1.0 GET to a
 * connscope daemon over a plain socket, the JSON body parsed with cJSON. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "clock.h"
#include "load.h"
#include "netutil.h"

/* A diagnosis is a few KiB; anything far larger is not connscope. */
#define HTTP_MAX_BYTES (1 << 20)

/* Waits for events on fd until deadline; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	double left = deadline - mono_now();

	if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
		return -ETIMEDOUT;
	return 0;
}

int load_http_get_json(const char *base, const char *path, double timeout, void **out, char *err,
		       size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	double deadline = mono_now() + timeout;
	char req[600], hostport[300], *buf = NULL, *body;
	const char *hp = base + (strncmp(base, "http://", 7) ? 0 : 7);
	size_t len = 0, cap = 0;
	int fd = -1, rc = 0, status = 0, soerr = 0;
	socklen_t elen = sizeof(soerr);

	*out = NULL;
	snprintf(hostport, sizeof(hostport), "%.*s", (int)strcspn(hp, "/"), hp);
	if (net_parse_hostport("--connscope", hostport, &ss, &sl)) {
		snprintf(err, errlen, "not http://HOST:PORT");
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto cleanup;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		rc = -errno;
		goto cleanup;
	}
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc)
		goto cleanup;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen);
	if (soerr) {
		rc = -soerr;
		goto cleanup;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n\r\n", path,
		 hostport);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		rc = -errno;
		goto cleanup;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb = cap + 65536 > HTTP_MAX_BYTES ? NULL : realloc(buf, cap + 65536);

			if (!nb) {
				rc = -EMSGSIZE;
				goto cleanup;
			}
			buf = nb;
			cap += 65536;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc)
			goto cleanup;
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			rc = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !body) {
		snprintf(err, errlen, "not an HTTP answer");
		rc = -EPROTO;
		goto cleanup;
	}
	if (status != 200) {
		snprintf(err, errlen, "HTTP %d for %s", status, path);
		rc = -EPROTO;
		goto cleanup;
	}
	*out = cJSON_Parse(body + 4);
	if (!*out) {
		snprintf(err, errlen, "the answer to %s is not JSON", path);
		rc = -EPROTO;
	}
cleanup:
	if (rc && rc != -EPROTO && rc != -EINVAL)
		snprintf(err, errlen, "%s", strerror(-rc));
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
