// SPDX-License-Identifier: MIT
/* connscope: attach to a server PID, watch why its connections fail, serve
 * /metrics and the diagnosis over HTTP, print a post-mortem on exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "args.h"
#include "collector.h"
#include "diagnose.h"
#include "http.h"
#include "netutil.h"
#include "privs.h"
#include "prom.h"
#include "webconfig.h"

static struct env {
	int pid;
	const char *listen;
	double interval;
	bool verbose;
	const char *web_config;
	struct privs_opts privs;
} env = {
	.listen = "127.0.0.1:9477",
	.interval = 1.0,
	.privs = { .seccomp = true },
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: connscope --pid PID [--listen ADDR:PORT] [--interval SECONDS] [-v]\n"
		"\n"
		"Attaches to a running server (PID and its descendants, including ones forked\n"
		"later) and tells why its connections fail: accept-queue overflow, fd\n"
		"exhaustion, resets on close, a stalled acceptor, OOM kills.\n"
		"\n"
		"  -p, --pid PID          process to watch (required; a thread ID names its process)\n"
		"  -l, --listen ADDR:PORT HTTP address (default 127.0.0.1:9477;\n"
		"                         [::1]:9477 for IPv6; port 0: any, printed at start)\n"
		"  -i, --interval SECONDS snapshot and history tick (default 1, 0.1 to 60)\n"
		"  -w, --web-config FILE  TLS and basic auth, in exporter-toolkit's format\n"
		"                         (tls_server_config, basic_auth_users; see README)\n"
		"  -u, --user NAME        run as this user once attached (keeps only\n"
		"                         CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)\n"
		"      --no-seccomp       skip the syscall allowlist installed after attach\n"
		"  -v, --verbose          libbpf and probe details on stderr\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n"
		"\n"
		"HTTP: /metrics, /api/v1/diagnosis[?window=60s&format=text], /api/v1/snapshot,\n"
		"      /api/v1/history[?seconds=N], /api/v1/events[?limit=N], /healthz\n"
		"On SIGINT, SIGTERM or SIGHUP: prints the post-mortem for the whole run and\n"
		"detaches (SIGHUP does not reopen logs: connscope writes only to stdout/stderr).\n"
		"Needs kernel BTF and root or CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, plus\n"
		"CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for a server of another user; after\n"
		"attaching it keeps only the last two, sets no_new_privs and a seccomp filter.\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "web-config", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	long pid;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:l:i:w:u:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (args_long(NULL, "--pid", optarg, 1, 4194304, &pid)) {
				fprintf(stderr, "connscope: --pid %s: not a process ID\n", optarg);
				return -EINVAL;
			}
			env.pid = (int)pid;
			break;
		case 'l':
			env.listen = optarg;
			break;
		case 'i':
			if (args_seconds("connscope", "--interval", optarg, 0.1, 60, &env.interval))
				return -EINVAL;
			break;
		case 'v':
			env.verbose = true;
			break;
		case 'w':
			env.web_config = optarg;
			break;
		case 'u':
			env.privs.user = optarg;
			break;
		case 'S':
			env.privs.seccomp = false;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("connscope %s\n", CS_VERSION);
			exit(0);
		case ':':
			fprintf(stderr, "connscope: %s needs a value (see --help)\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "connscope: unknown option %s (see --help)\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "connscope: unexpected argument %s (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (!env.pid) {
		fprintf(stderr, "connscope: --pid PID is required (see --help)\n");
		return -EINVAL;
	}
	if (kill(env.pid, 0) && errno == ESRCH) {
		fprintf(stderr, "connscope: PID %d does not exist\n", env.pid);
		return -ESRCH;
	}
	if (env.pid == getpid()) {
		fprintf(stderr, "connscope: --pid %d is connscope itself: give the server's PID\n", env.pid);
		return -EINVAL;
	}
	return privs_resolve_user(&env.privs);
}

/* Whether fd is bound to a loopback address, where no one else can reach it. */
static bool bound_to_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && a6->sin6_addr.s6_addr[12] == 127);
	return false;
}

static void print_postmortem(struct collector *c)
{
	struct cs_snapshot *s = malloc(sizeof(*s));
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point *pts = NULL;
	struct sbuf b;
	char *text;
	int n;

	if (!s || !d)
		goto cleanup;
	collector_snapshot(c, s, -1);
	n = history_copy(collector_history(c), 0, &pts);
	diagnose(s, pts, n < 0 ? 0 : n, d);
	sbuf_init(&b);
	sbuf_printf(&b, "connscope post-mortem: PID %d (%s), %.0f s watched, %llu accepts\n",
		    s->pid, s->comm, s->mono_s - s->started_mono_s,
		    (unsigned long long)s->accepts_total);
	diagnose_render_text(d, &b);
	text = sbuf_take(&b, NULL);
	if (text)
		fputs(text, stdout);
	fflush(stdout);
	free(text);
cleanup:
	free(pts);
	free(s);
	free(d);
}

int main(int argc, char **argv)
{
	struct collector *c = NULL;
	struct http *h = NULL;
	struct webconfig *wc = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	char bound[80];
	double next_tick;
	int err, fd;

	err = parse_args(argc, argv);
	if (err)
		return 2;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (env.web_config && webconfig_new(env.web_config, &wc))
		return 2;
	if (privs_check_attach(env.pid, &env.privs)) {
		webconfig_free(wc);
		return 1;
	}
	fd = http_bind(env.listen);
	if (fd < 0) {
		webconfig_free(wc);
		return 1;
	}
	net_format_local(fd, bound, sizeof(bound));
	if (!bound_to_loopback(fd) && !(wc && wc->cert_pem && wc->nusers))
		fprintf(stderr, "connscope: warning: serving %s beyond loopback %s: anyone who reaches "
			"it can read the metrics (see --web-config)\n", bound,
			wc ? (wc->cert_pem ? "without basic auth" : "without TLS") : "without TLS or auth");
	err = collector_new(env.pid, env.verbose, &c);
	if (err) {
		close(fd);
		webconfig_free(wc);
		return 1;
	}
	/* before http_new starts its thread: capabilities are per thread */
	err = privs_drop(&env.privs);
	if (err) {
		close(fd);
		goto cleanup;
	}
	err = http_new(fd, c, wc, &h);
	if (err)
		goto cleanup;
	fprintf(stderr, "connscope: watching PID %d, serving %s://%s/metrics\n", env.pid,
		wc && wc->cert_pem ? "https" : "http", bound);
	next_tick = mono_now() + env.interval;
	while (!stop) {
		double left = next_tick - mono_now();

		if (left > 0) {
			collector_poll(c, (int)(left * 1000) + 1);
			continue;
		}
		next_tick += env.interval;
		if (next_tick < mono_now())
			next_tick = mono_now() + env.interval;
		if (collector_tick(c))
			fprintf(stderr, "connscope: PID %d exited; serving the last numbers\n", env.pid);
	}
	collector_poll(c, 0);
	collector_tick(c);
	print_postmortem(c);
cleanup:
	http_free(h);
	collector_free(c);
	webconfig_free(wc);
	return err ? 1 : 0;
}
