# SPDX-License-Identifier: MIT
"""Causes about what happens to connections around the server: accepted
but not served (a worker pool too small for the load), rejected right after
accept (a client limit that answers and closes), the target as a client out
of local ports, SYNs dropped by a firewall rule, the keep-alive race, and
failures no cause explains (not called healthy). Each made for real by a
process that does it, compared with its own counts, ss or the rule's
counter; and the same processes with enough capacity, where the cause is
not named."""
import json, os, signal, subprocess, time
from lib import HARNESS, PY, Connscope, Counted, Netns, Proc, Server, cause, causes, check, client, eq, pinned, settle, wait_until

SERVERS = os.path.join(HARNESS, "servers")


def ss_count(ns, state, *filt):
    """Sockets in state as `ss` lists them (in netns ns, if given)."""
    argv = ["ss", "-tnH", "state", state] + list(filt)
    if ns:
        argv = ["ip", "netns", "exec", ns.name] + argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def ss_close_wait(port):
    return ss_count(None, "close-wait", "sport = :%d" % port)


def test_accepted_not_served():
    srv = Counted("pool_server.py", "--workers", 4, "--block", 30)
    cs = Connscope(srv.pid)
    # every client sends a request and gives up after 1 s
    r = client("127.0.0.1", srv.port, 30, send="GET / HTTP/1.0\r\n\r\n", hold=1.0)
    eq(r["connected"], 30, "clients connected")
    wait_until(lambda: srv.get("accepted") == 30, 10, "the server to accept 30")
    # the peers' FINs have arrived once ss shows every connection in CLOSE_WAIT
    # (the 4 in the workers are held open by their sleep)
    settle(lambda: ss_close_wait(srv.port), what="CLOSE_WAIT count")
    d, unread = pinned(lambda: srv.get("unread"), lambda: cs.json("/api/v1/diagnosis"), what="server's unread")
    check(unread > 0, "the pool left connections unread")
    c = cause(d, "accepted_not_served")
    ev = c["evidence"]
    eq(ev["accepted_unread_now"], unread, "accepted-unread vs the server's own count")
    abandoned = srv.get("accepted") - srv.get("read_live")
    eq(ev["peers_gave_up_before_read"], abandoned, "peers that gave up vs the server's (accepted - read live)")
    eq(c["clients_affected"], abandoned, "clients affected")
    eq(c["listener"], srv.listener, "listener")
    eq(ev["listener"], srv.listener, "listener in evidence")
    cw = ss_close_wait(srv.port)
    eq(ev["close_wait_now"], cw, "CLOSE_WAIT vs ss state close-wait")
    check(ev["threads"] >= 5, "threads %r: the acceptor and 4 workers" % ev["threads"])
    m, unread = pinned(lambda: srv.get("unread"), cs.metrics, what="server's unread")
    eq(m.get1("connscope_connections_unread", listener=srv.listener), unread, "connections_unread gauge")
    eq(m.get1("connscope_connections_abandoned_unread_total", listener=srv.listener), abandoned,
       "abandoned counter")
    eq(m.get1("connscope_connections_close_wait"), ss_close_wait(srv.port), "close_wait gauge vs ss")
    eq(m.get1("connscope_first_read_wait_seconds_count", listener=srv.listener),
       srv.get("read_live") + srv.get("read_late"), "first reads vs the server's reads")
    eq(m.get1("connscope_diagnosis", cause="accepted_not_served"), 1, "diagnosis gauge")
    eq(m.get1("connscope_diagnosis", cause="rejected_after_accept"), 0, "no rejection")
    out = cs.stop()
    check("accepted_not_served" in out and "peers_gave_up_before_read=%d" % abandoned in out,
          "post-mortem names the cause with its count: %r" % out[:800])


def test_served_pool_is_not_accepted_not_served():
    srv = Counted("pool_server.py", "--workers", 40, "--block", 0.1)
    cs = Connscope(srv.pid)
    r = client("127.0.0.1", srv.port, 30, send="GET / HTTP/1.0\r\n\r\n", hold=1.0)
    eq(r["connected"], 30, "clients connected")
    wait_until(lambda: srv.get("read_live") == 30, 10, "the server to read all 30 while they waited")
    m = settle(lambda: cs.metrics().get1("connscope_first_read_wait_seconds_count", listener=srv.listener),
               what="first reads")
    eq(m, 30, "first reads vs the server's")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    check("accepted_not_served" not in causes(d), "not named: %r" % causes(d))
    eq(cs.metrics().get1("connscope_connections_abandoned_unread_total", listener=srv.listener), 0,
       "no peer gave up")
    cs.stop()


def log2_bucket_le(seconds):
    """Upper bound (s) of the log2 histogram bucket holding a duration: slot
    i holds [2^i, 2^(i+1)) microseconds, as connscope's probes bucket."""
    us = int(seconds * 1e6)
    return (1 << max(us.bit_length(), 1)) / 1e6


def test_rejected_after_accept():
    # 3 ms before the error line: the lifetimes sit inside one bucket,
    # [2.048, 4.096) ms, far from its bounds at this resolution
    srv = Counted("limit_server.py", "--limit", 50, "--reject-after", 0.003)
    cs = Connscope(srv.pid)
    r = client("127.0.0.1", srv.port, 80, rate=200, hold=1.0)
    eq(r["connected"], 80, "clients connected")
    rejected = settle(lambda: srv.get("rejected"), what="the server's rejections")
    check(rejected > 0, "the limit rejected some")
    d = settle(lambda: cause(cs.json("/api/v1/diagnosis"), "rejected_after_accept")["evidence"]["rejected"],
               what="rejections in the diagnosis")
    eq(d, rejected, "rejections vs the server's own count")
    dd = cs.json("/api/v1/diagnosis")
    c = cause(dd, "rejected_after_accept")
    eq(c["clients_affected"], rejected, "clients affected")
    eq(c["listener"], srv.listener, "listener")
    eq(c["evidence"]["last_rejected_bytes_out"], len(b"ERROR too many clients\n"), "the error line's bytes")
    eq(c["evidence"]["last_rejected_bytes_in"], 0, "nothing read")
    # the median at bucket resolution: the bound of the bucket that holds the
    # server's own ceil(n/2)-th shortest lifetime
    lives = sorted(srv.stats()["rejected_lifetimes"])
    eq(len(lives), rejected, "the server logged each rejection's lifetime")
    median_le = log2_bucket_le(lives[(len(lives) + 1) // 2 - 1])
    eq(c["evidence"]["median_lifetime_seconds"], median_le,
       "median lifetime's bucket vs the server's own lifetimes %r" % lives)
    check("half of them lived under %.6f s" % median_le in c["explanation"],
          "explanation says the median: %r" % c["explanation"])
    m = cs.metrics()
    eq(m.get1("connscope_rejected_lifetime_seconds_count", listener=srv.listener), rejected,
       "lifetime histogram count vs the server's rejections")
    check("accepted_not_served" not in causes(dd), "not also not-served: %r" % causes(dd))
    eq(cs.metrics().get1("connscope_connections_rejected_total", listener=srv.listener), rejected,
       "rejected counter vs the server's")
    eq(cs.metrics().get1("connscope_diagnosis", cause="rejected_after_accept"), 1, "diagnosis gauge")
    out = cs.stop()
    check("rejected_after_accept" in out, "post-mortem names the cause")


def test_within_limit_is_not_rejected():
    srv = Counted("limit_server.py", "--limit", 100)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 80, rate=200, hold=1.0)
    wait_until(lambda: srv.get("open") == 0 and srv.get("accepted") == 80, 10, "the server to close all 80")
    eq(srv.get("rejected"), 0, "the server rejected none")
    settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=srv.listener), what="accepts")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    check("rejected_after_accept" not in causes(d), "not named: %r" % causes(d))
    eq(cs.metrics().get1("connscope_connections_rejected_total", listener=srv.listener), 0, "no rejections")
    cs.stop()


def outbound_run(count):
    """A client target in a netns with 10 local ports and no TIME_WAIT reuse,
    calling a sink server there count times. Returns (target stats, the
    diagnosis read after them, connscope, netns, sink)."""
    ns = Netns()
    for kv in ("net.ipv4.ip_local_port_range=40000 40009", "net.ipv4.tcp_tw_reuse=0"):
        subprocess.run(["ip", "netns", "exec", ns.name, "sysctl", "-qw", kv], check=True)
    sink = Server("--mode", "close_on_eof", netns=ns)
    tgt = Proc([PY, os.path.join(SERVERS, "outbound_client.py"), "127.0.0.1", str(sink.port),
                "--count", str(count)], netns=ns)
    tgt.wait_line("READY")
    cs = Connscope(tgt.pid)
    os.kill(tgt.pid, signal.SIGUSR1)
    tgt.wait_line("DONE", timeout=30)
    st = json.loads(tgt.wait_line("STATS")[6:])
    return st, cs, ns


def test_ephemeral_ports_exhausted():
    st, cs, ns = outbound_run(30)
    failed = st["failed"].get("EADDRNOTAVAIL", 0)
    check(failed > 0, "the target ran out of ports: %r" % st)
    eq(sum(st["failed"].values()), failed, "every failure was EADDRNOTAVAIL: %r" % st)
    tw = settle(lambda: ss_count(ns, "time-wait"), what="TIME_WAIT count")
    got = settle(lambda: cs.metrics().get1("connscope_syscall_errors_total", syscall="connect",
                                           errno="EADDRNOTAVAIL"), what="connect errors")
    eq(got, failed, "connect EADDRNOTAVAIL vs the target's own count")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    c = cause(d, "ephemeral_ports_exhausted")
    ev = c["evidence"]
    eq(ev["connect_eaddrnotavail"], failed, "evidence vs the target's own count")
    eq(ev["port_errors"], failed, "errors in the window")
    eq(c["clients_affected"], failed, "clients affected")
    eq(ev["ip_local_port_range"], "40000 40009", "port range of the target's netns")
    eq(ev["local_ports_in_range"], 10, "ports in range")
    eq(ev["time_wait_netns"], tw, "TIME_WAIT vs ss state time-wait")
    eq(d["verdict"], "ephemeral_ports_exhausted", "verdict")
    eq(cs.metrics().get1("connscope_diagnosis", cause="ephemeral_ports_exhausted"), 1, "diagnosis gauge")
    out = cs.stop()
    check("ephemeral_ports_exhausted" in out and "connect_eaddrnotavail=%d" % failed in out,
          "post-mortem names the cause: %r" % out[:600])


def test_enough_ports_is_not_exhausted():
    st, cs, ns = outbound_run(5)
    eq(st, {"connected": 5, "failed": {}}, "every connect succeeded")
    time.sleep(0.6)
    d = cs.json("/api/v1/diagnosis")
    check("ephemeral_ports_exhausted" not in causes(d), "not named: %r" % causes(d))
    eq(d["verdict"], "healthy", "verdict")
    cs.stop()


def nft(ns, *args):
    return subprocess.run(["ip", "netns", "exec", ns.name, "nft"] + list(args), capture_output=True,
                          text=True, check=True).stdout


def nft_drop_counter(ns, family="inet", chain="input"):
    """Packets the test's drop rule counted, from nft's own counter."""
    for item in json.loads(nft(ns, "-j", "list", "chain", family, "cstest", chain))["nftables"]:
        for e in item.get("rule", {}).get("expr", []):
            if isinstance(e, dict) and "counter" in e:
                return e["counter"]["packets"]
    raise AssertionError("no counter on the test's nft rule")


def syn_drop_setup(every):
    """A server in a netns of the test's own; an nft rule there drops every
    `every`-th SYN to its port (0: a rule that drops none)."""
    ns = Netns()
    srv = Server("--mode", "close_on_eof", netns=ns)
    nft(ns, "add", "table", "inet", "cstest")
    nft(ns, "add", "chain", "inet", "cstest", "input", "{ type filter hook input priority 0; }")
    match = ["numgen", "inc", "mod", str(every), "==", "0"] if every else ["tcp", "dport", "1"]
    nft(ns, "add", "rule", "inet", "cstest", "input", "tcp", "dport", str(srv.port),
        "tcp flags & (syn|ack) == syn", *match, "counter", "drop")
    return ns, srv


def test_netfilter_drop():
    ns, srv = syn_drop_setup(3)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 30, netns=ns, rate=50, hold=0.2, timeout=12)
    dropped = settle(lambda: nft_drop_counter(ns), quiet=1.2, what="the rule's packet counter")
    check(dropped >= 10, "the rule dropped every third SYN: %d" % dropped)
    listener = "127.0.0.1:%d" % srv.port
    eq(settle(lambda: cs.metrics().get1("connscope_netfilter_drops_total", listener=listener),
              what="netfilter drops"), dropped, "netfilter drops vs the nft rule's packet counter")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    c = cause(d, "netfilter_drop")
    eq(c["evidence"]["syns_dropped_by_netfilter"], dropped, "drops in evidence vs the rule's counter")
    eq(c["clients_affected"], dropped, "clients affected")
    eq(c["listener"], listener, "listener")
    eq(d["verdict"], "netfilter_drop", "verdict")
    eq(cs.metrics().get1("connscope_diagnosis", cause="netfilter_drop"), 1, "diagnosis gauge")
    out = cs.stop()
    check("netfilter_drop" in out and "syns_dropped_by_netfilter=%d" % dropped in out,
          "post-mortem names the cause: %r" % out[:600])


def test_firewall_that_drops_nothing_is_not_netfilter_drop():
    ns, srv = syn_drop_setup(0)
    cs = Connscope(srv.pid)
    r = client("127.0.0.1", srv.port, 30, netns=ns, rate=50, hold=0.2, timeout=3)
    eq(r["connected"], 30, "every client connected")
    eq(nft_drop_counter(ns), 0, "the rule dropped nothing")
    settle(lambda: cs.metrics().get1("connscope_accepts_total", listener="127.0.0.1:%d" % srv.port),
           what="accepts")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    check("netfilter_drop" not in causes(d), "not named: %r" % causes(d))
    eq(d["verdict"], "healthy", "verdict")
    cs.stop()


def ip(ns, *args):
    subprocess.run(["ip", "-n", ns.name] + [str(a) for a in args], check=True)


def veth(a, a_addr, b, b_addr, name):
    """A veth pair between netns a and b, each end up with its address /24."""
    subprocess.run(["ip", "link", "add", name + "a", "netns", a.name, "type", "veth",
                    "peer", "name", name + "b", "netns", b.name], check=True)
    ip(a, "addr", "add", a_addr + "/24", "dev", name + "a")
    ip(b, "addr", "add", b_addr + "/24", "dev", name + "b")
    ip(a, "link", "set", name + "a", "up")
    ip(b, "link", "set", name + "b", "up")


def test_netfilter_drop_on_the_node():
    """A pod (the server's own netns, listening on every address) behind a
    node netns that forwards to it: clients in a third netns connect to a
    service address the node DNATs to the pod, and the node's forward chain
    drops every third SYN. The drops happen in the node's namespace, on their
    way to one of the pod's addresses: counted for the pod's listener."""
    node, pod, cli = Netns(), Netns(), Netns()
    veth(node, "10.77.0.1", pod, "10.77.0.2", "csp")
    veth(node, "10.78.0.1", cli, "10.78.0.2", "csc")
    ip(pod, "route", "add", "default", "via", "10.77.0.1")
    ip(cli, "route", "add", "default", "via", "10.78.0.1")
    subprocess.run(["ip", "netns", "exec", node.name, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    srv = Server("--mode", "close_on_eof", netns=pod, host="0.0.0.0")
    nft(node, "add", "table", "ip", "cstest")
    nft(node, "add", "chain", "ip", "cstest", "pre", "{ type nat hook prerouting priority -100; }")
    nft(node, "add", "rule", "ip", "cstest", "pre", "ip", "daddr", "10.96.0.10", "tcp", "dport", "80",
        "dnat", "to", "10.77.0.2:%d" % srv.port)
    nft(node, "add", "chain", "ip", "cstest", "input", "{ type filter hook forward priority 0; }")
    nft(node, "add", "rule", "ip", "cstest", "input", "ip", "daddr", "10.77.0.2", "tcp", "dport", str(srv.port),
        "tcp flags & (syn|ack) == syn", "numgen", "inc", "mod", "3", "==", "0", "counter", "drop")
    # and SYNs to the same port at an address that is not the pod's, dropped
    # in the node too: not the target's
    nft(node, "add", "chain", "ip", "cstest", "output", "{ type filter hook output priority 0; }")
    nft(node, "add", "rule", "ip", "cstest", "output", "ip", "daddr", "10.78.0.2", "tcp", "dport", str(srv.port),
        "tcp flags & (syn|ack) == syn", "counter", "drop")
    cs = Connscope(srv.pid)
    r = client("10.96.0.10", 80, 30, netns=cli, rate=50, hold=0.2, timeout=12)
    other = client("10.78.0.2", srv.port, 5, netns=node, rate=50, hold=0.2, timeout=1.5)
    eq(other["connected"], 0, "nothing got through to the other address")
    check(settle(lambda: nft_drop_counter(node, "ip", "output"), quiet=1.2, what="the other rule") >= 5,
          "the node dropped SYNs to the other address")
    dropped = settle(lambda: nft_drop_counter(node, "ip"), quiet=1.2, what="the node rule's packet counter")
    check(dropped >= 10, "the node dropped every third SYN: %d" % dropped)
    listener = "0.0.0.0:%d" % srv.port
    got = settle(lambda: cs.metrics().get1("connscope_netfilter_drops_total", listener=listener),
                 what="netfilter drops")
    snap = cs.json("/api/v1/snapshot")
    eq(got, dropped, "netfilter drops vs the node rule's packet counter (events lost %r, stand-ins %r)"
       % (snap["events_lost_total"], snap["probe_runs_stood_in_total"]))
    eq(settle(lambda: srv.total("accepted"), what="server accepts"), r["connected"], "every client got in")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    eq(cause(d, "netfilter_drop")["evidence"]["syns_dropped_by_netfilter"], dropped, "evidence vs the rule")
    cs.stop()


def keepalive_run(gap):
    """A keep-alive server (1 s idle timeout) in a netns of the test's own and
    20 pooled clients that reuse their connection after `gap` seconds."""
    ns = Netns()
    srv = Counted("keepalive_server.py", "--idle", 1.0, netns=ns)
    cs = Connscope(srv.pid)
    out = subprocess.run(["ip", "netns", "exec", ns.name, PY, os.path.join(HARNESS, "keepalive_client.py"),
                          "127.0.0.1", str(srv.port), "--count", "20", "--gap", str(gap)],
                         capture_output=True, text=True, timeout=60)
    eq(out.returncode, 0, "client exit (%s)" % out.stderr[-300:])
    return json.loads(out.stdout.strip().splitlines()[-1]), srv, cs


def test_keepalive_race():
    r, srv, cs = keepalive_run(2.0)
    eq(r["first_ok"], 20, "first requests answered")
    check(r["resets_on_reuse"] > 0, "clients reusing after the timeout were reset: %r" % r)
    eq(r["resets_on_reuse"] + r["reused_ok"] + r["other"], 20, "every reuse accounted for")
    wait_until(lambda: srv.get("idle_closes") == 20, 10, "the server to idle-close all 20")
    listener = srv.listener
    got = settle(lambda: cs.metrics().get1("connscope_keepalive_resets_total", listener=listener),
                 what="keep-alive resets")
    eq(got, r["resets_on_reuse"], "resets after the server's close vs the client's own count")
    eq(cs.metrics().get1("connscope_idle_closes_total", listener=listener), srv.get("idle_closes"),
       "idle closes vs the server's own count")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    c = cause(d, "keepalive_race")
    eq(c["evidence"]["resets_after_server_close"], r["resets_on_reuse"], "evidence vs the client's count")
    eq(c["clients_affected"], r["resets_on_reuse"], "clients affected")
    eq(c["listener"], listener, "listener")
    idle = c["evidence"]["idle_before_close_mean_seconds"]
    check(1.0 <= idle < 1.5, "measured keep-alive timeout %r near the server's 1 s" % idle)
    eq(cs.metrics().get1("connscope_diagnosis", cause="keepalive_race"), 1, "diagnosis gauge")
    out = cs.stop()
    check("keepalive_race" in out, "post-mortem names the cause")


def test_reuse_within_timeout_is_not_keepalive_race():
    r, srv, cs = keepalive_run(0.4)
    eq(r, {"first_ok": 20, "reused_ok": 20, "resets_on_reuse": 0, "other": 0}, "every reuse answered")
    wait_until(lambda: srv.get("answered") == 40, 5, "the server to count both answers of each client")
    settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=srv.listener), what="accepts")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    check("keepalive_race" not in causes(d), "not named: %r" % causes(d))
    eq(cs.metrics().get1("connscope_keepalive_resets_total", listener=srv.listener), 0, "no resets")
    cs.stop()


ABORT_CLIENTS = """
import socket, struct, sys
n = 0
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # linger 0: the kernel sends RST instead of FIN
    n += 1
print(n)
"""


def test_unexplained_failures_when_clients_reset():
    """Clients that abort their connections (RST) on a server that accepted
    them at once and hit no limit: no cause explains it, so the verdict says
    so instead of healthy, with the resets as the number."""
    ns = Netns()
    srv = Server(netns=ns)
    cs = Connscope(srv.pid)
    out = subprocess.run(["ip", "netns", "exec", ns.name, PY, "-c", ABORT_CLIENTS, "127.0.0.1", str(srv.port), "25"],
                         capture_output=True, text=True, timeout=60, check=True)
    aborted = int(out.stdout.strip())
    wait_until(lambda: srv.total("accepted") == aborted, 10, "the server to accept all")
    got = settle(lambda: cs.metrics().get1("connscope_tcp_resets_received_total"), what="resets received")
    eq(got, aborted, "resets received vs the clients' own count of aborts")
    time.sleep(0.5)
    d = cs.json("/api/v1/diagnosis")
    eq(d["verdict"], "unexplained_failures", "verdict")
    c = cause(d, "unexplained_failures")
    eq(c["evidence"]["resets_received"], aborted, "resets in evidence")
    eq(c["evidence"]["accepts"], aborted, "accepts in evidence")
    check("healthy" not in causes(d), "not also healthy")
    eq(cs.metrics().get1("connscope_diagnosis", cause="unexplained_failures"), 1, "diagnosis gauge")
    eq(cs.metrics().get1("connscope_diagnosis", cause="healthy"), 0, "healthy gauge")
    cs.stop()
