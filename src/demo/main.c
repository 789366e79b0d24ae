// SPDX-License-Identifier: MIT
/* connscope-demo-server: a small epoll server (plain TCP echo, WebSocket,
 * enough STOMP for CONNECT/SEND) with knobs that recreate each cause
 * connscope names: small backlog, slow acceptor, connection cap, fd limit,
 * close with unread data. Prints its own counts as JSON (SIGUSR1, exit). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "args.h"
#include "clock.h"
#include "netutil.h"
#include "stomp.h"
#include "ws.h"

#define IN_BUF 4096
#define MAX_EVENTS 256

enum proto { P_UNKNOWN, P_PLAIN, P_WS };

struct conn {
	int fd;
	enum proto proto;
	bool answered;
	size_t len;
	uint8_t in[IN_BUF];
};

static struct demo_opts {
	const char *listen;
	int backlog;
	int accept_delay_ms;
	long max_connections;
	long nofile;
	bool abort_on_close;
} cfg = { .listen = "127.0.0.1:8080", .backlog = 100, .max_connections = -1 };

static struct demo_stats {
	long accepted, open, peak_open, closed, emfile, accept_errors;
	long ws_upgrades, ws_bad_requests, stomp_connected, stomp_sends, answered, aborted;
} stats;

static struct conn **conns;
static long nconns_slots;
static int ep, lfd;

static void print_stats(void)
{
	printf("{\"accepted\":%ld,\"open\":%ld,\"peak_open\":%ld,\"closed\":%ld,\"emfile\":%ld,"
	       "\"accept_errors\":%ld,\"ws_upgrades\":%ld,\"ws_bad_requests\":%ld,"
	       "\"stomp_connected\":%ld,\"stomp_sends\":%ld,\"answered\":%ld,\"aborted\":%ld}\n",
	       stats.accepted, stats.open, stats.peak_open, stats.closed, stats.emfile, stats.accept_errors,
	       stats.ws_upgrades, stats.ws_bad_requests, stats.stomp_connected, stats.stomp_sends,
	       stats.answered, stats.aborted);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: connscope-demo-server [--listen ADDR:PORT] [--backlog N] [--accept-delay-ms N]\n"
		"                             [--max-connections N] [--nofile N] [--abort-on-close]\n"
		"Echoes plain TCP, speaks WebSocket and STOMP (CONNECT -> CONNECTED, SEND -> RECEIPT).\n"
		"  --listen ADDR:PORT     default 127.0.0.1:8080 (port 0: any; printed as READY <port>)\n"
		"  --backlog N            listen backlog (default 100, Tomcat's acceptCount)\n"
		"  --accept-delay-ms N    pause after each accept (a slow acceptor)\n"
		"  --max-connections N    stop accepting while N are open (Tomcat maxConnections)\n"
		"  --nofile N             RLIMIT_NOFILE soft limit (default: the hard limit)\n"
		"  --abort-on-close       close on the first data without reading it (RST to clients)\n"
		"SIGUSR1 prints the counts as JSON; SIGINT/SIGTERM print them and exit.\n");
}

static int parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "accept-delay-ms", required_argument, NULL, 'd' },
		{ "max-connections", required_argument, NULL, 'm' },
		{ "nofile", required_argument, NULL, 'n' },
		{ "abort-on-close", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char flag[32];
	int c;
	long v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:b:d:m:n:ah", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == 'a') {
			cfg.abort_on_close = true;
			continue;
		}
		if (c == 'l') {
			cfg.listen = optarg;
			continue;
		}
		if (c == ':' || c == '?') {
			fprintf(stderr, "connscope-demo-server: %s %s (see --help)\n", argv[optind - 1],
				c == ':' ? "needs a value" : "is not an option");
			return -EINVAL;
		}
		if (args_long("connscope-demo-server", args_flag(opts, c, flag, sizeof(flag)), optarg,
			      0, 100000000, &v))
			return -EINVAL;
		if (c == 'b')
			cfg.backlog = (int)v;
		else if (c == 'd')
			cfg.accept_delay_ms = (int)v;
		else if (c == 'm')
			cfg.max_connections = v;
		else
			cfg.nofile = v;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conns[c->fd] = NULL;
	free(c);
	stats.open--;
	stats.closed++;
}

static void reply(struct conn *c, const void *buf, size_t len)
{
	/* replies are small; a full socket buffer just loses the demo's answer */
	if (write(c->fd, buf, len) == (ssize_t)len && !c->answered) {
		c->answered = true;
		stats.answered++;
	}
}

static void ws_text(struct conn *c, const char *payload, size_t len)
{
	uint8_t out[IN_BUF + 16];
	int n = ws_frame_encode(out, sizeof(out), WS_OP_TEXT, payload, len, false);

	if (n > 0)
		reply(c, out, n);
}

/* One WebSocket text message: STOMP frames get STOMP answers, others an echo. */
static void on_message(struct conn *c, const char *msg, size_t len)
{
	char cmd[32], receipt[64], out[256];
	int n;

	if (stomp_command(msg, len, cmd, sizeof(cmd))) {
		ws_text(c, msg, len);
		return;
	}
	if (!strcmp(cmd, "CONNECT") || !strcmp(cmd, "STOMP")) {
		stats.stomp_connected++;
		n = stomp_frame(out, sizeof(out), "CONNECTED", "version:1.2\nheart-beat:0,0\n", NULL);
		ws_text(c, out, n);
		return;
	}
	if (!strcmp(cmd, "SEND"))
		stats.stomp_sends++;
	if (!stomp_header(msg, len, "receipt", receipt, sizeof(receipt))) {
		char hdr[96];

		snprintf(hdr, sizeof(hdr), "receipt-id:%s\n", receipt);
		n = stomp_frame(out, sizeof(out), "RECEIPT", hdr, NULL);
		ws_text(c, out, n);
	}
}

/* Consumes what c->in holds; returns false when the connection must close. */
static bool on_data(struct conn *c)
{
	if (c->proto == P_UNKNOWN)
		c->proto = c->len >= 4 && !memcmp(c->in, "GET ", 4) ? P_WS : P_PLAIN;
	if (c->proto == P_PLAIN) {
		reply(c, c->in, c->len);
		c->len = 0;
		return true;
	}
	if (c->proto == P_WS && !c->answered) {
		char key[WS_KEY_LEN + 1], out[512];
		int n = ws_server_request((char *)c->in, c->len, key);

		if (n == 0)
			return c->len < IN_BUF;
		if (n < 0) {
			static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

			stats.ws_bad_requests++;
			reply(c, bad, sizeof(bad) - 1);
			return false;
		}
		stats.ws_upgrades++;
		reply(c, out, ws_server_response(out, sizeof(out), key));
		memmove(c->in, c->in + n, c->len - n);
		c->len -= n;
	}
	while (c->len) {
		struct ws_frame f;
		long used = ws_frame_decode(c->in, c->len, IN_BUF, &f);

		if (used < 0)
			return false;
		if (used == 0)
			return c->len < IN_BUF;
		if (f.opcode == WS_OP_CLOSE)
			return false;
		if (f.opcode == WS_OP_TEXT)
			on_message(c, (char *)f.payload, f.len);
		memmove(c->in, c->in + used, c->len - used);
		c->len -= used;
	}
	return true;
}

static void on_readable(struct conn *c)
{
	ssize_t n;

	if (cfg.abort_on_close) {
		/* close with the request unread: the kernel answers with RST */
		stats.aborted++;
		conn_close(c);
		return;
	}
	n = read(c->fd, c->in + c->len, IN_BUF - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += n;
	if (!on_data(c))
		conn_close(c);
}

/* Accepts what the knobs allow; returns when to try again (0: on readiness). */
static double accept_some(void)
{
	for (int i = 0; i < 64; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;
		int fd;

		if (cfg.max_connections >= 0 && stats.open >= cfg.max_connections)
			return -1; /* until a connection closes */
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == EMFILE || errno == ENFILE) {
				stats.emfile++;
				return mono_now() + 0.01;
			}
			stats.accept_errors++;
			return 0;
		}
		c = fd < nconns_slots ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			stats.accept_errors++;
			continue;
		}
		c->fd = fd;
		conns[fd] = c;
		ev.data.fd = fd;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		stats.accepted++;
		if (++stats.open > stats.peak_open)
			stats.peak_open = stats.open;
		if (cfg.accept_delay_ms)
			return mono_now() + cfg.accept_delay_ms / 1000.0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS], ev = { .events = EPOLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	bool listening = true;
	double resume_at = 0;
	sigset_t mask;
	int sfd;

	if (parse(argc, argv))
		return 2;
	nconns_slots = net_raise_nofile(cfg.nofile);
	if (cfg.nofile && nconns_slots != cfg.nofile) {
		fprintf(stderr, "connscope-demo-server: cannot set --nofile %ld (hard limit is lower)\n", cfg.nofile);
		return 1;
	}
	conns = calloc(nconns_slots, sizeof(*conns));
	lfd = net_listen("--listen", cfg.listen, cfg.backlog, true);
	if (lfd < 0 || !conns)
		return 1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	getsockname(lfd, (struct sockaddr *)&ss, &sl);
	printf("READY %u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	for (;;) {
		int timeout = -1, n;
		bool want;

		if (resume_at > 0) {
			double left = resume_at - mono_now();

			if (left <= 0)
				resume_at = 0;
			else
				timeout = (int)(left * 1000) + 1;
		}
		want = resume_at == 0 && (cfg.max_connections < 0 || stats.open < cfg.max_connections);
		if (want != listening) {
			ev.data.fd = lfd;
			epoll_ctl(ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, lfd, &ev);
			listening = want;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				double at = accept_some();

				resume_at = at > 0 ? at : 0;
			} else if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				print_stats();
				if (si.ssi_signo != SIGUSR1)
					return 0;
			} else if (fd < nconns_slots && conns[fd]) {
				on_readable(conns[fd]);
			}
		}
	}
}
