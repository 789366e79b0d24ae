// SPDX-License-Identifier: MIT
/* Loads bpf/connscope.bpf.c, keeps its maps in step with the target, and
 * turns the maps into snapshot fields. The only file that talks to BPF. */
#define _GNU_SOURCE
#include "probes.h"
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "connscope.skel.h"

#define TRACEFS "/sys/kernel/tracing"
#define SYSCALL_EVENTS TRACEFS "/events/syscalls"

struct probes {
	struct connscope_bpf *skel;
	struct ring_buffer *rb;
	int ncpus;
	void *percpu_buf;   /* ncpus * largest per-CPU value */
	probes_event_fn fn;
	void *fn_arg;
	uint64_t events_seen;
	bool ack_drops_exact; /* on_kfree_skb loaded */
};

static bool verbose_log;

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose_log)
		return 0;
	if (level == LIBBPF_INFO && !verbose_log)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Syscall tracepoints need tracefs; it is not always mounted. */
static int ensure_tracefs(void)
{
	if (access(SYSCALL_EVENTS, F_OK) == 0)
		return 0;
	if (access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
		return 0;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
		fprintf(stderr, "connscope: cannot mount tracefs at %s: %s "
			"(mount it: mount -t tracefs nodev %s)\n", TRACEFS, strerror(errno), TRACEFS);
		return -errno;
	}
	if (access(SYSCALL_EVENTS, F_OK)) {
		fprintf(stderr, "connscope: kernel has no syscall tracepoints (%s missing; "
			"needs CONFIG_FTRACE_SYSCALLS)\n", SYSCALL_EVENTS);
		return -ENOTSUP;
	}
	return 0;
}

/* Not every architecture has every syscall (arm64 has no open, pipe, dup2):
 * programs whose tracepoint is missing are not loaded. */
static void skip_missing_syscalls(struct connscope_bpf *skel)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		const char *prefix = "tracepoint/syscalls/";
		char path[256];

		if (strncmp(sec, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), SYSCALL_EVENTS "/%s", sec + strlen(prefix));
		if (access(path, F_OK)) {
			if (verbose_log)
				fprintf(stderr, "connscope: no tracepoint %s, not watched\n", path);
			bpf_program__set_autoload(prog, false);
		}
	}
}

/* kfree_skb names the receiving socket (rx_sk, its 4th argument) since 6.12;
 * before that the listener of a dropped handshake ACK is not known, and the
 * ACK drops are estimated by the diagnosis instead (it says so). */
static bool kfree_skb_has_rx_sk(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool ok = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id > 0) {
		t = btf__type_by_id(btf, btf__resolve_type(btf, id)); /* pointer */
		if (t && btf_is_ptr(t))
			t = btf__type_by_id(btf, t->type);
		/* (void *ctx, skb, location, reason, rx_sk) */
		ok = t && btf_is_func_proto(t) && btf_vlen(t) >= 5;
	}
	btf__free(btf);
	return ok;
}

static int on_ringbuf(void *ctx, void *data, size_t len)
{
	struct probes *p = ctx;

	if (len < sizeof(struct cs_event))
		return 0;
	p->events_seen++;
	if (p->fn)
		p->fn(data, p->fn_arg);
	return 0;
}

int probes_new(uint32_t netns_ino, bool verbose, probes_event_fn fn, void *arg, struct probes **out)
{
	struct probes *p;
	int err;

	verbose_log = verbose;
	libbpf_set_print(libbpf_log);
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "connscope: no kernel BTF at /sys/kernel/btf/vmlinux "
			"(needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)\n");
		return -ENOTSUP;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "connscope: loading BPF programs needs root or CAP_BPF+CAP_PERFMON "
			"(run with sudo)\n");
		return -EPERM;
	}
	err = ensure_tracefs();
	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->fn_arg = arg;
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus ? p->ncpus : -EINVAL;
		goto cleanup;
	}
	p->percpu_buf = calloc(p->ncpus, sizeof(struct cs_port_stats));
	if (!p->percpu_buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	p->skel = connscope_bpf__open();
	if (!p->skel) {
		err = -errno;
		fprintf(stderr, "connscope: cannot open BPF object: %s\n", strerror(-err));
		goto cleanup;
	}
	skip_missing_syscalls(p->skel);
	p->ack_drops_exact = kfree_skb_has_rx_sk();
	if (!p->ack_drops_exact) {
		fprintf(stderr, "connscope: this kernel's kfree_skb does not name the listener (6.12+): "
			"handshake ACKs dropped at a full accept queue are estimated, not counted\n");
		bpf_program__set_autoload(p->skel->progs.on_kfree_skb, false);
	}
	p->skel->rodata->target_netns = netns_ino;
	err = connscope_bpf__load(p->skel);
	if (err) {
		fprintf(stderr, "connscope: loading BPF programs failed: %s%s\n", strerror(-err),
			err == -EPERM ? " (need root or CAP_BPF+CAP_PERFMON)" : " (run with -v for the verifier log)");
		goto cleanup;
	}
	err = connscope_bpf__attach(p->skel);
	if (err) {
		fprintf(stderr, "connscope: attaching tracepoints failed: %s (run with -v)\n",
			strerror(-err));
		goto cleanup;
	}
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), on_ringbuf, p, NULL);
	if (!p->rb) {
		err = -errno;
		fprintf(stderr, "connscope: ring buffer: %s\n", strerror(-err));
		goto cleanup;
	}
	*out = p;
	return 0;
cleanup:
	probes_free(p);
	return err;
}

static void *detach_one(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Each tracepoint detach waits for an RCU grace period (~70 ms on the test
 * VM); 25 of them one after another made exit take ~2 s. Detached from
 * threads at once they share grace periods. A link whose thread cannot be
 * started is left to the skeleton's own (sequential) destroy. */
static void detach_parallel(struct connscope_bpf *skel)
{
	struct bpf_object_skeleton *s = skel->skeleton;
	pthread_t th[64];
	int n = 0;

	for (int i = 0; s && i < s->prog_cnt && n < 64; i++) {
		struct bpf_link **link = s->progs[i].link;

		if (!link || !*link)
			continue;
		if (!pthread_create(&th[n], NULL, detach_one, *link)) {
			*link = NULL;
			n++;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

void probes_free(struct probes *p)
{
	if (!p)
		return;
	ring_buffer__free(p->rb);
	if (p->skel)
		detach_parallel(p->skel);
	connscope_bpf__destroy(p->skel);
	free(p->percpu_buf);
	free(p);
}

int probes_add_target(struct probes *p, int tgid)
{
	__u32 key = tgid;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.targets, &key, sizeof(key), &one, sizeof(one), BPF_ANY))
		return -errno;
	return 0;
}

int probes_add_port(struct probes *p, uint16_t port)
{
	__u32 idx = port;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.listen_ports, &idx, sizeof(idx), &one, sizeof(one), BPF_ANY))
		return -errno;
	return 0;
}

bool probes_has_port(struct probes *p, uint16_t port)
{
	__u32 idx = port;
	__u8 v = 0;

	return !bpf_map__lookup_elem(p->skel->maps.listen_ports, &idx, sizeof(idx), &v, sizeof(v), 0) && v;
}

int probes_targets(struct probes *p, int *out, int max)
{
	struct bpf_map *m = p->skel->maps.targets;
	__u32 key, next, dead[64];
	int n = 0, ndead = 0;
	void *prev = NULL;
	char path[32];

	while (!bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		key = next;
		prev = &key;
		snprintf(path, sizeof(path), "/proc/%u", key);
		if (access(path, F_OK)) {
			if (ndead < 64)
				dead[ndead++] = key;
		} else if (n < max) {
			out[n++] = key;
		}
	}
	for (int i = 0; i < ndead; i++)
		bpf_map__delete_elem(m, &dead[i], sizeof(dead[i]), 0);
	return n;
}

/* Sum of a per-CPU u64 array slot. */
static uint64_t percpu_u64(struct probes *p, struct bpf_map *m, __u32 idx)
{
	uint64_t *vals = p->percpu_buf, sum = 0;

	if (bpf_map__lookup_elem(m, &idx, sizeof(idx), vals, sizeof(uint64_t) * p->ncpus, 0))
		return 0;
	for (int c = 0; c < p->ncpus; c++)
		sum += vals[c];
	return sum;
}

static void add_hist(struct cs_hist *h, const __u64 *slots, __u64 sum_ns, __u64 count)
{
	for (int i = 0; i < CS_HIST_SLOTS; i++)
		h->slots[i] += slots[i];
	h->sum_ns += sum_ns;
	h->count += count;
}

static void read_ports(struct probes *p, struct cs_snapshot *s)
{
	struct bpf_map *m = p->skel->maps.port_stats;
	struct cs_port_stats *vals = p->percpu_buf;
	__u16 key, next;
	void *prev = NULL;

	s->n_ports = 0;
	s->accepts_total = 0;
	while (!bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		struct cs_port *port;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(m, &key, sizeof(key), vals, sizeof(*vals) * p->ncpus, 0))
			continue;
		if (s->n_ports >= CS_PORTS_SHOWN_MAX)
			break;
		port = &s->ports[s->n_ports++];
		memset(port, 0, sizeof(*port));
		port->port = key;
		for (int c = 0; c < p->ncpus; c++) {
			const struct cs_port_stats *v = &vals[c];
			__u64 dur_count = 0;

			port->accepts += v->accepts;
			for (int i = 0; i < CS_INIT_MAX; i++) {
				port->closed[i] += v->closed[i];
				dur_count += v->closed[i];
			}
			port->closed_before_accept += v->closed_before_accept;
			add_hist(&port->accept_wait, v->accept_wait_slots, v->accept_wait_sum_ns,
				 v->accept_wait_count);
			add_hist(&port->duration, v->duration_slots, v->duration_sum_ns, dur_count);
		}
		s->accepts_total += port->accepts;
	}
}

static void read_syscall_errors(struct probes *p, struct cs_snapshot *s)
{
	struct bpf_map *m = p->skel->maps.syscall_errors;
	struct cs_syscall_error_key key, next;
	uint64_t *vals = p->percpu_buf;
	void *prev = NULL;

	s->n_syserr = 0;
	while (!bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		struct cs_syserr *e;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(m, &key, sizeof(key), vals, sizeof(uint64_t) * p->ncpus, 0))
			continue;
		if (s->n_syserr >= CS_SYSERR_SHOWN_MAX)
			break;
		e = &s->syserr[s->n_syserr++];
		e->syscall = key.syscall;
		e->err = key.err;
		e->count = 0;
		for (int c = 0; c < p->ncpus; c++)
			e->count += vals[c];
	}
}

/* The queue_time map into the ports read by read_ports (a port with only
 * queue_time, no accept yet, gets a row of its own). */
static void read_queue_time(struct probes *p, struct cs_snapshot *s)
{
	struct bpf_map *m = p->skel->maps.queue_time;
	struct cs_queue_time v;
	__u16 key, next;
	void *prev = NULL;

	s->ack_drops_exact = p->ack_drops_exact;
	while (!bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		struct cs_port *port = NULL;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(m, &key, sizeof(key), &v, sizeof(v), 0))
			continue;
		for (int i = 0; i < s->n_ports && !port; i++)
			if (s->ports[i].port == key)
				port = &s->ports[i];
		if (!port) {
			if (s->n_ports >= CS_PORTS_SHOWN_MAX)
				continue;
			port = &s->ports[s->n_ports++];
			memset(port, 0, sizeof(*port));
			port->port = key;
		}
		port->qt = v;
	}
	for (int i = 0; i < s->n_ports; i++) {
		__u16 k = s->ports[i].port;
		__u64 seen = 0;

		if (!bpf_map__lookup_elem(p->skel->maps.queue_full_seen, &k, sizeof(k), &seen,
					  sizeof(seen), 0) && seen &&
		    (!s->ports[i].qt.full_since_ns || seen < s->ports[i].qt.full_since_ns))
			s->ports[i].qt.full_since_ns = seen;
	}
}

int probes_mark_queue_full(struct probes *p, uint16_t port, uint64_t mono_ns, uint64_t *since_ns)
{
	struct bpf_map *m = p->skel->maps.queue_full_seen;
	__u16 key = port;
	__u64 v = 0;

	/* the span starts at the first tick that saw it full: an earlier
	 * mark, not yet taken by an accept, stays */
	if (!bpf_map__lookup_elem(m, &key, sizeof(key), &v, sizeof(v), 0) && v) {
		*since_ns = v;
		return 0;
	}
	v = mono_ns;
	*since_ns = v;
	if (bpf_map__update_elem(m, &key, sizeof(key), &v, sizeof(v), BPF_ANY))
		return -errno;
	return 0;
}

int probes_read(struct probes *p, struct cs_snapshot *s)
{
	read_ports(p, s);
	read_queue_time(p, s);
	read_syscall_errors(p, s);
	for (__u32 i = 0; i < CS_RST_REASONS_MAX; i++)
		s->resets_sent[i] = percpu_u64(p, p->skel->maps.resets_sent, i);
	for (__u32 i = 0; i < CS_CNT_MAX; i++)
		s->counters[i] = percpu_u64(p, p->skel->maps.counters, i);
	s->ringbuf_events = p->events_seen;
	return 0;
}

int probes_poll(struct probes *p, int timeout_ms)
{
	int n = ring_buffer__poll(p->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

/* What the kernel charges for each map (fdinfo's memlock), summed. */
uint64_t probes_map_bytes(struct probes *p)
{
	struct bpf_map *m;
	uint64_t total = 0;

	bpf_object__for_each_map(m, p->skel->obj) {
		char path[64], line[128];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", bpf_map__fd(m));
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "memlock:", 8))
				total += strtoull(line + 8, NULL, 10);
		fclose(f);
	}
	return total;
}
