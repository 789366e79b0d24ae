# SPDX-License-Identifier: MIT
"""What the small test servers share: a listening socket on a free port, the
READY line the harness waits for, and their own counts as STATS lines (one
write each, so lines from threads never interleave)."""
import json, os, socket


def listen(host, backlog=1024, port=0):
    """A listening TCP socket on host (IPv6 if it has a colon)."""
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(backlog)
    return ls


def ready(ls):
    os.write(1, ("READY %d\n" % ls.getsockname()[1]).encode())


def report(stats):
    os.write(1, ("STATS " + json.dumps(stats) + "\n").encode())
