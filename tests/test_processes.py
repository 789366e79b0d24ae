# SPDX-License-Identifier: MIT
"""Every target process is read, whatever their number; each process's fd
peak is its own (never above its hard limit); somaxconn follows a change in
the target's namespace. Ground truth: /proc and sysctl."""
import os, signal, subprocess
from lib import PY, Connscope, Netns, Proc, Server, check, eq, pinned, wait_until

# A parent that forks N sleeping children, listening so it is a server.
FORKER = r'''
import os, signal, socket, sys, time
n = int(sys.argv[1])
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        time.sleep(600)
        os._exit(0)
    kids.append(pid)
os.write(1, ("READY %d\n" % len(kids)).encode())
signal.signal(signal.SIGTERM, lambda *_: [os.kill(k, 9) for k in kids] and os._exit(0))
time.sleep(600)
'''


def tree(pid):
    """pid and its live descendants, from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return sorted(out)


def threads_of(pids):
    total = 0
    for p in pids:
        with open("/proc/%d/status" % p) as f:
            total += int([l for l in f if l.startswith("Threads:")][0].split()[1])
    return total


def test_every_process_read_above_256():
    parent = Proc([PY, "-c", FORKER, "300"])
    parent.wait_line("READY", timeout=60)
    try:
        cs = Connscope(parent.pid)
        (m, s), pids = pinned(lambda: tree(parent.pid), lambda: (cs.metrics(), cs.json("/api/v1/snapshot")),
                              what="process tree")
        eq(len(pids), 301, "processes in the tree (/proc)")
        eq(m.get1("connscope_target_processes"), len(pids), "target processes vs /proc")
        eq(sorted(p["pid"] for p in s["processes"]), pids, "processes read, by PID")
        m, threads = pinned(lambda: threads_of(tree(parent.pid)), cs.metrics, what="threads")
        eq(m.get1("connscope_threads"), threads, "threads of all 301 vs /proc")
        eq(m.get1("connscope_events_lost_total", kind="procs_not_read"), 0, "processes not read")
        cs.stop()
    finally:
        parent.kill(signal.SIGTERM)


# The parent holds many fds under a high limit, then forks a child with a
# hard limit of 64 that holds fewer: the child is nearer its limit.
FDS = r'''
import os, resource, signal, sys, time, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
held = [os.open("/dev/null", os.O_RDONLY) for _ in range(100)]
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
os.write(1, b"READY\n")
signal.sigwait([signal.SIGUSR1])
for fd in held:
    os.close(fd)
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    mine = [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]
    os.write(1, ("CHILD %d\n" % os.getpid()).encode())
    time.sleep(600)
    os._exit(0)
time.sleep(600)
'''


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_fd_peak_is_per_process_and_within_its_hard_limit():
    p = Proc([PY, "-c", FDS])
    p.wait_line("READY")
    cs = Connscope(p.pid)
    peak_parent = open_fds(p.pid)
    wait_until(lambda: cs.metrics().get1("connscope_fd_peak") >= peak_parent, 10, "parent's peak seen")
    os.kill(p.pid, signal.SIGUSR1)
    child = int(p.wait_line("CHILD").split()[1])
    try:
        s, fds = pinned(lambda: open_fds(child), lambda: cs.json("/api/v1/snapshot"), what="child fds")
        eq(s["fds"]["pid"], child, "process nearest its limit")
        eq(s["fds"]["hard_limit"], 64, "its hard limit")
        eq(s["fds"]["open"], fds, "its open fds vs /proc/PID/fd")
        eq(s["fds"]["peak"], fds, "its own peak, not the parent's %d" % peak_parent)
        for pr in s["processes"]:
            check(pr["fd_peak"] <= pr["fd_hard_limit"], "peak above hard limit: %r" % pr)
        parent = [pr for pr in s["processes"] if pr["pid"] == p.pid][0]
        eq(parent["fd_peak"], peak_parent, "the parent keeps its own peak")
        cs.stop()
    finally:
        os.kill(child, signal.SIGKILL)


def test_somaxconn_follows_a_change_in_the_target_namespace():
    with Netns() as ns:
        srv = Server(netns=ns)
        cs = Connscope(srv.pid)

        def sysctl(*args):
            return subprocess.run(["ip", "netns", "exec", ns.name, "sysctl"] + list(args),
                                  capture_output=True, text=True, check=True).stdout.strip()
        m, before = pinned(lambda: int(sysctl("-n", "net.core.somaxconn")), cs.metrics)
        eq(m.get1("connscope_somaxconn"), before, "somaxconn vs sysctl")
        sysctl("-qw", "net.core.somaxconn=%d" % (64 if before != 64 else 96))
        m, after = pinned(lambda: int(sysctl("-n", "net.core.somaxconn")), cs.metrics)
        check(after != before, "the test changed somaxconn")
        eq(m.get1("connscope_somaxconn"), after, "somaxconn after the change vs sysctl")
        cs.stop()
