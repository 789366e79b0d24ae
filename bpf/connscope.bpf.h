/* SPDX-License-Identifier: MIT */
/* BPF-only helpers for connscope.bpf.c: lookup-or-init, log2 histogram slots,
 * reading an fd's socket. Written once, used by every program. */
#ifndef CONNSCOPE_BPF_H
#define CONNSCOPE_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* errno values are macros, which BTF does not carry; the kernel's uapi
 * header is the one source. TCP states come from vmlinux.h's enum. */
#include <asm-generic/errno.h>

/* Address families are macros too (include/linux/socket.h). */
#define AF_INET 2
#define AF_INET6 10

static __always_inline void *map_lookup_or_init(void *map, const void *key,
						const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);
	long err;

	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST /* another CPU raced us */)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

_Static_assert((CS_HIST_SLOTS & (CS_HIST_SLOTS - 1)) == 0, "slots must be a power of two");

/* Histogram slot of a duration: log2 of microseconds, clamped to the last.
 * The barrier keeps clang from dropping the clamp the verifier needs to see;
 * the mask is what proves the index in bounds. */
static __always_inline __u32 hist_slot(__u64 ns)
{
	__u32 slot = log2_u64(ns / 1000);

	if (slot > CS_HIST_SLOTS - 1)
		slot = CS_HIST_SLOTS - 1;
	asm volatile("" : "+r"(slot));
	return slot & (CS_HIST_SLOTS - 1);
}

/* Local port of a socket, as the tcp tracepoints print it. A full socket
 * going to TCP_CLOSE has given its port back (inet_put_port() zeroes
 * inet_num) before an abort's RST is traced, but inet_sport survives.
 * Timewait and request sockets have no inet_sport; their skc_num stays. */
static __always_inline __u16 sk_local_port(const struct sock *sk)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return BPF_CORE_READ(sk, __sk_common.skc_num);
	return __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* The struct sock behind fd of the current task, NULL if none. Only called
 * with an fd accept() just returned, so the file is a socket. */
static __always_inline struct sock *fd_to_sock(long fd)
{
	/* BTF pointers: the walk is direct loads, not helper calls; only the
	 * indexed slot needs a probe read (no variable offsets on BTF ids). */
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL;
	struct socket *sock;

	if (fd < 0 || fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

#endif
