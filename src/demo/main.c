// SPDX-License-Identifier: MIT
/* connscope-demo-server: a small epoll server (plain TCP echo, WebSocket,
 * enough STOMP for CONNECT/SEND) with knobs that recreate each cause
 * connscope names: small backlog, slow acceptor, connection cap, fd limit,
 * close with unread data; --workers N for SO_REUSEPORT acceptor processes.
 * Prints its own counts as JSON (SIGUSR1, exit), summed over workers. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "args.h"
#include "clock.h"
#include "errmsg.h"
#include "netutil.h"
#include "stomp.h"
#include "ws.h"

#define IN_BUF 4096
#define MAX_EVENTS 256
#define DEMO_MAX_WORKERS 64

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
	int workers;               /* 0: this process accepts */
} cfg = { .listen = "127.0.0.1:8080", .backlog = 100, .max_connections = -1 };

/* Only longs: a worker's counts are summed field by field (demo_stats_sum). */
struct demo_stats {
	long accepted, open, peak_open, closed, emfile, accept_errors;
	long accepts_at_cap; /* accepts that took the place of a close while held at the cap */
	long ws_upgrades, ws_bad_requests, stomp_connected, stomp_sends, answered, aborted;
};

/* This process's counts: its own, or its slot in the memory it shares with
 * the parent (--workers), which prints the sum. */
static struct demo_stats own_stats, *stats = &own_stats;

static struct conn **conns;
static long nconns_slots;
static int ep, lfd;
static bool held_at_cap; /* open reached --max-connections since the last accept */

static void print_stats(const struct demo_stats *s)
{
	printf("{\"accepted\":%ld,\"open\":%ld,\"peak_open\":%ld,\"closed\":%ld,\"emfile\":%ld,"
	       "\"accept_errors\":%ld,\"accepts_at_cap\":%ld,\"ws_upgrades\":%ld,\"ws_bad_requests\":%ld,"
	       "\"stomp_connected\":%ld,\"stomp_sends\":%ld,\"answered\":%ld,\"aborted\":%ld,"
	       "\"workers\":%d}\n",
	       s->accepted, s->open, s->peak_open, s->closed, s->emfile, s->accept_errors, s->accepts_at_cap,
	       s->ws_upgrades, s->ws_bad_requests, s->stomp_connected, s->stomp_sends,
	       s->answered, s->aborted, cfg.workers);
	fflush(stdout);
}

static void demo_stats_sum(const struct demo_stats *w, int n, struct demo_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < n; i++)
		for (size_t f = 0; f < sizeof(*sum) / sizeof(long); f++)
			((long *)sum)[f] += ((const long *)&w[i])[f];
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
		"  --workers N            N processes, each with its own listening socket on the\n"
		"                         port (SO_REUSEPORT) and its own fd limit; attach connscope\n"
		"                         to this (the parent) PID. Counts are summed over workers;\n"
		"                         --backlog, --max-connections, --nofile apply per worker\n"
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
		{ "workers", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char flag[32];
	int c;
	long v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:b:d:m:n:w:ah", opts, NULL)) != -1) {
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
		else if (c == 'w' && v > DEMO_MAX_WORKERS)
			return errmsg(-EINVAL, "--workers %ld: at most %d", v, DEMO_MAX_WORKERS);
		else if (c == 'w')
			cfg.workers = (int)v;
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
	stats->open--;
	stats->closed++;
}

static void reply(struct conn *c, const void *buf, size_t len)
{
	/* replies are small; a full socket buffer just loses the demo's answer */
	if (write(c->fd, buf, len) == (ssize_t)len && !c->answered) {
		c->answered = true;
		stats->answered++;
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
		stats->stomp_connected++;
		n = stomp_frame(out, sizeof(out), "CONNECTED", "version:1.2\nheart-beat:0,0\n", NULL);
		ws_text(c, out, n);
		return;
	}
	if (!strcmp(cmd, "SEND"))
		stats->stomp_sends++;
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

			stats->ws_bad_requests++;
			reply(c, bad, sizeof(bad) - 1);
			return false;
		}
		stats->ws_upgrades++;
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
		stats->aborted++;
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

		if (cfg.max_connections >= 0 && stats->open >= cfg.max_connections)
			return -1; /* until a connection closes */
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == EMFILE || errno == ENFILE) {
				stats->emfile++;
				return mono_now() + 0.01;
			}
			stats->accept_errors++;
			return 0;
		}
		c = fd < nconns_slots ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			stats->accept_errors++;
			continue;
		}
		c->fd = fd;
		conns[fd] = c;
		ev.data.fd = fd;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		stats->accepted++;
		stats->accepts_at_cap += held_at_cap;
		held_at_cap = false;
		if (++stats->open > stats->peak_open)
			stats->peak_open = stats->open;
		if (cfg.accept_delay_ms)
			return mono_now() + cfg.accept_delay_ms / 1000.0;
	}
	return 0;
}

/* The epoll loop on lfd until SIGINT/SIGTERM; a worker (quiet) leaves
 * printing its counts to the parent. */
static int serve(int sfd, bool quiet)
{
	struct epoll_event evs[MAX_EVENTS], ev = { .events = EPOLLIN };
	bool listening = true;
	double resume_at = 0;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
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
		if (cfg.max_connections >= 0 && stats->open >= cfg.max_connections)
			held_at_cap = true;
		want = resume_at == 0 && (cfg.max_connections < 0 || stats->open < cfg.max_connections);
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
				if (!quiet)
					print_stats(stats);
				if (si.ssi_signo != SIGUSR1)
					return 0;
			} else if (fd < nconns_slots && conns[fd]) {
				on_readable(conns[fd]);
			}
		}
	}
}

static void print_ready(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	/* sin_port and sin6_port sit at the same offset */
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	printf("READY %u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
}

/* A listening socket of its own on addr (port resolved), in the port's
 * SO_REUSEPORT group: the kernel spreads connections over the workers. */
static int reuseport_listen(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, cfg.backlog)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* --workers N: the parent reserves the port (bound, never listening, so it
 * gets no connections), forks N workers that each listen and accept, and
 * answers SIGUSR1/SIGINT/SIGTERM with the workers' counts summed. */
static int run_workers(int sfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct demo_stats *shared, sum;
	pid_t pids[DEMO_MAX_WORKERS];
	int rfd, ready[2], one = 1, started = 0, rc = 1;
	char b;

	if (net_parse_hostport("--listen", cfg.listen, &ss, &len))
		return 2;
	rfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rfd < 0) {
		errmsg(-errno, "socket for %s: %s", cfg.listen, strerror(errno));
		return 1;
	}
	setsockopt(rfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(rfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(rfd, (struct sockaddr *)&ss, len)) {
		errmsg(-errno, "cannot bind %s: %s (pick another with --listen)", cfg.listen, strerror(errno));
		close(rfd);
		return 1;
	}
	getsockname(rfd, (struct sockaddr *)&ss, &len);
	shared = mmap(NULL, cfg.workers * sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED || pipe2(ready, O_CLOEXEC)) {
		errmsg(-errno, "workers' shared counts: %s", strerror(errno));
		close(rfd);
		return 1;
	}
	memset(shared, 0, cfg.workers * sizeof(*shared));
	fflush(stdout);
	for (int w = 0; w < cfg.workers; w++) {
		pids[w] = fork();
		if (pids[w] < 0) {
			errmsg(-errno, "fork worker %d: %s", w, strerror(errno));
			goto cleanup;
		}
		if (pids[w] == 0) {
			close(ready[0]);
			stats = &shared[w];
			lfd = reuseport_listen(&ss, len);
			if (lfd < 0) {
				errmsg(lfd, "worker %d cannot listen on %s: %s", w, cfg.listen, strerror(-lfd));
				_exit(1);
			}
			if (write(ready[1], "R", 1) != 1)
				_exit(1);
			close(ready[1]);
			_exit(serve(sfd, true));
		}
		started++;
	}
	close(ready[1]);
	ready[1] = -1;
	for (int w = 0; w < cfg.workers; w++)
		if (read(ready[0], &b, 1) != 1) {
			errmsg(-EIO, "a worker exited before listening");
			goto cleanup;
		}
	print_ready(rfd);
	for (;;) {
		struct signalfd_siginfo si;

		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGUSR1)
			break;
		demo_stats_sum(shared, cfg.workers, &sum);
		print_stats(&sum);
	}
	rc = 0;
cleanup:
	for (int w = 0; w < started; w++)
		kill(pids[w], SIGTERM);
	for (int w = 0; w < started; w++)
		waitpid(pids[w], NULL, 0);
	if (!rc) {
		demo_stats_sum(shared, cfg.workers, &sum);
		print_stats(&sum);
	}
	if (ready[1] >= 0)
		close(ready[1]);
	close(ready[0]);
	close(rfd);
	return rc;
}

int main(int argc, char **argv)
{
	sigset_t mask;
	int sfd;

	errmsg_set_program("connscope-demo-server");
	if (parse(argc, argv))
		return 2;
	nconns_slots = net_raise_nofile(cfg.nofile);
	if (cfg.nofile && nconns_slots != cfg.nofile) {
		fprintf(stderr, "connscope-demo-server: cannot set --nofile %ld (hard limit is lower)\n", cfg.nofile);
		return 1;
	}
	conns = calloc(nconns_slots, sizeof(*conns));
	if (!conns)
		return 1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (cfg.workers)
		return run_workers(sfd);
	lfd = net_listen("--listen", cfg.listen, cfg.backlog, true);
	if (lfd < 0)
		return 1;
	print_ready(lfd);
	return serve(sfd, false);
}
