// SPDX-License-Identifier: MIT
/* Ring of per-tick points for /api/v1/history and the diagnosis. */
#include "history.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct history {
	pthread_mutex_t lock;
	struct cs_point ring[CS_HISTORY_POINTS];
	uint64_t total;
};

int history_new(struct history **out)
{
	struct history *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	*out = h;
	return 0;
}

void history_free(struct history *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static uint64_t delta(uint64_t cur, uint64_t prev)
{
	return cur >= prev ? cur - prev : 0; /* a listener that went away */
}

/* The q-quantile (0..1) of the samples added between two snapshots of a log2
 * histogram, interpolated inside its slot as Prometheus' histogram_quantile
 * does; slot i holds [2^i, 2^(i+1)) microseconds. */
static double hist_delta_quantile(const struct cs_hist *cur, const struct cs_hist *prev, double q)
{
	uint64_t total = delta(cur->count, prev ? prev->count : 0), cum = 0;

	if (!total)
		return 0;
	for (int i = 0; i < CS_HIST_SLOTS; i++) {
		uint64_t n = delta(cur->slots[i], prev ? prev->slots[i] : 0);
		double lo = i ? (double)(1ULL << i) : 0, hi = (double)(1ULL << (i + 1));

		if (n && (double)(cum + n) >= q * (double)total)
			return (lo + (hi - lo) * (q * (double)total - (double)cum) / (double)n) / 1e6;
		cum += n;
	}
	return (double)(1ULL << CS_HIST_SLOTS) / 1e6;
}

static uint64_t resets_named(const struct cs_snapshot *s, const char *const *labels)
{
	uint64_t n = 0;

	for (; *labels; labels++) {
		int i = names_rst_reason_index(*labels);

		if (i >= 0)
			n += s->resets_sent[i];
	}
	return n;
}

static const char *const abort_reasons[] = {
	"tcp_abort_on_close", "tcp_abort_on_data", "tcp_abort_on_linger",
	"tcp_disconnect_with_data", NULL,
};
/* Before 6.10 the kernel names no reason: connscope labels the target's own
 * aborts (close with unread data, SO_LINGER 0, data after its close)
 * not_specified and resets answering a segment at a listener passive_reset,
 * which are no abort (probes: on_send_reset_noreason). */
static const char *const abort_reasons_before_6_10[] = { "not_specified", NULL };
static const char *const no_socket_reasons[] = { "no_socket", NULL };
static const char *const memory_reasons[] = { "tcp_abort_on_memory", NULL };

/* ns of a running full span at the snapshot's time, else 0 */
static uint64_t full_running_ns(const struct cs_snapshot *s, const struct cs_port *pt)
{
	if (!pt || !pt->qt.full_since_ns || pt->qt.full_since_ns > s->mono_ns)
		return 0;
	return s->mono_ns - pt->qt.full_since_ns;
}

/* The span with no accept that a running full span belongs to (as the
 * kernel measures it when the span ends, see queue_time_on_accept). */
static uint64_t gap_running_ns(const struct cs_snapshot *s, const struct cs_port *pt)
{
	if (!full_running_ns(s, pt))
		return 0;
	if (pt->qt.last_accept_ns && pt->qt.last_accept_ns < pt->qt.full_since_ns)
		return s->mono_ns - pt->qt.last_accept_ns;
	return s->mono_ns - pt->qt.full_since_ns;
}

static void listener_point(const struct cs_snapshot *prev, const struct cs_snapshot *cur,
			   const struct cs_listener *l, double seconds, struct cs_point_listener *o)
{
	const struct cs_port *pc = snapshot_port(cur, l->port), *pp = snapshot_port(prev, l->port);
	static const struct cs_port none;
	uint64_t before = 0;
	double full;

	memset(o, 0, sizeof(*o));
	memcpy(o->label, l->label, sizeof(o->label));
	o->port = l->port;
	o->queue_len = l->queue_len;
	o->queue_limit = l->queue_limit;
	o->full = l->queue_limit && l->queue_len >= l->queue_limit;
	for (int j = 0; j < prev->n_listeners; j++)
		if (prev->listeners[j].inode == l->inode)
			before = prev->listeners[j].drops;
	o->drops = delta(l->drops, before);
	if (!pc)
		return;
	if (!pp)
		pp = &none;
	o->ack_drops = delta(pc->qt.ack_drops, pp->qt.ack_drops);
	o->accepts = delta(pc->accepts, pp->accepts);
	o->local_closes = delta(pc->qt.local_closes, pp->qt.local_closes);
	o->accepts_after_close = delta(pc->qt.accepts_after_close, pp->qt.accepts_after_close);
	o->open = (long)pc->open;
	o->open_peak = (long)pc->open_peak;
	full = (double)delta(pc->qt.full_total_ns, pp->qt.full_total_ns) +
	       (double)full_running_ns(cur, pc) - (double)full_running_ns(prev, pp);
	full /= 1e9;
	o->full_seconds = full < 0 ? 0 : full > seconds ? seconds : full;
	o->gap_seconds = gap_running_ns(cur, pc) / 1e9;
	if (pc->qt.gaps != pp->qt.gaps && pc->qt.last_gap_ns / 1e9 > o->gap_seconds)
		o->gap_seconds = pc->qt.last_gap_ns / 1e9;
	o->accept_wait_sum_s = delta(pc->accept_wait.sum_ns, pp->accept_wait.sum_ns) / 1e9;
	o->accept_wait_count = delta(pc->accept_wait.count, pp->accept_wait.count);
	o->accept_wait_p50_s = hist_delta_quantile(&pc->accept_wait, &pp->accept_wait, 0.5);
	o->accept_wait_p99_s = hist_delta_quantile(&pc->accept_wait, &pp->accept_wait, 0.99);
}

/* serve_stats sums over every port, deltas from prev, levels from cur. */
/* The serving counters of every port of s, summed. */
static void serve_sum(const struct cs_snapshot *s, struct cs_serve *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < s->n_ports; i++) {
		const struct cs_serve *v = &s->ports[i].serve;

		out->first_read_wait.count += v->first_read_wait.count;
		out->gave_up += v->gave_up;
		out->closed_unread += v->closed_unread;
		out->rejected += v->rejected;
		out->netfilter_drops += v->netfilter_drops;
		out->keepalive_resets += v->keepalive_resets;
		out->idle_closes += v->idle_closes;
	}
}

static void serve_point(const struct cs_snapshot *prev, const struct cs_snapshot *cur, struct cs_point *p)
{
	const struct cs_conntrack *ca = &cur->conntrack, *cb = &prev->conntrack;
	struct cs_serve a, b;

	serve_sum(cur, &a);
	serve_sum(prev, &b);
	for (int i = 0; i < cur->n_ports; i++)
		p->unread += snapshot_port_unread(&cur->ports[i]);
	p->first_reads = delta(a.first_read_wait.count, b.first_read_wait.count);
	p->gave_up_unread = delta(a.gave_up, b.gave_up);
	p->closed_unread = delta(a.closed_unread, b.closed_unread);
	p->rejected = delta(a.rejected, b.rejected);
	p->netfilter_drops = delta(a.netfilter_drops, b.netfilter_drops);
	p->keepalive_resets = delta(a.keepalive_resets, b.keepalive_resets);
	p->idle_closes = delta(a.idle_closes, b.idle_closes);
	if (ca->have && cb->have)
		p->conntrack_drops = delta(ca->drop + ca->early_drop + ca->insert_failed,
					   cb->drop + cb->early_drop + cb->insert_failed);
	p->close_wait = cur->close_wait;
	p->port_errors = delta(snapshot_port_errors(cur, -1, 0), snapshot_port_errors(prev, -1, 0));
	p->synack_retrans = delta(cur->counters[CS_CNT_SYNACK_RETRANS], prev->counters[CS_CNT_SYNACK_RETRANS]);
	if (cur->have_tcp_ext)
		p->abort_on_timeout = delta(cur->tcp_ext[CS_TE_ABORT_ON_TIMEOUT], prev->tcp_ext[CS_TE_ABORT_ON_TIMEOUT]);
}

void history_point(const struct cs_snapshot *prev, const struct cs_snapshot *cur,
		   struct cs_point *p)
{
	const char *const *aborts;
	uint64_t cbq = 0, pcbq = 0;

	memset(p, 0, sizeof(*p));
	p->unix_ms = cur->unix_ms;
	p->seconds = prev->mono_s ? cur->mono_s - prev->mono_s : 0;
	p->accepts = delta(cur->accepts_total, prev->accepts_total);
	p->accept_emfile = delta(snapshot_accept_errors(cur, EMFILE), snapshot_accept_errors(prev, EMFILE));
	p->accept_enfile = delta(snapshot_accept_errors(cur, ENFILE), snapshot_accept_errors(prev, ENFILE));
	p->accept_other_errors = delta(snapshot_accept_errors(cur, 0), snapshot_accept_errors(prev, 0)) -
				 p->accept_emfile - p->accept_enfile;
	p->fd_errors = delta(snapshot_fd_errors(cur, EMFILE) + snapshot_fd_errors(cur, ENFILE),
			     snapshot_fd_errors(prev, EMFILE) + snapshot_fd_errors(prev, ENFILE));
	p->listen_drops = delta(snapshot_listen_drops(cur), snapshot_listen_drops(prev));
	p->resets_sent = delta(snapshot_resets_sent(cur), snapshot_resets_sent(prev));
	p->resets_received = delta(cur->counters[CS_CNT_RESETS_RECEIVED], prev->counters[CS_CNT_RESETS_RECEIVED]);
	aborts = names_rst_reason_index("tcp_abort_on_close") < 0 ? abort_reasons_before_6_10 : abort_reasons;
	p->resets_abort = delta(resets_named(cur, aborts), resets_named(prev, aborts));
	p->resets_no_socket = delta(resets_named(cur, no_socket_reasons), resets_named(prev, no_socket_reasons));
	p->resets_memory = delta(resets_named(cur, memory_reasons), resets_named(prev, memory_reasons));
	for (int i = 0; i < cur->n_ports; i++)
		cbq += cur->ports[i].closed_before_accept;
	for (int i = 0; i < prev->n_ports; i++)
		pcbq += prev->ports[i].closed_before_accept;
	p->closed_before_accept = delta(cbq, pcbq);
	if (cur->have_tcp_ext) {
		p->listen_overflows = delta(cur->tcp_ext[CS_TE_LISTEN_OVERFLOWS], prev->tcp_ext[CS_TE_LISTEN_OVERFLOWS]);
		p->syn_queue_drops = delta(cur->tcp_ext[CS_TE_REQQ_FULL_DROP], prev->tcp_ext[CS_TE_REQQ_FULL_DROP]);
		p->syncookies_sent = delta(cur->tcp_ext[CS_TE_SYNCOOKIES_SENT], prev->tcp_ext[CS_TE_SYNCOOKIES_SENT]);
		p->memory_pressures = delta(cur->tcp_ext[CS_TE_MEMORY_PRESSURES], prev->tcp_ext[CS_TE_MEMORY_PRESSURES]) +
				      delta(cur->tcp_ext[CS_TE_ABORT_ON_MEMORY], prev->tcp_ext[CS_TE_ABORT_ON_MEMORY]);
	}
	p->oom_kills = delta(cur->counters[CS_CNT_OOM_KILLS], prev->counters[CS_CNT_OOM_KILLS]);
	serve_point(prev, cur, p);
	p->open_fds = cur->open_fds;
	p->fd_soft = cur->fd_soft;
	p->fd_pid = cur->fd_pid;
	p->cpu_seconds = prev->mono_s && cur->cpu_seconds >= prev->cpu_seconds ?
				 cur->cpu_seconds - prev->cpu_seconds : 0;
	p->stopped_processes = cur->stopped_processes;
	for (int i = 0; i < cur->n_listeners && p->n_listeners < CS_POINT_LISTENERS; i++)
		listener_point(prev, cur, &cur->listeners[i], p->seconds, &p->listeners[p->n_listeners++]);
	p->target_up = cur->target_up;
	for (int i = 0; i < cur->n_listeners; i++) {
		const struct cs_listener *l = &cur->listeners[i];
		/* the listener nearest its limit, by fraction of the limit */
		if (i == 0 || (uint64_t)l->queue_len * p->queue_limit >
				      (uint64_t)p->queue_len * l->queue_limit) {
			p->queue_len = l->queue_len;
			p->queue_limit = l->queue_limit;
		}
		if (l->queue_limit && l->queue_len >= l->queue_limit)
			p->queue_full = true;
	}
}

void history_push(struct history *h, const struct cs_point *p)
{
	pthread_mutex_lock(&h->lock);
	h->ring[h->total % CS_HISTORY_POINTS] = *p;
	h->total++;
	pthread_mutex_unlock(&h->lock);
}

int history_copy(struct history *h, double seconds, struct cs_point **out)
{
	uint64_t first, i;
	double span = 0;
	int n = 0;

	pthread_mutex_lock(&h->lock);
	first = h->total > CS_HISTORY_POINTS ? h->total - CS_HISTORY_POINTS : 0;
	/* walk back from the newest until the span is covered */
	for (i = h->total; i > first; i--) {
		if (seconds > 0 && span >= seconds)
			break;
		span += h->ring[(i - 1) % CS_HISTORY_POINTS].seconds;
	}
	*out = malloc(sizeof(struct cs_point) * (h->total - i + 1));
	if (!*out) {
		pthread_mutex_unlock(&h->lock);
		return -ENOMEM;
	}
	for (; i < h->total; i++)
		(*out)[n++] = h->ring[i % CS_HISTORY_POINTS];
	pthread_mutex_unlock(&h->lock);
	return n;
}
