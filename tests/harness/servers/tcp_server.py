#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP server the tests control: backlog, fd limit, accept pacing and cap,
close behaviour, pre-forking. It reports its own counts (the ground truth the
tests compare connscope against) as 'STATS {json}' lines on stdout."""
import argparse, errno, json, os, resource, select, signal, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--backlog", type=int, default=128)
p.add_argument("--nofile", type=int, default=0, help="RLIMIT_NOFILE soft limit")
p.add_argument("--mode", default="hold", choices=["hold", "close_on_eof", "abort_on_data", "close_after"])
p.add_argument("--close-after-ms", default="3", help="close_after: hold each connection this long, then "
               "close it first (comma-separated: cycled per connection); each duration is logged")
p.add_argument("--max-accepts", type=int, default=-1, help="stop accepting after N (-1: never)")
p.add_argument("--accept-rate", type=float, default=0, help="accepts per second (0: as fast as possible)")
p.add_argument("--emfile-limit", type=int, default=50, help="stop accepting after N EMFILE")
p.add_argument("--workers", type=int, default=0, help="fork N accepting workers on SIGUSR1")
p.add_argument("--close-listener-on-usr2", action="store_true",
               help="on SIGUSR2 close the listener and keep running (a restart gone wrong)")
a = p.parse_args()

stats = {"pid": os.getpid(), "accepted": 0, "emfile": 0, "closed": 0, "reset": 0, "errors": {}}
close_after = [float(x) / 1000 for x in a.close_after_ms.split(",")]


def emit(line):
    """One line, one write(2): the master and its workers share this pipe."""
    os.write(1, (line + "\n").encode())


def report():
    stats["pid"] = os.getpid()
    emit("STATS " + json.dumps(stats))


def accepting():
    capped = a.max_accepts >= 0 and stats["accepted"] >= a.max_accepts
    return not capped and stats["emfile"] < a.emfile_limit


def serve(ls):
    held = {}
    deadlines = {}  # close_after: fd -> (close at, accepted at)
    poller = select.poll()
    poller.register(ls, select.POLLIN)
    listening = True
    while True:
        if accepting() != listening:
            listening = not listening
            (poller.register(ls, select.POLLIN) if listening else poller.unregister(ls))
        if not listening and a.mode not in ("close_on_eof", "close_after"):
            time.sleep(1)
            continue
        wait = 1000
        if deadlines:
            wait = max(0, min(d for d, _ in deadlines.values()) - time.monotonic()) * 1000
        ready = [fd for fd, _ in poller.poll(wait)]
        for fd, (when, since) in list(deadlines.items()):
            if time.monotonic() >= when:  # ours to close first: log how long it lived
                c = held.pop(fd)
                del deadlines[fd]
                lived = time.monotonic() - since
                c.close()
                stats["closed"] += 1
                emit("LIVED %.6f" % lived)
                report()
        for fd in ready:
            if fd == ls.fileno() or fd not in held:
                continue
            c = held[fd]
            try:
                eof = c.recv(4096) == b""
            except ConnectionResetError:  # the peer aborted: it sent RST
                stats["reset"] += 1
                eof = True
            if eof:  # peer closed: close our side too
                poller.unregister(c)
                del held[fd]
                c.close()
                stats["closed"] += 1
                report()
        if ls.fileno() not in ready:
            continue
        try:
            c, _ = ls.accept()
            c.setblocking(True)
        except BlockingIOError:  # another worker took it
            continue
        except OSError as e:
            if e.errno == errno.EMFILE:
                stats["emfile"] += 1
                report()
                time.sleep(0.01)
            else:
                stats["errors"][str(e.errno)] = stats["errors"].get(str(e.errno), 0) + 1
                report()
            continue
        stats["accepted"] += 1
        if a.mode == "close_after":
            held[c.fileno()] = c
            deadlines[c.fileno()] = (time.monotonic() + close_after[(stats["accepted"] - 1) % len(close_after)],
                                     time.monotonic())
        elif a.mode == "abort_on_data":
            # close with unread data: the kernel must send RST (tcp_abort_on_close)
            pp = select.poll()
            pp.register(c, select.POLLIN)
            pp.poll(5000)
            c.close()
            stats["closed"] += 1
        else:
            held[c.fileno()] = c
            if a.mode == "close_on_eof":
                poller.register(c, select.POLLIN)
        report()
        if a.accept_rate > 0:
            time.sleep(1.0 / a.accept_rate)


def main():
    if a.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(a.backlog)
    ls.setblocking(False)  # pre-forked workers share it: poll wakes them all
    if a.workers:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    emit("READY %d" % ls.getsockname()[1])
    if a.close_listener_on_usr2:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
        signal.sigwait([signal.SIGUSR2])
        ls.close()
        emit("CLOSED")
        while True:
            time.sleep(3600)
    if not a.workers:
        serve(ls)
        return
    signal.sigwait([signal.SIGUSR1])
    kids = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            stats["accepted"] = 0
            report()
            serve(ls)
            os._exit(0)
        kids.append(pid)
    emit("WORKERS " + " ".join(map(str, kids)))
    for k in kids:
        os.waitpid(k, 0)


signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
main()
