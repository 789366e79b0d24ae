#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server that closes every connection first, right after accept, without
reading: its side ends in TIME_WAIT (FIN_WAIT2 substate), and data the
client sends after that is answered with a reset from the timewait socket.
With --shutdown it shuts the connection both ways and keeps it: data the
client sends after that is answered with a reset from the connection itself
(TcpExt TCPAbortOnData, the application's abort).
Prints 'READY port', then 'ACCEPTED n' after each close."""
import os, socket, sys

shutdown = sys.argv[1:] == ["--shutdown"]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
os.write(1, ("READY %d\n" % ls.getsockname()[1]).encode())
n = 0
kept = []
while True:
    c, _ = ls.accept()
    if shutdown:
        c.shutdown(socket.SHUT_RDWR)
        kept.append(c)
    else:
        c.close()
    n += 1
    os.write(1, ("ACCEPTED %d\n" % n).encode())
