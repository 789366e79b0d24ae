#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""connscope's test runner: the C unit tests, then every real-kernel test
(tests/test_*.py, functions named test_*), then the tests listed in
tests/kernels/guest-tests inside a Debian 12 (Linux 6.1) guest, counted as
guest61.<test>. Needs root: the tests load real BPF programs. Ends with
'N passed, N failed' over all of them. `run.py guest61` runs only the guest;
`run.py guest61.SUBSTRING` only those tests in it."""
import glob, importlib.util, os, re, signal, subprocess, sys, time, traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import lib  # noqa: E402

TEST_TIMEOUT = 180  # seconds a single test may take
GUEST = os.path.join(TESTS, "kernels", "run-guest.sh")
GUEST_PREFIX = "guest61"
IN_GUEST = bool(os.environ.get("CONNSCOPE_GUEST"))
# guest_test_*: tests that may unload modules, only in a guest
PREFIXES = ("test_", "guest_test_") if IN_GUEST else ("test_",)


class Timeout(Exception):
    pass


def on_alarm(*_):
    raise Timeout("test took over %d s" % TEST_TIMEOUT)


def main():
    only = sys.argv[1:]
    passed = failed = 0
    if os.geteuid() != 0:
        print("tests load BPF programs: run as root (sudo make test)")
        print("0 passed, 1 failed")
        return 1
    if not only:
        unit = subprocess.run([os.path.join(lib.BUILD, "unit-tests")], capture_output=True, text=True,
                              env=dict(os.environ, CS_FIXTURES=os.path.join(TESTS, "fixtures")))
        sys.stdout.write(unit.stdout)
        sys.stdout.write(unit.stderr)
        m = re.search(r"^unit: (\d+) passed, (\d+) failed$", unit.stdout, re.M)
        if m and unit.returncode in (0, 1):
            passed += int(m.group(1))
            failed += int(m.group(2))
        else:
            print("FAIL unit-tests: exit %d" % unit.returncode)
            failed += 1
    signal.signal(signal.SIGALRM, on_alarm)
    for path in sorted(glob.glob(os.path.join(TESTS, "test_*.py"))):
        name = os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for fn in sorted(n for n in dir(mod) if n.startswith(PREFIXES)):
            full = "%s.%s" % (name, fn)
            if only and not any(o in full for o in only):
                continue
            t0 = time.monotonic()
            signal.alarm(TEST_TIMEOUT)
            try:
                getattr(mod, fn)()
                signal.alarm(0)
                passed += 1
                print("ok   %-58s %5.1fs" % (full, time.monotonic() - t0), flush=True)
            except BaseException as e:  # noqa: B902 - a test failure of any kind
                signal.alarm(0)
                failed += 1
                print("FAIL %-58s %5.1fs\n     %s" % (full, time.monotonic() - t0,
                      "\n     ".join(traceback.format_exception_only(type(e), e)[-1].splitlines())),
                      flush=True)
                if os.environ.get("VERBOSE"):
                    traceback.print_exc()
                if isinstance(e, KeyboardInterrupt):
                    break
            finally:
                lib.cleanup_all()
    if not IN_GUEST and (not only or any(o.startswith(GUEST_PREFIX) for o in only)):
        p, f = run_guest([o[len(GUEST_PREFIX) + 1:] for o in only if o.startswith(GUEST_PREFIX + ".")])
        passed += p
        failed += f
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run_guest(subset):
    """Runs tests in the Debian 12 (6.1) guest; its results count here as
    guest61.<test>. subset: substrings, default tests/kernels/guest-tests."""
    t0 = time.monotonic()
    print("-- %s: booting Debian 12's 6.1 kernel (qemu, software emulation)" % GUEST_PREFIX, flush=True)
    guest = subprocess.Popen([GUEST] + subset, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace")
    lines = []
    passed = failed = 0
    final = None
    for line in guest.stdout:  # as they come: a guest run takes minutes
        line = line.replace("\r", "").rstrip("\n")
        lines.append(line)
        m = re.match(r"^(ok  |FAIL) (\S+)\s+([\d.]+s)$", line)
        if m:
            print("%s %-58s %6s" % (m.group(1), GUEST_PREFIX + "." + m.group(2), m.group(3)), flush=True)
            passed += m.group(1) == "ok  "
            failed += m.group(1) == "FAIL"
        elif line.startswith("     ") and failed:
            print(line)
        elif re.match(r"^\d+ passed, \d+ failed$", line):
            final = line
    rc = guest.wait()
    if final is None or rc:
        failed += 1
        print("FAIL %s: no result from the guest (exit %d):\n     %s" % (
            GUEST_PREFIX, rc, "\n     ".join(lines[-15:])))
    print("-- %s: %d passed, %d failed in %.0f s" % (GUEST_PREFIX, passed, failed, time.monotonic() - t0),
          flush=True)
    return passed, failed


if __name__ == "__main__":
    sys.exit(main())
