#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""connscope's test runner: the C unit tests, then every real-kernel test
(tests/test_*.py, functions named test_*). Needs root: the tests load real
BPF programs. Ends with 'N passed, N failed'."""
import glob, importlib.util, os, re, signal, subprocess, sys, time, traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import lib  # noqa: E402

TEST_TIMEOUT = 180  # seconds a single test may take


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
        for fn in sorted(n for n in dir(mod) if n.startswith("test_")):
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
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
