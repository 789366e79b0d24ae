// SPDX-License-Identifier: MIT
/* connscope-load: opens connections at a paced rate (plain TCP, WebSocket,
 * STOMP over WebSocket), follows each through its steps with one epoll loop,
 * and reports what every client got. It never counts a client that was not
 * answered as ok, and says when the client itself ran out of fds or ports. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "clock.h"
#include "load.h"
#include "netutil.h"
#include "stomp.h"
#include "ws.h"

/* Connections opened per loop turn at most, so replies are read in between. */
#define OPEN_BATCH 256
#define MAX_EVENTS 512

static const char *const outcome_names[LOAD_OUT_MAX] = {
	[LOAD_OUT_OK] = "ok", [LOAD_OUT_REFUSED] = "refused", [LOAD_OUT_RESET] = "reset", [LOAD_OUT_TIMEOUT] = "timeout",
	[LOAD_OUT_HTTP_ERROR] = "http_error", [LOAD_OUT_WS_BAD_ACCEPT] = "ws_bad_accept", [LOAD_OUT_CLOSED] = "closed",
	[LOAD_OUT_CLIENT_EMFILE] = "client_emfile", [LOAD_OUT_EADDRNOTAVAIL] = "eaddrnotavail", [LOAD_OUT_OTHER] = "other",
};
static const char *const step_names[LOAD_STEP_MAX] = {
	[LOAD_STEP_CONNECT] = "connect", [LOAD_STEP_UPGRADE] = "upgrade", [LOAD_STEP_STOMP] = "stomp_connect",
	[LOAD_STEP_REPLY] = "reply", [LOAD_STEP_HOLD] = "hold",
};

static void list_push(struct lconn **head, struct lconn **tail, struct lconn *c)
{
	c->next = NULL;
	c->prev = *tail;
	if (*tail)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

static void list_del(struct lconn **head, struct lconn **tail, struct lconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		*tail = c->prev;
}

/* Ends c with outcome o and frees it; returns false ("no longer alive"). */
static bool finish(struct load *l, struct lconn *c, enum outcome o)
{
	if (c->step == LOAD_STEP_HOLD)
		list_del(&l->hold_head, &l->hold_tail, c);
	else
		list_del(&l->act_head, &l->act_tail, c);
	if (c->step != LOAD_STEP_HOLD) {
		l->outcomes[o]++;
		if (o == LOAD_OUT_TIMEOUT)
			l->timeouts[c->step]++;
	} else if (o != LOAD_OUT_OK) {
		l->lost_in_hold++;
	}
	l->in_flight--;
	close(c->fd);
	free(c);
	return false;
}

static bool send_all(struct lconn *c, const void *buf, size_t len)
{
	return write(c->fd, buf, len) == (ssize_t)len;
}

static bool send_ws_text(struct lconn *c, const char *payload, size_t len)
{
	uint8_t out[LOAD_IN_BUF];
	int n = ws_frame_encode(out, sizeof(out), WS_OP_TEXT, payload, len, true);

	return n > 0 && send_all(c, out, n);
}

/* Returns whether c is still alive (held open). */
static bool got_ok(struct load *l, struct lconn *c)
{
	double now = mono_now();

	l->lat[LAT_TOTAL][l->nlat[LAT_TOTAL]++] = (now - c->t_start) * 1000;
	if (l->cfg->hold > 0) {
		list_del(&l->act_head, &l->act_tail, c);
		l->outcomes[LOAD_OUT_OK]++;
		c->step = LOAD_STEP_HOLD;
		c->deadline = now + l->cfg->hold;
		list_push(&l->hold_head, &l->hold_tail, c);
		return true;
	}
	return finish(l, c, LOAD_OUT_OK);
}

/* Moves c to the step after the TCP handshake (or after the upgrade).
 * Returns whether c is still alive. */
static bool next_step(struct load *l, struct lconn *c)
{
	const struct load_cfg *cfg = l->cfg;
	char buf[1024];
	int n;

	if (c->step == LOAD_STEP_CONNECT && cfg->ws_path) {
		ws_make_key(c->key);
		n = ws_client_request(buf, sizeof(buf), cfg->host_header, cfg->ws_path, c->key);
		c->step = LOAD_STEP_UPGRADE;
		return n > 0 && send_all(c, buf, n) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (c->step == LOAD_STEP_UPGRADE && cfg->stomp) {
		n = stomp_frame(buf, sizeof(buf), "CONNECT", "accept-version:1.2\nhost:localhost\nheart-beat:0,0\n", NULL);
		c->step = LOAD_STEP_STOMP;
		return n > 0 && send_ws_text(c, buf, n) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	c->step = LOAD_STEP_REPLY;
	if (cfg->stomp) {
		n = stomp_frame(buf, sizeof(buf), "SEND",
				"destination:/app/location\ncontent-type:text/plain\nreceipt:1\n", cfg->message);
		return n > 0 && send_ws_text(c, buf, n) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (cfg->ws_path)
		return send_ws_text(c, cfg->message, strlen(cfg->message)) ? true : finish(l, c, LOAD_OUT_RESET);
	if (cfg->message[0])
		return send_all(c, cfg->message, strlen(cfg->message)) ? true : finish(l, c, LOAD_OUT_RESET);
	return got_ok(l, c); /* plain connect, nothing to send: connected is all we can know */
}

static enum outcome errno_outcome(int err)
{
	switch (err) {
	case ECONNREFUSED: return LOAD_OUT_REFUSED;
	case ECONNRESET: case EPIPE: return LOAD_OUT_RESET;
	case ETIMEDOUT: return LOAD_OUT_TIMEOUT;
	case EADDRNOTAVAIL: return LOAD_OUT_EADDRNOTAVAIL;
	default: return LOAD_OUT_OTHER;
	}
}

static void on_connected(struct load *l, struct lconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		finish(l, c, errno_outcome(err));
		return;
	}
	l->lat[LAT_CONNECT][l->nlat[LAT_CONNECT]++] = (mono_now() - c->t_start) * 1000;
	c->t_step = mono_now();
	ev.data.ptr = c;
	epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
	next_step(l, c);
}

/* One WebSocket frame arrived while in step LOAD_STEP_STOMP or LOAD_STEP_REPLY. Returns
 * whether c is still alive. */
static bool on_frame(struct load *l, struct lconn *c, const struct ws_frame *f)
{
	char cmd[32];

	if (f->opcode == WS_OP_CLOSE)
		return finish(l, c, LOAD_OUT_CLOSED);
	if (!l->cfg->stomp)
		return got_ok(l, c);
	if (stomp_command((const char *)f->payload, f->len, cmd, sizeof(cmd)) || !strcmp(cmd, "ERROR"))
		return finish(l, c, LOAD_OUT_HTTP_ERROR);
	if (c->step == LOAD_STEP_STOMP && !strcmp(cmd, "CONNECTED"))
		return next_step(l, c);
	if (c->step == LOAD_STEP_REPLY && !strcmp(cmd, "RECEIPT"))
		return got_ok(l, c);
	return true;
}

static void on_readable(struct load *l, struct lconn *c)
{
	ssize_t n = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		finish(l, c, n == 0 ? LOAD_OUT_CLOSED : errno_outcome(errno));
		return;
	}
	if (c->step == LOAD_STEP_HOLD) {
		c->len = 0; /* anything the server pushes while held */
		return;
	}
	c->len += n;
	if (c->step == LOAD_STEP_UPGRADE) {
		int status;
		bool accept_ok;
		int used = ws_client_response((char *)c->in, c->len, c->key, &status, &accept_ok);

		if (!used)
			return;
		if (status != 101) {
			finish(l, c, LOAD_OUT_HTTP_ERROR);
			return;
		}
		if (!accept_ok) {
			finish(l, c, LOAD_OUT_WS_BAD_ACCEPT);
			return;
		}
		l->lat[LAT_UPGRADE][l->nlat[LAT_UPGRADE]++] = (mono_now() - c->t_step) * 1000;
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
		if (!next_step(l, c) || c->len == 0)
			return;
	}
	if (!l->cfg->ws_path) {
		got_ok(l, c); /* plain TCP: any answer */
		return;
	}
	while (c->len) {
		struct ws_frame f;
		long used = ws_frame_decode(c->in, c->len, sizeof(c->in), &f);

		if (used <= 0) {
			if (used < 0)
				finish(l, c, LOAD_OUT_HTTP_ERROR);
			return;
		}
		if (!on_frame(l, c, &f))
			return;
		if (c->step == LOAD_STEP_HOLD) {
			c->len = 0; /* frames after the answer are not ours to judge */
			return;
		}
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
	}
}

static void open_one(struct load *l)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP };
	struct lconn *c;
	int fd;

	l->opened++;
	fd = socket(l->cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		l->outcomes[errno == EMFILE || errno == ENFILE ? LOAD_OUT_CLIENT_EMFILE : LOAD_OUT_OTHER]++;
		return;
	}
	if (connect(fd, (struct sockaddr *)&l->cfg->addr, l->cfg->addrlen) && errno != EINPROGRESS) {
		l->outcomes[errno_outcome(errno)]++;
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		l->outcomes[LOAD_OUT_OTHER]++;
		close(fd);
		return;
	}
	c->fd = fd;
	c->t_start = mono_now();
	c->deadline = c->t_start + l->cfg->timeout;
	ev.data.ptr = c;
	epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
	list_push(&l->act_head, &l->act_tail, c);
	l->in_flight++;
}

static void progress(struct load *l, double now)
{
	long failed = 0;

	for (int i = 1; i < LOAD_OUT_MAX; i++)
		failed += l->outcomes[i];
	fprintf(stderr, "connscope-load: %4.0f s  opened %ld/%ld  ok %ld  failed %ld  in flight %ld\n",
		now - l->t_start, l->opened, l->cfg->connections, l->outcomes[LOAD_OUT_OK], failed, l->in_flight);
}

int load_run(struct load *l)
{
	const struct load_cfg *cfg = l->cfg;
	struct epoll_event evs[MAX_EVENTS];
	double next_progress;

	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -errno;
	for (int i = 0; i < LAT_MAX; i++) {
		l->lat[i] = calloc(cfg->connections + 1, sizeof(double));
		if (!l->lat[i])
			return -ENOMEM;
	}
	l->t_start = mono_now();
	next_progress = l->t_start + 1;
	while (l->opened < cfg->connections || l->act_head || l->hold_head) {
		double now = mono_now(), wait = 0.1;
		long due = cfg->rate > 0 ? (long)floor((now - l->t_start) * cfg->rate) + 1 : cfg->connections;
		int n;

		if (due > cfg->connections)
			due = cfg->connections;
		for (int i = 0; i < OPEN_BATCH && l->opened < due; i++)
			open_one(l);
		if (l->opened == cfg->connections && !l->t_open_end)
			l->t_open_end = mono_now();
		while (l->act_head && l->act_head->deadline <= now)
			finish(l, l->act_head, LOAD_OUT_TIMEOUT);
		while (l->hold_head && l->hold_head->deadline <= now)
			finish(l, l->hold_head, LOAD_OUT_OK);
		if (l->opened < cfg->connections)
			wait = l->opened < due ? 0 : (l->opened + 1) / cfg->rate - (now - l->t_start);
		if (l->act_head && l->act_head->deadline - now < wait)
			wait = l->act_head->deadline - now;
		if (l->hold_head && l->hold_head->deadline - now < wait)
			wait = l->hold_head->deadline - now;
		n = epoll_wait(l->ep, evs, MAX_EVENTS, wait > 0 ? (int)ceil(wait * 1000) : 0);
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;

			if (c->step == LOAD_STEP_CONNECT)
				on_connected(l, c);
			else
				on_readable(l, c);
		}
		now = mono_now();
		if (cfg->progress && now >= next_progress) {
			progress(l, now);
			next_progress += 1;
		}
	}
	l->t_end = mono_now();
	close(l->ep);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, long n, double p)
{
	long i;

	if (!n)
		return 0;
	i = (long)ceil(p / 100 * n) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

void load_report(struct load *l, bool json, FILE *f)
{
	static const char *const lat_names[LAT_MAX] = { "connect", "upgrade", "total" };
	const struct load_cfg *cfg = l->cfg;
	double secs = l->t_end - l->t_start;

	for (int i = 0; i < LAT_MAX; i++)
		qsort(l->lat[i], l->nlat[i], sizeof(double), cmp_double);
	if (json) {
		fprintf(f, "{\"target\":\"%s\",\"connections\":%ld,\"rate\":%g,\"achieved_rate\":%.1f,"
			"\"duration_seconds\":%.3f,\"outcomes\":{", cfg->target, cfg->connections, cfg->rate,
			secs > 0 ? l->opened / (l->t_open_end > l->t_start ? l->t_open_end - l->t_start : secs) : 0,
			secs);
		for (int i = 0; i < LOAD_OUT_MAX; i++)
			fprintf(f, "%s\"%s\":%ld", i ? "," : "", outcome_names[i], l->outcomes[i]);
		fprintf(f, "},\"timeouts_by_step\":{");
		for (int i = 0; i < LOAD_STEP_HOLD; i++)
			fprintf(f, "%s\"%s\":%ld", i ? "," : "", step_names[i], l->timeouts[i]);
		fprintf(f, "},\"lost_while_held\":%ld,\"latency_ms\":{", l->lost_in_hold);
		for (int i = 0; i < LAT_MAX; i++)
			fprintf(f, "%s\"%s\":{\"count\":%ld,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
				i ? "," : "", lat_names[i], l->nlat[i], pct(l->lat[i], l->nlat[i], 50),
				pct(l->lat[i], l->nlat[i], 90), pct(l->lat[i], l->nlat[i], 99),
				l->nlat[i] ? l->lat[i][l->nlat[i] - 1] : 0);
		fprintf(f, "}}\n");
		return;
	}
	fprintf(f, "connscope-load: %s, %ld connections at %g/s (%s), %.1f s\n", cfg->target,
		cfg->connections, cfg->rate, cfg->stomp ? "websocket+stomp" : cfg->ws_path ? "websocket" :
		cfg->message[0] ? "tcp+reply" : "tcp", secs);
	for (int i = 0; i < LOAD_OUT_MAX; i++) {
		if (!l->outcomes[i] && i != LOAD_OUT_OK)
			continue;
		fprintf(f, "  %-14s %8ld  %5.1f%%", outcome_names[i], l->outcomes[i],
			100.0 * l->outcomes[i] / (cfg->connections ? cfg->connections : 1));
		if (i == LOAD_OUT_TIMEOUT) {
			fprintf(f, "  (waiting for:");
			for (int s = 0; s < LOAD_STEP_HOLD; s++)
				if (l->timeouts[s])
					fprintf(f, " %s %ld", step_names[s], l->timeouts[s]);
			fprintf(f, ")");
		}
		if (i == LOAD_OUT_CLIENT_EMFILE)
			fprintf(f, "  the CLIENT ran out of fds: raise its ulimit -n");
		if (i == LOAD_OUT_EADDRNOTAVAIL)
			fprintf(f, "  the CLIENT ran out of local ports (ip_local_port_range)");
		fprintf(f, "\n");
	}
	fprintf(f, "  latency ms        p50      p90      p99      max\n");
	for (int i = 0; i < LAT_MAX; i++)
		if (l->nlat[i])
			fprintf(f, "  %-10s %8.2f %8.2f %8.2f %8.2f\n", lat_names[i], pct(l->lat[i], l->nlat[i], 50),
				pct(l->lat[i], l->nlat[i], 90), pct(l->lat[i], l->nlat[i], 99), l->lat[i][l->nlat[i] - 1]);
}

void load_free(struct load *l)
{
	for (int i = 0; i < LAT_MAX; i++)
		free(l->lat[i]);
}
