#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A thread-pool server: one acceptor thread accepts everything into a work
queue, N workers each read one request and then block for --block seconds
(a slow database call) before answering. With few workers, accepted
connections wait unread. Prints READY <port>, then a STATS line (its own
counts, the tests' ground truth) whenever a count changes."""
import argparse, queue, socket, threading, time
import serving

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--workers", type=int, default=4)
p.add_argument("--block", type=float, default=5.0, help="seconds each request blocks a worker")
a = p.parse_args()

lock = threading.Lock()
# unread: accepted, not yet taken by a worker; read_live: read while the
# peer was still connected; read_late: read after the peer had closed
stats = {"accepted": 0, "unread": 0, "read_live": 0, "read_late": 0}
work = queue.Queue()


def report():
    """One line, one write(2): threads share the pipe."""
    serving.report(stats)


def change(**delta):
    with lock:
        for k, v in delta.items():
            stats[k] += v
        report()


def worker():
    while True:
        c = work.get()
        # counted before the read so the count never lags what the kernel saw
        change(unread=-1)
        c.recv(4096)
        try:
            gone = c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        change(**{"read_late" if gone else "read_live": 1})
        time.sleep(a.block)
        try:
            c.sendall(b"OK\n")
        except OSError:
            pass
        c.close()


def main():
    ls = serving.listen(a.host)
    for _ in range(a.workers):
        threading.Thread(target=worker, daemon=True).start()
    serving.ready(ls)
    while True:
        c, _ = ls.accept()
        change(accepted=1, unread=1)
        work.put(c)


main()
