# SPDX-License-Identifier: MIT
"""connscope counts exactly what the kernel did to the target's
connections. Ground truth: the servers' own counts, ss, /proc, TcpExt."""
import os, signal, socket, subprocess, time
from lib import (PY, Connscope, Netns, Proc, Server, bpf_link_ids, bpf_recursion_misses, check, client, eq, pinned, settle,
                 settled_total, ss_listener, tcp_ext, wait_until)


# programs that have a second one (NAME_nested) standing in for skipped runs,
# and their tracepoints
FIRST_PROGRAMS = {"on_set_state": "inet_sock_set_state", "on_send_reset": "tcp_send_reset",
                  "on_send_reset_noreason": "tcp_send_reset", "on_receive_reset": "tcp_receive_reset",
                  "on_kfree_skb": "kfree_skb", "on_kfree_skb_noskb": "kfree_skb"}


def test_accepts_counted_for_target_only():
    watched = Server("--mode", "close_on_eof")
    other = Server("--mode", "close_on_eof")
    cs = Connscope(watched.pid)
    r = client("127.0.0.1", watched.port, 300, rate=0, hold=0.2)
    eq(r["connected"], 300, "client connections to the watched server")
    r = client("127.0.0.1", other.port, 200, rate=0, hold=0.2)
    eq(r["connected"], 200, "client connections to the other server")
    wait_until(lambda: watched.total("closed") >= 300, 15, "watched server to close 300")
    wait_until(lambda: other.total("closed") >= 200, 15, "other server to close 200")
    # The server's own counts, not the clients': 300 at once overflow its
    # backlog into SYN cookies, and the kernel may make two server sockets of
    # one cookie (seen: 301 accepted, the extra one never closed).
    lbl = "127.0.0.1:%d" % watched.port
    settled_total(watched, "accepted")
    m, (accepted, closed) = pinned(lambda: (watched.total("accepted"), watched.total("closed")), cs.metrics,
                                   what="the watched server's counts")
    eq(m.get1("connscope_accepts_total", listener=lbl), accepted, "connscope_accepts_total vs the server's")
    eq(len(m.find("connscope_accepts_total")), 1, "listeners with accepts (other server not counted)")
    eq(m.get1("connscope_connections_closed_total", listener=lbl, initiator="remote"), closed,
       "connections closed by the client first vs the server's closes")
    eq(m.get1("connscope_connections_open", listener=lbl), accepted - closed, "connections open vs the server's")
    eq(m.get1("connscope_accept_wait_seconds_count", listener=lbl), accepted, "accept-wait samples")
    eq(m.get1("connscope_connection_duration_seconds_count", listener=lbl), closed, "duration samples")
    # Probe runs the kernel skipped (its count, read first), less the runs a
    # second program stood in for, per tracepoint: what connscope says it lost.
    misses = bpf_recursion_misses(cs.pid)
    snap = cs.json("/api/v1/snapshot")
    stood = snap["probe_runs_stood_in_total"]
    lost, skipped = 0, {}
    for name, n in misses.items():
        if name in FIRST_PROGRAMS:
            skipped[FIRST_PROGRAMS[name]] = skipped.get(FIRST_PROGRAMS[name], 0) + n
        elif not name.endswith("_nested"):
            lost += n
    lost += sum(max(0, n - stood[tp]) for tp, n in skipped.items())
    eq(snap["events_lost_total"]["probe_recursion"], lost,
       "probe runs lost (bpftool's recursion_misses %r, stand-ins %r)" % (misses, stood))
    cs.stop()


UNIX_AND_TCP = r'''
import os, socket, sys, tempfile
path = os.path.join(tempfile.mkdtemp(), "s")
us = socket.socket(socket.AF_UNIX); us.bind(path); us.listen(64)
ts = socket.socket(); ts.bind(("127.0.0.1", 0)); ts.listen(64)
print("READY", ts.getsockname()[1], path, flush=True)
held = []
for line in sys.stdin:  # "unix N" / "tcp N": accept N there, hold them, say how many
    kind, n = line.split()
    for _ in range(int(n)):
        held.append((us if kind == "unix" else ts).accept()[0])
    print("HELD", kind, len(held), flush=True)
'''


def test_unix_socket_accepts_are_not_tcp_connections():
    # the target accepts on a unix socket too (php-fpm, gunicorn): those are
    # neither TCP accepts nor open connections of any port
    srv = Proc([PY, "-c", UNIX_AND_TCP], stdin=subprocess.PIPE)
    port, path = srv.wait_line("READY").split()[1:]
    cs = Connscope(srv.pid)
    unix = []
    for _ in range(20):
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        unix.append(c)
    srv.p.stdin.write("unix 20\n"); srv.p.stdin.flush()
    srv.wait_line("HELD unix 20")
    r = client("127.0.0.1", int(port), 15, hold=3.0)
    eq(r["connected"], 15, "TCP clients connected")
    srv.p.stdin.write("tcp 15\n"); srv.p.stdin.flush()
    srv.wait_line("HELD tcp 35")
    lbl = "127.0.0.1:%s" % port
    m = settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl), what="accepts")
    eq(m, 15, "TCP accepts vs the 15 the server took on its TCP listener")
    m = cs.metrics()
    eq(len(m.find("connscope_accepts_total")), 1, "one listener with accepts: %r" % m.find("connscope_accepts_total"))
    eq(sum(m.find("connscope_connections_open").values()), 15, "open connections: the TCP ones it holds")
    for c in unix:
        c.close()
    cs.stop()


def test_emfile_counted_like_the_server_counts_it():
    srv = Server("--nofile", 64, "--emfile-limit", 40)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 150, hold=1.0, timeout=1.0)
    wait_until(lambda: srv.total("emfile") == 40, 20, "server to see 40 EMFILE")
    m = settle(lambda: cs.metrics().get1("connscope_syscall_errors_total", syscall="accept4", errno="EMFILE"),
               what="EMFILE count")
    eq(m, 40, "accept4 EMFILE counted vs the server's own count")
    m = cs.metrics()
    eq(m.get1("connscope_fd_limit", kind="soft"), 64, "soft fd limit")
    fds = len(os.listdir("/proc/%d/fd" % srv.pid))
    check(abs(m.get1("connscope_open_fds") - fds) <= 2,
          "open fds %d vs /proc/PID/fd %d" % (m.get1("connscope_open_fds"), fds))
    eq(m.get1("connscope_accepts_total", listener="127.0.0.1:%d" % srv.port), srv.total("accepted"),
       "accepts before the limit")
    cs.stop()


def test_listen_drops_equal_ss_and_listen_overflows():
    with Netns() as ns:
        srv = Server("--backlog", 8, "--max-accepts", 0, netns=ns)
        base = tcp_ext(srv.pid)
        cs = Connscope(srv.pid)
        client("127.0.0.1", srv.port, 100, netns=ns, hold=0.2, timeout=1.5)
        lbl = "127.0.0.1:%d" % srv.port
        m, ss = pinned(lambda: ss_listener(srv.port, ns), cs.metrics, what="ss counters")
        check(ss[2] > 0, "the test made no drops (ss d0)")
        eq(m.get1("connscope_listen_drops_total", listener=lbl), ss[2], "listen drops vs ss d<N>")
        eq(m.get1("connscope_accept_queue_limit", listener=lbl), 8, "accept queue limit")
        eq(m.get1("connscope_accept_queue_limit", listener=lbl), ss[1], "queue limit vs ss Send-Q")
        eq(m.get1("connscope_accept_queue_length", listener=lbl), ss[0], "queue length vs ss Recv-Q")
        m, ext = pinned(lambda: tcp_ext(srv.pid), cs.metrics, what="TcpExt")
        eq(m.get1("connscope_netns_tcp_ext_total", counter="ListenOverflows"), ext["ListenOverflows"],
           "TcpExt ListenOverflows as nstat shows it")
        dropped, ext = pinned(lambda: tcp_ext(srv.pid), lambda: ss_listener(srv.port, ns)[2], what="drops")
        eq(ext["ListenDrops"] - base["ListenDrops"], dropped,
           "ListenDrops delta vs ss (namespace is the test's own)")
        eq(m.get1("connscope_accepts_total", listener=lbl), 0,
           "accepts of a server that never accepts")
        cs.stop()


def test_resets_on_close_equal_tcp_abort_on_close():
    with Netns() as ns:
        srv = Server("--mode", "abort_on_data", netns=ns)
        base = tcp_ext(srv.pid)
        cs = Connscope(srv.pid)
        client("127.0.0.1", srv.port, 60, netns=ns, send="unread payload", hold=1.0)
        wait_until(lambda: srv.total("closed") == 60, 20, "server to close 60 with unread data")
        lbl = "127.0.0.1:%d" % srv.port
        sent = settle(lambda: cs.metrics().get1("connscope_tcp_resets_sent_total", reason="tcp_abort_on_close"),
                      what="resets")
        delta = tcp_ext(srv.pid)["TCPAbortOnClose"] - base["TCPAbortOnClose"]
        eq(delta, 60, "TcpExt TCPAbortOnClose delta (one per close with unread data)")
        eq(sent, delta, "resets sent with reason tcp_abort_on_close")
        m = cs.metrics()
        eq(m.get1("connscope_connections_closed_total", listener=lbl, initiator="reset"), 60,
           "connections ended by reset")
        events = cs.json("/api/v1/events?limit=5")["events"]
        check(any(e["kind"] == "reset_sent" and e["reason"] == "tcp_abort_on_close" and
                  e["local"] == lbl for e in events), "a reset event with its 4-tuple: %r" % events[:2])
        cs.stop()


def test_preforked_workers_counted_via_master():
    srv = Server("--workers", 2, "--mode", "close_on_eof")
    cs = Connscope(srv.pid)
    os.kill(srv.pid, signal.SIGUSR1)  # workers fork only now, after attach
    workers = [int(p) for p in srv.wait_line("WORKERS").split()[1:]]
    eq(len(workers), 2, "workers forked")
    r = client("127.0.0.1", srv.port, 200, rate=400, hold=0.3)
    eq(r["connected"], 200, "client connections")
    wait_until(lambda: srv.total("closed") >= 200, 15, "workers to close 200")
    eq(sorted(srv.stats()), sorted(workers), "workers reporting")
    # the workers' own counts (a SYN cookie can make two server sockets of one client's)
    accepted = settled_total(srv, "accepted")
    check(accepted >= 200, "workers accepted %d of 200" % accepted)
    lbl = "127.0.0.1:%d" % srv.port
    eq(settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl), what="accepts"), accepted,
       "accepts over both workers, via the master PID, vs the workers' own counts")
    eq(cs.metrics().get1("connscope_target_processes"), 3, "master and two workers watched")
    cs.stop()


def test_target_exit_keeps_last_numbers():
    srv = Server()
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 25, hold=0.2)
    lbl = "127.0.0.1:%d" % srv.port
    accepted = settled_total(srv, "accepted")
    srv.kill()
    wait_until(lambda: cs.metrics().get1("connscope_target_up") == 0, 10, "target_up 0")
    m = cs.metrics()
    eq(m.get1("connscope_accepts_total", listener=lbl), accepted, "last accepts kept after exit")
    wait_until(lambda: any("exited" in l for l in cs.err_lines), 5, "exit said on stderr")
    d = cs.json("/api/v1/diagnosis")
    eq(d["verdict"], "target_exited", "verdict after the target exited")
    cs.stop()


def test_ipv6_listener_and_detach():
    srv = Server("--mode", "close_on_eof", host="::1")
    cs = Connscope(srv.pid)
    links = cs.link_ids()
    check(links and links <= bpf_link_ids(), "BPF links attached")
    client("::1", srv.port, 40, hold=0.2)
    lbl = "[::1]:%d" % srv.port
    ours, accepted = pinned(lambda: srv.total("accepted"),
                            lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl))
    check(accepted > 0, "the IPv6 server accepted nothing")
    eq(ours, accepted, "accepts on an IPv6 listener vs the server's count")
    eq(cs.metrics().get1("connscope_accept_queue_limit", listener=lbl), 128, "IPv6 listener's queue limit")
    cs.stop(signal.SIGTERM)
    eq(bpf_link_ids() & links, set(), "BPF links left after SIGTERM")


def test_same_port_in_another_netns_is_not_counted():
    # two pods on one host: the same port, each in a namespace of its own
    with Netns() as mine, Netns() as other:
        srv = Server("--mode", "abort_on_data", "--port", 18181, netns=mine)
        neighbour = Server("--mode", "abort_on_data", "--port", 18181, netns=other)
        base = tcp_ext(srv.pid)
        cs = Connscope(srv.pid)
        client("127.0.0.1", 18181, 30, netns=other, send="x", hold=1.0)
        client("127.0.0.1", 18181, 10, netns=mine, send="x", hold=1.0)
        wait_until(lambda: srv.total("closed") == 10 and neighbour.total("closed") == 30, 20,
                   "both servers to abort their connections")
        lbl = "127.0.0.1:18181"
        sent = settle(lambda: cs.metrics().get1("connscope_tcp_resets_sent_total", reason="tcp_abort_on_close"),
                      what="resets")
        eq(tcp_ext(srv.pid)["TCPAbortOnClose"] - base["TCPAbortOnClose"], 10, "aborts in the target's netns")
        eq(sent, 10, "resets counted: the target's only, not the neighbour's 30")
        m = cs.metrics()
        eq(m.get1("connscope_accepts_total", listener=lbl), 10, "accepts")
        eq(m.get1("connscope_connections_closed_total", listener=lbl, initiator="reset"), 10, "closed by reset")
        eq(m.get1("connscope_connections_closed_before_accept_total", listener=lbl), 0,
           "the neighbour's connections are not ours to close")
        cs.stop()


def test_dual_stack_listener_counts_v4_mapped_clients():
    srv = Server("--mode", "close_on_eof", host="::")  # [::]:port takes IPv4 too
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 20, hold=0.2)   # arrive v4-mapped
    client("::1", srv.port, 15, hold=0.2)
    wait_until(lambda: srv.total("closed") == 35, 15, "server to close 35")
    lbl = "[::]:%d" % srv.port
    eq(settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl), what="accepts"), 35,
       "IPv4 (v4-mapped) and IPv6 accepts on one dual-stack listener")
    eq(cs.metrics().get1("connscope_connections_closed_total", listener=lbl, initiator="remote"), 35,
       "closed by the clients")
    cs.stop()
