// SPDX-License-Identifier: MIT
/* Command line of connscope-load (see src/load.c for the engine). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "load.h"
#include "netutil.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: connscope-load HOST:PORT [--rate N] [--connections N | --duration S] [--timeout S]\n"
		"                      [--hold S] [--websocket PATH] [--stomp] [--message TEXT] [--json]\n"
		"Opens connections at a steady rate and reports what each client got.\n"
		"  --rate N          connects per second (default 1000; 0: all at once)\n"
		"  --connections N   how many (default 1000)\n"
		"  --duration S      or: open at --rate for S seconds\n"
		"  --timeout S       a client not answered within S seconds is a timeout (default 5)\n"
		"  --hold S          keep answered clients open S seconds (default 0)\n"
		"  --websocket PATH  HTTP/1.1 upgrade to PATH, check 101 and Sec-WebSocket-Accept,\n"
		"                    send --message in a masked text frame, wait for a frame back\n"
		"  --stomp           over the WebSocket: CONNECT, wait for CONNECTED, SEND with a\n"
		"                    receipt, wait for RECEIPT (needs --websocket)\n"
		"  --message TEXT    payload (plain TCP: sent, any reply is ok; default \"hello\"\n"
		"                    with --websocket, none with plain TCP: connected is ok)\n"
		"  --json            report as JSON on stdout\n"
		"ok means answered: a client whose handshake ACK the server dropped believes it\n"
		"connected; only an answer proves otherwise.\n");
}

static int num(const char *opt, const char *v, double lo, double hi, double *out)
{
	return args_double("connscope-load", opt, v, lo, hi, out);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "connections", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "hold", required_argument, NULL, 'H' },
		{ "websocket", required_argument, NULL, 'w' },
		{ "stomp", no_argument, NULL, 's' },
		{ "message", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct load_cfg cfg = { .rate = 1000, .connections = 1000, .timeout = 5 };
	struct load l = { .cfg = &cfg };
	double v, duration = 0;
	bool json = false;
	long limit;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:n:d:t:H:w:sm:jh", opts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 'r': err = num("--rate", optarg, 0, 1e6, &cfg.rate); break;
		case 'n': err = num("--connections", optarg, 1, 1e7, &v); cfg.connections = (long)v; break;
		case 'd': err = num("--duration", optarg, 0.001, 86400, &duration); break;
		case 't': err = num("--timeout", optarg, 0.001, 3600, &cfg.timeout); break;
		case 'H': err = num("--hold", optarg, 0, 86400, &cfg.hold); break;
		case 'w': cfg.ws_path = optarg; break;
		case 's': cfg.stomp = true; break;
		case 'm': cfg.message = optarg; break;
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
	if (duration > 0) {
		if (cfg.rate <= 0) {
			fprintf(stderr, "connscope-load: --duration needs a --rate above 0\n");
			return 2;
		}
		cfg.connections = (long)(cfg.rate * duration + 0.5);
	}
	if (!cfg.message)
		cfg.message = cfg.ws_path ? "hello" : "";
	snprintf(cfg.target, sizeof(cfg.target), "%s", argv[optind]);
	snprintf(cfg.host_header, sizeof(cfg.host_header), "%s", argv[optind]);
	if (net_parse_hostport("target", argv[optind], &cfg.addr, &cfg.addrlen))
		return 2;
	limit = net_raise_nofile(0);
	if (limit > 0 && cfg.connections > limit - 16 && (cfg.hold > 0 || cfg.rate == 0))
		fprintf(stderr, "connscope-load: %ld connections may be open at once but this process "
			"may hold %ld fds: the rest will be reported as client_emfile\n", cfg.connections, limit);
	cfg.progress = cfg.connections / (cfg.rate > 0 ? cfg.rate : 1e9) + cfg.timeout > 2;
	err = load_run(&l);
	if (err) {
		fprintf(stderr, "connscope-load: %s\n", strerror(-err));
		load_free(&l);
		return 1;
	}
	load_report(&l, json, stdout);
	load_free(&l);
	return 0;
}
