#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A service calling its upstream with one new connection per request: on
SIGUSR1 it connects to HOST PORT --count times, closing each connection
first (its side keeps the port in TIME_WAIT), and counts what connect()
returned by errno. Prints READY, then STATS {json} (its own counts) and DONE."""
import argparse, errno, json, os, signal, socket, time

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--count", type=int, required=True)
a = p.parse_args()

stats = {"connected": 0, "failed": {}}
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
os.write(1, b"READY\n")
signal.sigwait([signal.SIGUSR1])
for _ in range(a.count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect((a.host, a.port))
        stats["connected"] += 1
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        stats["failed"][name] = stats["failed"].get(name, 0) + 1
    s.close()
os.write(1, ("STATS " + json.dumps(stats) + "\nDONE\n").encode())
while True:
    time.sleep(3600)
