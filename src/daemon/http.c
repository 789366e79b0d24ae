// SPDX-License-Identifier: MIT
/* HTTP front: routes requests to the renderers over the collector's latest
 * snapshot. Only GET/HEAD; bad query values get 400 with a JSON body. */
#define _GNU_SOURCE
#include "http.h"
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include "args.h"
#include "diagnose.h"
#include "json.h"
#include "netutil.h"
#include "page.h"
#include "prom.h"

/* A scrape rebuilds the snapshot when the newest is older than this. */
#define FRESH_SECONDS 0.1
#define DEFAULT_WINDOW_SECONDS 60
#define MAX_WINDOW_SECONDS 86400

struct http {
	struct MHD_Daemon *d;
	struct collector *c;
};

int http_bind(const char *listen_addr)
{
	return net_listen("--listen", listen_addr, 128, false);
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
	(void)con_cls;
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

int http_new(int fd, struct collector *c, struct http **out)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->c = c;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!h->d) {
		fprintf(stderr, "connscope: cannot start the HTTP server\n");
		close(fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
