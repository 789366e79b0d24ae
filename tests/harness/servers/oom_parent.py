#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A parent that, on SIGUSR1, forks a child into the memory cgroup given and
has it allocate past the limit: the kernel's OOM killer kills the child.
Prints 'CHILD <pid> <signal that ended it>' as the ground truth."""
import os, signal, sys, time

procs_file = sys.argv[1]
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
os.write(1, b"READY 0\n")
signal.sigwait([signal.SIGUSR1])
pid = os.fork()
if pid == 0:
    with open(procs_file, "w") as f:
        f.write(str(os.getpid()))
    blocks = [bytearray(8 << 20) for _ in range(64)]  # 512 MiB, zero-filled so touched
    os._exit(0)
_, status = os.waitpid(pid, 0)
os.write(1, ("CHILD %d %d\n" % (pid, os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1)).encode())
while True:
    time.sleep(3600)
