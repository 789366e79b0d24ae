# SPDX-License-Identifier: MIT
"""What connscope watches on the kernel it runs on: each probe's form
(full, reduced, unavailable) from the running kernel's BTF, each source's
health, the minimum kernel, and the counts that differ by kernel (resets
without a reason before 6.10). Runs on the host and in the 6.1 guest
(tests/kernels/run-guest.sh); tests named guest_test_* run only in a guest,
where they may unload modules."""
import os, platform, re, signal, subprocess, time
from lib import (HARNESS, KERNEL, PY, RESET_REASONS, Connscope, Netns, Proc, Server, cause, check,
                 client, eq, run_connscope, settle, tcp_ext, wait_until)

REDUCED_RESETS = "reset reasons need Linux 6.10; counting resets without a reason"


def probes(cs):
    return {p["probe"]: p for p in cs.json("/api/v1/snapshot")["probes"]}


def test_every_probe_reported_with_its_form():
    srv = Server()
    cs = Connscope(srv.pid, extra=["-v"])
    snap = probes(cs)
    m = cs.metrics()
    for name in ("sys_exit_accept4", "sched_process_fork", "inet_sock_set_state", "tcp_send_reset",
                 "tcp_receive_reset", "tcp_retransmit_synack", "mark_victim"):
        check(name in snap, "probe %s listed in the snapshot: %r" % (name, sorted(snap)))
        eq(snap[name]["state"] in ("active", "reduced"), True, "%s attached: %r" % (name, snap[name]))
    for name, p in snap.items():
        eq(m.get1("connscope_probe_active", probe=name), 0 if p["state"] == "unavailable" else 1,
           "connscope_probe_active{probe=%s} vs snapshot %s" % (name, p["state"]))
        eq(m.get1("connscope_probe_reduced", probe=name), 1 if p["state"] == "reduced" else 0,
           "connscope_probe_reduced{probe=%s}" % name)
    for src in ("sock_diag", "procfs", "tcp_ext", "bpf"):
        eq(m.get1("connscope_source_up", source=src), 1, "connscope_source_up{source=%s}" % src)
    cs.stop()
    err = "\n".join(cs.err_lines)
    if RESET_REASONS:
        eq(snap["tcp_send_reset"]["state"], "active", "tcp_send_reset with reasons")
        check(REDUCED_RESETS not in err, "no reduced-form line on %d.%d" % KERNEL)
    else:
        eq(snap["tcp_send_reset"]["state"], "reduced", "tcp_send_reset before 6.10")
        eq(snap["tcp_send_reset"]["why"], REDUCED_RESETS, "why it is reduced")
        # -v lists every probe; the reduced one says so, once
        eq(err.count(REDUCED_RESETS), 1, "stderr names the reduced form once:\n" + err[-1500:])
        check("probe tcp_send_reset: reduced: " + REDUCED_RESETS in err, "-v line:\n" + err[-1500:])


def source_lines(cs, src):
    return [l for l in cs.err_lines if "%s source failed" % src in l]


def test_source_fails_when_leader_exits_rest_keeps_counting():
    # The main thread exits while another serves: /proc/PID/net/netstat of the
    # zombie leader is gone for real, sock_diag's socket and the probes are not.
    srv = Proc([PY, os.path.join(HARNESS, "servers", "leader_exits.py"), "--before", "10"])
    port = int(srv.wait_line("READY").split()[1])
    cs = Connscope(srv.pid)
    m = cs.metrics()
    eq(m.get1("connscope_source_up", source="tcp_ext"), 1, "tcp_ext up while the leader runs")
    r = client("127.0.0.1", port, 10, hold=0.1)
    eq(r["connected"], 10, "first batch connected")
    srv.wait_line("LEADER_EXITING")
    wait_until(lambda: "Z" in open("/proc/%d/stat" % srv.pid).read().split()[2], 10, "leader to be a zombie")
    check(not os.path.exists("/proc/%d/net/netstat" % srv.pid), "netstat of the zombie leader unreadable")
    r = client("127.0.0.1", port, 20, hold=0.1)
    eq(r["connected"], 20, "second batch connected after the leader exited")
    served = lambda: max([int(l.split()[1]) for l in srv.lines if l.startswith("ACCEPTED")] or [0])
    wait_until(lambda: served() == 30, 15, "server to accept 30")
    lbl = "127.0.0.1:%d" % port
    accepts = settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl), what="accepts")
    eq(accepts, served(), "connscope_accepts_total vs the server's own count, after the source failed")
    m = cs.metrics()
    eq(m.get1("connscope_source_up", source="tcp_ext"), 0, "connscope_source_up{source=tcp_ext}")
    eq(m.get1("connscope_source_up", source="sock_diag"), 1, "sock_diag still up")
    eq(m.get1("connscope_source_up", source="bpf"), 1, "bpf still up")
    eq(m.find("connscope_netns_tcp_ext_total"), {}, "no TcpExt numbers passed off as zeros")
    snap = cs.json("/api/v1/snapshot")
    eq(snap["sources_up"]["tcp_ext"], False, "snapshot sources_up.tcp_ext")
    eq(snap["listeners"][0]["listener"], lbl, "listener still read through sock_diag")
    time.sleep(1)  # several more ticks: the line is said once, not per tick
    cs.stop()
    lines = source_lines(cs, "tcp_ext")
    eq(len(lines), 1, "one stderr line for the failed source: %r" % cs.err_lines[-5:])
    check("TcpExt counters read 0" in lines[0], "says what reads 0: " + lines[0])


def test_refuses_kernel_below_minimum():
    # setarch --uname-2.6 makes uname() report 2.6.x, as an old kernel would
    srv = Server()
    rc, out, err = run_connscope(["--pid", str(srv.pid), "--listen", "127.0.0.1:0"],
                                 prefix=["setarch", platform.machine(), "--uname-2.6"])
    eq(rc, 1, "exit code below the minimum kernel (stderr %r)" % err)
    lines = err.strip().splitlines()
    eq(len(lines), 1, "one line: %r" % lines)
    check(re.match(r"^connscope: needs Linux 5\.12 or newer \(.*\); this kernel is 2\.6\.", lines[0]),
          "names the minimum: %r" % lines[0])


def test_resets_counted_with_the_reason_the_kernel_gives():
    # Before 6.10 tcp_send_reset has no reason: the same count, not_specified.
    with Netns() as ns:
        srv = Server("--mode", "abort_on_data", netns=ns)
        base = tcp_ext(srv.pid)
        cs = Connscope(srv.pid)
        client("127.0.0.1", srv.port, 40, netns=ns, send="unread payload", hold=1.0)
        wait_until(lambda: srv.total("closed") == 40, 20, "server to close 40 with unread data")
        reason = "tcp_abort_on_close" if RESET_REASONS else "not_specified"
        sent = settle(lambda: cs.metrics().get1("connscope_tcp_resets_sent_total", reason=reason),
                      what="resets")
        delta = tcp_ext(srv.pid)["TCPAbortOnClose"] - base["TCPAbortOnClose"]
        eq(delta, 40, "TcpExt TCPAbortOnClose delta")
        eq(sent, delta, "resets sent with reason %s" % reason)
        m = cs.metrics()
        eq(sum(m.find("connscope_tcp_resets_sent_total").values()), delta, "resets over all reasons")
        lbl = "127.0.0.1:%d" % srv.port
        eq(m.get1("connscope_connections_closed_total", listener=lbl, initiator="reset"), 40,
           "connections ended by reset")
        events = cs.json("/api/v1/events?limit=5")["events"]
        check(any(e["kind"] == "reset_sent" and e["reason"] == reason and e["local"] == lbl
                  for e in events), "a reset event with reason %s: %r" % (reason, events[:2]))
        cs.stop()


def guest_test_sock_diag_source_without_tcp_diag():
    # In the guest only: unload tcp_diag and make module autoload fail, as on
    # a host where the module is missing. sock_diag reads 0 and says so once;
    # the probes keep counting.
    with open("/proc/sys/kernel/modprobe") as f:
        modprobe = f.read().strip()
    try:
        with open("/proc/sys/kernel/modprobe", "w") as f:
            f.write("/bin/false")
        subprocess.run(["rmmod", "tcp_diag"], stderr=subprocess.DEVNULL)
        check(not os.path.exists("/sys/module/tcp_diag"), "tcp_diag unloaded")
        srv = Server("--mode", "close_on_eof")
        cs = Connscope(srv.pid)
        client("127.0.0.1", srv.port, 25, hold=0.1)
        wait_until(lambda: srv.total("closed") == 25, 15, "server to close 25")
        lbl = "*:%d" % srv.port  # no listener address without sock_diag
        accepts = settle(lambda: cs.metrics().get1("connscope_accepts_total", listener=lbl), what="accepts")
        eq(accepts, srv.total("accepted"), "accepts vs the server's own count")
        m = cs.metrics()
        eq(m.get1("connscope_source_up", source="sock_diag"), 0, "connscope_source_up{source=sock_diag}")
        eq(m.get1("connscope_source_up", source="bpf"), 1, "bpf up")
        eq(m.get1("connscope_source_up", source="tcp_ext"), 1, "tcp_ext up")
        eq(m.find("connscope_listen_drops_total"), {}, "no listener numbers passed off as zeros")
        cs.stop()
        lines = source_lines(cs, "sock_diag")
        eq(len(lines), 1, "one stderr line: %r" % cs.err_lines[-5:])
        check("tcp_diag" in lines[0] and "modprobe tcp_diag" in lines[0], "names the module: " + lines[0])
    finally:
        with open("/proc/sys/kernel/modprobe", "w") as f:
            f.write(modprobe)


def netns_out_rsts(pid):
    """Tcp OutRsts of PID's network namespace: every reset it sent."""
    with open("/proc/%d/net/snmp" % pid) as f:
        lines = [l.split() for l in f if l.startswith("Tcp:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))["OutRsts"])


# Connects, waits for the server's FIN, then sends: the server's timewait
# socket answers with a reset (with closes_first.py --shutdown: its connection
# does, an abort on data). Prints how many resets this client saw.
TIMEWAIT_CLIENT = """
import socket, sys, time
port, n, seen = int(sys.argv[1]), int(sys.argv[2]), 0
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert s.recv(1) == b""
    # let the delayed ACK of the server's FIN go out alone: data riding on
    # it would reach a FIN_WAIT1 socket (an abort on data), not TIME_WAIT
    time.sleep(0.3)
    s.send(b"late")
    # the reset turns CLOSE_WAIT into CLOSE with EPIPE pending (tcp_reset)
    for _ in range(200):
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            seen += 1
            break
        time.sleep(0.01)
    s.close()
print(seen)
"""


def test_timewait_resets_by_kernel():
    # 6.10+ traces the reset a TIME_WAIT socket sends (reason
    # tcp_timewait_socket); 6.1 traces only active aborts, so it counts none.
    with Netns() as ns:
        srv = Proc(["ip", "netns", "exec", ns.name, PY,
                    os.path.join(HARNESS, "servers", "closes_first.py")])
        port = int(srv.wait_line("READY").split()[1])
        cs = Connscope(srv.pid)
        base = netns_out_rsts(srv.pid)
        out = subprocess.run(["ip", "netns", "exec", ns.name, PY, "-c", TIMEWAIT_CLIENT, str(port), "10"],
                             capture_output=True, text=True, timeout=60)
        eq(out.returncode, 0, "timewait client: " + out.stderr[-300:])
        eq(int(out.stdout), 10, "resets the client saw")
        eq(netns_out_rsts(srv.pid) - base, 10, "Tcp OutRsts delta in the namespace")
        time.sleep(0.6)
        sent = settle(lambda: sum(cs.metrics().find("connscope_tcp_resets_sent_total").values()),
                      what="resets")
        m = cs.metrics()
        if RESET_REASONS:
            eq(m.get1("connscope_tcp_resets_sent_total", reason="tcp_timewait_socket"), 10,
               "resets from the timewait socket")
            eq(sent, 10, "resets over all reasons")
        else:
            eq(sent, 0, "resets from a timewait socket are not traced before 6.10")
        cs.stop()


def test_abort_on_data_counted_as_an_abort_on_every_kernel():
    # A server that shut its connections both ways gets data: the connection
    # answers with a reset (TCPAbortOnData): the application's abort, reason
    # tcp_abort_on_data, and before 6.10 not_specified (a reset answering a
    # segment, from the target's connection after its shutdown, not from a
    # listener). reset_on_close counts them on both.
    with Netns() as ns:
        srv = Proc(["ip", "netns", "exec", ns.name, PY,
                    os.path.join(HARNESS, "servers", "closes_first.py"), "--shutdown"])
        port = int(srv.wait_line("READY").split()[1])
        cs = Connscope(srv.pid)
        base = tcp_ext(srv.pid)["TCPAbortOnData"]
        out = subprocess.run(["ip", "netns", "exec", ns.name, PY, "-c", TIMEWAIT_CLIENT, str(port), "10"],
                             capture_output=True, text=True, timeout=60)
        eq(out.returncode, 0, "client: " + out.stderr[-300:])
        eq(int(out.stdout), 10, "resets the client saw")
        aborts = settle(lambda: tcp_ext(srv.pid)["TCPAbortOnData"] - base, what="TCPAbortOnData")
        eq(aborts, 10, "TcpExt TCPAbortOnData delta")
        reason = "tcp_abort_on_data" if RESET_REASONS else "not_specified"
        eq(settle(lambda: cs.metrics().get1("connscope_tcp_resets_sent_total", reason=reason), what="resets"),
           aborts, "resets sent with reason %s vs TCPAbortOnData" % reason)
        time.sleep(0.6)
        d = cs.json("/api/v1/diagnosis")
        # (the verdict is rejected_after_accept: it ends each connection unread)
        eq(cause(d, "reset_on_close")["evidence"]["resets_abort"], aborts, "aborting resets in evidence")
        cs.stop()


def test_reset_to_closed_port_by_kernel():
    # 6.10+ traces the reset for a segment no socket takes (reason no_socket)
    # and names reset_no_listener; 6.1 does not trace it, so counts none.
    # A namespace of its own: the verdict reads namespace-wide TcpExt.
    with Netns() as ns:
        srv = Server("--close-listener-on-usr2", netns=ns)
        cs = Connscope(srv.pid)
        os.kill(srv.pid, signal.SIGUSR2)
        srv.wait_line("CLOSED")
        r = client("127.0.0.1", srv.port, 25, netns=ns, hold=0.2, timeout=1.0)
        eq(r["refused"], 25, "clients refused by the closed port")
        time.sleep(0.6)
        sent = settle(lambda: sum(cs.metrics().find("connscope_tcp_resets_sent_total").values()),
                      what="resets")
        verdict = cs.json("/api/v1/diagnosis")["verdict"]
        if RESET_REASONS:
            eq(sent, 25, "resets to the closed port")
            eq(verdict, "reset_no_listener", "verdict")
        else:
            eq(sent, 0, "resets with no socket are not traced before 6.10")
            check(verdict != "reset_no_listener", "reset_no_listener not named without its evidence")
        cs.stop()


def test_reset_on_close_named_on_every_kernel():
    # Before 6.10 the target's aborts are traced without a reason: the
    # diagnosis counts the not_specified ones as such, so reset_on_close is
    # named there too.
    with Netns() as ns:
        srv = Server("--mode", "abort_on_data", netns=ns)
        cs = Connscope(srv.pid)
        client("127.0.0.1", srv.port, 30, netns=ns, send="unread", hold=1.0)
        wait_until(lambda: srv.total("closed") == 30, 20, "server to close 30")
        time.sleep(0.6)
        d = cs.json("/api/v1/diagnosis")
        eq(d["verdict"], "reset_on_close", "verdict")
        ev = [c for c in d["causes"] if c["cause"] == "reset_on_close"][0]["evidence"]
        eq(ev["resets_abort"], 30, "aborting resets in evidence")
        cs.stop()


def test_target_exited_named():
    # The count survives the exit whatever the listener's label became (the
    # listener may close before the exit is seen, more so under emulation).
    srv = Server()
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 25, hold=0.2)
    wait_until(lambda: srv.total("accepted") == 25, 15, "server to accept 25")
    settle(lambda: sum(cs.metrics().find("connscope_accepts_total").values()), what="accepts")
    held = srv.total("accepted") - srv.total("closed")
    srv.kill()
    wait_until(lambda: cs.metrics().get1("connscope_target_up") == 0, 15, "target_up 0")
    eq(sum(cs.metrics().find("connscope_accepts_total").values()), 25, "accepts kept after exit")
    d = cs.json("/api/v1/diagnosis")
    eq(d["verdict"], "target_exited", "verdict after the target exited")
    # its exit closed them all: what it held before, not the 0 after
    eq(cause(d, "target_exited")["evidence"]["connections_open"], held, "connections it held vs its own count")
    eq(cause(d, "target_exited")["clients_affected"], held, "clients affected")
    cs.stop()
