/* SPDX-License-Identifier: MIT */
/* The load engine of connscope-load: configuration, per-connection state,
 * outcomes and latencies. load_main.c is its command line. */
#ifndef CS_LOAD_H
#define CS_LOAD_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include "ws.h"

#define LOAD_IN_BUF 2048

struct load_cfg {
	char target[300];          /* as given: HOST:PORT */
	char host_header[300];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	double rate;               /* connects per second; 0: all at once */
	long connections;
	double timeout;            /* seconds a client may take to be answered */
	double hold;               /* seconds an answered client stays open */
	const char *ws_path;       /* NULL: plain TCP */
	bool stomp;
	const char *message;       /* "" with plain TCP: connect only */
	bool progress;
};

/* What a client got; every client ends in exactly one. */
enum outcome {
	LOAD_OUT_OK, LOAD_OUT_REFUSED, LOAD_OUT_RESET, LOAD_OUT_TIMEOUT, LOAD_OUT_HTTP_ERROR, LOAD_OUT_WS_BAD_ACCEPT, LOAD_OUT_CLOSED,
	LOAD_OUT_CLIENT_EMFILE, LOAD_OUT_EADDRNOTAVAIL, LOAD_OUT_OTHER, LOAD_OUT_MAX,
};

/* Where a client was; timeouts are also counted by step. */
enum step { LOAD_STEP_CONNECT, LOAD_STEP_UPGRADE, LOAD_STEP_STOMP, LOAD_STEP_REPLY, LOAD_STEP_HOLD, LOAD_STEP_MAX };

enum latency { LAT_CONNECT, LAT_UPGRADE, LAT_TOTAL, LAT_MAX };

struct lconn {
	int fd;
	enum step step;
	double t_start, t_step, deadline;
	struct lconn *prev, *next; /* active or hold list, in deadline order */
	char key[WS_KEY_LEN + 1];
	size_t len;
	uint8_t in[LOAD_IN_BUF];
};

struct load {
	const struct load_cfg *cfg;
	int ep;
	long opened, in_flight, lost_in_hold;
	long outcomes[LOAD_OUT_MAX];
	long timeouts[LOAD_STEP_MAX];
	double *lat[LAT_MAX];
	long nlat[LAT_MAX];
	double t_start, t_open_end, t_end;
	/* deadlines grow with open time (and with answer time for holds), so
	 * expiry only ever looks at the heads */
	struct lconn *act_head, *act_tail, *hold_head, *hold_tail;
};

/* Runs the whole load; 0 or -errno. */
int load_run(struct load *l);
void load_report(struct load *l, bool json, FILE *f);
void load_free(struct load *l);
#endif
