// SPDX-License-Identifier: MIT
/* sock_diag netlink dumps of TCP listeners (and CLOSE_WAIT connections), and
 * the interface addresses (rtnetlink), in
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
	int rt_fd; /* NETLINK_ROUTE in the namespace: its addresses */
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
	sd->fd = sd->rt_fd = sd->somaxconn_fd = sd->syncookies_fd = -1;
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
	if (!err) {
		sd->rt_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
		err = sd->rt_fd < 0 ? -errno : 0;
	}
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
		fprintf(stderr, "connscope: netlink socket in the target's namespace: %s\n", strerror(-err));
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
	if (sd->rt_fd >= 0)
		close(sd->rt_fd);
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

/* What a dump answers with: its message type and that message's fixed part. */
struct dump_kind {
	uint16_t type;
	size_t min_len;
};

static const struct dump_kind sock_dump = { SOCK_DIAG_BY_FAMILY, sizeof(struct inet_diag_msg) };
static const struct dump_kind addr_dump = { RTM_NEWADDR, sizeof(struct ifaddrmsg) };

/* One recv()'s worth of a dump answer to request seq: each message of the
 * kind to fn. 1 at NLMSG_DONE, 0 when more is to come, -errno otherwise. */
static int parse_kind(const void *buf, size_t len, uint32_t seq, const struct dump_kind *kind,
		      sock_fn fn, void *arg)
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
		if (h->nlmsg_type == kind->type && h->nlmsg_len >= NLMSG_LENGTH(kind->min_len))
			fn(h, arg);
	}
	return 0;
}

static int parse_messages(const void *buf, size_t len, uint32_t seq, sock_fn fn, void *arg)
{
	return parse_kind(buf, len, seq, &sock_dump, fn, arg);
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

/* Sends a dump request (its nlmsghdr first, seq filled in here) on fd and
 * gives each answer message of the kind to fn. 0 or -errno. */
static int dump(struct sockdiag *sd, int fd, void *req, size_t len, const struct dump_kind *kind,
		sock_fn fn, void *arg)
{
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	static __thread char buf[32768];
	struct nlmsghdr *nlh = req;

	nlh->nlmsg_seq = ++sd->seq;
	if (sendto(fd, req, len, 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int done;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done = parse_kind(buf, n, sd->seq, kind, fn, arg);
		if (done < 0)
			return done;
		if (done)
			return 0;
	}
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
		},
		.req = {
			.sdiag_family = family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = states,
			.idiag_ext = ext,
		},
	};

	return dump(sd, sd->fd, &msg, sizeof(msg), &sock_dump, fn, arg);
}

struct addr_list {
	uint8_t (*out)[16];
	int max, n;
};

static void on_addr(const struct nlmsghdr *h, void *arg)
{
	const struct ifaddrmsg *m = NLMSG_DATA(h);
	int rtlen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct rtattr *a = (const struct rtattr *)(m + 1);
	struct addr_list *d = arg;

	/* loopback (scope host) never comes from another namespace */
	if (m->ifa_scope == RT_SCOPE_HOST || (m->ifa_family != AF_INET && m->ifa_family != AF_INET6))
		return;
	for (; RTA_OK(a, rtlen) && d->n < d->max; a = RTA_NEXT(a, rtlen)) {
		uint8_t *o = d->out[d->n];

		/* IFA_LOCAL is the address itself; IFA_ADDRESS the peer's on a
		 * point-to-point link, the address itself elsewhere (and IPv6) */
		if (a->rta_type != (m->ifa_family == AF_INET ? IFA_LOCAL : IFA_ADDRESS))
			continue;
		memset(o, 0, 16);
		if (m->ifa_family == AF_INET && RTA_PAYLOAD(a) >= 4) {
			o[10] = o[11] = 0xff;
			memcpy(o + 12, RTA_DATA(a), 4);
			d->n++;
		} else if (m->ifa_family == AF_INET6 && RTA_PAYLOAD(a) >= 16) {
			memcpy(o, RTA_DATA(a), 16);
			d->n++;
		}
	}
}

int sockdiag_addresses(struct sockdiag *sd, uint8_t (*out)[16], int max)
{
	struct {
		struct nlmsghdr nlh;
		struct ifaddrmsg ifa;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = RTM_GETADDR,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		},
		.ifa = { .ifa_family = AF_UNSPEC },
	};
	struct addr_list d = { .out = out, .max = max };
	int err;

	if (sd->rt_fd < 0)
		return -EBADF;
	err = dump(sd, sd->rt_fd, &msg, sizeof(msg), &addr_dump, on_addr, &d);
	return err ? err : d.n;
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
