/* SPDX-License-Identifier: MIT */
/* The one table from kernel numbers to label strings: syscall indexes,
 * errnos, sk_rst_reason values (read from the running kernel's BTF), and the
 * TcpExt counters connscope exports. */
#ifndef CS_NAMES_H
#define CS_NAMES_H
#include "connscope/connscope.h"

/* Reads enum sk_rst_reason from /sys/kernel/btf/vmlinux. 0 or -errno. */
int names_init(void);
const char *names_syscall(unsigned idx);
/* The tracepoint of an enum cs_nest_hook. */
const char *names_nest_hook(unsigned idx);
/* "EMFILE", or "E<n>" for one glibc does not name. Static storage per errno. */
const char *names_errno(int err);
/* "tcp_abort_on_close" for SK_RST_REASON_TCP_ABORT_ON_CLOSE; NULL if unknown. */
const char *names_rst_reason(unsigned reason);
/* Index of a reason by label, -1 if the kernel has none of that name. */
int names_rst_reason_index(const char *label);

enum cs_tcp_ext {
	CS_TE_LISTEN_OVERFLOWS,
	CS_TE_LISTEN_DROPS,
	CS_TE_ABORT_ON_CLOSE,
	CS_TE_ABORT_ON_DATA,
	CS_TE_ABORT_ON_MEMORY,
	CS_TE_ABORT_ON_LINGER,
	CS_TE_ABORT_ON_TIMEOUT,
	CS_TE_REQQ_FULL_DROP,
	CS_TE_REQQ_FULL_DO_COOKIES,
	CS_TE_SYNCOOKIES_SENT,
	CS_TE_SYNCOOKIES_RECV,
	CS_TE_SYNCOOKIES_FAILED,
	CS_TE_MEMORY_PRESSURES,
	CS_TE_BACKLOG_DROP,
	CS_TE_MAX,
};
/* Field name in /proc/net/netstat's TcpExt line ("ListenOverflows"). */
const char *names_tcp_ext(unsigned idx);
#endif
