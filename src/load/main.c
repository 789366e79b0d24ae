// SPDX-License-Identifier: MIT
/* Command line of connscope-load (load.c is the engine, report.c the report). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "errmsg.h"
#include "load.h"
#include "netutil.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: connscope-load HOST:PORT [--rate N] [--connections N | --duration S]\n"
		"         [--steps N,N,... --step-seconds S] [--ramp S] [--timeout S] [--hold S]\n"
		"         [--websocket PATH [--stomp [--receipt | --subscribe DEST] [--settle S]]]\n"
		"         [--message TEXT] [--source ADDR[-ADDR]] [--workers N] [--connscope URL] [--json]\n"
		"Opens connections at a paced rate and reports what each client got.\n"
		"  --rate N          connects per second (default 1000; 0: all at once)\n"
		"  --connections N   how many (default 1000)\n"
		"  --duration S      or: open at --rate for S seconds\n"
		"  --steps N,N,...   rates run one after the other, each for --step-seconds S;\n"
		"                    each step is reported apart (outcomes, latency by phase,\n"
		"                    achieved rate), then the total. Held clients stay held.\n"
		"  --ramp S          reach the (first) rate linearly over S seconds\n"
		"  --timeout S       a client not answered within S seconds is a timeout (default 5)\n"
		"  --hold S          keep answered clients open S seconds (default 0)\n"
		"  --websocket PATH  HTTP/1.1 upgrade to PATH, check 101 and Sec-WebSocket-Accept,\n"
		"                    send --message in a masked text frame, wait for a frame back\n"
		"  --stomp           over the WebSocket: CONNECT (heart-beat 0,0), wait for\n"
		"                    CONNECTED, SEND --message to --send-to; ok when no ERROR frame\n"
		"                    and no close came within --settle S (default 0.5) of the SEND.\n"
		"                    Brokers that send no RECEIPT (Spring's simple broker) work.\n"
		"  --receipt         SEND asks for a RECEIPT; ok needs it\n"
		"  --subscribe DEST  SUBSCRIBE to DEST before the SEND; ok needs a MESSAGE on DEST\n"
		"                    (delivery latency is the 'reply' phase)\n"
		"  --send-to DEST    STOMP SEND destination (default /app/location)\n"
		"  --message TEXT    payload (plain TCP: sent, any reply is ok; default \"hello\"\n"
		"                    with --websocket, none with plain TCP: see 'connected')\n"
		"  --source A[-B]    spread clients over local addresses A..B (IPv4 or IPv6), each\n"
		"                    with its own ephemeral ports: beyond ~28,000 connections\n"
		"  --workers N       N client processes, each with its own fd limit; one report\n"
		"  --connscope URL   after each step, print the verdict of the connscope daemon\n"
		"                    at URL (http://127.0.0.1:9477) over that step\n"
		"  --json            report as JSON on stdout (steps[] per step)\n"
		"Outcomes: ok means the server answered (a reply, CONNECTED with no ERROR, a\n"
		"RECEIPT or a MESSAGE). connected (plain TCP, nothing sent) means only that the\n"
		"handshake completed on the client's side, which proves nothing: a server whose\n"
		"accept queue drops handshake ACKs never saw the client. Client-side limits are\n"
		"their own outcomes: client_emfile (fix: --workers), eaddrnotavail (fix: --source).\n");
}

static int num(const char *opt, const char *v, double lo, double hi, double *out)
{
	return args_double("connscope-load", opt, v, lo, hi, out);
}

static int secs(const char *opt, const char *v, double lo, double hi, double *out)
{
	return args_seconds("connscope-load", opt, v, lo, hi, out);
}

static int parse_steps(const char *v, struct load_cfg *cfg)
{
	char buf[512], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", v);
	cfg->nsteps = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->nsteps == LOAD_MAX_STEPS)
			return errmsg(-EINVAL, "--steps %s: at most %d steps", v, LOAD_MAX_STEPS);
		if (num("--steps", tok, 0.001, 1e6, &cfg->rates[cfg->nsteps]))
			return -EINVAL;
		cfg->nsteps++;
	}
	return cfg->nsteps ? 0 : errmsg(-EINVAL, "--steps %s: expected rates like 1000,5000,10000", v);
}

/* "A" or "A-B": every address from A to B (the last 64 bits of IPv6 count). */
static int parse_sources(const char *v, struct load_cfg *cfg)
{
	char a[INET6_ADDRSTRLEN + 2], b[INET6_ADDRSTRLEN + 2];
	const char *dash = strchr(v, '-');
	int fam = strchr(v, ':') ? AF_INET6 : AF_INET;
	union { struct in_addr v4; struct in6_addr v6; } x, y;
	unsigned long long lo, hi;

	snprintf(a, sizeof(a), "%.*s", dash ? (int)(dash - v) : (int)strlen(v), v);
	snprintf(b, sizeof(b), "%s", dash ? dash + 1 : a);
	if (inet_pton(fam, a, &x) != 1 || inet_pton(fam, b, &y) != 1)
		return errmsg(-EINVAL, "--source %s: expected ADDR or ADDR-ADDR, e.g. 127.0.0.1-127.0.0.16", v);
	if (fam != cfg->addr.ss_family)
		return errmsg(-EINVAL, "--source %s: the target is IPv%d: give IPv%d source addresses", v,
			      cfg->addr.ss_family == AF_INET ? 4 : 6, cfg->addr.ss_family == AF_INET ? 4 : 6);
	if (fam == AF_INET) {
		lo = ntohl(x.v4.s_addr);
		hi = ntohl(y.v4.s_addr);
	} else {
		if (memcmp(&x.v6, &y.v6, 8))
			return errmsg(-EINVAL, "--source %s: the range may differ in the last 64 bits only", v);
		lo = be64toh(*(uint64_t *)(x.v6.s6_addr + 8));
		hi = be64toh(*(uint64_t *)(y.v6.s6_addr + 8));
	}
	if (hi < lo || hi - lo >= LOAD_MAX_SOURCES)
		return errmsg(-EINVAL, "--source %s: expected a rising range of at most %d addresses", v,
			      LOAD_MAX_SOURCES);
	cfg->nsources = (long)(hi - lo + 1);
	cfg->sources = calloc(cfg->nsources, sizeof(*cfg->sources));
	if (!cfg->sources)
		return errmsg(-ENOMEM, "--source %s: out of memory", v);
	for (long i = 0; i < cfg->nsources; i++) {
		if (fam == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&cfg->sources[i];

			s4->sin_family = AF_INET;
			s4->sin_addr.s_addr = htonl((uint32_t)(lo + i));
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cfg->sources[i];
			uint64_t low = htobe64(lo + i);

			s6->sin6_family = AF_INET6;
			s6->sin6_addr = x.v6;
			memcpy(s6->sin6_addr.s6_addr + 8, &low, 8);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "connections", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "steps", required_argument, NULL, 'S' },
		{ "step-seconds", required_argument, NULL, 'E' },
		{ "ramp", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' },
		{ "hold", required_argument, NULL, 'H' },
		{ "websocket", required_argument, NULL, 'w' },
		{ "stomp", no_argument, NULL, 's' },
		{ "receipt", no_argument, NULL, 'c' },
		{ "subscribe", required_argument, NULL, 'b' },
		{ "send-to", required_argument, NULL, 'T' },
		{ "settle", required_argument, NULL, 'e' },
		{ "message", required_argument, NULL, 'm' },
		{ "source", required_argument, NULL, 'o' },
		{ "workers", required_argument, NULL, 'W' },
		{ "connscope", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct load_cfg cfg = { .rates = { 1000 }, .step_conns = { 1000 }, .nsteps = 1, .timeout = 5,
				.settle = 0.5, .send_to = "/app/location", .workers = 1 };
	struct load l = { .cfg = &cfg };
	const char *steps = NULL, *source = NULL;
	double v, duration = 0;
	bool json = false, receipt = false;
	long limit, per_process = 0, total = 0;
	int c, err, rc = 2;

	errmsg_set_program("connscope-load");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:n:d:S:E:R:t:H:w:scb:T:e:m:o:W:C:jh", opts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 'r': err = num("--rate", optarg, 0, 1e6, &cfg.rates[0]); break;
		case 'n': err = num("--connections", optarg, 1, 1e7, &v); cfg.step_conns[0] = (long)v; break;
		case 'd': err = secs("--duration", optarg, 0.001, 86400, &duration); break;
		case 'S': steps = optarg; break;
		case 'E': err = secs("--step-seconds", optarg, 0.1, 86400, &cfg.step_seconds); break;
		case 'R': err = secs("--ramp", optarg, 0.001, 86400, &cfg.ramp); break;
		case 't': err = secs("--timeout", optarg, 0.001, 3600, &cfg.timeout); break;
		case 'H': err = secs("--hold", optarg, 0, 86400, &cfg.hold); break;
		case 'w': cfg.ws_path = optarg; break;
		case 's': cfg.stomp = true; break;
		case 'c': receipt = true; break;
		case 'b': cfg.subscribe = optarg; break;
		case 'T': cfg.send_to = optarg; break;
		case 'e': err = secs("--settle", optarg, 0, 60, &cfg.settle); break;
		case 'm': cfg.message = optarg; break;
		case 'o': source = optarg; break;
		case 'W': err = num("--workers", optarg, 1, LOAD_MAX_WORKERS, &v); cfg.workers = (int)v; break;
		case 'C': cfg.connscope = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "connscope-load: %s %s (see --help)\n", argv[optind - 1],
				c == ':' ? "needs a value" : "is not an option");
			return 2;
		}
		if (err)
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "connscope-load: give one HOST:PORT (see --help)\n");
		return 2;
	}
	if (cfg.stomp && !cfg.ws_path) {
		fprintf(stderr, "connscope-load: --stomp runs over a WebSocket: add --websocket PATH\n");
		return 2;
	}
	if ((receipt || cfg.subscribe) && !cfg.stomp) {
		fprintf(stderr, "connscope-load: --receipt and --subscribe are STOMP's: add --stomp\n");
		return 2;
	}
	if (receipt && cfg.subscribe) {
		fprintf(stderr, "connscope-load: ok needs either a RECEIPT or a MESSAGE: give --receipt or --subscribe\n");
		return 2;
	}
	cfg.stomp_mode = receipt ? LOAD_STOMP_RECEIPT : cfg.subscribe ? LOAD_STOMP_SUBSCRIBE : LOAD_STOMP_SETTLE;
	if (steps) {
		if (duration > 0 || cfg.step_seconds <= 0) {
			fprintf(stderr, "connscope-load: --steps needs --step-seconds S (and no --duration)\n");
			return 2;
		}
		if (parse_steps(steps, &cfg))
			return 2;
		for (int s = 0; s < cfg.nsteps; s++)
			cfg.step_conns[s] = (long)(cfg.rates[s] * cfg.step_seconds + 0.5);
	} else if (cfg.step_seconds > 0) {
		fprintf(stderr, "connscope-load: --step-seconds goes with --steps N,N,...\n");
		return 2;
	} else if (duration > 0) {
		if (cfg.rates[0] <= 0) {
			fprintf(stderr, "connscope-load: --duration needs a --rate above 0\n");
			return 2;
		}
		cfg.step_conns[0] = (long)(cfg.rates[0] * duration + 0.5);
	}
	if (!cfg.message)
		cfg.message = cfg.ws_path ? "hello" : "";
	snprintf(cfg.target, sizeof(cfg.target), "%s", argv[optind]);
	snprintf(cfg.host_header, sizeof(cfg.host_header), "%s", argv[optind]);
	if (net_parse_hostport("target", argv[optind], &cfg.addr, &cfg.addrlen))
		return 2;
	if (source && parse_sources(source, &cfg))
		goto cleanup;
	if (cfg.connscope && strncmp(cfg.connscope, "http://", 7)) {
		fprintf(stderr, "connscope-load: --connscope %s: expected http://HOST:PORT\n", cfg.connscope);
		goto cleanup;
	}
	for (int s = 0; s < cfg.nsteps; s++)
		total += cfg.step_conns[s];
	/* held or opened at once, a process's whole share is open together */
	per_process = total / cfg.workers + 1;
	limit = net_raise_nofile(0);
	if (limit > 0 && per_process > limit - 16 && (cfg.hold > 0 || cfg.rates[0] == 0))
		fprintf(stderr, "connscope-load: %ld connections may be open at once in each of %d process(es), "
			"each may hold %ld fds: the rest will be client_emfile (add --workers)\n",
			per_process, cfg.workers, limit);
	cfg.progress = cfg.workers == 1 && !steps &&
		       total / (cfg.rates[0] > 0 ? cfg.rates[0] : 1e9) + cfg.timeout > 2;
	err = load_run(&l);
	if (err) {
		fprintf(stderr, "connscope-load: %s\n", strerror(-err));
		rc = 1;
		goto cleanup;
	}
	load_report(&l, json, stdout);
	rc = 0;
cleanup:
	load_free(&l);
	free(cfg.sources);
	return rc;
}
