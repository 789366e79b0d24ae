#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server whose main thread exits (SYS_exit, not exit_group) after the
first --before accepts while its accept thread keeps serving: the process
lives on, but /proc/PID/net/* of the zombie leader is gone. Prints
'READY port', then 'LEADER_EXITING' and 'ACCEPTED n' after each accept."""
import argparse, ctypes, os, socket, sys, threading

p = argparse.ArgumentParser()
p.add_argument("--before", type=int, default=10, help="accepts before the main thread exits")
a = p.parse_args()
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
first_batch = threading.Event()


def emit(line):
    os.write(1, (line + "\n").encode())


def serve():
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        emit("ACCEPTED %d" % n)
        c.close()
        if n == a.before:
            first_batch.set()


threading.Thread(target=serve, daemon=False).start()
emit("READY %d" % ls.getsockname()[1])
first_batch.wait()
emit("LEADER_EXITING")
SYS_exit = 60 if os.uname().machine == "x86_64" else 93
# ctypes.CDLL drops the GIL around the call, so the accept thread runs on
ctypes.CDLL(None).syscall(SYS_exit, 0)
sys.exit("SYS_exit returned")
