#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server with a client limit that answers the excess instead of leaving
it in the backlog: beyond --limit open connections it accepts, writes an
error line and closes at once, unread. Connections within the limit are held
until the peer closes. --reject-after S waits S seconds between accept and
the error line. Prints READY <port>, then STATS lines (its own counts:
accepted, rejected, open; rejected_lifetimes: each rejection's seconds from
accept() returning to close())."""
import argparse, select, time
import serving

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--limit", type=int, default=50)
p.add_argument("--reject-after", type=float, default=0)
a = p.parse_args()

stats = {"accepted": 0, "rejected": 0, "open": 0, "rejected_lifetimes": []}


def report():
    serving.report(stats)


def main():
    ls = serving.listen(a.host)
    poller = select.poll()
    poller.register(ls, select.POLLIN)
    held = {}
    serving.ready(ls)
    while True:
        for fd, _ in poller.poll(1000):
            if fd == ls.fileno():
                c, _ = ls.accept()
                t0 = time.monotonic()
                stats["accepted"] += 1
                if stats["open"] >= a.limit:
                    if a.reject_after:
                        time.sleep(a.reject_after)
                    c.send(b"ERROR too many clients\n")
                    t1 = time.monotonic()
                    c.close()
                    stats["rejected"] += 1
                    stats["rejected_lifetimes"].append(t1 - t0)
                else:
                    held[c.fileno()] = c
                    poller.register(c, select.POLLIN)
                    stats["open"] += 1
                report()
            elif held[fd].recv(4096) == b"":  # the peer closed: so do we
                poller.unregister(fd)
                held.pop(fd).close()
                stats["open"] -= 1
                report()


main()
