# SPDX-License-Identifier: MIT
"""The libFuzzer targets (tests/fuzz/): the query/duration parser, the /proc
parsers, the sock_diag reply parser, the WebSocket and STOMP parsers. Each
runs over its seed corpus (which holds every crash found so far) and then
FUZZ_TEST_SECONDS of new inputs; any sanitizer report or abort fails."""
import os, subprocess, tempfile
from lib import BUILD, ROOT, check

FUZZ_TEST_SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "20"))


def run_fuzzer(target):
    binary = os.path.join(BUILD, "fuzz", "fuzz_" + target)
    out = subprocess.run(["make", "-s", "-C", ROOT, binary], capture_output=True, text=True)
    check(out.returncode == 0, "building %s: %s" % (binary, out.stderr[-2000:]))
    seeds = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    check(len(os.listdir(seeds)) >= 3, "seed corpus for " + target)
    with tempfile.TemporaryDirectory() as new:
        # the seeds first (-runs=0: each seed once), then new inputs for a while
        for args in (["-runs=0", seeds], ["-max_total_time=%d" % FUZZ_TEST_SECONDS, new, seeds]):
            out = subprocess.run([binary, "-artifact_prefix=%s/" % new] + args, capture_output=True,
                                 text=True, timeout=FUZZ_TEST_SECONDS + 120)
            check(out.returncode == 0, "fuzz_%s %s: exit %d\n%s" % (target, args[0], out.returncode,
                                                                     out.stderr[-3000:]))


def test_fuzz_args():
    run_fuzzer("args")


def test_fuzz_procfs():
    run_fuzzer("procfs")


def test_fuzz_sockdiag():
    run_fuzzer("sockdiag")


def test_fuzz_ws():
    run_fuzzer("ws")


def test_fuzz_stomp():
    run_fuzzer("stomp")
