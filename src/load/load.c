// SPDX-License-Identifier: MIT
/* connscope-load's engine: opens connections at a paced rate, step after
 * step (plain TCP, WebSocket, STOMP over WebSocket), follows each through its
 * phases with one epoll loop per process, and records what every client got.
 * A client is ok only when the server answered; the client's own limits (fds,
 * ports) are outcomes of their own. report.c prints the results, connscope.c
 * fetches the verdicts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "clock.h"
#include "load.h"
#include "stomp.h"
#include "ws.h"

/* Connections opened per loop turn at most, so replies are read in between. */
#define OPEN_BATCH 256
#define MAX_EVENTS 512
/* How long a step's verdict may take to fetch before the run goes on. */
#define DIAG_TIMEOUT_SECONDS 3.0

/* epoll's data.ptr for the parent's "go on" pipe (never a struct lconn) */
static char ctl_marker;

static void list_push(struct lconn_list *li, struct lconn *c)
{
	c->next = NULL;
	c->prev = li->tail;
	if (li->tail)
		li->tail->next = c;
	else
		li->head = c;
	li->tail = c;
}

static void list_del(struct lconn_list *li, struct lconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		li->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		li->tail = c->prev;
}

static struct lconn_list *list_of(struct load *l, const struct lconn *c)
{
	return c->phase == LOAD_PH_HOLD ? &l->held : c->phase == LOAD_PH_SETTLE ? &l->settling : &l->active;
}

static void lat_add(struct load *l, struct lconn *c, enum latency which, double since)
{
	struct load_stats *st = &l->steps[c->step];

	st->lat[which][st->nlat[which]++] = (mono_now() - since) * 1000;
}

/* Ends c with outcome o and frees it; returns false ("no longer alive").
 * A held client's outcome was counted when it was answered: ending it early
 * (anything but the hold running out) counts as lost while held. */
static bool finish(struct load *l, struct lconn *c, enum outcome o)
{
	struct load_stats *st = &l->steps[c->step];

	list_del(list_of(l, c), c);
	if (c->phase != LOAD_PH_HOLD) {
		st->outcomes[o]++;
		if (o == LOAD_OUT_TIMEOUT)
			st->timeouts[c->phase]++;
		l->active_in_step[c->step]--;
	} else if (o != LOAD_OUT_OK) {
		st->lost_in_hold++;
	}
	l->in_flight--;
	close(c->fd);
	free(c);
	return false;
}

static bool send_all(struct lconn *c, const void *buf, size_t len)
{
	return send(c->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool send_ws_text(struct lconn *c, const char *payload, size_t len)
{
	uint8_t out[LOAD_IN_BUF];
	int n = ws_frame_encode(out, sizeof(out), WS_OP_TEXT, payload, len, true);

	return n > 0 && send_all(c, out, n);
}

/* The client got outcome o (ok or connected): held for --hold, or closed.
 * Returns whether c is still alive. */
static bool answered(struct load *l, struct lconn *c, enum outcome o)
{
	if (l->cfg->hold <= 0)
		return finish(l, c, o);
	list_del(list_of(l, c), c);
	l->steps[c->step].outcomes[o]++;
	l->active_in_step[c->step]--;
	c->phase = LOAD_PH_HOLD;
	c->deadline = mono_now() + l->cfg->hold;
	list_push(&l->held, c);
	return true;
}

static bool got_ok(struct load *l, struct lconn *c)
{
	lat_add(l, c, LAT_TOTAL, c->t_start);
	return answered(l, c, LOAD_OUT_OK);
}

/* No ERROR frame and no close within --settle of the SEND: ok. The total
 * latency ends at the SEND, not after the wait. */
static void settled(struct load *l, struct lconn *c)
{
	struct load_stats *st = &l->steps[c->step];

	st->lat[LAT_TOTAL][st->nlat[LAT_TOTAL]++] = (c->t_phase - c->t_start) * 1000;
	answered(l, c, LOAD_OUT_OK);
}

/* Moves c to phase p (and to the list that phase lives in). */
static void enter(struct load *l, struct lconn *c, enum phase p)
{
	bool settle = p == LOAD_PH_SETTLE;

	if (settle != (c->phase == LOAD_PH_SETTLE)) {
		list_del(list_of(l, c), c);
		list_push(settle ? &l->settling : &l->active, c);
	}
	c->phase = p;
	c->t_phase = mono_now();
	if (settle)
		c->deadline = c->t_phase + l->cfg->settle;
}

/* After CONNECTED: SUBSCRIBE (with --subscribe) and SEND. */
static bool stomp_send(struct load *l, struct lconn *c)
{
	const struct load_cfg *cfg = l->cfg;
	char buf[LOAD_IN_BUF / 2], hdr[600];
	int n;

	if (cfg->stomp_mode == LOAD_STOMP_SUBSCRIBE) {
		snprintf(hdr, sizeof(hdr), "id:sub-0\ndestination:%s\nack:auto\n", cfg->subscribe);
		n = stomp_frame(buf, sizeof(buf), "SUBSCRIBE", hdr, NULL);
		if (n <= 0 || !send_ws_text(c, buf, n))
			return finish(l, c, LOAD_OUT_RESET);
	}
	snprintf(hdr, sizeof(hdr), "destination:%s\ncontent-type:text/plain\n%s", cfg->send_to,
		 cfg->stomp_mode == LOAD_STOMP_RECEIPT ? "receipt:1\n" : "");
	n = stomp_frame(buf, sizeof(buf), "SEND", hdr, cfg->message);
	if (n <= 0 || !send_ws_text(c, buf, n))
		return finish(l, c, LOAD_OUT_RESET);
	enter(l, c, cfg->stomp_mode == LOAD_STOMP_SETTLE ? LOAD_PH_SETTLE : LOAD_PH_REPLY);
	return true;
}

/* Moves c to the phase after the TCP handshake (or after the upgrade).
 * Returns whether c is still alive. */
static bool next_phase(struct load *l, struct lconn *c)
{
	const struct load_cfg *cfg = l->cfg;
	char buf[1024];
	int n;

	if (c->phase == LOAD_PH_CONNECT && cfg->ws_path) {
		ws_make_key(c->key);
		n = ws_client_request(buf, sizeof(buf), cfg->host_header, cfg->ws_path, c->key);
		enter(l, c, LOAD_PH_UPGRADE);
		return n > 0 && send_all(c, buf, n) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (c->phase == LOAD_PH_UPGRADE && cfg->stomp) {
		/* 0,0: we neither send nor expect heart-beats; a broker that
		 * insists gets its own heart-beats answered (on_stomp) */
		n = stomp_frame(buf, sizeof(buf), "CONNECT", "accept-version:1.2\nhost:localhost\nheart-beat:0,0\n", NULL);
		enter(l, c, LOAD_PH_STOMP);
		return n > 0 && send_ws_text(c, buf, n) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (cfg->ws_path) {
		enter(l, c, LOAD_PH_REPLY);
		return send_ws_text(c, cfg->message, strlen(cfg->message)) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (cfg->message[0]) {
		enter(l, c, LOAD_PH_REPLY);
		return send_all(c, cfg->message, strlen(cfg->message)) ? true : finish(l, c, LOAD_OUT_RESET);
	}
	/* nothing to send: the handshake completed on our side, which a
	 * server whose accept queue drops handshake ACKs never saw */
	return answered(l, c, LOAD_OUT_CONNECTED);
}

static enum outcome errno_outcome(int err)
{
	switch (err) {
	case ECONNREFUSED: return LOAD_OUT_REFUSED;
	case ECONNRESET: case EPIPE: return LOAD_OUT_RESET;
	case ETIMEDOUT: return LOAD_OUT_TIMEOUT;
	case EADDRNOTAVAIL: case EADDRINUSE: return LOAD_OUT_EADDRNOTAVAIL;
	case EMFILE: case ENFILE: return LOAD_OUT_CLIENT_EMFILE;
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
	lat_add(l, c, LAT_CONNECT, c->t_start);
	ev.data.ptr = c;
	epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
	next_phase(l, c);
}

static bool is_heartbeat(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

/* One STOMP frame (a WebSocket text message). Returns whether c is alive. */
static bool on_stomp(struct load *l, struct lconn *c, const char *p, size_t len)
{
	const struct load_cfg *cfg = l->cfg;
	struct load_stats *st = &l->steps[c->step];
	char cmd[32], v[LOAD_ERR_TEXT];

	if (is_heartbeat((const uint8_t *)p, len)) {
		/* a broker that insists on heart-beats closes a silent client */
		return send_ws_text(c, "\n", 1) || c->phase == LOAD_PH_HOLD ? true : finish(l, c, LOAD_OUT_RESET);
	}
	if (stomp_command(p, len, cmd, sizeof(cmd)))
		return c->phase == LOAD_PH_HOLD ? true : finish(l, c, LOAD_OUT_HTTP_ERROR);
	if (!strcmp(cmd, "MESSAGE"))
		st->messages++;
	if (c->phase == LOAD_PH_HOLD)
		return true; /* after the answer, frames are not ours to judge */
	if (!strcmp(cmd, "ERROR")) {
		if (!st->stomp_error[0]) {
			if (stomp_header(p, len, "message", v, sizeof(v)))
				snprintf(v, sizeof(v), "(no message header)");
			snprintf(st->stomp_error, sizeof(st->stomp_error), "%s", v);
		}
		return finish(l, c, LOAD_OUT_STOMP_ERROR);
	}
	if (c->phase == LOAD_PH_STOMP && !strcmp(cmd, "CONNECTED")) {
		lat_add(l, c, LAT_STOMP, c->t_phase);
		return stomp_send(l, c);
	}
	if (c->phase != LOAD_PH_REPLY)
		return true;
	if (cfg->stomp_mode == LOAD_STOMP_RECEIPT && !strcmp(cmd, "RECEIPT")) {
		lat_add(l, c, LAT_REPLY, c->t_phase);
		return got_ok(l, c);
	}
	if (cfg->stomp_mode == LOAD_STOMP_SUBSCRIBE && !strcmp(cmd, "MESSAGE") &&
	    !stomp_header(p, len, "destination", v, sizeof(v)) && !strcmp(v, cfg->subscribe)) {
		lat_add(l, c, LAT_REPLY, c->t_phase); /* SEND written to MESSAGE read: delivery */
		return got_ok(l, c);
	}
	return true;
}

/* One WebSocket frame after the upgrade. Returns whether c is still alive. */
static bool on_frame(struct load *l, struct lconn *c, const struct ws_frame *f)
{
	if (f->opcode == WS_OP_CLOSE)
		return finish(l, c, LOAD_OUT_CLOSED);
	if (l->cfg->stomp && f->opcode == WS_OP_TEXT)
		return on_stomp(l, c, (const char *)f->payload, f->len);
	if (l->cfg->stomp || c->phase != LOAD_PH_REPLY)
		return true;
	lat_add(l, c, LAT_REPLY, c->t_phase);
	return got_ok(l, c);
}

/* Frames in c->in; returns whether c is still alive. */
static bool read_frames(struct load *l, struct lconn *c)
{
	while (c->len) {
		struct ws_frame f;
		long used = ws_frame_decode(c->in, c->len, sizeof(c->in) - 14, &f);

		if (used == 0)
			return true;
		if (used < 0) {
			if (c->phase != LOAD_PH_HOLD)
				return finish(l, c, LOAD_OUT_HTTP_ERROR);
			c->len = 0; /* a held client does not judge what it cannot parse */
			return true;
		}
		if (!on_frame(l, c, &f))
			return false;
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
	}
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
	if (c->phase == LOAD_PH_HOLD && (!l->cfg->ws_path || !l->cfg->stomp)) {
		c->len = 0; /* anything the server pushes while held */
		return;
	}
	c->len += n;
	if (c->phase == LOAD_PH_UPGRADE) {
		int status;
		bool accept_ok;
		int used = ws_client_response((char *)c->in, c->len, c->key, &status, &accept_ok);

		if (!used) {
			if (c->len == sizeof(c->in))
				finish(l, c, LOAD_OUT_HTTP_ERROR);
			return;
		}
		if (status != 101) {
			finish(l, c, LOAD_OUT_HTTP_ERROR);
			return;
		}
		if (!accept_ok) {
			finish(l, c, LOAD_OUT_WS_BAD_ACCEPT);
			return;
		}
		lat_add(l, c, LAT_UPGRADE, c->t_phase);
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
		if (!next_phase(l, c) || c->len == 0)
			return;
	}
	if (!l->cfg->ws_path) {
		c->len = 0;
		if (c->phase == LOAD_PH_REPLY) { /* plain TCP: any answer */
			lat_add(l, c, LAT_REPLY, c->t_phase);
			got_ok(l, c);
		}
		return;
	}
	read_frames(l, c);
}

/* The next source address of this worker's share, round robin. */
static const struct sockaddr_storage *next_source(struct load *l)
{
	long i = (l->worker + l->nworkers * l->source_next++) % l->cfg->nsources;

	return &l->cfg->sources[i];
}

static void open_one(struct load *l, int step)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP };
	struct load_stats *st = &l->steps[step];
	struct lconn *c;
	double now = mono_now();
	int fd, one = 1;

	if (!st->opened++)
		st->t_first = now;
	st->t_last = now;
	fd = socket(l->cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		st->outcomes[errno_outcome(errno) == LOAD_OUT_CLIENT_EMFILE ? LOAD_OUT_CLIENT_EMFILE : LOAD_OUT_OTHER]++;
		return;
	}
	if (l->cfg->nsources) {
		const struct sockaddr_storage *src = next_source(l);

		/* the port is picked at connect(), per destination, so each
		 * source address has the whole ephemeral range per server */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)src,
			 src->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6))) {
			st->outcomes[errno_outcome(errno)]++;
			close(fd);
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&l->cfg->addr, l->cfg->addrlen) && errno != EINPROGRESS) {
		st->outcomes[errno_outcome(errno)]++;
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		st->outcomes[LOAD_OUT_OTHER]++;
		close(fd);
		return;
	}
	c->fd = fd;
	c->step = step;
	c->phase = LOAD_PH_CONNECT;
	c->t_start = now;
	c->deadline = now + l->cfg->timeout;
	ev.data.ptr = c;
	epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
	list_push(&l->active, c);
	l->active_in_step[step]++;
	l->in_flight++;
}

/* This worker's share of step s: clients and rate. */
static long share(const struct load *l, long n)
{
	return n / l->nworkers + (l->worker < n % l->nworkers);
}

/* Seconds after the step began at which client k (0-based) is due: at the
 * rate, or (--ramp, first step) with the rate rising linearly from 0. */
static double due_at(const struct load *l, int s, long k)
{
	double rate = l->cfg->rates[s] / l->nworkers, ramp = s == 0 ? l->cfg->ramp : 0;

	if (rate <= 0)
		return 0;
	if (ramp > 0 && k <= rate * ramp / 2)
		return sqrt(2 * ramp * k / rate);
	return k / rate + (ramp > 0 ? ramp / 2 : 0);
}

static void progress(struct load *l, int s, double now)
{
	const struct load_stats *st = &l->steps[s];
	long failed = 0;

	for (int i = LOAD_OUT_CONNECTED + 1; i < LOAD_OUT_MAX; i++)
		failed += st->outcomes[i];
	fprintf(stderr, "connscope-load: %4.0f s  step %d  opened %ld/%ld  ok %ld  connected %ld  failed %ld  "
		"in flight %ld\n", now - l->t_start, s + 1, st->opened, l->cfg->step_conns[s],
		st->outcomes[LOAD_OUT_OK], st->outcomes[LOAD_OUT_CONNECTED], failed, l->in_flight);
}

enum until { UNTIL_STEP_DONE, UNTIL_CTL, UNTIL_ALL_CLOSED };

/* The epoll loop: opens step s's clients on schedule (UNTIL_STEP_DONE) and
 * runs until what `until` waits for. */
static void pump(struct load *l, int s, enum until until, int ctl)
{
	struct epoll_event evs[MAX_EVENTS];
	long want = until == UNTIL_STEP_DONE ? share(l, l->cfg->step_conns[s]) : 0;
	struct load_stats *st = &l->steps[s];
	double t0 = mono_now(), next_progress = t0 + 1;
	bool ctl_ready = false;

	if (until == UNTIL_STEP_DONE)
		st->t_start = t0;
	for (;;) {
		double now = mono_now(), wait = 1;
		struct lconn *heads[3];
		int n;

		for (int i = 0; i < OPEN_BATCH && st->opened < want && due_at(l, s, st->opened) <= now - t0; i++)
			open_one(l, s);
		while (l->active.head && l->active.head->deadline <= now)
			finish(l, l->active.head, LOAD_OUT_TIMEOUT);
		while (l->settling.head && l->settling.head->deadline <= now)
			settled(l, l->settling.head);
		while (l->held.head && l->held.head->deadline <= now)
			finish(l, l->held.head, LOAD_OUT_OK);
		if (until == UNTIL_STEP_DONE && st->opened == want && !l->active_in_step[s]) {
			st->t_done = now;
			return;
		}
		if (until == UNTIL_CTL && ctl_ready)
			return;
		if (until == UNTIL_ALL_CLOSED && !l->in_flight)
			return;
		if (st->opened < want && until == UNTIL_STEP_DONE)
			wait = due_at(l, s, st->opened) - (now - t0);
		heads[0] = l->active.head;
		heads[1] = l->settling.head;
		heads[2] = l->held.head;
		for (int i = 0; i < 3; i++)
			if (heads[i] && heads[i]->deadline - now < wait)
				wait = heads[i]->deadline - now;
		n = epoll_wait(l->ep, evs, MAX_EVENTS, wait > 0 ? (int)ceil(wait * 1000) : 0);
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;

			if (evs[i].data.ptr == &ctl_marker) {
				char b;

				/* "go on", or the parent is gone: either way, go on */
				if (read(ctl, &b, 1) < 0 && errno == EINTR)
					continue;
				ctl_ready = true;
				epoll_ctl(l->ep, EPOLL_CTL_DEL, ctl, NULL);
				continue;
			}
			if (c->phase == LOAD_PH_CONNECT)
				on_connected(l, c);
			else
				on_readable(l, c);
		}
		now = mono_now();
		if (l->cfg->progress && now >= next_progress) {
			progress(l, s, now);
			next_progress += 1;
		}
	}
}

static int stats_alloc(struct load *l)
{
	for (int s = 0; s < l->cfg->nsteps; s++)
		for (int i = 0; i < LAT_MAX; i++) {
			l->steps[s].lat[i] = calloc(l->cfg->step_conns[s] + 1, sizeof(double));
			if (!l->steps[s].lat[i])
				return -ENOMEM;
		}
	return 0;
}

/* Fetches connscope's diagnosis over the step that just ended. One warning
 * when connscope cannot be reached; after that the run does not ask again. */
static void fetch_verdict(struct load *l, int s)
{
	static bool warned;
	struct load_stats *st = &l->steps[s];
	char path[128], err[256];
	double window = mono_now() - st->t_start;

	if (!l->cfg->connscope || warned)
		return;
	snprintf(path, sizeof(path), "/api/v1/diagnosis?window=%.1fs", ceil(window * 10) / 10);
	if (load_http_get_json(l->cfg->connscope, path, DIAG_TIMEOUT_SECONDS, &l->diag[s], err, sizeof(err))) {
		warned = true;
		fprintf(stderr, "connscope-load: warning: no verdict from connscope at %s (%s); "
			"the report shows the clients' outcomes only\n", l->cfg->connscope, err);
	}
}

/* Writes (or reads) all len bytes over a worker's pipe; false on EOF or error. */
static bool io_all(int fd, void *buf, size_t len, bool writing)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = writing ? write(fd, (char *)buf + done, len - done) :
				      read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	return io_all(fd, (void *)buf, len, true);
}

static bool read_all(int fd, void *buf, size_t len)
{
	return io_all(fd, buf, len, false);
}

/* One process's part of the run. With a parent (res >= 0), it says "step
 * done" on res and waits for "go on" on ctl while serving its held clients;
 * at the end it hands over its results. */
static int run_share(struct load *l, int res, int ctl)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl_marker };
	int nsteps = l->cfg->nsteps;

	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -errno;
	for (int s = 0; s < nsteps; s++) {
		pump(l, s, UNTIL_STEP_DONE, -1);
		if (res < 0) {
			fetch_verdict(l, s);
			continue;
		}
		if (write(res, "S", 1) != 1)
			return -EPIPE;
		if (s + 1 < nsteps) {
			epoll_ctl(l->ep, EPOLL_CTL_ADD, ctl, &ev);
			pump(l, s, UNTIL_CTL, ctl);
		}
	}
	pump(l, nsteps - 1, UNTIL_ALL_CLOSED, -1);
	close(l->ep);
	if (res < 0)
		return 0;
	for (int s = 0; s < nsteps; s++) {
		struct load_stats *st = &l->steps[s];

		if (!write_all(res, st, sizeof(*st)))
			return -EPIPE;
		for (int i = 0; i < LAT_MAX; i++)
			if (!write_all(res, st->lat[i], st->nlat[i] * sizeof(double)))
				return -EPIPE;
	}
	return 0;
}

/* Adds one worker's results (read from fd) to l's. */
static int merge_from(struct load *l, int fd)
{
	for (int s = 0; s < l->cfg->nsteps; s++) {
		struct load_stats in, *st = &l->steps[s];

		if (!read_all(fd, &in, sizeof(in)))
			return -EPIPE;
		if (!st->opened || (in.opened && in.t_first < st->t_first))
			st->t_first = in.t_first;
		if (in.t_last > st->t_last)
			st->t_last = in.t_last;
		if (!st->t_start || in.t_start < st->t_start)
			st->t_start = in.t_start;
		if (in.t_done > st->t_done)
			st->t_done = in.t_done;
		st->opened += in.opened;
		for (int i = 0; i < LOAD_OUT_MAX; i++)
			st->outcomes[i] += in.outcomes[i];
		for (int i = 0; i < LOAD_PH_MAX; i++)
			st->timeouts[i] += in.timeouts[i];
		st->lost_in_hold += in.lost_in_hold;
		st->messages += in.messages;
		if (!st->stomp_error[0])
			memcpy(st->stomp_error, in.stomp_error, sizeof(st->stomp_error));
		for (int i = 0; i < LAT_MAX; i++) {
			if (st->nlat[i] + in.nlat[i] > l->cfg->step_conns[s] ||
			    !read_all(fd, st->lat[i] + st->nlat[i], in.nlat[i] * sizeof(double)))
				return -EPIPE;
			st->nlat[i] += in.nlat[i];
		}
	}
	return 0;
}

/* cfg->workers processes, each with its own fds; the parent only paces the
 * steps (all workers start a step together), asks connscope for each step's
 * verdict, and merges what the workers counted. */
static int run_workers(struct load *l)
{
	int n = l->cfg->workers, res[LOAD_MAX_WORKERS], ctl[LOAD_MAX_WORKERS], err = 0;
	pid_t pids[LOAD_MAX_WORKERS];
	int started = 0;

	fflush(NULL);
	for (int w = 0; w < n; w++) {
		int rp[2], cp[2];

		if (pipe2(rp, O_CLOEXEC) || pipe2(cp, O_CLOEXEC)) {
			err = -errno;
			goto cleanup;
		}
		pids[w] = fork();
		if (pids[w] < 0) {
			err = -errno;
			close(rp[0]), close(rp[1]), close(cp[0]), close(cp[1]);
			goto cleanup;
		}
		if (pids[w] == 0) {
			for (int i = 0; i < w; i++)
				close(res[i]), close(ctl[i]);
			close(rp[0]);
			close(cp[1]);
			l->worker = w;
			l->nworkers = n;
			_exit(run_share(l, rp[1], cp[0]) ? 1 : 0);
		}
		close(rp[1]);
		close(cp[0]);
		res[w] = rp[0];
		ctl[w] = cp[1];
		started++;
	}
	for (int s = 0; s < l->cfg->nsteps; s++) {
		for (int w = 0; w < n; w++) {
			char b;

			if (!read_all(res[w], &b, 1)) {
				err = -EPIPE;
				goto cleanup;
			}
		}
		fetch_verdict(l, s);
		if (s + 1 < l->cfg->nsteps)
			for (int w = 0; w < n; w++)
				if (!write_all(ctl[w], "G", 1)) {
					err = -EPIPE;
					goto cleanup;
				}
	}
	for (int w = 0; w < n; w++) {
		err = merge_from(l, res[w]);
		if (err)
			goto cleanup;
	}
cleanup:
	for (int w = 0; w < started; w++) {
		int st;

		close(res[w]);
		close(ctl[w]);
		if (err)
			kill(pids[w], SIGTERM);
		if (waitpid(pids[w], &st, 0) == pids[w] && (!WIFEXITED(st) || WEXITSTATUS(st)) && !err)
			err = -EPIPE;
	}
	if (err == -EPIPE)
		fprintf(stderr, "connscope-load: a worker process failed before handing over its results\n");
	return err;
}

int load_run(struct load *l)
{
	int err = stats_alloc(l);

	if (err)
		return err;
	l->t_start = mono_now();
	if (l->cfg->workers > 1) {
		err = run_workers(l);
	} else {
		l->nworkers = 1;
		err = run_share(l, -1, -1);
	}
	l->t_end = mono_now();
	return err;
}

void load_free(struct load *l)
{
	for (int s = 0; s < LOAD_MAX_STEPS; s++) {
		for (int i = 0; i < LAT_MAX; i++)
			free(l->steps[s].lat[i]);
		cJSON_Delete(l->diag[s]);
	}
}
