#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server that closes every connection first, right after accept, without
reading: its side ends in TIME_WAIT (FIN_WAIT2 substate), and data the
client sends after that is answered with a reset from the timewait socket.
Prints 'READY port', then 'ACCEPTED n' after each close."""
import os, socket

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
os.write(1, ("READY %d\n" % ls.getsockname()[1]).encode())
n = 0
while True:
    c, _ = ls.accept()
    c.close()
    n += 1
    os.write(1, ("ACCEPTED %d\n" % n).encode())
