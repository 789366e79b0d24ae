# SPDX-License-Identifier: MIT
"""The target's lifetime: collection lasts while any target process lives
(a launcher may exit), the last numbers and labels stay after the target
exits, a successor on the same address is never counted as the old target
unless --follow attaches to it (then restarts are counted, an event names
both PIDs, labels stay), and one connscope watches a PID at a time."""
import json, os, signal
from lib import (PY, SERVER, Connscope, Netns, Proc, Server, check, client, eq, pinned, run_connscope,
                 settled_total, wait_until)

PORT = 18082


def m1(cs, name, **labels):
    return cs.metrics().get1(name, **labels)


def test_without_follow_a_successor_is_never_counted():
    with Netns() as ns:
        srv = Server("--mode", "close_on_eof", "--port", PORT, netns=ns)
        cs = Connscope(srv.pid)
        lbl = "127.0.0.1:%d" % PORT
        client("127.0.0.1", PORT, 10, netns=ns, hold=0.2)
        accepted = settled_total(srv, "accepted")
        fds = wait_until(lambda: m1(cs, "connscope_open_fds"), 10, "open fds read")
        srv.kill()
        wait_until(lambda: m1(cs, "connscope_target_up") == 0, 10, "target_up 0")
        nxt = Server("--mode", "close_on_eof", "--port", PORT, netns=ns)
        client("127.0.0.1", PORT, 25, netns=ns, hold=0.2)
        wait_until(lambda: nxt.total("closed") == 25, 15, "the successor to close 25")
        m = cs.metrics()
        eq(m.get1("connscope_accepts_total", listener=lbl), accepted, "accepts: the old target's only")
        eq(m.get1("connscope_connections_closed_before_accept_total", listener=lbl), 0,
           "the successor's connections are not the old target's to close")
        eq(len(m.find("connscope_accepts_total")), 1, "one listener series, label unchanged")
        eq(m.get1("connscope_open_fds"), fds, "the last open fds stay after exit")
        eq(m.get1("connscope_target_restarts_total"), 0, "restarts")
        cs.stop()


def test_follow_attaches_to_the_successor_on_the_same_address():
    with Netns() as ns:
        srv = Server("--mode", "close_on_eof", "--port", PORT, netns=ns)
        cs = Connscope(srv.pid, extra=["--follow"])
        lbl = "127.0.0.1:%d" % PORT
        client("127.0.0.1", PORT, 10, netns=ns, hold=0.2)
        first = settled_total(srv, "accepted")
        old = srv.pid
        srv.kill()
        wait_until(lambda: m1(cs, "connscope_target_up") == 0, 10, "target_up 0")
        nxt = Server("--mode", "close_on_eof", "--port", PORT, netns=ns)
        wait_until(lambda: m1(cs, "connscope_target_up") == 1, 10, "the successor attached")
        eq(m1(cs, "connscope_target_restarts_total"), 1, "restarts")
        client("127.0.0.1", PORT, 25, netns=ns, hold=0.2)
        wait_until(lambda: nxt.total("closed") == 25, 15, "the successor to close 25")
        m, second = pinned(lambda: nxt.total("accepted"), cs.metrics)
        eq(m.get1("connscope_accepts_total", listener=lbl), first + second,
           "accepts of both, under the same label")
        eq(len(m.find("connscope_accepts_total")), 1, "one listener series")
        eq(m.get1("connscope_connections_closed_before_accept_total", listener=lbl), 0, "closed before accept")
        eq(m.get1("connscope_connections_open", listener=lbl), 0, "connections open")
        s = cs.json("/api/v1/snapshot")
        eq(s["target"]["pid"], nxt.pid, "target pid is the successor")
        ev = [e for e in cs.json("/api/v1/events")["events"] if e["kind"] == "target_restart"]
        eq([(e["pid"], e["previous_pid"]) for e in ev], [(nxt.pid, old)], "restart event names both PIDs")
        cs.stop()


# Starts a server as its child and exits when told: the PID connscope was
# given is gone, the server it launched goes on.
LAUNCHER = r'''
import signal, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
srv = subprocess.Popen([sys.executable, %r, "--mode", "close_on_eof"])
signal.sigwait([signal.SIGUSR1])
''' % SERVER


def accepted_by(proc):
    stats = {}
    for l in list(proc.lines):
        if l.startswith("STATS "):
            s = json.loads(l[6:])
            stats[s["pid"]] = s["accepted"]
    return sum(stats.values())


def test_launcher_exit_does_not_end_collection():
    launcher = Proc([PY, "-c", LAUNCHER])
    port = int(launcher.wait_line("READY").split()[1])
    cs = Connscope(launcher.pid)
    os.kill(launcher.pid, signal.SIGUSR1)
    launcher.p.wait(10)
    wait_until(lambda: m1(cs, "connscope_target_processes") == 1, 10, "only the server left")
    eq(m1(cs, "connscope_target_up"), 1, "target up while its server lives")
    client("127.0.0.1", port, 20, hold=0.2)
    lbl = "127.0.0.1:%d" % port
    ours, accepted = pinned(lambda: accepted_by(launcher), lambda: m1(cs, "connscope_accepts_total", listener=lbl))
    check(accepted > 0, "the server accepted nothing")
    eq(ours, accepted, "accepts after the launcher exited vs the server's count")
    cs.stop()


def test_second_instance_on_one_pid_refused_unless_forced():
    srv = Server()
    cs = Connscope(srv.pid)
    rc, out, err = run_connscope(["--pid", str(srv.pid), "--listen", "127.0.0.1:0"])
    check(rc != 0, "a second instance started")
    lines = [l for l in err.splitlines() if l.strip()]
    eq(len(lines), 1, "one line: %r" % err)
    check("127.0.0.1:%d" % cs.port in lines[0], "the line names the first one's address: %r" % lines[0])
    forced = Connscope(srv.pid, extra=["--force"])
    check(any("--force" in l and "127.0.0.1:%d" % cs.port in l for l in forced.err_lines),
          "--force says another one watches: %r" % forced.err_lines)
    forced.stop()
    cs.stop()


def test_follow_pidfile_names_the_successor():
    with Netns() as ns:
        pidfile = "/tmp/cs-test-follow-%d.pid" % os.getpid()
        srv = Server("--mode", "close_on_eof", netns=ns)
        with open(pidfile, "w") as f:
            f.write("%d\n" % srv.pid)
        try:
            cs = Connscope(srv.pid, extra=["--follow", "--pidfile", pidfile])
            old_port = srv.port
            srv.kill()
            wait_until(lambda: m1(cs, "connscope_target_up") == 0, 10, "target_up 0")
            # another port: only the pidfile can name it
            nxt = Server("--mode", "close_on_eof", netns=ns)
            with open(pidfile, "w") as f:
                f.write("%d\n" % nxt.pid)
            wait_until(lambda: m1(cs, "connscope_target_up") == 1, 10, "the successor attached")
            client("127.0.0.1", nxt.port, 12, netns=ns, hold=0.2)
            m, accepted = pinned(lambda: nxt.total("accepted"), cs.metrics)
            check(accepted > 0, "the successor accepted nothing")
            eq(m.get1("connscope_accepts_total", listener="127.0.0.1:%d" % nxt.port), accepted,
               "the successor's accepts under its own listener")
            eq(m.get1("connscope_target_restarts_total"), 1, "restarts")
            eq(len(m.find("connscope_accepts_total", listener="127.0.0.1:%d" % old_port)), 1,
               "the old listener's series keeps its label")
            cs.stop()
        finally:
            os.unlink(pidfile)


def test_successor_options_need_follow():
    srv = Server()
    for args, expect in ((["--comm", "x"], "needs --follow"), (["--pidfile", "/x"], "needs --follow"),
                         (["--follow", "--comm", "x", "--pidfile", "/x"], "give one way")):
        rc, out, err = run_connscope(["--pid", str(srv.pid), "--listen", "127.0.0.1:0"] + args)
        lines = [l for l in err.splitlines() if l.strip()]
        check(rc != 0 and len(lines) == 1 and expect in lines[0], "%r: rc %d, %r" % (args, rc, err))
