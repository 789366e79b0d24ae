#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A keep-alive server: one thread per connection answers each request line
with OK and closes the connection after --idle seconds without a request.
Prints READY <port>, then STATS lines (its own counts: accepted, answered,
idle_closes)."""
import argparse, socket, threading
import serving

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--idle", type=float, default=1.0, help="keep-alive timeout, seconds")
a = p.parse_args()

lock = threading.Lock()
stats = {"accepted": 0, "answered": 0, "idle_closes": 0}


def change(key):
    with lock:
        stats[key] += 1
        serving.report(stats)


def serve(c):
    c.settimeout(a.idle)
    try:
        while True:
            if not c.recv(4096):
                break
            c.sendall(b"OK\n")
            change("answered")
    except socket.timeout:
        change("idle_closes")
    except OSError:
        pass
    c.close()


def main():
    ls = serving.listen(a.host)
    serving.ready(ls)
    while True:
        c, _ = ls.accept()
        change("accepted")
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
