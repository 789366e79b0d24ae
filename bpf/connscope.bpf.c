// SPDX-License-Identifier: GPL-2.0
/* Kernel side of connscope: counts, for one target process tree, accept
 * results, fd-exhaustion errors, accept-queue wait, connection ends, TCP
 * resets and OOM kills. Tracepoints only. Counting happens here; the ring
 * buffer carries only sampled per-event detail. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "connscope/connscope.h"
#include "connscope.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Inode of the target's network namespace (0: do not filter). Ports alone
 * are not enough: pods on one host all listen on 8080 in namespaces of
 * their own. Set by userspace between open and load. */
const volatile __u32 target_netns = 0;

/* false: leave out what the serving, path and outbound causes
 * (accepted_not_served, rejected_after_accept, keepalive_race,
 * netfilter_drop, ephemeral_ports_exhausted) add to the hooks every
 * connection runs, so the bench can show their cost (its baseline run,
 * CONNSCOPE_BENCH_BASELINE=1; userspace also leaves their own programs out). */
const volatile bool full_probes = true;

/* tgid -> 1 for the target and its descendants (userspace seeds, forks add). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_TARGETS_MAX);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* [local port] = 1 for every port the target listens on (or did). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CS_PORT_SPACE);
	__type(key, __u32);
	__type(value, __u8);
} listen_ports SEC(".maps");

/* Every address the target listens on (or did): a softirq-side event counts
 * only on a socket bound to one of these, or accepted from one. Seeded by
 * userspace at attach, extended by on_listen. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_LISTEN_ADDRS_MAX);
	__type(key, struct cs_listen_key);
	__type(value, __u8);
} listen_addrs SEC(".maps");

/* When the target stopped listening on an address of listen_addrs
 * (bpf_ktime_get_ns), for the snapshot: a map apart, so that the hooks
 * reading listen_addrs on every packet keep reading one byte. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_LISTEN_ADDRS_MAX);
	__type(key, struct cs_listen_key);
	__type(value, __u64);
} listen_stopped SEC(".maps");

/* The same ports as bits: 8 KiB that stay in cache, where listen_ports'
 * 64 KiB do not; for the hooks that run for every TCP read or drop on the
 * machine (a client's random port is a cache miss in the byte array). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CS_PORT_SPACE / 64);
	__type(key, __u32);
	__type(value, __u64);
} listen_port_bits SEC(".maps");

/* Feeds connscope_connections_open and the connection cap's plateau.
 * Indexed by the port itself (1 MiB): no hash on the accept path, and the
 * daemon reads and exchanges a port's values in place (mmapped). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, CS_PORT_SPACE);
	__type(key, __u32);
	__type(value, struct cs_port_open);
} port_open SEC(".maps");

/* Feeds connscope_accepts_total, connections_closed_total and the
 * accept_wait / connection_duration histograms, by local port. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CS_PORTS_MAX);
	__type(key, __u16);
	__type(value, struct cs_port_stats);
} port_stats SEC(".maps");

/* struct sock * -> connection in flight; deleted at TCP_CLOSE. A plain hash,
 * not LRU, so a full table is counted (CS_CNT_CONNS_TABLE_FULL), never silent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_CONNS_MAX);
	__type(key, __u64);
	__type(value, struct cs_conn);
} conns SEC(".maps");

/* Feeds connscope_syscall_errors_total{syscall,errno}. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CS_SYSCALL_ERRORS_MAX);
	__type(key, struct cs_syscall_error_key);
	__type(value, __u64);
} syscall_errors SEC(".maps");

/* Feeds connscope_tcp_resets_sent_total{reason}, indexed by sk_rst_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_RST_REASONS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} resets_sent SEC(".maps");

/* Feeds connscope_first_read_wait_seconds, the unread/abandoned/rejected
 * connection counts and netfilter drops, by local port (see serve_* below).
 * An array: its lookup is inlined, where a hash lookup on every first read
 * cost as much as the rest of the read hook; a port whose slot another port
 * holds (on that CPU) goes to the hash below. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_SERVE_SLOTS);
	__type(key, __u32);
	__type(value, struct cs_serve_stats);
} serve_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CS_PORTS_MAX);
	__type(key, __u16);
	__type(value, struct cs_serve_stats);
} serve_stats SEC(".maps");

/* Addresses of the target namespace's interfaces (IPv4 mapped), kept by
 * userspace when the target has a namespace of its own: a SYN for one of
 * them dropped by netfilter in another namespace was on its way to it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_NETNS_ADDRS_MAX);
	__type(key, __u8[16]);
	__type(value, __u8);
} netns_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CS_EV_KINDS_BPF);
	__type(key, __u32);
	__type(value, __u64);
} event_last_ns SEC(".maps");

/* Feeds connscope_accept_queue_full_seconds_total and the queue causes:
 * gaps, by local port. A plain hash: timestamps must be the newest over all
 * CPUs; the rare lost update on a race costs one sample, not a count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_PORTS_MAX);
	__type(key, __u16);
	__type(value, struct cs_queue_time);
} queue_time SEC(".maps");

/* Written by userspace only: the time a tick saw the port's queue full
 * (SYN drops leave no trace here); the next accept takes and clears it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_PORTS_MAX);
	__type(key, __u16);
	__type(value, __u64);
} queue_full_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CS_RINGBUF_BYTES);
} events SEC(".maps");

/* Nested runs. The kernel runs a tp_btf program at most once per CPU at a
 * time: a softirq that interrupts it on its CPU (a loopback batch arriving
 * while close() or connect() runs it) skips it for every event the batch
 * carries, counted only in the program's recursion_misses. So each program
 * that a softirq can interrupt on its own tracepoint has a second one,
 * defined (and so attached, and called by the kernel) right after it. The
 * first notes the event it handled in a slot of its context (the task's, or
 * an interrupt's: a softirq does not interrupt a softirq, so nothing else
 * writes that slot before the second program reads it; a hardirq inside a
 * softirq shares it, and of these tracepoints only packet frees happen
 * there; each first empties the interrupt's slot, see nest_begin); the
 * second finds it there and clears it, or, not finding it, handles the event
 * itself (the first was skipped: it runs in the context below) and counts
 * the stand-in. Userspace subtracts the stand-ins from the first program's
 * recursion_misses, per tracepoint: the rest is lost, and said so. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_NEST_MAX * CS_NEST_LEVELS);
	__type(key, __u32);
	__type(value, struct cs_nest);
} nest SEC(".maps");

/* A task's kernel stack on x86-64 (THREAD_SIZE; KASAN kernels have twice
 * that, and there most events count as an interrupt's). */
#define CS_TASK_STACK_BYTES 16384

/* The context a program runs in: 0 on the task's own stack, 1 on another
 * (x86-64 runs the hardirqs and softirqs that interrupt the kernel on a
 * per-CPU interrupt stack). Told by where the tracepoint's argument array (ctx)
 * is: in the kernel's caller, on the stack of the context; the program's own
 * frame is not (6.13+ gives it a per-CPU stack of its own). The address is
 * read back as a number through the helper, the only way the verifier
 * allows. Not the preempt count: a per-CPU variable, whose address the
 * kernel finds only with CONFIG_KALLSYMS_ALL. */
static __always_inline __u32 nest_level(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 where = 0;
	void *p = ctx;

	if (bpf_probe_read_kernel(&where, sizeof(where), &p))
		return 0;
	return where - (__u64)task->stack < CS_TASK_STACK_BYTES ? 0 : 1;
}

static const struct cs_port_stats zero_port_stats;
static const struct cs_queue_time zero_queue_time;
static const struct cs_serve_stats zero_serve_stats;
static const __u64 zero_u64;

static __always_inline bool current_is_target(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline bool port_is_watched(__u16 port)
{
	__u32 idx = port;
	__u8 *v = bpf_map_lookup_elem(&listen_ports, &idx);

	return v && *v;
}

static __always_inline bool port_bit_is_set(__u16 port)
{
	__u32 idx = port / 64;
	__u64 *w = bpf_map_lookup_elem(&listen_port_bits, &idx);

	return w && (*w & (1ULL << (port % 64)));
}

static __always_inline void port_bit_set(__u16 port)
{
	__u32 idx = port / 64;
	__u64 *w = bpf_map_lookup_elem(&listen_port_bits, &idx);

	if (w)
		__sync_fetch_and_or(w, 1ULL << (port % 64));
}

/* Softirq-side hooks run for every socket on the host: after the port, the
 * namespace decides whether a socket is the target's. */
static __always_inline bool sk_is_watched(const struct sock *sk, __u16 port)
{
	return port_is_watched(port) &&
	       (!target_netns || sk->__sk_common.skc_net.net->ns.inum == target_netns);
}

static __always_inline bool listen_key_found(const struct cs_listen_key *k, bool stopped_too)
{
	__u8 *v = bpf_map_lookup_elem(&listen_addrs, k);

	return v && (*v == CS_LISTEN_NOW || (stopped_too && *v == CS_LISTEN_STOPPED));
}

/* Is (netns, addr, port) an address the target listens on (or, with
 * stopped_too, did), exactly or by a wildcard (0.0.0.0, or :: which takes
 * IPv4 too)? k->addr is clobbered. */
static __always_inline bool listen_key_is_targets(struct cs_listen_key *k, bool stopped_too)
{
	bool mapped = !k->addr[0] && !k->addr[1] && !k->addr[2] && !k->addr[3] &&
		      !k->addr[4] && !k->addr[5] && !k->addr[6] && !k->addr[7] &&
		      !k->addr[8] && !k->addr[9] && k->addr[10] == 0xff && k->addr[11] == 0xff;

	if (listen_key_found(k, stopped_too))
		return true;
	if (mapped) {
		__builtin_memset(&k->addr[12], 0, 4);
		if (listen_key_found(k, stopped_too))
			return true;
	}
	__builtin_memset(k->addr, 0, sizeof(k->addr));
	return listen_key_found(k, stopped_too);
}

static __always_inline void listen_key_v4(struct cs_listen_key *k, __u32 addr)
{
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], &addr, 4);
}

/* Key of sk's local end: its namespace, its address as bound (or as the
 * connection arrived), its port. false if sk is in another namespace. */
static __always_inline bool sk_listen_key(const struct sock *sk, __u16 port, struct cs_listen_key *k)
{
	__u32 ns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);

	if (target_netns && ns != target_netns)
		return false;
	k->netns = target_netns ? ns : 0;
	k->port = port;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET)
		listen_key_v4(k, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
	else
		bpf_core_read(k->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	return true;
}

/* The helper every softirq-side program asks: is sk one of the target's
 * sockets, a listener it bound or a connection that arrived on one? A
 * connection's local address is the one it arrived on, which the target's
 * listener covers exactly or by wildcard; an unrelated process's listener on
 * the same port at another address does not. The port array goes first: it
 * turns away almost every socket on the machine with one load. */
static __always_inline bool sk_is_targets(const struct sock *sk)
{
	struct cs_listen_key k = {};
	__u16 port = sk_local_port(sk);

	if (!port_is_watched(port) || !sk_listen_key(sk, port, &k))
		return false;
	return listen_key_is_targets(&k, false);
}

/* A segment with no socket: is its destination one of the target's listening
 * addresses, now or before it stopped (in the receiving device's namespace)? */
static __always_inline bool skb_is_targets(const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th_off = BPF_CORE_READ(skb, transport_header);
	struct cs_listen_key k = {};
	struct tcphdr th;
	__u8 ver = 0;

	if (bpf_probe_read_kernel(&th, sizeof(th), head + th_off))
		return false;
	k.port = bpf_ntohs(th.dest);
	if (!port_is_watched(k.port))
		return false;
	if (target_netns) {
		k.netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
		if (k.netns != target_netns)
			return false;
	}
	bpf_probe_read_kernel(&ver, 1, head + nh);
	if ((ver >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		listen_key_v4(&k, ip.daddr);
	} else {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		__builtin_memcpy(k.addr, &ip6.daddr, 16);
	}
	return listen_key_is_targets(&k, true);
}

/* A plain |= loses a flag when another CPU sets one at the same time. */
static __always_inline void conn_flag_set(struct cs_conn *conn, __u64 flag)
{
	__sync_fetch_and_or(&conn->flags, flag);
}

/* A counter that a run in another context on this CPU may add to at the
 * same moment (a softirq's run interrupting a task's, on another program or
 * standing in for this one): one atomic add, where a load and a store would
 * lose the other's. Counters written by one program only, or by programs of
 * syscalls only (a task's: they never interrupt one another), stay a plain
 * load and store: the kernel never runs a program twice at once on a CPU. */
#define stat_add(field, v) __sync_fetch_and_add(&(field), (v))
#define stat_inc(field) stat_add(field, 1)

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		stat_inc(*v);
}

static __always_inline struct cs_nest *nest_slot(__u32 hook, __u32 level)
{
	__u32 key = hook * CS_NEST_LEVELS + level;

	return bpf_map_lookup_elem(&nest, &key);
}

/* Run first by the first program of a hook: its slot. It also empties the
 * interrupt's slot, whose note nothing can still need then (at the task
 * level no interrupt is running; at the interrupt level this program writes
 * its own note there next). A note stays there when an interrupt comes while
 * the task runs the second program (the interrupt's first runs, its second
 * is skipped); left, it would match a later event with the same arguments (a
 * packet freed at the same place, in memory the allocator gave again) whose
 * first is skipped under this program: that event would be taken as
 * handled, and lost. An interrupt in this program's first instructions,
 * before the slot is emptied, can still meet such a note. */
static __always_inline struct cs_nest *nest_begin(void *ctx, __u32 hook)
{
	struct cs_nest *n = nest_slot(hook, 1);

	if (n)
		n->a = n->b = 0;
	return nest_level(ctx) ? n : nest_slot(hook, 0);
}

/* The first program of a hook handled the event identified by (a, b). */
static __always_inline void nest_done(struct cs_nest *n, __u64 a, __u64 b)
{
	if (n) {
		n->a = a;
		n->b = b;
	}
}

/* Run by the second program: true when the first did not handle the event
 * (the kernel skipped it), so the second must. */
static __always_inline bool nest_missed(void *ctx, __u32 hook, __u64 a, __u64 b)
{
	struct cs_nest *n = nest_slot(hook, nest_level(ctx));

	if (!n)
		return false;
	if (n->a == a && n->b == b) {
		n->a = n->b = 0;
		return false;
	}
	/* plain: only this program writes it, and never twice at once on a CPU */
	n->stood_in++;
	return true;
}

static __always_inline struct cs_port_stats *port_stats_get(__u16 port)
{
	return map_lookup_or_init(&port_stats, &port, &zero_port_stats);
}

/* A ring-buffer slot for an event of this kind, or NULL when the last one was
 * under CS_EVENT_MIN_GAP_NS ago (sampled) or the buffer is full (dropped). */
static __always_inline struct cs_event *event_reserve(__u32 kind)
{
	__u64 now = bpf_ktime_get_ns(), *last;
	struct cs_event *e;

	last = bpf_map_lookup_elem(&event_last_ns, &kind);
	if (!last)
		return NULL;
	if (*last && now - *last < CS_EVENT_MIN_GAP_NS) {
		count(CS_CNT_EVENTS_SAMPLED);
		return NULL;
	}
	*last = now;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CS_CNT_EVENTS_DROPPED);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->kind = kind;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void count_syscall_error(__u16 sys, long err)
{
	struct cs_syscall_error_key key = { .syscall = sys, .err = err };
	struct cs_event *e;
	__u64 *v;

	v = map_lookup_or_init(&syscall_errors, &key, &zero_u64);
	if (v)
		(*v)++;
	if (err != EMFILE && err != ENFILE)
		return;
	e = event_reserve(CS_EV_FD_ERROR);
	if (!e)
		return;
	e->syscall = sys;
	e->err = err;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int on_fd_syscall_exit(__u16 sys, long ret)
{
	if (ret != -EMFILE && ret != -ENFILE)
		return 0;
	if (!current_is_target())
		return 0;
	count_syscall_error(sys, -ret);
	return 0;
}

/* *v = max(*v, x) against other CPUs doing the same: a few tries. */
static __always_inline void raise_to(__u64 *v, __u64 x)
{
	for (int i = 0; i < 4; i++) {
		__u64 old = *v;

		if (x <= old || __sync_val_compare_and_swap(v, old, x) == old)
			break;
	}
}

/* One more open connection on the port (n = 1), or one fewer (n = -1). Only
 * accepts raise the peak. */
static __always_inline void port_open_add(__u16 port, __s64 n)
{
	__u32 key = port;
	struct cs_port_open *o = bpf_map_lookup_elem(&port_open, &key);
	__s64 now;

	if (!o)
		return;
	now = __sync_add_and_fetch(&o->open, n);
	if (n < 0 || now <= 0)
		return;
	raise_to(&o->peak, (__u64)now);
}

/* A reset closed the socket between accept() taking it and this exit: the
 * close counted it as closed before accept. It was accepted, and ended by
 * the reset. The decrement may wrap one CPU's slot; the sum stays right. */
static __always_inline void accepted_after_close(struct cs_port_stats *stats, __u16 port)
{
	port_open_add(port, -1);
	stat_add(stats->closed_before_accept, -1);
	stat_inc(stats->closed[CS_INIT_RESET]);
	stat_inc(stats->duration_slots[0]);
}

static __always_inline struct cs_queue_time *queue_time_get(__u16 port)
{
	return map_lookup_or_init(&queue_time, &port, &zero_queue_time);
}

/* A run: local closes and the accepts that follow them, none CS_CAP_CLOSE_NS
 * or more after the one before. A pause ends it, and the closes it had not
 * yet matched with an accept no longer let any in. An event another CPU
 * stamped later than this one's clock reading is no pause. */
static __always_inline void queue_time_cap_run(struct cs_queue_time *q, __u64 now)
{
	__u64 last = q->run_last_ns;

	if (!last || (now > last && now - last >= CS_CAP_CLOSE_NS))
		q->run_closes = 0;
}

/* An accept takes one of the run's unmatched closes, if any: then it
 * followed a close. Compare-and-swap: two CPUs never take the same one. */
static __always_inline void queue_time_cap_accept(struct cs_queue_time *q)
{
	__u64 now = bpf_ktime_get_ns();

	queue_time_cap_run(q, now);
	for (int i = 0; i < 4; i++) {
		__u64 closes = q->run_closes;

		if (!closes)
			return;
		if (__sync_val_compare_and_swap(&q->run_closes, closes, closes - 1) == closes) {
			__sync_fetch_and_add(&q->accepts_after_close, 1);
			raise_to(&q->run_last_ns, now);
			return;
		}
	}
}

/* An accept ends a span of a full queue with no accept: its length is the
 * gap the clients saw, measured here rather than by sampling ticks. */
static __always_inline void queue_time_on_accept(__u16 port, __u64 now)
{
	struct cs_queue_time *q = queue_time_get(port);
	__u64 *seen = bpf_map_lookup_elem(&queue_full_seen, &port);

	if (!q)
		return;
	if (seen && *seen) {
		if (!q->full_since_ns || *seen < q->full_since_ns)
			q->full_since_ns = *seen;
		*seen = 0;
	}
	if (q->full_since_ns && q->full_since_ns < now) {
		__u64 gap = q->last_accept_ns && q->last_accept_ns < q->full_since_ns ?
				    now - q->last_accept_ns : now - q->full_since_ns;

		q->full_total_ns += now - q->full_since_ns;
		q->last_gap_ns = gap;
		if (gap > q->longest_gap_ns)
			q->longest_gap_ns = gap;
		q->gaps++;
		q->full_since_ns = 0;
	}
	queue_time_cap_accept(q);
	q->last_accept_ns = now;
}

/* The app closed one of its accepted connections (close() sent a FIN, or
 * aborted it): under a connection cap this is what lets the next one in. */
static __always_inline void queue_time_on_local_close(__u16 port)
{
	struct cs_queue_time *q = queue_time_get(port);
	__u64 now = bpf_ktime_get_ns();

	if (!q)
		return;
	queue_time_cap_run(q, now);
	__sync_fetch_and_add(&q->run_closes, 1);
	raise_to(&q->run_last_ns, now);
	q->last_local_close_ns = now;
	__sync_fetch_and_add(&q->local_closes, 1);
}

/* Serving: did the app read what it accepted? Its first copy of data marks
 * the connection; a peer that sent a request and left before that gave up
 * on an app that accepted but did not serve. */
static __always_inline struct cs_serve_stats *serve_stats_get(__u16 port)
{
	__u32 slot = port % CS_SERVE_SLOTS;
	struct cs_serve_stats *st = bpf_map_lookup_elem(&serve_slots, &slot);

	/* this CPU's own copy: claimed without racing another CPU */
	if (st && (st->port == port || !st->port)) {
		st->port = port;
		return st;
	}
	return map_lookup_or_init(&serve_stats, &port, &zero_serve_stats);
}

/* fin: the peer's FIN was received (it counts one in bytes_received). */
static __always_inline void serve_peer_left(const struct sock *sk, struct cs_conn *conn, bool fin)
{
	struct cs_serve_stats *st;

	if ((conn->flags & (CS_CONN_ACCEPTED | CS_CONN_READ | CS_CONN_GAVE_UP)) != CS_CONN_ACCEPTED)
		return;
	/* a peer that sent nothing and left was not waiting for the app */
	if (BPF_CORE_READ((struct tcp_sock *)sk, bytes_received) <= (fin ? 1 : 0))
		return;
	conn_flag_set(conn, CS_CONN_GAVE_UP);
	st = serve_stats_get(conn->port);
	if (st)
		stat_inc(st->gave_up);
}

/* A reset on a connection the app had closed first (FIN_WAIT1/2 as a full
 * socket: the peer's RST, or its data after the close, which tcp_reset()
 * aborts the socket for): the peer still used a connection the app had
 * closed, as a client racing a keep-alive timeout does. */
static __always_inline void serve_reset_after_fin(struct cs_conn *conn)
{
	struct cs_serve_stats *st;

	if ((conn->flags & (CS_CONN_LOCAL_FIN | CS_CONN_RESET)) != CS_CONN_LOCAL_FIN)
		return;
	st = serve_stats_get(conn->port);
	if (st)
		stat_inc(st->keepalive_resets);
}

/* The app closed a connection it had served: how long was it idle? The
 * socket's tcp_mstamp (its last packet, in bpf_ktime_get_ns()'s clock) is
 * not yet refreshed by the FIN when the state changes. */
static __always_inline void serve_idle_close(const struct sock *sk, struct cs_conn *conn)
{
	__u64 now = bpf_ktime_get_ns(), last = BPF_CORE_READ((struct tcp_sock *)sk, tcp_mstamp) * 1000;
	struct cs_serve_stats *st;

	if (last > now || now - last < CS_IDLE_CLOSE_NS)
		return;
	st = serve_stats_get(conn->port);
	if (!st)
		return;
	stat_inc(st->idle_closes);
	stat_add(st->idle_close_sum_ns, now - last);
}

/* CLOSE_WAIT: the peer left. FIN_WAIT1: the app closed first (from
 * ESTABLISHED only); unread and soon after accept, that is a rejection;
 * after serving, an idle close. CLOSE: was it ever read? */
static __always_inline void serve_on_state(const struct sock *sk, struct cs_conn *conn, int newstate)
{
	struct cs_serve_stats *st;
	__u64 now, life;

	if (newstate == TCP_CLOSE_WAIT) {
		serve_peer_left(sk, conn, true);
		return;
	}
	if (newstate == TCP_FIN_WAIT1 && (conn->flags & CS_CONN_READ)) {
		serve_idle_close(sk, conn);
		return;
	}
	if ((newstate != TCP_CLOSE && newstate != TCP_FIN_WAIT1) ||
	    (conn->flags & (CS_CONN_ACCEPTED | CS_CONN_READ)) != CS_CONN_ACCEPTED)
		return;
	st = serve_stats_get(conn->port);
	if (!st)
		return;
	if (newstate == TCP_CLOSE) {
		stat_inc(st->closed_unread);
		return;
	}
	now = bpf_ktime_get_ns();
	life = now - conn->accepted_ns;
	if (life >= CS_REJECT_WINDOW_NS)
		return;
	stat_inc(st->rejected);
	stat_inc(st->rejected_life_slots[hist_slot(life)]);
	stat_add(st->rejected_life_sum_ns, life);
	st->rejected_last_ns = now;
	st->rejected_last_bytes_in = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	st->rejected_last_bytes_out = BPF_CORE_READ((struct tcp_sock *)sk, bytes_sent);
}

/* accept() took a connection whose peer had already closed it (FIN) while it
 * waited in the backlog: the peer gave up on the queue, not on the app's
 * workers, so it is neither "gave up before the first read" nor "closed
 * unread". The READ flag settles its serving account (snapshot_port_unread
 * counts it as done through left_in_backlog). */
static __always_inline void serve_left_in_backlog(struct cs_conn *conn)
{
	struct cs_serve_stats *st;

	conn_flag_set(conn, CS_CONN_READ);
	st = serve_stats_get(conn->port);
	if (st)
		st->left_in_backlog++;
}

/* The app copied data from the connection: tcp_recvmsg (read, recv*, io_uring)
 * and tcp_read_sock (splice) call tcp_rcv_space_adjust for every copy. A
 * socket's tracepoint, not the read syscalls': those run for every read on
 * the machine and need an fd -> socket walk, this one only for TCP data
 * read, and the port decides before any lookup. */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(on_rcv_space_adjust, struct sock *sk)
{
	__u64 key = (__u64)sk, wait;
	struct cs_serve_stats *st;
	struct cs_conn *conn;

	/* no namespace test: conns holds only the target's sockets */
	if (!port_bit_is_set(sk->__sk_common.skc_num))
		return 0;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn || (conn->flags & (CS_CONN_ACCEPTED | CS_CONN_READ)) != CS_CONN_ACCEPTED)
		return 0;
	/* Not an atomic step, unlike conn_flag_set elsewhere: the reader holds
	 * the socket lock, so the softirq and timer paths that set flags wait
	 * for it, and accept() set its flag already (tested above). */
	conn->flags |= CS_CONN_READ;
	st = serve_stats_get(conn->port);
	if (!st)
		return 0;
	wait = bpf_ktime_get_ns() - conn->accepted_ns;
	st->first_read_slots[hist_slot(wait)]++;
	st->first_read_sum_ns += wait;
	st->first_reads++;
	return 0;
}

static __always_inline void on_accepted(struct sock *sk)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns(), flags;
	struct cs_port_stats *stats;
	struct cs_conn *conn, fresh = {};
	__u16 port, family = BPF_CORE_READ(sk, __sk_common.skc_family);

	/* a unix-domain or UDP-style accept has no TCP state changes to end it */
	if ((family != AF_INET && family != AF_INET6) || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return;
	/* not skc_num: a child reset while queued has given its port back */
	port = sk_local_port(sk);
	stats = port_stats_get(port);
	if (!stats)
		return;
	stats->accepts++;
	port_open_add(port, 1);
	queue_time_on_accept(port, now);
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn) {
		/* Established before attach, or accept() took the child off the
		 * queue before its state change to ESTABLISHED was traced (the
		 * child is queued first, see inet_csk_complete_hashdance): on_set_state
		 * then finds this entry and keeps its accepted flag. */
		long err;

		if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE) {
			accepted_after_close(stats, port);
			return;
		}
		fresh.accepted_ns = now;
		fresh.port = port;
		fresh.flags = CS_CONN_ACCEPTED;
		err = bpf_map_update_elem(&conns, &key, &fresh, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			/* not followed to its close: not counted as open either */
			port_open_add(port, -1);
			count(CS_CNT_CONNS_TABLE_FULL);
		}
		if (err != -EEXIST)
			return;
		/* set_state inserted it on another CPU meanwhile: update that one */
		conn = bpf_map_lookup_elem(&conns, &key);
		if (!conn) {
			/* and a reset closed it since (on_close deleted it) */
			accepted_after_close(stats, port);
			return;
		}
	}
	if (conn) {
		if (conn->flags & CS_CONN_WAIT_KNOWN) {
			__u64 wait = now - conn->established_ns;

			stat_inc(stats->accept_wait_slots[hist_slot(wait)]);
			stat_add(stats->accept_wait_sum_ns, wait);
			stat_inc(stats->accept_wait_count);
		}
		conn->accepted_ns = now;
		/* one atomic step each here and in on_close: whichever runs
		 * second sees the other's flag */
		flags = __sync_fetch_and_or(&conn->flags, CS_CONN_ACCEPTED);
		if (flags & CS_CONN_CLOSED)
			accepted_after_close(stats, port);
		else if (full_probes && (flags & CS_CONN_REMOTE_FIN))
			serve_left_in_backlog(conn);
	}
}

static __always_inline int on_accept_exit(__u16 sys, long ret)
{
	struct sock *sk;

	/* EAGAIN is how a non-blocking acceptor learns the queue is empty: the
	 * most common result, so it is turned away before any map lookup */
	if (ret == -EAGAIN || ret == -EINTR)
		return 0;
	if (!current_is_target())
		return 0;
	if (ret < 0) {
		count_syscall_error(sys, -ret);
		return 0;
	}
	sk = fd_to_sock(ret);
	if (sk)
		on_accepted(sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct syscall_trace_exit *ctx)
{
	return on_accept_exit(CS_SYS_ACCEPT, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct syscall_trace_exit *ctx)
{
	return on_accept_exit(CS_SYS_ACCEPT4, ctx->ret);
}

#define FD_SYSCALL_EXIT(name, idx)                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)              \
	int exit_##name(struct syscall_trace_exit *ctx)            \
	{                                                       \
		return on_fd_syscall_exit(idx, ctx->ret);       \
	}

FD_SYSCALL_EXIT(socket, CS_SYS_SOCKET)
FD_SYSCALL_EXIT(socketpair, CS_SYS_SOCKETPAIR)
FD_SYSCALL_EXIT(open, CS_SYS_OPEN)
FD_SYSCALL_EXIT(openat, CS_SYS_OPENAT)
FD_SYSCALL_EXIT(openat2, CS_SYS_OPENAT2)
FD_SYSCALL_EXIT(creat, CS_SYS_CREAT)
FD_SYSCALL_EXIT(dup, CS_SYS_DUP)
FD_SYSCALL_EXIT(dup2, CS_SYS_DUP2)
FD_SYSCALL_EXIT(dup3, CS_SYS_DUP3)
FD_SYSCALL_EXIT(fcntl, CS_SYS_FCNTL)
FD_SYSCALL_EXIT(pipe, CS_SYS_PIPE)
FD_SYSCALL_EXIT(pipe2, CS_SYS_PIPE2)
FD_SYSCALL_EXIT(epoll_create, CS_SYS_EPOLL_CREATE)
FD_SYSCALL_EXIT(epoll_create1, CS_SYS_EPOLL_CREATE1)
FD_SYSCALL_EXIT(eventfd, CS_SYS_EVENTFD)
FD_SYSCALL_EXIT(eventfd2, CS_SYS_EVENTFD2)
FD_SYSCALL_EXIT(timerfd_create, CS_SYS_TIMERFD_CREATE)
FD_SYSCALL_EXIT(signalfd, CS_SYS_SIGNALFD)
FD_SYSCALL_EXIT(signalfd4, CS_SYS_SIGNALFD4)
FD_SYSCALL_EXIT(inotify_init, CS_SYS_INOTIFY_INIT)
FD_SYSCALL_EXIT(inotify_init1, CS_SYS_INOTIFY_INIT1)
FD_SYSCALL_EXIT(memfd_create, CS_SYS_MEMFD_CREATE)
FD_SYSCALL_EXIT(pidfd_open, CS_SYS_PIDFD_OPEN)

/* The target as a client (a proxy, a service calling its database): a
 * connect() or bind() with no local port left to take. */
static __always_inline int on_port_syscall_exit(__u16 sys, long ret)
{
	if (ret != -EADDRNOTAVAIL && ret != -EADDRINUSE)
		return 0;
	if (!current_is_target())
		return 0;
	count_syscall_error(sys, -ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct syscall_trace_exit *ctx)
{
	return on_port_syscall_exit(CS_SYS_CONNECT, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int exit_bind(struct syscall_trace_exit *ctx)
{
	return on_port_syscall_exit(CS_SYS_BIND, ctx->ret);
}

/* A pre-forking server's workers are targets too, forked after attach or not. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	__u8 one = 1;

	if (ptgid == ctgid || !bpf_map_lookup_elem(&targets, &ptgid))
		return 0;
	if (bpf_map_update_elem(&targets, &ctgid, &one, BPF_ANY))
		count(CS_CNT_TARGETS_FULL);
	return 0;
}

static __always_inline void on_listen(const struct sock *sk)
{
	__u32 port = sk->__sk_common.skc_num;
	struct cs_listen_key k = {};
	__u8 *v, one = 1;

	/* listen() runs in the caller's context, so current is meaningful here */
	if (!current_is_target())
		return;
	if (sk_listen_key(sk, port, &k)) {
		if (bpf_map_update_elem(&listen_addrs, &k, &one, BPF_ANY)) /* one: CS_LISTEN_NOW */
			count(CS_CNT_LISTEN_ADDRS_FULL);
		bpf_map_delete_elem(&listen_stopped, &k); /* listening again */
	}
	v = bpf_map_lookup_elem(&listen_ports, &port);
	if (v)
		*v = 1;
	port_bit_set(port);
}

/* The target closed a listener (close(), or its exit closing its fds, both
 * in its own context): the address is no longer its for new connections. */
static __always_inline void on_listen_close(const struct sock *sk)
{
	struct cs_listen_key k = {};
	__u8 *v;

	if (!current_is_target() || !sk_listen_key(sk, sk_local_port(sk), &k))
		return;
	v = bpf_map_lookup_elem(&listen_addrs, &k);
	if (v) {
		__u64 now = bpf_ktime_get_ns();

		*v = CS_LISTEN_STOPPED;
		if (bpf_map_update_elem(&listen_stopped, &k, &now, BPF_ANY))
			count(CS_CNT_LISTEN_ADDRS_FULL);
	}
}

/* A passive connection reached ESTABLISHED: track it from here, unless
 * accept() already did (it may take the child off the queue before this
 * state change); then keep its accepted flag and count a zero wait. */
static __always_inline void on_established(const struct sock *sk)
{
	struct cs_conn fresh = {}, *conn;
	__u64 key = (__u64)sk;
	long err;

	if (!sk_is_targets(sk))
		return;
	fresh.established_ns = bpf_ktime_get_ns();
	fresh.port = sk->__sk_common.skc_num;
	fresh.flags = CS_CONN_WAIT_KNOWN;
	err = bpf_map_update_elem(&conns, &key, &fresh, BPF_NOEXIST);
	if (err != -EEXIST) {
		if (err)
			count(CS_CNT_CONNS_TABLE_FULL);
		return;
	}
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return;
	if ((conn->flags & CS_CONN_ACCEPTED) && !(conn->flags & CS_CONN_WAIT_KNOWN)) {
		struct cs_port_stats *stats = port_stats_get(conn->port);

		if (stats) {
			stat_inc(stats->accept_wait_slots[0]);
			stat_inc(stats->accept_wait_count);
		}
		conn->established_ns = fresh.established_ns;
		conn_flag_set(conn, CS_CONN_WAIT_KNOWN);
		return;
	}
	/* a freed socket at the same address whose end we did not see */
	*conn = fresh;
}

/* The target let an accepted connection go (closed it, or it was aborted or
 * reset): it no longer counts as open. Once per connection, whichever state
 * change comes first. */
static __always_inline void conn_release(struct cs_conn *conn)
{
	if (!(__sync_fetch_and_or(&conn->flags, CS_CONN_RELEASED) & CS_CONN_RELEASED))
		port_open_add(conn->port, -1);
}

static __always_inline void on_close(__u64 key, struct cs_conn *conn, int oldstate)
{
	__u64 flags = __sync_fetch_and_or(&conn->flags, CS_CONN_CLOSED);
	struct cs_port_stats *stats;
	__u32 who;

	if (!(flags & CS_CONN_ACCEPTED)) {
		stats = port_stats_get(conn->port);
		if (stats)
			stat_inc(stats->closed_before_accept);
		goto out;
	}
	conn_release(conn);
	/* A jump to CLOSE from ESTABLISHED or CLOSE_WAIT is an abort (the RST
	 * it sends is traced after the state change, see __tcp_close). */
	if ((flags & CS_CONN_RESET) || oldstate == TCP_ESTABLISHED ||
	    oldstate == TCP_CLOSE_WAIT)
		who = CS_INIT_RESET;
	else if (flags & CS_CONN_LOCAL_FIN)
		who = CS_INIT_LOCAL;
	else if (flags & CS_CONN_REMOTE_FIN)
		who = CS_INIT_REMOTE;
	else
		who = CS_INIT_LOCAL;
	stats = port_stats_get(conn->port);
	if (stats && who < CS_INIT_MAX) {
		__u64 life = bpf_ktime_get_ns() - conn->accepted_ns;

		stat_inc(stats->closed[who]);
		stat_inc(stats->duration_slots[hist_slot(life)]);
		stat_add(stats->duration_sum_ns, life);
	}
out:
	bpf_map_delete_elem(&conns, &key);
}

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct cs_conn *conn;

	/* Runs for every TCP state change on the machine, both ends of every
	 * connection: the states (arguments, free to read) decide first. */
	if (newstate != TCP_LISTEN && newstate != TCP_ESTABLISHED &&
	    newstate != TCP_FIN_WAIT1 && newstate != TCP_CLOSE_WAIT &&
	    newstate != TCP_LAST_ACK && newstate != TCP_CLOSE)
		return;
	if (newstate == TCP_ESTABLISHED && oldstate != TCP_SYN_RECV)
		return; /* an active open: not a connection the target accepts */
	if (sk->sk_protocol != IPPROTO_TCP)
		return;
	if (newstate == TCP_LISTEN) {
		on_listen(sk);
		return;
	}
	if (oldstate == TCP_LISTEN) {
		on_listen_close(sk);
		return;
	}
	if (newstate == TCP_ESTABLISHED) {
		on_established(sk);
		return;
	}
	/* FIN_WAIT1 and CLOSE_WAIT still hold their port: most sockets on the
	 * machine (clients' ephemeral ports) stop here. At CLOSE the port is
	 * already given back (see sk_local_port), so the table decides. */
	if (newstate != TCP_CLOSE && !port_is_watched(sk->__sk_common.skc_num))
		return;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return;
	/* FIN_WAIT1, LAST_ACK, and CLOSE straight from ESTABLISHED/CLOSE_WAIT
	 * (an abort) are the app closing its end */
	if ((conn->flags & CS_CONN_ACCEPTED) &&
	    (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK ||
	     (newstate == TCP_CLOSE && (oldstate == TCP_ESTABLISHED || oldstate == TCP_CLOSE_WAIT)))) {
		queue_time_on_local_close(conn->port);
		if (newstate != TCP_CLOSE)
			conn_release(conn); /* on_close counts the abort */
	}
	if (full_probes)
		serve_on_state(sk, conn, newstate);
	if (newstate == TCP_FIN_WAIT1 && !(conn->flags & CS_CONN_REMOTE_FIN))
		conn_flag_set(conn, CS_CONN_LOCAL_FIN);
	else if (newstate == TCP_CLOSE_WAIT && !(conn->flags & CS_CONN_LOCAL_FIN))
		conn_flag_set(conn, CS_CONN_REMOTE_FIN);
	else if (newstate == TCP_CLOSE)
		on_close(key, conn, oldstate);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_SET_STATE);

	set_state(sk, oldstate, newstate);
	nest_done(n, (__u64)sk, newstate);
	return 0;
}

/* The second program of on_set_state (see nest_done). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state_nested, const struct sock *sk, const int oldstate, const int newstate)
{
	if (nest_missed(ctx, CS_NEST_SET_STATE, (__u64)sk, newstate))
		set_state(sk, oldstate, newstate);
	return 0;
}

static __always_inline void fill_tuple_from_sk(struct cs_event *e, const struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sport = sk_local_port(sk);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* BPF_CORE_READ_INTO would copy sizeof(*dst): one byte of the array */
	if (e->family == AF_INET) {
		bpf_core_read(e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* For a reset with no socket: the segment that caused it, read from skb.
 * Returns the local (destination) port, 0 if unreadable. */
static __always_inline __u16 fill_tuple_from_skb(struct cs_event *e, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th_off = BPF_CORE_READ(skb, transport_header);
	struct tcphdr th;
	__u8 ver = 0;

	if (bpf_probe_read_kernel(&th, sizeof(th), head + th_off))
		return 0;
	if (!e)
		return bpf_ntohs(th.dest);
	bpf_probe_read_kernel(&ver, 1, head + nh);
	if ((ver >> 4) == 4) {
		struct iphdr ip;

		bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.daddr, 4);
		__builtin_memcpy(e->daddr, &ip.saddr, 4);
	} else {
		struct ipv6hdr ip6;

		bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6.daddr, 16);
		__builtin_memcpy(e->daddr, &ip6.saddr, 16);
	}
	e->sport = bpf_ntohs(th.dest);
	e->dport = bpf_ntohs(th.source);
	return e->sport;
}

/* Resets sent on the target's listen ports: by its connections (abort on
 * close/data), by its listeners, and to ports it no longer listens on.
 * reason is an enum sk_rst_reason (0, not_specified, where there is none). */
static __always_inline int count_reset_sent(const struct sock *sk, const struct sk_buff *skb,
					    __u32 reason)
{
	__u32 idx = reason;
	struct cs_event *e;
	__u64 *v;

	if (sk) {
		if (!sk_is_targets(sk))
			return 0;
	} else if (skb) {
		/* no socket: only to an address and port the target listens on */
		if (!skb_is_targets(skb))
			return 0;
	} else {
		return 0;
	}
	if (idx >= CS_RST_REASONS_MAX)
		idx = CS_RST_REASONS_MAX - 1;
	v = bpf_map_lookup_elem(&resets_sent, &idx);
	if (v)
		stat_inc(*v);
	e = event_reserve(CS_EV_RESET_SENT);
	if (!e)
		return 0;
	/* softirq: current is whoever was on the CPU, not evidence of anything */
	e->pid = 0;
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	e->reason = reason;
	/* a listener's reset (a segment no connection or request matched) has
	 * no peer in the socket: the segment names the client */
	if (sk && (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN || !skb))
		fill_tuple_from_sk(e, sk);
	else
		fill_tuple_from_skb(e, skb);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* The same race once the closed socket became a FIN_WAIT2 timewait socket
 * (tcp_fin_timeout <= 60 s): the peer's data gets a reset from it. The
 * conns entry is gone by then; the timewait socket and the segment tell.
 * Before 6.10 no reset from a timewait socket is traced. */
static __always_inline void reset_from_timewait(const struct sock *sk, const struct sk_buff *skb)
{
	struct cs_serve_stats *st;
	struct tcp_skb_cb *cb;
	__u32 len;
	__u16 port;
	__u8 flags;

	/* tw_substate read, not accessed: 6.1's verifier types sk as a struct
	 * sock whatever the cast, and refuses the timewait sock's field */
	if (!sk || !skb || sk->__sk_common.skc_state != TCP_TIME_WAIT ||
	    BPF_CORE_READ((struct inet_timewait_sock *)sk, tw_substate) != TCP_FIN_WAIT2)
		return;
	port = sk->__sk_common.skc_num;
	if (!sk_is_watched(sk, port))
		return;
	cb = (struct tcp_skb_cb *)skb->cb;
	len = BPF_CORE_READ(cb, end_seq) - BPF_CORE_READ(cb, seq);
	flags = BPF_CORE_READ(cb, tcp_flags);
	/* SYN and FIN count one in the sequence space: what is left is data */
	if (len <= !!(flags & 0x02 /* TCPHDR_SYN */) + !!(flags & 0x01 /* TCPHDR_FIN */))
		return;
	st = serve_stats_get(port);
	if (st)
		stat_inc(st->keepalive_resets);
}

static __always_inline void send_reset(const struct sock *sk, const struct sk_buff *skb, __u32 reason)
{
	count_reset_sent(sk, skb, reason);
	if (full_probes)
		reset_from_timewait(sk, skb);
}

/* Linux 6.10 and newer: tcp_send_reset(sk, skb, reason). Process context
 * (close() aborting a connection) and softirq both send resets. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb,
	     const enum sk_rst_reason reason)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_SEND_RESET);

	send_reset(sk, skb, reason);
	nest_done(n, (__u64)sk, (__u64)skb);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_nested, const struct sock *sk, const struct sk_buff *skb,
	     const enum sk_rst_reason reason)
{
	if (nest_missed(ctx, CS_NEST_SEND_RESET, (__u64)sk, (__u64)skb))
		send_reset(sk, skb, reason);
	return 0;
}

/* Before 6.10 the tracepoint has no reason (and enum sk_rst_reason does not
 * exist). userspace loads this one or the one above, from the argument count
 * in the kernel's BTF. tcp_send_active_reset passes no segment: the target's
 * socket aborted (close with unread data, SO_LINGER 0, a timer's or memory
 * abort): not_specified. tcp_v4/v6_send_reset passes the segment it answers
 * (full sockets only): from a connection that took data after the target
 * shut it (TCPAbortOnData: closed first, state CLOSE) the application's abort
 * too; from a listener (an ACK no handshake matches: a stray segment, an ACK
 * scan) or a handshake not: passive. */
static __always_inline void send_reset_noreason(const struct sock *sk, const struct sk_buff *skb)
{
	bool passive = sk && skb && sk->__sk_common.skc_state != TCP_CLOSE;

	send_reset(sk, skb, passive ? CS_RST_PASSIVE_BEFORE_6_10 : 0);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_SEND_RESET);

	send_reset_noreason(sk, skb);
	nest_done(n, (__u64)sk, (__u64)skb);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_noreason_nested, const struct sock *sk, const struct sk_buff *skb)
{
	if (nest_missed(ctx, CS_NEST_SEND_RESET, (__u64)sk, (__u64)skb))
		send_reset_noreason(sk, skb);
	return 0;
}

static __always_inline void receive_reset(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct cs_conn *conn;

	if (!sk_is_targets(sk))
		return;
	count(CS_CNT_RESETS_RECEIVED);
	conn = bpf_map_lookup_elem(&conns, &key);
	if (conn) {
		if (full_probes) {
			serve_peer_left(sk, conn, conn->flags & CS_CONN_REMOTE_FIN);
			serve_reset_after_fin(conn);
		}
		conn_flag_set(conn, CS_CONN_RESET);
	}
}

/* Softirq, or process context when release_sock() runs the socket's
 * backlog. */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_RECEIVE_RESET);

	receive_reset(sk);
	nest_done(n, (__u64)sk, 0);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset_nested, struct sock *sk)
{
	if (nest_missed(ctx, CS_NEST_RECEIVE_RESET, (__u64)sk, 0))
		receive_reset(sk);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(on_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	if (sk_is_targets(sk))
		count(CS_CNT_SYNACK_RETRANS);
	return 0;
}

/* A handshake ACK dropped because the listener's accept queue was full: a
 * client that believes it connected. Needs the listener (kfree_skb's rx_sk,
 * 6.12+) and SKB_DROP_REASON_TCP_LISTEN_OVERFLOW (5.19+). */
static __always_inline void listen_overflow_drop(struct sock *rx_sk)
{
	struct cs_queue_time *q;
	__u16 port;

	if (!rx_sk)
		return;
	port = BPF_CORE_READ(rx_sk, __sk_common.skc_num);
	if (!sk_is_watched(rx_sk, port))
		return;
	q = queue_time_get(port);
	if (!q)
		return;
	__sync_fetch_and_add(&q->ack_drops, 1);
	if (!q->full_since_ns)
		q->full_since_ns = bpf_ktime_get_ns();
}

/* The destination port of a TCP SYN (not SYN-ACK) in skb, 0 for anything
 * else, and its destination address (IPv4 mapped). Netfilter hooks run
 * after ip_rcv set the transport header. */
static __always_inline __u16 skb_syn_dest(const struct sk_buff *skb, __u8 daddr[16])
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th_off = BPF_CORE_READ(skb, transport_header);
	struct tcphdr th;
	__u8 ver = 0, proto = 0;

	if (bpf_probe_read_kernel(&ver, 1, head + nh))
		return 0;
	if ((ver >> 4) == 4) {
		bpf_probe_read_kernel(&proto, 1, head + nh + offsetof(struct iphdr, protocol));
		daddr[10] = daddr[11] = 0xff;
		bpf_probe_read_kernel(&daddr[12], 4, head + nh + offsetof(struct iphdr, daddr));
	} else if ((ver >> 4) == 6) {
		bpf_probe_read_kernel(&proto, 1, head + nh + offsetof(struct ipv6hdr, nexthdr));
		bpf_probe_read_kernel(daddr, 16, head + nh + offsetof(struct ipv6hdr, daddr));
	}
	if (proto != IPPROTO_TCP || bpf_probe_read_kernel(&th, sizeof(th), head + th_off))
		return 0;
	return th.syn && !th.ack ? bpf_ntohs(th.dest) : 0;
}

/* SYNs to the target's listen ports that a netfilter rule, or a full
 * conntrack table, dropped before TCP saw them: in the target's namespace,
 * or in another one on the way there (a pod's node, where the service's DNAT
 * and its filter rules run) when the SYN was for one of the target
 * namespace's own addresses. */
static __always_inline void netfilter_drop(const struct sk_buff *skb)
{
	struct cs_serve_stats *st;
	struct net_device *dev;
	__u8 daddr[16] = {};
	struct sock *sk;
	__u32 inum = 0;
	__u16 port;

	port = skb_syn_dest(skb, daddr);
	if (!port || !port_bit_is_set(port))
		return;
	/* incoming: the receiving device's namespace; on output there may be no
	 * device yet, and the sending socket's namespace is the one */
	dev = BPF_CORE_READ(skb, dev);
	sk = BPF_CORE_READ(skb, sk);
	if (dev)
		inum = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	else if (sk)
		inum = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (target_netns && inum != target_netns && !bpf_map_lookup_elem(&netns_addrs, daddr))
		return;
	st = serve_stats_get(port);
	if (st)
		stat_inc(st->netfilter_drops);
}

/* Every freed packet on the host passes here: the reason, an argument,
 * decides first. One program for both uses, so a drop runs one. 6.12+:
 * with rx_sk; userspace loads this form or the one below from the
 * argument count in the kernel's BTF. */
static __always_inline void skb_dropped(struct sk_buff *skb, enum skb_drop_reason reason, struct sock *rx_sk)
{
	/* SKB_DROP_REASON_NETFILTER_DROP is in every kernel with drop reasons,
	 * but not always with the same value (the enum grew in the middle) */
	if (full_probes && bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP))
		netfilter_drop(skb);
	else if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_TCP_LISTEN_OVERFLOW) &&
		 reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_TCP_LISTEN_OVERFLOW))
		listen_overflow_drop(rx_sk);
}

/* Packets are freed in process context too (a close() with unread data). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_KFREE_SKB);

	skb_dropped(skb, reason, rx_sk);
	nest_done(n, (__u64)skb, (__u64)location);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_nested, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	if (nest_missed(ctx, CS_NEST_KFREE_SKB, (__u64)skb, (__u64)location))
		skb_dropped(skb, reason, rx_sk);
	return 0;
}

/* 5.17 to 6.11: no rx_sk, so netfilter drops only (handshake ACK drops are
 * estimated there, see the diagnosis). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_noskb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct cs_nest *n = nest_begin(ctx, CS_NEST_KFREE_SKB);

	skb_dropped(skb, reason, NULL);
	nest_done(n, (__u64)skb, (__u64)location);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_noskb_nested, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	if (nest_missed(ctx, CS_NEST_KFREE_SKB, (__u64)skb, (__u64)location))
		skb_dropped(skb, reason, NULL);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(on_mark_victim, struct task_struct *task, uid_t uid)
{
	__u32 tgid = task->tgid;
	struct cs_event *e;

	if (!bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	count(CS_CNT_OOM_KILLS);
	e = event_reserve(CS_EV_OOM_KILL);
	if (!e)
		return 0;
	e->pid = tgid;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
