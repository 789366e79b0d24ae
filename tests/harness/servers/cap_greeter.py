#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server with a connection cap that speaks first (as MySQL or SMTP do):
it accepts while fewer than --cap are open and leaves the rest in the
backlog; on accept it writes a greeting, then reads whatever comes; it
closes each connection --hold seconds after accepting it. Prints READY
<port>, then STATS lines (its own counts: accepted, open, peak_open, read
(connections it read data from), left_in_backlog (accepted already closed by
the peer: TCP_INFO said CLOSE_WAIT right after accept()))."""
import argparse, select, socket, struct, time
import serving

TCP_CLOSE_WAIT = 8

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--cap", type=int, default=10)
p.add_argument("--hold", type=float, default=1.5)
p.add_argument("--backlog", type=int, default=128)
a = p.parse_args()

stats = {"accepted": 0, "open": 0, "peak_open": 0, "read": 0, "left_in_backlog": 0}


def report():
    serving.report(stats)


def main():
    ls = serving.listen(a.host, a.backlog)
    poller = select.poll()
    held = {}  # fd -> (socket, close at, read anything)
    polled = set()  # held fds still registered for reading
    listening = False
    serving.ready(ls)
    while True:
        want = stats["open"] < a.cap
        if want != listening:  # at the cap, leave the backlog alone
            (poller.register(ls, select.POLLIN) if want else poller.unregister(ls))
            listening = want
        now = time.monotonic()
        for fd, (c, until, _) in list(held.items()):
            if now >= until:
                if fd in polled:
                    poller.unregister(fd)
                    polled.discard(fd)
                held.pop(fd)
                c.close()
                stats["open"] -= 1
                report()
        for fd, _ in poller.poll(50):
            if fd == ls.fileno():
                if stats["open"] >= a.cap:
                    continue
                c, _ = ls.accept()
                state = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
                stats["accepted"] += 1
                stats["left_in_backlog"] += state == TCP_CLOSE_WAIT
                stats["open"] += 1
                stats["peak_open"] = max(stats["peak_open"], stats["open"])
                try:
                    c.send(b"220 hello\n")
                except OSError:
                    pass
                held[c.fileno()] = (c, time.monotonic() + a.hold, False)
                poller.register(c, select.POLLIN)
                polled.add(c.fileno())
                report()
            elif fd in polled:
                c, until, seen = held[fd]
                try:
                    data = c.recv(4096)
                except OSError:
                    data = b""
                if data and not seen:
                    stats["read"] += 1
                    report()
                if not data:  # the peer left: nothing more to read, held until its time
                    poller.unregister(fd)
                    polled.discard(fd)
                held[fd] = (c, until, seen or bool(data))


main()
