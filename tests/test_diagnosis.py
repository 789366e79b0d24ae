# SPDX-License-Identifier: MIT
"""The diagnosis names the cause each scenario sets up, from the
kernel's numbers, with evidence equal to the ground truth; history, events,
the post-mortem and detaching."""
import os, signal, time
import subprocess
from lib import (PY, ROOT, Connscope, Netns, Proc, Server, bpf_link_ids, check, client, eq, pinned,
                 settle, settled_total, ss_listener, tcp_ext, wait_until)


def diagnosis(cs, query=""):
    return cs.json("/api/v1/diagnosis" + query)


def evidence(d, cause):
    for c in d["causes"]:
        if c["cause"] == cause:
            return c["evidence"]
    raise AssertionError("cause %s not in %r" % (cause, [c["cause"] for c in d["causes"]]))


def test_healthy():
    # a namespace of its own: the verdict reads namespace-wide TcpExt, which
    # other load on the host moves
    ns = Netns()
    srv = Server(netns=ns)
    cs = Connscope(srv.pid)
    r = client("127.0.0.1", srv.port, 100, rate=200, hold=1.0, netns=ns)
    eq(r["connected"], 100, "connections held")
    accepted = settled_total(srv, "accepted")
    settle(lambda: cs.metrics().get1("connscope_accepts_total", listener="127.0.0.1:%d" % srv.port),
           what="accepts")
    time.sleep(0.5)  # one more tick into history
    d = diagnosis(cs)
    eq(d["verdict"], "healthy", "verdict")
    ev = evidence(d, "healthy")
    eq(ev["accepts"], accepted, "accepts in the healthy evidence vs the server's count")
    eq(ev["listen_drops"], 0, "drops")
    with open("/proc/%d/limits" % srv.pid) as f:
        soft = int([l for l in f if l.startswith("Max open files")][0].split()[3])
    eq(ev["fd_soft_limit"], soft, "soft limit shown vs /proc/PID/limits")
    check(ev["fd_peak"] < ev["fd_soft_limit"], "peak below the limit")
    eq(cs.metrics().get1("connscope_diagnosis", cause="healthy"), 1, "diagnosis gauge")
    cs.stop()


def test_fd_exhaustion_with_events():
    srv = Server("--nofile", 64, "--emfile-limit", 30)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 150, hold=1.0, timeout=1.0)
    wait_until(lambda: srv.total("emfile") == 30, 20, "server to see 30 EMFILE")
    time.sleep(0.6)
    d = diagnosis(cs)
    eq(d["verdict"], "fd_exhaustion", "verdict")
    ev = evidence(d, "fd_exhaustion")
    eq(ev["accept_emfile"], srv.total("emfile"), "EMFILE in evidence vs the server's count")
    eq(ev["fd_soft_limit"], 64, "soft limit in evidence")
    check(ev["fd_peak"] >= 62, "fd peak %r near the limit 64" % ev["fd_peak"])
    evs = cs.json("/api/v1/events?limit=50")["events"]
    fd = [e for e in evs if e["kind"] == "fd_error"]
    check(fd and fd[0]["errno"] == "EMFILE" and fd[0]["syscall"] == "accept4",
          "EMFILE event from accept4: %r" % evs[:3])
    check(all(a["time_unix_ms"] >= b["time_unix_ms"] for a, b in zip(evs, evs[1:])), "events newest first")
    eq(len(cs.json("/api/v1/events?limit=1")["events"]), 1, "limit=1")
    eq(cs.metrics().get1("connscope_diagnosis", cause="fd_exhaustion"), 1, "diagnosis gauge")
    cs.stop()


def test_accept_queue_slow():
    srv = Server("--backlog", 16, "--accept-rate", 50)
    cs = Connscope(srv.pid)
    # Clients may all "connect": a dropped handshake ACK leaves them thinking so.
    client("127.0.0.1", srv.port, 400, rate=400, hold=0.2, timeout=2.0)
    time.sleep(1.0)
    d, drops = pinned(lambda: ss_listener(srv.port)[2], lambda: diagnosis(cs, "?window=all"), what="drops")
    check(drops > 0, "the scenario made no listen drops")
    eq(d["verdict"], "accept_queue_slow", "verdict")
    ev = evidence(d, "accept_queue_slow")
    eq(ev["listen_drops"], drops, "drops in evidence vs ss d<N>")
    eq(ev["queue_limit"], 16, "queue limit in evidence")
    eq(ev["listener"], "127.0.0.1:%d" % srv.port, "listener")
    check(not any(c["cause"] == "accept_queue_stalled" for c in d["causes"]), "not also stalled")
    cs.stop()


def test_accept_cap_and_postmortem():
    srv = Server("--backlog", 10, "--max-accepts", 30)
    cs = Connscope(srv.pid)
    links = cs.link_ids()
    check(links, "BPF links attached")
    client("127.0.0.1", srv.port, 120, hold=0.2, timeout=1.5)
    accepted = settled_total(srv, "accepted")
    check(accepted > 0, "the server accepted nothing")
    time.sleep(2.5)  # the queue stays full with no accepts
    d, (drops, accepted) = pinned(lambda: (ss_listener(srv.port)[2], srv.total("accepted")),
                                  lambda: diagnosis(cs, "?window=all"), what="drops")
    # it holds what it accepted and takes no more: a connection cap
    eq(d["verdict"], "connection_cap", "verdict (%s)" % cs.why(d, srv.port))
    ev = evidence(d, "connection_cap")
    eq(ev["queue_limit"], 10, "queue limit")
    eq(ev["queue_length"], ss_listener(srv.port)[0], "queue length vs ss Recv-Q")
    eq(ev["accepts"], accepted, "accepts before the cap vs the server's count")
    eq(ev["plateau_connections"], accepted, "plateau vs the server's own count")
    eq(ev["listen_drops"], drops, "drops vs ss")
    check(ev["seconds_at_plateau"] >= 2, "seconds at the plateau %r" % ev["seconds_at_plateau"])
    text = cs.get("/api/v1/diagnosis?format=text")[2].decode()
    check(text.startswith("Clients failed because the server stopped accepting at %d open connections"
                          % accepted),
          "text format: %r" % text[:120])
    check("\nverdict: connection_cap" in text, "text names the verdict: %r" % text[:300])
    out = cs.stop()
    check("verdict: connection_cap" in out, "post-mortem names the cause: %r" % out[:300])
    check("queue_limit=10" in out and "accepts=%d" % accepted in out,
          "post-mortem has the numbers: %r" % out[:600])
    eq(bpf_link_ids() & links, set(), "BPF links left after SIGINT")


def test_reset_on_close():
    ns = Netns()  # namespace-wide TcpExt: see test_healthy
    srv = Server("--mode", "abort_on_data", netns=ns)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 60, send="unread", hold=1.0, netns=ns)
    wait_until(lambda: srv.total("closed") == 60, 20, "server to close 60")
    d, closed = pinned(lambda: srv.total("closed"), lambda: diagnosis(cs))
    eq(d["verdict"], "reset_on_close", "verdict")
    eq(evidence(d, "reset_on_close")["resets_abort"], closed, "aborting resets in evidence vs the server's closes")
    cs.stop()


def test_history_adds_up_to_accepts_total():
    srv = Server("--mode", "close_on_eof", "--accept-rate", 200)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 150, rate=150, hold=0.2)
    wait_until(lambda: srv.total("closed") == 150, 15, "server to close 150")
    total = settle(lambda: cs.metrics().get1("connscope_accepts_total", listener="127.0.0.1:%d" % srv.port),
                   what="accepts")
    eq(total, 150, "accepts_total")
    time.sleep(0.5)
    h = cs.json("/api/v1/history")
    eq(sum(p["accepts"] for p in h["points"]), total, "history accepts sum vs connscope_accepts_total")
    check(sum(1 for p in h["points"] if p["accepts"]) >= 2, "accepts spread over several points")
    eq(h["points_count"], len(h["points"]), "points_count")
    last = cs.json("/api/v1/history?seconds=1")["points"]
    check(0 < len(last) <= 6, "seconds=1 gives about a second of points: %d" % len(last))
    cs.stop()


def test_reset_no_listener():
    ns = Netns()  # namespace-wide TcpExt: see test_healthy
    srv = Server("--close-listener-on-usr2", netns=ns)
    cs = Connscope(srv.pid)
    os.kill(srv.pid, signal.SIGUSR2)
    srv.wait_line("CLOSED")
    r = client("127.0.0.1", srv.port, 25, hold=0.2, timeout=1.0, netns=ns)
    eq(r["refused"], 25, "clients refused by the closed port")
    time.sleep(0.6)
    d = diagnosis(cs)
    eq(d["verdict"], "reset_no_listener", "verdict")
    eq(evidence(d, "reset_no_listener")["resets_no_socket"], 25, "resets to the closed port")
    eq(cs.metrics().get1("connscope_tcp_resets_sent_total", reason="no_socket"), 25, "no_socket resets")
    cs.stop()


def memory_cgroup(limit):
    """A memory cgroup of the test's own (v1 or v2) capped at limit bytes:
    returns (its procs file, its directory)."""
    name = "cs-test-oom-%d" % os.getpid()
    v1 = "/sys/fs/cgroup/memory"
    if os.path.isdir(v1):
        d = os.path.join(v1, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "memory.limit_in_bytes"), "w") as f:
            f.write(str(limit))
        return os.path.join(d, "cgroup.procs"), d
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        ctl = os.path.join(root, "cgroup.controllers")
        if os.path.exists(ctl) and "memory" in open(ctl).read().split():
            d = os.path.join(root, name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "memory.max"), "w") as f:
                f.write(str(limit))
            return os.path.join(d, "cgroup.procs"), d
    raise AssertionError("no memory cgroup controller to make a real OOM kill")


def test_oom_kill_of_a_descendant():
    procs, cg = memory_cgroup(64 << 20)
    try:
        parent = Proc([PY, os.path.join(ROOT, "tests", "harness", "servers", "oom_parent.py"), procs])
        parent.wait_line("READY")
        cs = Connscope(parent.pid)
        os.kill(parent.pid, signal.SIGUSR1)  # the child is forked after attach
        child, sig = map(int, parent.wait_line("CHILD", timeout=30).split()[1:])
        eq(sig, signal.SIGKILL, "the child ended by SIGKILL (the OOM killer)")
        time.sleep(0.5)
        eq(cs.metrics().get1("connscope_oom_kills_total"), 1, "OOM kills counted")
        d = diagnosis(cs)
        eq(d["verdict"], "oom_kill", "verdict")
        eq(evidence(d, "oom_kill")["oom_kills"], 1, "OOM kills in evidence")
        ev = [e for e in cs.json("/api/v1/events")["events"] if e["kind"] == "oom_kill"]
        eq([e["pid"] for e in ev], [child], "the OOM event names the child")
        cs.stop()
    finally:
        parent.kill()
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)
