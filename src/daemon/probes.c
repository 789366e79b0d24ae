// SPDX-License-Identifier: MIT
/* Loads bpf/connscope.bpf.c, keeps its maps in step with the target, and
 * turns the maps into snapshot fields. The only file that talks to BPF. */
#define _GNU_SOURCE
#include "probes.h"
#include "errmsg.h"
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "netutil.h"
#include "connscope.skel.h"

#define TRACEFS "/sys/kernel/tracing"
#define SYSCALL_EVENTS TRACEFS "/events/syscalls"

/* The oldest kernel every required program loads on: atomic fetch-or on map
 * values (a connection's flags, set by accept() and softirq on two CPUs at
 * once) came in 5.12, after bpf_get_current_task_btf (fd_to_sock, 5.11), the
 * ring buffer (5.8) and tp_btf (5.5). */
#define MIN_KERNEL_MAJOR 5
#define MIN_KERNEL_MINOR 12
#define MIN_KERNEL_WHY "BPF ring buffer 5.8, tp_btf 5.5, bpf_get_current_task_btf 5.11, atomic fetch-or 5.12"

/* Programs the verifier may refuse before connscope gives up: each one
 * refused is left out and the load retried without it. */
#define LOAD_ATTEMPTS_MAX 8
#define PROG_NAME_LEN 64

/* Kernel-version differences of the tp_btf programs, in one place: every
 * form of a tracepoint that connscope has a program for, with the number of
 * arguments it reads (a second program, NAME_nested, goes with its first).
 * The form whose count matches the running kernel's btf_trace_<tracepoint>
 * is loaded, the others are left out; programs not listed here read
 * arguments every supported kernel has. */
static const struct tp_form {
	const char *prog;
	int nargs;
	const char *reduced; /* NULL: the full form; else what this form lacks */
} tp_forms[] = {
	/* 6.10 added the reason argument and enum sk_rst_reason */
	{ "on_send_reset", 3, NULL },
	{ "on_send_reset_noreason", 2, "reset reasons need Linux 6.10; counting resets without a reason" },
	/* mark_victim(task, uid) from 6.8 (6.1.y and 6.6.y stable got it too);
	 * before that it passes only a pid */
	{ "on_mark_victim", 2, NULL },
	/* 6.12 added rx_sk, the socket a dropped packet was for: the listener
	 * of a handshake ACK dropped at a full accept queue. Without it those
	 * drops are estimated by the diagnosis (it says so). */
	{ "on_kfree_skb", 4, NULL },
	{ "on_kfree_skb_noskb", 3, NULL },
};

/* Left out, with full_probes false, when CONNSCOPE_BENCH_BASELINE is set: the
 * bench's run without what the serving, path and outbound causes add. */
static const char *const full_only_progs[] = {
	"on_rcv_space_adjust", "exit_connect", "exit_bind", "on_kfree_skb_noskb",
};

/* First programs with a second one, NAME_nested, that stands in for a run
 * the kernel skipped (see nest_done in bpf/). */
static const struct {
	const char *prog;
	enum cs_nest_hook hook;
} nested_progs[] = {
	{ "on_set_state", CS_NEST_SET_STATE },
	{ "on_send_reset", CS_NEST_SEND_RESET },
	{ "on_send_reset_noreason", CS_NEST_SEND_RESET },
	{ "on_receive_reset", CS_NEST_RECEIVE_RESET },
	{ "on_kfree_skb", CS_NEST_KFREE_SKB },
	{ "on_kfree_skb_noskb", CS_NEST_KFREE_SKB },
};

#define SECOND_SUFFIX "_nested"

/* The length of the first program's name if name is a second's, else 0. */
static size_t second_of(const char *name)
{
	size_t n = strlen(name), k = sizeof(SECOND_SUFFIX) - 1;

	return n > k && !strcmp(name + n - k, SECOND_SUFFIX) ? n - k : 0;
}

static int nest_hook_of(const char *name)
{
	for (size_t i = 0; i < sizeof(nested_progs) / sizeof(nested_progs[0]); i++)
		if (!strcmp(nested_progs[i].prog, name))
			return nested_progs[i].hook;
	return -1;
}

/* Programs without which connscope has nothing to say: their failure stops it. */
static const char *const required_progs[] = { "exit_accept", "exit_accept4", "on_set_state" };

#define PORT_OPEN_BYTES ((size_t)CS_PORT_SPACE * sizeof(struct cs_port_open))

struct probes {
	struct connscope_bpf *skel;
	struct ring_buffer *rb;
	int ncpus;
	void *percpu_buf;   /* ncpus * largest per-CPU value */
	void *serve_buf;    /* every serve_slots value: CS_SERVE_SLOTS * ncpus */
	probes_event_fn fn;
	void *fn_arg;
	uint32_t netns_ino;
	uint64_t events_seen;
	bool ack_drops_exact; /* on_kfree_skb loaded */
	uint64_t recursion_lost; /* highest read, see read_recursion() */
	uint64_t stood_in[CS_NEST_MAX]; /* last read, by enum cs_nest_hook */
	struct cs_port_open *port_open; /* the port_open map, mapped */
	bool baseline;        /* CONNSCOPE_BENCH_BASELINE: see full_only_progs */
	int n_probes;
	struct cs_probe probes[CS_PROBES_MAX];
	/* programs the verifier refused in an earlier load attempt */
	char refused[LOAD_ATTEMPTS_MAX][PROG_NAME_LEN];
	int n_refused;
	/* listen_stopped's times in wall-clock seconds, converted once: a new
	 * conversion on every read would move them by microseconds */
	struct {
		__u64 ns;
		double wall;
	} stopped_wall[CS_LISTENERS_MAX];
	int n_stopped_wall;
};

static bool verbose_log;
/* While loading without -v: libbpf's warnings about a refused optional
 * program would be dozens of lines; connscope says it in one. */
static bool quiet_load;
/* The program libbpf last said it failed to load; "" if none. */
static char failed_prog[PROG_NAME_LEN];

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[256]; /* the start of the message, enough to name a program */
	va_list copy;

	va_copy(copy, args);
	vsnprintf(line, sizeof(line), fmt, copy);
	va_end(copy);
	/* "libbpf: prog 'NAME': failed to load: -13" names the one refused */
	if (strstr(line, "': failed to load"))
		sscanf(line, "libbpf: prog '%63[^']'", failed_prog);
	if (quiet_load || (level == LIBBPF_DEBUG && !verbose_log))
		return 0;
	if (level == LIBBPF_INFO && !verbose_log)
		return 0;
	/* the whole message: a verifier log comes as one long string */
	return vfprintf(stderr, fmt, args);
}

/* Refuses kernels older than the minimum with one line naming it. */
static int check_kernel_version(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0; /* unknown: let the load decide */
	if (major > MIN_KERNEL_MAJOR || (major == MIN_KERNEL_MAJOR && minor >= MIN_KERNEL_MINOR))
		return 0;
	return errmsg(-ENOTSUP, "needs Linux %d.%d or newer (%s); this kernel is %s",
		      MIN_KERNEL_MAJOR, MIN_KERNEL_MINOR, MIN_KERNEL_WHY, u.release);
}

/* Records what became of a tracepoint. Several programs may serve one
 * tracepoint (its forms): the best state any of them reached is kept. */
static void probe_note(struct probes *p, const char *name, enum cs_probe_state state, const char *why)
{
	struct cs_probe *pr = NULL;

	for (int i = 0; i < p->n_probes && !pr; i++)
		if (!strcmp(p->probes[i].name, name))
			pr = &p->probes[i];
	if (!pr) {
		if (p->n_probes == CS_PROBES_MAX)
			return;
		pr = &p->probes[p->n_probes++];
		snprintf(pr->name, sizeof(pr->name), "%s", name);
	} else if (state >= pr->state) {
		return;
	}
	pr->state = state;
	snprintf(pr->why, sizeof(pr->why), "%s", why ? why : "");
}

/* Arguments of tracepoint tp in the kernel's BTF (the btf_trace_<tp>
 * typedef's function, less its leading void *), or -ENOENT. */
static int tp_nargs(const struct btf *btf, const char *tp)
{
	const struct btf_type *t;
	char name[96];
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	while (t && (btf_is_typedef(t) || btf_is_ptr(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -ENOENT;
	return btf_vlen(t) - 1;
}

/* Whether prog goes with first: it is first, or first's second (NAME_nested). */
static bool goes_with(const char *prog, const char *first)
{
	size_t n = second_of(prog);

	if (!n)
		n = strlen(prog);

	return !strncmp(prog, first, n) && first[n] == '\0';
}

static const struct tp_form *tp_form_of(const char *prog)
{
	for (size_t i = 0; i < sizeof(tp_forms) / sizeof(tp_forms[0]); i++)
		if (goes_with(prog, tp_forms[i].prog))
			return &tp_forms[i];
	return NULL;
}

static bool is_required(const char *prog)
{
	for (size_t i = 0; i < sizeof(required_progs) / sizeof(required_progs[0]); i++)
		if (!strcmp(required_progs[i], prog))
			return true;
	return false;
}

static bool is_full_only(const char *prog)
{
	for (size_t i = 0; i < sizeof(full_only_progs) / sizeof(full_only_progs[0]); i++)
		if (goes_with(prog, full_only_progs[i]))
			return true;
	return false;
}

static bool was_refused(const struct probes *p, const char *prog)
{
	for (int i = 0; i < p->n_refused; i++)
		if (!strcmp(p->refused[i], prog))
			return true;
	return false;
}

/* A second program (NAME_nested) loads only with its first: alone it would
 * stand in for every event. A first without its second loses the runs the
 * kernel skips, and they are counted as lost (read_recursion). */
static bool first_refused(const struct probes *p, const char *name)
{
	char first[PROG_NAME_LEN];
	size_t n = second_of(name);

	if (!n)
		return false;
	snprintf(first, sizeof(first), "%.*s", (int)n, name);
	return was_refused(p, first);
}

/* Chooses, before load, the programs this kernel can take: the form of each
 * tp_btf tracepoint matching its BTF, syscall tracepoints that exist, none
 * the verifier refused before. Notes each tracepoint's state. */
static void choose_programs(struct probes *p, const struct btf *vmlinux)
{
	struct bpf_program *prog;
	char why[CS_PROBE_WHY_LEN];

	p->n_probes = 0;
	bpf_object__for_each_program(prog, p->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		const char *name = bpf_program__name(prog);
		const char *tp = strchr(sec, '/') ? strrchr(sec, '/') + 1 : sec;
		enum cs_probe_state state = CS_PROBE_ACTIVE;
		const struct tp_form *form;
		char path[256];
		int n;

		why[0] = '\0';
		if (!strncmp(sec, "tracepoint/syscalls/", 20)) {
			snprintf(path, sizeof(path), SYSCALL_EVENTS "/%s", tp);
			if (eaccess(path, F_OK)) {
				/* arm64 has no open, pipe, dup2: nothing to miss there */
				state = CS_PROBE_UNAVAILABLE;
				snprintf(why, sizeof(why), "this kernel has no tracepoint syscalls/%.60s", tp);
			}
		} else if (!strncmp(sec, "tp_btf/", 7)) {
			n = tp_nargs(vmlinux, tp);
			form = tp_form_of(name);
			if (n < 0) {
				state = CS_PROBE_UNAVAILABLE;
				snprintf(why, sizeof(why), "this kernel has no tracepoint %.60s", tp);
			} else if (form && form->nargs != n) {
				state = CS_PROBE_UNAVAILABLE;
				snprintf(why, sizeof(why), "%.40s takes %d arguments on this kernel, "
					 "a form connscope has no program for", tp, n);
			} else if (form && form->reduced) {
				state = CS_PROBE_REDUCED;
				snprintf(why, sizeof(why), "%s", form->reduced);
			}
		}
		if (p->baseline && is_full_only(name)) {
			state = CS_PROBE_UNAVAILABLE;
			snprintf(why, sizeof(why), "left out: CONNSCOPE_BENCH_BASELINE is set");
		}
		if (state != CS_PROBE_UNAVAILABLE && (was_refused(p, name) || first_refused(p, name))) {
			state = CS_PROBE_UNAVAILABLE;
			snprintf(why, sizeof(why), "the kernel's verifier refused %.40s (run with -v for its log)", name);
		}
		bpf_program__set_autoload(prog, state != CS_PROBE_UNAVAILABLE);
		probe_note(p, tp, state, why);
	}
}

/* One line per tracepoint that runs reduced or not at all, once, at start;
 * with -v every tracepoint's state. Missing syscalls (an architecture
 * without open or pipe) lose nothing, so only -v names them. */
static void report_probes(const struct probes *p)
{
	for (int i = 0; i < p->n_probes; i++) {
		const struct cs_probe *pr = &p->probes[i];
		bool syscall = !strncmp(pr->name, "sys_", 4);

		if (verbose_log)
			fprintf(stderr, "connscope: probe %s: %s%s%s\n", pr->name,
				snapshot_probe_state_name(pr->state), pr->why[0] ? ": " : "", pr->why);
		else if (pr->state != CS_PROBE_ACTIVE && !syscall)
			fprintf(stderr, "connscope: %s: %s\n", pr->name, pr->why);
	}
}

/* Syscall tracepoints need tracefs; it is not always mounted. eaccess(), not
 * access(): a non-root run with CAP_DAC_READ_SEARCH can read the 0700 tracefs,
 * and access() checks the real uid without capabilities. */
static int ensure_tracefs(void)
{
	if (eaccess(SYSCALL_EVENTS, F_OK) == 0)
		return 0;
	if (eaccess("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
		return 0;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
		fprintf(stderr, "connscope: cannot mount tracefs at %s: %s "
			"(mount it: mount -t tracefs nodev %s)\n", TRACEFS, strerror(errno), TRACEFS);
		return -errno;
	}
	if (eaccess(SYSCALL_EVENTS, F_OK)) {
		fprintf(stderr, "connscope: kernel has no syscall tracepoints (%s missing; "
			"needs CONFIG_FTRACE_SYSCALLS)\n", SYSCALL_EVENTS);
		return -ENOTSUP;
	}
	return 0;
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

/* Opens and loads the BPF object with the programs this kernel can take.
 * A program the verifier refuses is left out and the load retried, unless
 * connscope cannot work without it. */
static int load_programs(struct probes *p, uint32_t netns_ino)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int err;

	if (!vmlinux)
		return errmsg(-errno, "cannot read the kernel's BTF: %s", strerror(errno));
	for (int attempt = 0; attempt < LOAD_ATTEMPTS_MAX; attempt++) {
		connscope_bpf__destroy(p->skel);
		p->skel = connscope_bpf__open();
		if (!p->skel) {
			err = errmsg(-errno, "cannot open BPF object: %s", strerror(errno));
			break;
		}
		choose_programs(p, vmlinux);
		p->skel->rodata->target_netns = netns_ino;
		p->skel->rodata->full_probes = !p->baseline;
		failed_prog[0] = '\0';
		quiet_load = !verbose_log;
		err = connscope_bpf__load(p->skel);
		quiet_load = false;
		if (!err) {
			report_probes(p);
			break;
		}
		if (err == -EPERM || !failed_prog[0] || is_required(failed_prog) ||
		    was_refused(p, failed_prog) || p->n_refused == LOAD_ATTEMPTS_MAX) {
			errmsg(err, "loading BPF programs failed: %s%s", strerror(-err),
			       err == -EPERM ? " (need root or CAP_BPF+CAP_PERFMON)" :
			       " (run with -v for the verifier log)");
			break;
		}
		snprintf(p->refused[p->n_refused++], PROG_NAME_LEN, "%s", failed_prog);
	}
	btf__free(vmlinux);
	return err;
}

int probes_new(uint32_t netns_ino, bool verbose, probes_event_fn fn, void *arg, struct probes **out)
{
	struct probes *p;
	int err;

	verbose_log = verbose;
	libbpf_set_print(libbpf_log);
	err = check_kernel_version();
	if (err)
		return err;
	if (eaccess("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "connscope: no kernel BTF at /sys/kernel/btf/vmlinux "
			"(needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)\n");
		return -ENOTSUP;
	}
	/* main() checked the capabilities this needs (privs_check_attach), not the uid */
	err = ensure_tracefs();
	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->fn_arg = arg;
	p->netns_ino = netns_ino;
	p->baseline = getenv("CONNSCOPE_BENCH_BASELINE") != NULL;
	if (p->baseline)
		fprintf(stderr, "connscope: CONNSCOPE_BENCH_BASELINE is set: running without the serving, "
			"netfilter and outbound-port probes (a benchmark's baseline, not for use)\n");
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus ? p->ncpus : -EINVAL;
		goto cleanup;
	}
	p->percpu_buf = calloc(p->ncpus, sizeof(struct cs_port_stats) > sizeof(struct cs_serve_stats) ?
					 sizeof(struct cs_port_stats) : sizeof(struct cs_serve_stats));
	if (!p->percpu_buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	p->serve_buf = calloc((size_t)CS_SERVE_SLOTS * p->ncpus, sizeof(struct cs_serve_stats));
	if (!p->serve_buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = load_programs(p, netns_ino);
	if (err)
		goto cleanup;
	p->ack_drops_exact = bpf_program__autoload(p->skel->progs.on_kfree_skb);
	p->port_open = mmap(NULL, PORT_OPEN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			    bpf_map__fd(p->skel->maps.port_open), 0);
	if (p->port_open == MAP_FAILED) {
		p->port_open = NULL;
		err = errmsg(-errno, "cannot map the port_open BPF map (1 MiB): %s; check the memory "
			     "limits of this process (ulimit -l, the cgroup's memory.max)", strerror(errno));
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
	if (p->port_open)
		munmap(p->port_open, PORT_OPEN_BYTES);
	connscope_bpf__destroy(p->skel);
	free(p->percpu_buf);
	free(p->serve_buf);
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

	__u32 widx = port / 64;
	__u64 word = 0;

	if (bpf_map__update_elem(p->skel->maps.listen_ports, &idx, sizeof(idx), &one, sizeof(one), BPF_ANY))
		return -errno;
	/* at attach only: the kernel sets bits of later listens itself */
	bpf_map__lookup_elem(p->skel->maps.listen_port_bits, &widx, sizeof(widx), &word, sizeof(word), 0);
	word |= 1ULL << (port % 64);
	if (bpf_map__update_elem(p->skel->maps.listen_port_bits, &widx, sizeof(widx), &word, sizeof(word), BPF_ANY))
		return -errno;
	return 0;
}

int probes_add_listener(struct probes *p, const struct cs_listener *l)
{
	struct cs_listen_key k = { .netns = p->netns_ino, .port = l->port };
	__u8 one = 1;

	/* the BPF side's key form: IPv4 v4-mapped (see struct cs_listen_key) */
	if (l->family == AF_INET) {
		k.addr[10] = k.addr[11] = 0xff;
		memcpy(&k.addr[12], l->addr, 4);
	} else {
		memcpy(k.addr, l->addr, 16);
	}
	if (bpf_map__update_elem(p->skel->maps.listen_addrs, &k, sizeof(k), &one, sizeof(one), BPF_ANY))
		return -errno;
	return probes_add_port(p, l->port);
}

int probes_set_netns_addrs(struct probes *p, const uint8_t (*addrs)[16], int n)
{
	struct bpf_map *m = p->skel->maps.netns_addrs;
	uint8_t key[16], next[16];
	bool more;
	__u8 one = 1;
	int err = 0;

	/* drop what is gone first, then add: an address kept is never missing */
	more = !bpf_map__get_next_key(m, NULL, next, sizeof(next));
	while (more) {
		bool keep = false;

		memcpy(key, next, sizeof(key));
		more = !bpf_map__get_next_key(m, key, next, sizeof(next));
		for (int i = 0; i < n && !keep; i++)
			keep = !memcmp(addrs[i], key, sizeof(key));
		if (!keep && bpf_map__delete_elem(m, key, sizeof(key), 0) && errno != ENOENT)
			err = -errno;
	}
	for (int i = 0; i < n; i++)
		if (bpf_map__update_elem(m, addrs[i], 16, &one, sizeof(one), BPF_ANY) && !err)
			err = -errno;
	return err;
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
		if (eaccess(path, F_OK)) {
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

/* Sum of a per-CPU u64 array slot; 0 and *err = -errno if unreadable. */
static uint64_t percpu_u64(struct probes *p, struct bpf_map *m, __u32 idx, int *err)
{
	uint64_t *vals = p->percpu_buf, sum = 0;

	if (bpf_map__lookup_elem(m, &idx, sizeof(idx), vals, sizeof(uint64_t) * p->ncpus, 0)) {
		*err = -errno;
		return 0;
	}
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

/* Index of the port's entry in s, added (zeroed) if the probes counted
 * nothing else for it yet; -1 when the snapshot has no room. */
static int port_index(struct cs_snapshot *s, uint16_t port)
{
	for (int i = 0; i < s->n_ports; i++)
		if (s->ports[i].port == port)
			return i;
	if (s->n_ports >= CS_PORTS_SHOWN_MAX)
		return -1;
	memset(&s->ports[s->n_ports], 0, sizeof(s->ports[0]));
	s->ports[s->n_ports].port = port;
	return s->n_ports++;
}

static void add_serve(struct cs_serve *sv, const struct cs_serve_stats *v, uint64_t *last_ns)
{
	add_hist(&sv->first_read_wait, v->first_read_slots, v->first_read_sum_ns, v->first_reads);
	sv->closed_unread += v->closed_unread;
	sv->gave_up += v->gave_up;
	sv->rejected += v->rejected;
	add_hist(&sv->rejected_life, v->rejected_life_slots, v->rejected_life_sum_ns, v->rejected);
	sv->left_in_backlog += v->left_in_backlog;
	sv->netfilter_drops += v->netfilter_drops;
	sv->idle_closes += v->idle_closes;
	sv->idle_close_sum_ns += v->idle_close_sum_ns;
	sv->keepalive_resets += v->keepalive_resets;
	if (v->rejected_last_ns > *last_ns) { /* the newest over all CPUs */
		*last_ns = v->rejected_last_ns;
		sv->rejected_last_bytes_in = v->rejected_last_bytes_in;
		sv->rejected_last_bytes_out = v->rejected_last_bytes_out;
	}
}

/* serve_slots (each CPU's slot names its port) and the serve_stats hash. */
static void read_serve(struct probes *p, struct cs_snapshot *s)
{
	struct bpf_map *m = p->skel->maps.serve_stats;
	struct cs_serve_stats *vals = p->percpu_buf;
	uint64_t last_ns[CS_PORTS_SHOWN_MAX] = { 0 };
	__u16 key, next;
	void *prev = NULL;

	struct cs_serve_stats *slots = p->serve_buf;
	__u32 keys[CS_SERVE_SLOTS], out_batch, n = CS_SERVE_SLOTS;

	/* one syscall for the whole array: a lookup per slot was ~13 ns per
	 * connection at 10,000 connections/s */
	if (bpf_map_lookup_batch(bpf_map__fd(p->skel->maps.serve_slots), NULL, &out_batch, keys, slots,
				 &n, NULL) && errno != ENOENT)
		n = 0;
	for (__u32 k = 0; k < n * p->ncpus; k++) {
		int i = slots[k].port ? port_index(s, slots[k].port) : -1;

		if (i >= 0)
			add_serve(&s->ports[i].serve, &slots[k], &last_ns[i]);
	}
	while (!bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		int i;

		key = next;
		prev = &key;
		i = port_index(s, key);
		if (i < 0 || bpf_map__lookup_elem(m, &key, sizeof(key), vals, sizeof(*vals) * p->ncpus, 0))
			continue;
		for (int c = 0; c < p->ncpus; c++)
			add_serve(&s->ports[i].serve, &vals[c], &last_ns[i]);
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
	/* every port, also one with accepts but no queue_time entry */
	for (int i = 0; i < s->n_ports; i++) {
		struct cs_port_open *o = &p->port_open[s->ports[i].port];
		int64_t open = __atomic_load_n(&o->open, __ATOMIC_RELAXED);

		s->ports[i].open = open > 0 ? (uint64_t)open : 0;
		s->ports[i].open_peak = __atomic_exchange_n(&o->peak, 0, __ATOMIC_SEQ_CST);
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

/* listen_stopped: each address the target stopped listening on, its label
 * as sock_diag's (IPv4 from the v4-mapped key form) and when, in wall-clock
 * time (bpf_ktime_get_ns is CLOCK_MONOTONIC). */
static double stopped_wall(struct probes *p, __u64 ns, const struct timespec *mono,
			   const struct timespec *real)
{
	int i;

	for (i = 0; i < p->n_stopped_wall; i++)
		if (p->stopped_wall[i].ns == ns)
			return p->stopped_wall[i].wall;
	i = p->n_stopped_wall < CS_LISTENERS_MAX ? p->n_stopped_wall++ : (int)(ns % CS_LISTENERS_MAX);
	p->stopped_wall[i].ns = ns;
	p->stopped_wall[i].wall = real->tv_sec + real->tv_nsec / 1e9 -
				  (mono->tv_sec + mono->tv_nsec / 1e9 - ns / 1e9);
	return p->stopped_wall[i].wall;
}

static void read_listen_stopped(struct probes *p, struct cs_snapshot *s)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct bpf_map *m = p->skel->maps.listen_stopped;
	struct cs_listen_key key, next;
	struct timespec mono, real;
	void *prev = NULL;
	__u64 ns;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	s->n_stopped_listeners = 0;
	while (s->n_stopped_listeners < CS_LISTENERS_MAX &&
	       !bpf_map__get_next_key(m, prev, &next, sizeof(next))) {
		struct cs_stopped_listener *l = &s->stopped_listeners[s->n_stopped_listeners];
		bool v4 = !memcmp(next.addr, v4_mapped, sizeof(v4_mapped));

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(m, &key, sizeof(key), &ns, sizeof(ns), 0))
			continue; /* deleted meanwhile: listening again */
		l->port = key.port;
		net_format_addr(v4 ? AF_INET : AF_INET6, v4 ? &key.addr[12] : key.addr, key.port,
				l->label, sizeof(l->label));
		l->stopped_at = stopped_wall(p, ns, &mono, &real);
		s->n_stopped_listeners++;
	}
}

/* The runs a hook's second program stood in for, over contexts and CPUs. */
static uint64_t stood_in(struct probes *p, __u32 hook, int *err)
{
	struct cs_nest *vals = p->percpu_buf;
	uint64_t sum = 0;

	for (__u32 l = 0; l < CS_NEST_LEVELS; l++) {
		__u32 key = hook * CS_NEST_LEVELS + l;

		if (bpf_map__lookup_elem(p->skel->maps.nest, &key, sizeof(key), vals,
					 sizeof(*vals) * p->ncpus, 0)) {
			*err = -errno;
			return 0;
		}
		for (int c = 0; c < p->ncpus; c++)
			sum += vals[c].stood_in;
	}
	return sum;
}

/* The kernel runs a program once per CPU at a time: a softirq that interrupts
 * it (a loopback batch during a close()) skips the program for every event it
 * carries and counts them in the program's recursion_misses. A first program
 * lost the runs its second did not stand in for (per hook: one hook's
 * stand-ins never hide another's losses); a second is skipped only while it
 * runs itself, when its first was not. The kernel's counts are read before
 * the stand-ins (counted after the kernel's skip), and the total never goes
 * below a previous read (a run skipped and stood in for between the two). */
static void read_recursion(struct probes *p, struct cs_snapshot *s, int *err)
{
	uint64_t skipped[CS_NEST_MAX] = { 0 }, stood[CS_NEST_MAX], lost = 0;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		const char *name = bpf_program__name(prog);
		int fd = bpf_program__fd(prog), hook;

		if (fd < 0 || second_of(name) || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		hook = nest_hook_of(name);
		if (hook >= 0)
			skipped[hook] += info.recursion_misses;
		else
			lost += info.recursion_misses;
	}
	for (__u32 h = 0; h < CS_NEST_MAX; h++) {
		int e = 0;

		stood[h] = stood_in(p, h, &e);
		if (e) {
			/* not known this tick: the last figures stand */
			*err = e;
			goto out;
		}
		if (skipped[h] > stood[h])
			lost += skipped[h] - stood[h];
	}
	memcpy(p->stood_in, stood, sizeof(stood));
	if (lost > p->recursion_lost)
		p->recursion_lost = lost;
out:
	memcpy(s->probe_stood_in, p->stood_in, sizeof(s->probe_stood_in));
	s->probe_recursion_lost = p->recursion_lost;
}

int probes_read(struct probes *p, struct cs_snapshot *s)
{
	int err = 0;

	read_ports(p, s);
	read_queue_time(p, s);
	read_serve(p, s);
	read_listen_stopped(p, s);
	read_syscall_errors(p, s);
	for (__u32 i = 0; i < CS_RST_REASONS_MAX; i++)
		s->resets_sent[i] = percpu_u64(p, p->skel->maps.resets_sent, i, &err);
	read_recursion(p, s, &err);
	for (__u32 i = 0; i < CS_CNT_MAX; i++)
		s->counters[i] = percpu_u64(p, p->skel->maps.counters, i, &err);
	s->ringbuf_events = p->events_seen;
	s->n_probes = p->n_probes;
	memcpy(s->probes, p->probes, sizeof(s->probes[0]) * p->n_probes);
	return err;
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
