/* SPDX-License-Identifier: MIT */
/* The load engine of connscope-load: configuration, per-connection state,
 * outcomes and latencies per step, the worker processes that share a run,
 * and the connscope verdict fetched after each step. main.c is its command line. */
#ifndef CS_LOAD_H
#define CS_LOAD_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include "ws.h"

#define LOAD_IN_BUF 2048 /* per client: 50,000 held clients cost 100 MiB */
#define LOAD_MAX_STEPS 32
#define LOAD_MAX_SOURCES 65536
#define LOAD_MAX_WORKERS 64
#define LOAD_ERR_TEXT 160

enum load_stomp_mode { LOAD_STOMP_SETTLE, LOAD_STOMP_RECEIPT, LOAD_STOMP_SUBSCRIBE };

struct load_cfg {
	char target[300];          /* as given: HOST:PORT */
	char host_header[300];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* steps[i] connects per second (0: all at once) for step_conns[i] clients */
	double rates[LOAD_MAX_STEPS];
	long step_conns[LOAD_MAX_STEPS];
	int nsteps;
	double step_seconds;       /* 0: one step of --connections */
	double ramp;               /* seconds to reach the first step's rate */
	double timeout;            /* seconds a client may take to be answered */
	double hold;               /* seconds an answered client stays open */
	const char *ws_path;       /* NULL: plain TCP */
	bool stomp;
	enum load_stomp_mode stomp_mode;
	double settle;             /* LOAD_STOMP_SETTLE: quiet seconds after SEND */
	const char *subscribe;     /* LOAD_STOMP_SUBSCRIBE: destination */
	const char *send_to;       /* SEND destination */
	const char *message;       /* "" with plain TCP: connect only */
	struct sockaddr_storage *sources; /* NULL: the kernel picks */
	long nsources;
	int workers;               /* client processes (1: this one) */
	const char *connscope;     /* base URL of a connscope daemon, or NULL */
	bool progress;
};

/* What a client got; every client ends in exactly one. */
enum outcome {
	LOAD_OUT_OK, LOAD_OUT_CONNECTED, LOAD_OUT_REFUSED, LOAD_OUT_RESET, LOAD_OUT_TIMEOUT, LOAD_OUT_HTTP_ERROR,
	LOAD_OUT_WS_BAD_ACCEPT, LOAD_OUT_STOMP_ERROR, LOAD_OUT_CLOSED, LOAD_OUT_CLIENT_EMFILE,
	LOAD_OUT_EADDRNOTAVAIL, LOAD_OUT_OTHER, LOAD_OUT_MAX,
};

/* Where a client was; timeouts are counted by phase. */
enum phase {
	LOAD_PH_CONNECT, LOAD_PH_UPGRADE, LOAD_PH_STOMP, LOAD_PH_REPLY, LOAD_PH_SETTLE, LOAD_PH_HOLD, LOAD_PH_MAX
};

/* Latencies by phase: TCP handshake, WebSocket upgrade, STOMP CONNECT to
 * CONNECTED, request to answer (reply, RECEIPT or MESSAGE delivery), and
 * start to answer (settle time not included). */
enum latency { LAT_CONNECT, LAT_UPGRADE, LAT_STOMP, LAT_REPLY, LAT_TOTAL, LAT_MAX };

/* One step's results; what a worker hands its parent. */
struct load_stats {
	long opened;
	long outcomes[LOAD_OUT_MAX];
	long timeouts[LOAD_PH_MAX];
	long lost_in_hold;
	long messages;             /* STOMP MESSAGE frames received, held clients too */
	long nlat[LAT_MAX];
	double t_first, t_last;    /* first and last connect of the step (CLOCK_MONOTONIC) */
	double t_start, t_done;    /* step began; its last client got its outcome */
	char stomp_error[LOAD_ERR_TEXT]; /* first ERROR frame's message header */
	double *lat[LAT_MAX];
};

struct lconn {
	int fd;
	int step;
	enum phase phase;
	int hb_pending;            /* heart-beats received, not yet answered */
	double t_start, t_phase, deadline;
	struct lconn *prev, *next; /* one of the deadline-ordered lists */
	char key[WS_KEY_LEN + 1];
	size_t len;
	uint8_t in[LOAD_IN_BUF];
};

struct lconn_list {
	struct lconn *head, *tail;
};

struct load {
	const struct load_cfg *cfg;
	int ep;
	int worker, nworkers;      /* this process's share of the run */
	long source_next;
	long in_flight;
	struct load_stats steps[LOAD_MAX_STEPS];
	/* deadlines in each list grow with the time a client entered it, so
	 * expiry only ever looks at the heads */
	struct lconn_list active, settling, held;
	long active_in_step[LOAD_MAX_STEPS];
	double t_start, t_end;
	void *diag[LOAD_MAX_STEPS]; /* cJSON diagnosis per step, or NULL */
};

/* Runs the whole load (forking cfg->workers processes when above 1) and
 * fetches the verdicts; 0 or -errno. */
int load_run(struct load *l);
void load_report(struct load *l, bool json, FILE *f);
void load_free(struct load *l);

/* "http://HOST:PORT" + path over HTTP/1.0; the parsed JSON body (a cJSON *)
 * in *out. 0 or -errno, with the reason in err. */
int load_http_get_json(const char *base, const char *path, double timeout, void **out, char *err,
		       size_t errlen);
#endif
