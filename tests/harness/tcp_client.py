#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Opens N TCP connections at a rate (non-blocking), optionally sends a
payload, holds them, closes them; prints a JSON line with what happened.
Bounded in count and time. Run inside a test's network namespace with
`ip netns exec`."""
import argparse, errno, json, selectors, socket, struct, time

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--count", type=int, required=True)
p.add_argument("--rate", type=float, default=0, help="connects per second (0: all at once)")
p.add_argument("--send", default="")
p.add_argument("--hold", type=float, default=0.5, help="seconds to keep them open after the last connect")
p.add_argument("--timeout", type=float, default=3.0, help="seconds a connect may take")
p.add_argument("--wait-close", action="store_true", help="after hold, close and wait for nothing")
p.add_argument("--abort", action="store_true", help="close with SO_LINGER 0: a reset, not a FIN")
a = p.parse_args()

fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
sel = selectors.DefaultSelector()
res = {"connected": 0, "refused": 0, "timeout": 0, "reset": 0, "other": 0}
pending = {}
done = []


def completed(s):
    """A connect finished (or failed): count it, send the payload."""
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    sel.unregister(s)
    del pending[s]
    if err == 0:
        res["connected"] += 1
        if a.send:
            try:
                s.send(a.send.encode())
            except OSError:
                res["reset"] += 1
    else:
        res["refused" if err == errno.ECONNREFUSED else "other"] += 1
    done.append(s)


start = time.monotonic()
for i in range(a.count):
    if a.rate > 0:
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            for key, _ in sel.select(delay):  # finish handshakes while pacing
                completed(key.fileobj)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((a.host, a.port))
    except BlockingIOError:
        pass
    pending[s] = time.monotonic()
    sel.register(s, selectors.EVENT_WRITE)

deadline = time.monotonic() + a.timeout
while pending and time.monotonic() < deadline:
    for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
        completed(key.fileobj)
res["timeout"] = len(pending)
time.sleep(a.hold)
for s in done + list(pending):
    if a.abort:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print(json.dumps(res), flush=True)
