// SPDX-License-Identifier: MIT
/* sock_diag netlink dumps of TCP listeners (and CLOSE_WAIT connections) in
 * the target's network namespace.
 * The socket is created inside that namespace once, at start, so every later
 * dump sees the target's sockets while the daemon itself stays in its own. */
#define _GNU_SOURCE
#include "sockdiag.h"
#include "netutil.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CS_TCP_LISTEN 10

struct sockdiag {
	int fd;
	/* sysctl files opened inside the namespace keep reading its values
	 * after the thread left it: read again at every tick, as an admin
	 * may change them under load */
	int somaxconn_fd;
	int syncookies_fd;
	int port_low, port_high; /* net.ipv4.ip_local_port_range */
	uint32_t seq;
};

/* An integer sysctl from a file kept open; -1 if unreadable. */
static int read_sysctl_fd(int fd)
{
	char buf[32];
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

/* A /proc/sys file of the calling thread's network namespace, or "" */
static void read_sysctl(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

int sockdiag_new(int pid, struct sockdiag **out)
{
	int self_ns = -1, target_ns = -1, err = 0;
	struct sockdiag *sd;
	char path[64];

	sd = calloc(1, sizeof(*sd));
	if (!sd)
		return -ENOMEM;
	sd->fd = sd->somaxconn_fd = sd->syncookies_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	target_ns = open(path, O_RDONLY | O_CLOEXEC);
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (target_ns < 0 || self_ns < 0) {
		err = -errno;
		fprintf(stderr, "connscope: cannot open network namespace of PID %d: %s\n",
			pid, strerror(errno));
		goto cleanup;
	}
	/* setns() changes only the calling thread; we return before anything else runs. */
	if (setns(target_ns, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "connscope: cannot enter network namespace of PID %d: %s (need root)\n",
			pid, strerror(errno));
		goto cleanup;
	}
	sd->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	err = sd->fd < 0 ? -errno : 0;
	sd->somaxconn_fd = open("/proc/sys/net/core/somaxconn", O_RDONLY | O_CLOEXEC);
	sd->syncookies_fd = open("/proc/sys/net/ipv4/tcp_syncookies", O_RDONLY | O_CLOEXEC);
	{
		char range[64];

		read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", range, sizeof(range));
		if (sscanf(range, "%d %d", &sd->port_low, &sd->port_high) != 2)
			sd->port_low = sd->port_high = -1;
	}
	if (setns(self_ns, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "connscope: cannot return to own network namespace: %s\n", strerror(errno));
		goto cleanup;
	}
	if (err) {
		fprintf(stderr, "connscope: sock_diag netlink socket: %s\n", strerror(-err));
		goto cleanup;
	}
	close(target_ns);
	close(self_ns);
	*out = sd;
	return 0;
cleanup:
	if (target_ns >= 0)
		close(target_ns);
	if (self_ns >= 0)
		close(self_ns);
	sockdiag_free(sd);
	return err;
}

void sockdiag_free(struct sockdiag *sd)
{
	if (!sd)
		return;
	if (sd->fd >= 0)
		close(sd->fd);
	if (sd->somaxconn_fd >= 0)
		close(sd->somaxconn_fd);
	if (sd->syncookies_fd >= 0)
		close(sd->syncookies_fd);
	free(sd);
}

int sockdiag_somaxconn(const struct sockdiag *sd)
{
	return read_sysctl_fd(sd->somaxconn_fd);
}

int sockdiag_syncookies(const struct sockdiag *sd)
{
	return read_sysctl_fd(sd->syncookies_fd);
}

void sockdiag_port_range(const struct sockdiag *sd, int *low, int *high)
{
	*low = sd->port_low;
	*high = sd->port_high;
}

static void parse_listener(const struct nlmsghdr *h, struct cs_listener *l)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	int rtlen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct rtattr *a = (const struct rtattr *)(m + 1);

	memset(l, 0, sizeof(*l));
	l->family = m->idiag_family;
	l->port = ntohs(m->id.idiag_sport);
	l->inode = m->idiag_inode;
	memcpy(l->addr, m->id.idiag_src, l->family == AF_INET ? 4 : 16);
	/* for a listener, rqueue is the accept queue and wqueue its limit */
	l->queue_len = m->idiag_rqueue;
	l->queue_limit = m->idiag_wqueue;
	net_format_addr(l->family, m->id.idiag_src, l->port, l->label, sizeof(l->label));
	for (; RTA_OK(a, rtlen); a = RTA_NEXT(a, rtlen)) {
		if (a->rta_type == INET_DIAG_SKMEMINFO &&
		    RTA_PAYLOAD(a) >= (int)sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
			l->drops = ((const uint32_t *)RTA_DATA(a))[SK_MEMINFO_DROPS];
	}
}

typedef void (*sock_fn)(const struct nlmsghdr *h, void *arg);

/* One recv()'s worth of a dump answer to request seq: each socket message
 * to fn. 1 at NLMSG_DONE, 0 when more is to come, -errno otherwise. */
static int parse_messages(const void *buf, size_t len, uint32_t seq, sock_fn fn, void *arg)
{
	const struct nlmsghdr *h = buf;
	/* signed: NLMSG_NEXT subtracts the aligned length, which can pass 0 */
	ssize_t rem = len;

	for (; NLMSG_OK(h, rem); h = NLMSG_NEXT(h, rem)) {
		if (h->nlmsg_seq != seq)
			continue;
		/* a dump that failed ends in DONE carrying the error: -ENOENT
		 * when no tcp_diag handler could be loaded */
		if (h->nlmsg_type == NLMSG_DONE)
			return NLMSG_PAYLOAD(h, 0) >= sizeof(int) && *(const int *)NLMSG_DATA(h) < 0 ?
			       *(const int *)NLMSG_DATA(h) : 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				return -EIO;
			return e->error < 0 ? e->error : -EIO;
		}
		/* a message shorter than its header says would be read past its end */
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
			fn(h, arg);
	}
	return 0;
}

struct listener_dump {
	struct cs_listener *out;
	int max, *n;
};

static void on_listener(const struct nlmsghdr *h, void *arg)
{
	struct listener_dump *d = arg;

	if (*d->n < d->max)
		parse_listener(h, &d->out[(*d->n)++]);
}

int sockdiag_parse_reply(const void *buf, size_t len, uint32_t seq, struct cs_listener *out,
			 int max, int *n)
{
	struct listener_dump d = { .out = out, .max = max, .n = n };

	return parse_messages(buf, len, seq, on_listener, &d);
}

/* One sock_diag dump of TCP sockets of family in the states mask, with the
 * ext attributes asked for; each socket goes to fn. 0 or -errno. */
static int dump_family(struct sockdiag *sd, int family, uint32_t states, uint8_t ext,
		       sock_fn fn, void *arg)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = ++sd->seq,
		},
		.req = {
			.sdiag_family = family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = states,
			.idiag_ext = ext,
		},
	};
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	static __thread char buf[32768];

	if (sendto(sd->fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(sd->fd, buf, sizeof(buf), 0);

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int done = parse_messages(buf, len, sd->seq, fn, arg);

		if (done < 0)
			return done;
		if (done)
			return 0;
	}
}

int sockdiag_listeners(struct sockdiag *sd, struct cs_listener *out, int max)
{
	int n = 0;
	struct listener_dump d = { .out = out, .max = max, .n = &n };
	uint8_t ext = 1u << (INET_DIAG_SKMEMINFO - 1);
	int err = dump_family(sd, AF_INET, 1u << CS_TCP_LISTEN, ext, on_listener, &d);

	if (!err)
		err = dump_family(sd, AF_INET6, 1u << CS_TCP_LISTEN, ext, on_listener, &d);
	return err ? err : n;
}

struct state_dump {
	bool (*is_port)(uint16_t port, void *arg);
	void *arg;
	uint32_t count;
	uint32_t oldest_ms;
};

static void on_state(const struct nlmsghdr *h, void *arg)
{
	struct state_dump *d = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	int rtlen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct rtattr *a = (const struct rtattr *)(m + 1);

	if (d->is_port && !d->is_port(ntohs(m->id.idiag_sport), d->arg))
		return;
	d->count++;
	for (; RTA_OK(a, rtlen); a = RTA_NEXT(a, rtlen)) {
		const struct tcp_info *ti = RTA_DATA(a);

		if (a->rta_type == INET_DIAG_INFO &&
		    RTA_PAYLOAD(a) >= (int)(offsetof(struct tcp_info, tcpi_last_data_recv) + sizeof(uint32_t)) &&
		    ti->tcpi_last_data_recv > d->oldest_ms)
			d->oldest_ms = ti->tcpi_last_data_recv;
	}
}

int sockdiag_state(struct sockdiag *sd, int state, bool (*is_port)(uint16_t port, void *arg), void *arg,
		   uint32_t *count, double *oldest_s)
{
	struct state_dump d = { .is_port = is_port, .arg = arg };
	uint8_t ext = oldest_s ? 1u << (INET_DIAG_INFO - 1) : 0;
	int err = dump_family(sd, AF_INET, 1u << state, ext, on_state, &d);

	if (!err)
		err = dump_family(sd, AF_INET6, 1u << state, ext, on_state, &d);
	*count = d.count;
	if (oldest_s)
		*oldest_s = d.oldest_ms / 1000.0;
	return err;
}
