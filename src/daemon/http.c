// SPDX-License-Identifier: MIT
/* HTTP front: routes requests to the renderers over the collector's latest
 * snapshot. Only GET/HEAD; bad query values get 400 with a JSON body. One
 * thread drives libmicrohttpd in epoll mode and enforces the limits a flood
 * must not get past (connections per address, a deadline per request). */
#define _GNU_SOURCE
#include "http.h"
#include <errno.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include "args.h"
#include "diagnose.h"
#include "json.h"
#include "netutil.h"
#include "page.h"
#include "prom.h"
#include "webconfig.h"

/* A scrape rebuilds the snapshot when the newest is older than this. */
#define FRESH_SECONDS 0.1
#define DEFAULT_WINDOW_SECONDS 60
#define MAX_WINDOW_SECONDS 86400

/* Connections in all: epoll has no FD_SETSIZE ceiling, so this is about
 * memory (MHD_OPTION_CONNECTION_MEMORY_LIMIT each) and the fd limit. */
#define HTTP_CONNECTION_LIMIT 4096
/* One address (a flood, a stuck client) gets at most this many, which leaves
 * HTTP_CONNECTION_LIMIT - HTTP_PER_IP_LIMIT for Prometheus and everyone else. */
#define HTTP_PER_IP_LIMIT 256
/* Room for a burst of connects while the HTTP thread is busy (the kernel
 * caps it at net.core.somaxconn). */
#define HTTP_LISTEN_BACKLOG 1024
/* fds beyond the connections: BPF maps and links, /proc, sock_diag, stdio. */
#define HTTP_FD_RESERVE 512
/* A request's headers must be complete this long after the connection opened
 * (a slowloris resets the idle timeout with every byte, not this); and a
 * kept-alive connection's next request this long after the previous answer. */
#define HTTP_FIRST_REQUEST_SECONDS 5
#define HTTP_NEXT_REQUEST_SECONDS 30
/* Idle timeout between bytes (MHD's own). */
#define HTTP_IDLE_SECONDS 15
/* Headers and query of one request; a larger one is answered 431 and closed. */
#define HTTP_CONNECTION_MEMORY_BYTES (32 * 1024)
/* At most one summary line of HTTP trouble per this many seconds. */
#define HTTP_LOG_INTERVAL_SECONDS 10

/* One per open connection, the deadline its current request must meet. */
struct http_conn {
	struct http_conn *prev, *next;
	struct MHD_Connection *conn;
	double deadline;
};

struct http {
	struct MHD_Daemon *d;
	struct collector *c;
	struct webconfig *wc;
	pthread_t thread;
	bool thread_started;
	int wake_fd;
	struct http_conn conns; /* list head; touched only by the HTTP thread */
	/* counted since the last summary line */
	unsigned long closed_at_deadline;
	unsigned long mhd_messages;
	char mhd_last[160];
	double next_summary;
};

int http_bind(const char *listen_addr)
{
	return net_listen("--listen", listen_addr, HTTP_LISTEN_BACKLOG, false);
}

static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status, const char *type,
				 char *body, size_t len, bool gzip_ok)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool gz = false;

	if (!body)
		return MHD_NO;
	if (gzip_ok && len > 256) {
		uLongf cap = compressBound(len) + 32;
		unsigned char *out = malloc(cap);
		z_stream z = { 0 };

		if (out && deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
					Z_DEFAULT_STRATEGY) == Z_OK) {
			z.next_in = (unsigned char *)body;
			z.avail_in = len;
			z.next_out = out;
			z.avail_out = cap;
			if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
				free(body);
				body = (char *)out;
				len = z.total_out;
				out = NULL;
				gz = true;
			}
			deflateEnd(&z);
		}
		free(out);
	}
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Vary", "Accept-Encoding");
	/* a JSON error echoes the query: never let a browser sniff it as HTML */
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, char *body, bool gz)
{
	return send_body(conn, status, "application/json", body, body ? strlen(body) : 0, gz);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return send_json(conn, status, json_error(msg), false);
}

/* "60", "60s", "5m", "1h" -> seconds; false when not a positive duration. */
static bool parse_seconds(const char *v, double max, double *out)
{
	return !args_seconds(NULL, NULL, v, 1e-3, max, out);
}

static bool parse_int(const char *v, long lo, long hi, long *out)
{
	return !args_long(NULL, NULL, v, lo, hi, out);
}

static const char *arg(struct MHD_Connection *conn, const char *key)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/* A fresh snapshot into s and its diagnosis over the last `window` seconds
 * (<= 0: the whole run): history, plus the live point since the last tick. */
static void run_diagnosis(struct collector *c, struct cs_snapshot *s, double window,
			  struct cs_diagnosis *d)
{
	struct cs_point *pts = NULL, live;
	int n;

	collector_snapshot_live(c, s, FRESH_SECONDS, &live);
	n = history_copy(collector_history(c), window, &pts);
	if (n < 0) {
		diagnose(s, &live, 1, d);
		return;
	}
	/* history_copy leaves room for one more point */
	pts[n++] = live;
	diagnose(s, pts, n, d);
	free(pts);
}

static enum MHD_Result handle_metrics(struct http *h, struct MHD_Connection *conn, bool gz)
{
	struct cs_snapshot *s = malloc(sizeof(*s));
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct prom_extra x = { 0 };
	double t0 = mono_now();
	enum MHD_Result ret;
	struct sbuf b;
	size_t len = 0;
	char *body;

	if (!s || !d) {
		free(s);
		free(d);
		return MHD_NO;
	}
	run_diagnosis(h->c, s, DEFAULT_WINDOW_SECONDS, d);
	x.map_bytes = collector_map_bytes(h->c);
	x.events_seen = s->ringbuf_events;
	x.scrape_seconds = mono_now() - t0;
	sbuf_init(&b);
	prom_render(s, d, &x, &b);
	body = sbuf_take(&b, &len);
	ret = send_body(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, gz);
	free(s);
	free(d);
	return ret;
}

static enum MHD_Result handle_diagnosis(struct http *h, struct MHD_Connection *conn, bool gz)
{
	const char *w = arg(conn, "window"), *fmt = arg(conn, "format");
	double window = DEFAULT_WINDOW_SECONDS;
	struct cs_snapshot *s;
	struct cs_diagnosis *d;
	enum MHD_Result ret;
	char *body;

	if (w && strcmp(w, "all") && !parse_seconds(w, MAX_WINDOW_SECONDS, &window))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "window=%s: expected a positive duration like 60s, 5m or all", w);
	if (w && !strcmp(w, "all"))
		window = 0;
	if (fmt && strcmp(fmt, "json") && strcmp(fmt, "text"))
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "format=%s: expected json or text", fmt);
	s = malloc(sizeof(*s));
	d = malloc(sizeof(*d));
	if (!s || !d) {
		free(s);
		free(d);
		return MHD_NO;
	}
	run_diagnosis(h->c, s, window, d);
	if (fmt && !strcmp(fmt, "text")) {
		struct sbuf b;
		size_t len = 0;

		sbuf_init(&b);
		diagnose_render_text(d, &b);
		body = sbuf_take(&b, &len);
		ret = send_body(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", body, len, gz);
	} else {
		ret = send_json(conn, MHD_HTTP_OK, json_diagnosis(d), gz);
	}
	free(s);
	free(d);
	return ret;
}

static enum MHD_Result handle_history(struct http *h, struct MHD_Connection *conn, bool gz)
{
	const char *v = arg(conn, "seconds");
	double seconds = 0;
	struct cs_point *pts = NULL;
	enum MHD_Result ret;
	int n;

	if (v && !parse_seconds(v, MAX_WINDOW_SECONDS, &seconds))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "seconds=%s: expected a positive number of seconds", v);
	n = history_copy(collector_history(h->c), seconds, &pts);
	if (n < 0)
		return MHD_NO;
	ret = send_json(conn, MHD_HTTP_OK, json_history(pts, n), gz);
	free(pts);
	return ret;
}

static enum MHD_Result handle_events(struct http *h, struct MHD_Connection *conn, bool gz)
{
	const char *v = arg(conn, "limit");
	long limit = 100;
	struct cs_event_rec *evs;
	enum MHD_Result ret;
	int n;

	if (v && !parse_int(v, 1, CS_EVENTS_KEPT, &limit))
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "limit=%s: expected 1 to %d", v, CS_EVENTS_KEPT);
	evs = malloc(sizeof(*evs) * limit);
	if (!evs)
		return MHD_NO;
	n = events_copy(collector_events(h->c), evs, limit);
	ret = send_json(conn, MHD_HTTP_OK, json_events(evs, n), gz);
	free(evs);
	return ret;
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Headers are complete: answering it is ours, not the client's, to finish. */
static void request_started(struct MHD_Connection *conn)
{
	struct http_conn *hc = conn_of(conn);

	if (hc)
		hc->deadline = INFINITY;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_conn *hc = conn_of(conn);

	(void)cls;
	(void)con_cls;
	(void)toe;
	if (hc)
		hc->deadline = mono_now() + HTTP_NEXT_REQUEST_SECONDS;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct http_conn *hc = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		hc = calloc(1, sizeof(*hc));
		if (!hc)
			return; /* no deadline for this one; MHD's idle timeout still applies */
		hc->conn = conn;
		hc->deadline = mono_now() + HTTP_FIRST_REQUEST_SECONDS;
		hc->next = h->conns.next;
		hc->prev = &h->conns;
		h->conns.next->prev = hc;
		h->conns.next = hc;
		*socket_context = hc;
		return;
	}
	if (!hc)
		return;
	hc->prev->next = hc->next;
	hc->next->prev = hc->prev;
	free(hc);
	*socket_context = NULL;
}

/* Shuts down (not closes: the fd stays MHD's) every connection whose request
 * is overdue; MHD sees the EOF in this same thread's next MHD_run and closes
 * it, so the fd cannot have been reused by then. */
static void close_overdue(struct http *h, double now)
{
	struct http_conn *hc;

	for (hc = h->conns.next; hc != &h->conns; hc = hc->next) {
		const union MHD_ConnectionInfo *ci;

		if (hc->deadline > now)
			continue;
		ci = MHD_get_connection_info(hc->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && ci->connect_fd >= 0)
			shutdown(ci->connect_fd, SHUT_RDWR);
		hc->deadline = INFINITY;
		h->closed_at_deadline++;
	}
}

/* libmicrohttpd logs one line per refused or broken connection, so a flood
 * would decide how much we log: count them and print one summary line per
 * interval instead. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	size_t n;

	vsnprintf(h->mhd_last, sizeof(h->mhd_last), fmt, ap);
	n = strlen(h->mhd_last);
	while (n && (h->mhd_last[n - 1] == '\n' || h->mhd_last[n - 1] == '.'))
		h->mhd_last[--n] = 0;
	h->mhd_messages++;
}

static void log_summary(struct http *h, double now)
{
	if (now < h->next_summary)
		return;
	h->next_summary = now + HTTP_LOG_INTERVAL_SECONDS;
	if (h->closed_at_deadline)
		fprintf(stderr, "connscope: %lu HTTP connections dropped: incomplete request "
			"(headers not complete within %d s) in the last %d s\n",
			h->closed_at_deadline, HTTP_FIRST_REQUEST_SECONDS, HTTP_LOG_INTERVAL_SECONDS);
	if (h->mhd_messages)
		fprintf(stderr, "connscope: %lu HTTP errors in the last %d s, the last: %s\n",
			h->mhd_messages, HTTP_LOG_INTERVAL_SECONDS, h->mhd_last);
	h->closed_at_deadline = 0;
	h->mhd_messages = 0;
}

static void *http_thread(void *arg)
{
	struct http *h = arg;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd pfd[2] = {
		{ .fd = di ? di->epoll_fd : -1, .events = POLLIN },
		{ .fd = h->wake_fd, .events = POLLIN },
	};
	double next_sweep = 0;

	for (;;) {
		MHD_UNSIGNED_LONG_LONG mhd_ms;
		int ms = 1000;
		double now;

		if (MHD_get_timeout(h->d, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG)ms)
			ms = (int)mhd_ms;
		if (poll(pfd, 2, ms) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		MHD_run(h->d);
		now = mono_now();
		/* the sweep walks every connection: at most every 100 ms, not per event */
		if (now >= next_sweep) {
			close_overdue(h, now);
			log_summary(h, now);
			next_sweep = now + 0.1;
		}
	}
	return NULL;
}

/* Raises the soft fd limit to what the connection limit needs; returns the
 * connection limit the hard limit allows. */
static unsigned fit_fd_limit(void)
{
	rlim_t need = HTTP_CONNECTION_LIMIT + HTTP_FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return HTTP_CONNECTION_LIMIT;
	if (rl.rlim_cur >= need)
		return HTTP_CONNECTION_LIMIT;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return HTTP_CONNECTION_LIMIT;
	if (rl.rlim_cur < HTTP_FD_RESERVE + 64) {
		fprintf(stderr, "connscope: fd limit %llu leaves room for only 64 HTTP connections "
			"(raise it with ulimit -n %llu)\n", (unsigned long long)rl.rlim_cur,
			(unsigned long long)need);
		return 64;
	}
	fprintf(stderr, "connscope: fd limit %llu: serving at most %llu HTTP connections, not %d "
		"(raise it with ulimit -n %llu)\n", (unsigned long long)rl.rlim_cur,
		(unsigned long long)(rl.rlim_cur - HTTP_FD_RESERVE), HTTP_CONNECTION_LIMIT,
		(unsigned long long)need);
	return (unsigned)(rl.rlim_cur - HTTP_FD_RESERVE);
}

/* client_auth_type beyond what libmicrohttpd does (it asks for a certificate
 * when it has a CA, and checks nothing): 0 when the client may go on. */
static int client_cert_ok(struct http *h, struct MHD_Connection *conn)
{
	enum webconfig_client_auth a = h->wc ? h->wc->client_auth : WEBCONFIG_NO_CLIENT_CERT;
	const union MHD_ConnectionInfo *ci;
	unsigned int n = 0, status = 0;

	if (a == WEBCONFIG_NO_CLIENT_CERT || a == WEBCONFIG_REQUEST_CLIENT_CERT)
		return 0;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return -EACCES;
	if (!gnutls_certificate_get_peers(ci->tls_session, &n) || !n)
		return a == WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN ? 0 : -EACCES;
	if (a == WEBCONFIG_REQUIRE_ANY_CLIENT_CERT)
		return 0;
	if (gnutls_certificate_verify_peers2(ci->tls_session, &status) || status)
		return -EACCES;
	return 0;
}

static bool basic_auth_ok(struct http *h, struct MHD_Connection *conn)
{
	char *pass = NULL, *user = MHD_basic_auth_get_username_password(conn, &pass);
	bool ok = user && pass && webconfig_check_user(h->wc, user, pass);

	if (pass)
		explicit_bzero(pass, strlen(pass));
	MHD_free(user);
	MHD_free(pass);
	return ok;
}

static enum MHD_Result send_unauthorized(struct MHD_Connection *conn)
{
	char *body = json_error("basic auth: wrong or missing user name or password");
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_basic_auth_fail_response(conn, "connscope", r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct page_asset page;
	const char *ae;
	bool gz;

	(void)version;
	(void)upload_data;
	/* The first call has the headers only; libmicrohttpd closes a connection
	 * whose answer was queued then, so GET/HEAD answer on the second call and
	 * keep-alive and pipelining work. Other methods are refused at once: the
	 * close is right for a body we will not read. */
	if (!*con_cls && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
		*con_cls = h;
		request_started(conn);
		return MHD_YES;
	}
	if (*con_cls && *upload_data_size) { /* a GET with a body: read and drop it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	request_started(conn);
	if (client_cert_ok(h, conn))
		return send_error(conn, MHD_HTTP_FORBIDDEN, "TLS client certificate missing or not "
				  "signed by client_ca_file");
	if (h->wc && h->wc->nusers && !basic_auth_ok(h, conn))
		return send_unauthorized(conn);
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		*upload_data_size = 0;
		return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed: use GET", method);
	}
	ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	gz = ae && strstr(ae, "gzip");
	if (!strcmp(url, "/metrics"))
		return handle_metrics(h, conn, gz);
	if (!strcmp(url, "/api/v1/diagnosis"))
		return handle_diagnosis(h, conn, gz);
	if (!strcmp(url, "/api/v1/snapshot")) {
		struct cs_snapshot *s = malloc(sizeof(*s));
		enum MHD_Result ret;

		if (!s)
			return MHD_NO;
		collector_snapshot(h->c, s, FRESH_SECONDS);
		ret = send_json(conn, MHD_HTTP_OK, json_snapshot(s), gz);
		free(s);
		return ret;
	}
	if (!strcmp(url, "/api/v1/history"))
		return handle_history(h, conn, gz);
	if (!strcmp(url, "/api/v1/events"))
		return handle_events(h, conn, gz);
	if (!strcmp(url, "/healthz"))
		return send_body(conn, MHD_HTTP_OK, "text/plain", strdup("ok\n"), 3, false);
	if (page_find(url, &page))
		return send_body(conn, MHD_HTTP_OK, page.type, strndup((const char *)page.data, page.len),
				 page.len, gz);
	return send_error(conn, MHD_HTTP_NOT_FOUND, "no such path: %s", url);
}

int http_new(int fd, struct collector *c, struct webconfig *wc, struct http **out)
{
	struct http *h = calloc(1, sizeof(*h));
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[5] = { { MHD_OPTION_END, 0, NULL } };
	unsigned limit;
	int err, n = 0;

	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->c = c;
	h->wc = wc;
	h->conns.next = h->conns.prev = &h->conns;
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wake_fd < 0) {
		err = -errno;
		close(fd);
		free(h);
		return err;
	}
	if (wc && wc->cert_pem) {
		flags |= MHD_USE_TLS;
		tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, wc->cert_pem };
		tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, wc->key_pem };
		tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)wc->priorities };
		if (wc->client_ca_pem)
			tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, wc->client_ca_pem };
	}
	limit = fit_fd_limit();
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
				MHD_OPTION_CONNECTION_LIMIT, limit,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_SECONDS,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY_BYTES,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!h->d) {
		fprintf(stderr, "connscope: cannot start the HTTP server%s%s\n", h->mhd_messages ? ": " : "",
			h->mhd_messages ? h->mhd_last : "");
		close(fd);
		err = -EIO;
		goto cleanup;
	}
	h->mhd_messages = 0;
	h->next_summary = mono_now() + HTTP_LOG_INTERVAL_SECONDS;
	err = -pthread_create(&h->thread, NULL, http_thread, h);
	if (err) {
		fprintf(stderr, "connscope: cannot start the HTTP thread: %s\n", strerror(-err));
		goto cleanup;
	}
	h->thread_started = true;
	*out = h;
	return 0;
cleanup:
	http_free(h);
	return err;
}

void http_free(struct http *h)
{
	uint64_t one = 1;

	if (!h)
		return;
	if (h->thread_started) {
		if (write(h->wake_fd, &one, sizeof(one)) < 0)
			fprintf(stderr, "connscope: cannot stop the HTTP thread: %s\n", strerror(errno));
		pthread_join(h->thread, NULL);
	}
	if (h->d)
		MHD_stop_daemon(h->d);
	close(h->wake_fd);
	free(h);
}
