#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A pooling client: --count connections each send one request, wait --gap
seconds idle, then reuse the connection for a second request. Prints one
JSON line with its own counts: reused_ok, and resets_on_reuse (the reused
request got no answer and the connection was reset: SO_ERROR EPIPE or
ECONNRESET)."""
import argparse, errno, json, socket, threading, time

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--count", type=int, default=20)
p.add_argument("--gap", type=float, default=1.2)
a = p.parse_args()

lock = threading.Lock()
res = {"first_ok": 0, "reused_ok": 0, "resets_on_reuse": 0, "other": 0}


def count(key):
    with lock:
        res[key] += 1


def one():
    s = socket.create_connection((a.host, a.port), timeout=5)
    try:
        s.sendall(b"GET\n")
        if s.recv(64) == b"OK\n":
            count("first_ok")
        time.sleep(a.gap)
        try:
            s.sendall(b"GET\n")
            if s.recv(64) == b"OK\n":
                count("reused_ok")
                return
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.ECONNRESET):
                count("resets_on_reuse")
                return
        # the server's FIN was read first: did a reset follow the request?
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.EPIPE, errno.ECONNRESET):
                count("resets_on_reuse")
                return
            time.sleep(0.02)
        count("other")
    finally:
        s.close()


threads = [threading.Thread(target=one) for _ in range(a.count)]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
print(json.dumps(res), flush=True)
