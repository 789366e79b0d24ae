# SPDX-License-Identifier: MIT
"""Helpers for connscope's real-kernel tests: start test servers, clients,
network namespaces and connscope itself; read ground truth from ss, /proc
and the servers' own counts."""
import json, os, platform, re, signal, socket, subprocess, sys, threading, time
import urllib.error, urllib.request

HARNESS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HARNESS))
BUILD = os.path.join(ROOT, "build")
CONNSCOPE = os.environ.get("CONNSCOPE_BIN", os.path.join(BUILD, "connscope-san"))
SERVER = os.path.join(HARNESS, "servers", "tcp_server.py")
CLIENT = os.path.join(HARNESS, "tcp_client.py")
DEMO = os.path.join(BUILD, "connscope-demo-server")
PY = sys.executable or "python3"
KERNEL = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", platform.release()).groups())
# tcp_send_reset(sk, skb, reason) and enum sk_rst_reason: Linux 6.10
RESET_REASONS = KERNEL >= (6, 10)
_cleanups = []


def cleanup_all():
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception:
            pass


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: got %r, expected %r" % (what, actual, expected))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_until(fn, timeout, what, interval=0.1):
    """Polls fn until it returns a truthy value; bounded by timeout."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def settle(fn, quiet=0.6, timeout=15, what="value to settle"):
    """Waits until fn() returns the same value for `quiet` seconds."""
    end = time.monotonic() + timeout
    last, since = fn(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        v = fn()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return v
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# connscope's HTTP side serves a snapshot up to this old (http.c's FRESH_SECONDS);
# waiting longer than that after a truth read makes the next read newer than it.
SNAPSHOT_CACHE_S = 0.1


def pinned(truth, ours, timeout=20, what="counter"):
    """(ours, truth) read while truth did not move: truth, ours, truth again,
    until both truth readings agree. ours is read more than one snapshot-cache
    period after the first truth read, so its snapshot was taken after it.
    For counters that creep on (late retransmissions hitting a full queue) no
    quiet period is ever final."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        a = truth()
        time.sleep(SNAPSHOT_CACHE_S * 1.5)
        b = ours()
        if truth() == a:
            return b, a
        time.sleep(0.05)
    raise AssertionError("%s kept moving for %d s" % (what, timeout))


def settled_total(srv, key, what=None, quiet=0.6, timeout=20):
    """The server's own count of key once it stopped moving."""
    return settle(lambda: srv.total(key), quiet=quiet, timeout=timeout, what=what or "server's " + key)


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, argv, netns=None, **kw):
        if netns:
            argv = ["ip", "netns", "exec", netns.name] + argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True, **kw)
        self.lines, self.err_lines = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err_lines), daemon=True).start()
        _cleanups.append(self.kill)

    def _read(self, f, into):
        for line in f:
            with self.lock:
                into.append(line.rstrip("\n"))

    def wait_line(self, prefix, timeout=10):
        def find():
            with self.lock:
                for l in self.lines:
                    if l.startswith(prefix):
                        return l
            if self.p.poll() is not None:
                raise AssertionError("%s exited (%s): %s" % (self.p.args, self.p.returncode,
                                                             "\n".join(self.err_lines[-5:])))
        return wait_until(find, timeout, "'%s' from %s" % (prefix, os.path.basename(str(self.p.args[-1]))))

    @property
    def pid(self):
        return self.p.pid

    def kill(self, sig=signal.SIGKILL):
        # the whole group even when its leader is gone: a launcher that
        # exited leaves its server behind in the group
        try:
            os.killpg(self.p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if self.p.poll() is None:
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass


class Server(Proc):
    """tests/harness/servers/tcp_server.py; its own counts are the ground truth."""

    def __init__(self, *args, netns=None, host="127.0.0.1"):
        super().__init__([PY, SERVER, "--host", host] + [str(a) for a in args], netns=netns)
        self.host = host
        self.port = int(self.wait_line("READY").split()[1])
        self.netns = netns

    @property
    def pid(self):
        # behind `ip netns exec` the server is the session leader's exec'd image
        return self.p.pid

    def stats(self):
        """Latest STATS line per reporting pid."""
        out = {}
        with self.lock:
            for l in self.lines:
                if l.startswith("STATS "):
                    s = json.loads(l[6:])
                    out[s["pid"]] = s
        return out

    def total(self, key):
        return sum(s[key] for s in self.stats().values())


class Counted(Proc):
    """A test server of tests/harness/servers printing READY <port> and
    STATS {json} lines (its own counts, see servers/serving.py)."""

    def __init__(self, script, *args, netns=None):
        super().__init__([PY, os.path.join(HARNESS, "servers", script)] + [str(x) for x in args], netns=netns)
        self.port = int(self.wait_line("READY").split()[1])
        self.listener = "127.0.0.1:%d" % self.port

    def stats(self):
        with self.lock:
            lines = [l for l in self.lines if l.startswith("STATS ")]
        return json.loads(lines[-1][6:]) if lines else {}

    def get(self, key):
        return self.stats().get(key, 0)


def causes(d):
    """The causes a diagnosis names, in its order."""
    return [c["cause"] for c in d["causes"]]


def cause(d, name):
    for c in d["causes"]:
        if c["cause"] == name:
            return c
    raise AssertionError("cause %s not in %r" % (name, causes(d)))


class Demo(Proc):
    """build/connscope-demo-server on a free port; SIGUSR1 makes it print its
    own counts (the ground truth)."""

    def __init__(self, *args):
        super().__init__([DEMO, "--listen", "127.0.0.1:0"] + [str(a) for a in args])
        self.port = int(self.wait_line("READY").split()[1])

    def stats(self):
        n = len([l for l in self.lines if l.startswith("{")])
        os.kill(self.pid, signal.SIGUSR1)
        wait_until(lambda: len([l for l in self.lines if l.startswith("{")]) > n, 5, "demo stats")
        return json.loads([l for l in self.lines if l.startswith("{")][-1])


class Netns:
    """A network namespace of the test's own, with loopback up."""
    seq = 0

    def __init__(self):
        Netns.seq += 1
        self.name = "cs-test-%d-%d" % (os.getpid(), Netns.seq)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        _cleanups.append(self.delete)

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


def client(host, port, count, netns=None, rate=0, send="", hold=0.5, timeout=3.0, abort=False):
    argv = [PY, CLIENT, host, str(port), "--count", str(count), "--rate", str(rate),
            "--hold", str(hold), "--timeout", str(timeout)] + (["--abort"] if abort else [])
    if send:
        argv += ["--send", send]
    if netns:
        argv = ["ip", "netns", "exec", netns.name] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60 + count / max(rate, 1))
    if out.returncode:
        raise AssertionError("client failed: " + out.stderr[-500:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            raise AssertionError("unparsable metrics line: " + line)
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Metrics(dict):
    def get1(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in self:
            raise AssertionError("metric %s%s missing" % (name, labels))
        return self[key]

    def find(self, name, **labels):
        want = set(labels.items())
        return {k: v for k, v in self.items() if k[0] == name and want <= set(k[1])}


class Connscope(Proc):
    """build/connscope-san attached to a PID, on a free local port."""

    def __init__(self, pid, interval=0.2, extra=(), wait=True):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        super().__init__([CONNSCOPE, "--pid", str(pid), "--listen", "127.0.0.1:%d" % self.port,
                          "--interval", str(interval)] + list(extra),
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                                  UBSAN_OPTIONS="print_stacktrace=1"))
        if wait:
            wait_until(lambda: self.healthy(), 15, "connscope /healthz")

    def healthy(self):
        if self.p.poll() is not None:
            raise AssertionError("connscope exited %s: %s" % (self.p.returncode, "\n".join(self.err_lines[-20:])))
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def get(self, path, method="GET", headers=None):
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path, status=200):
        code, _, body = self.get(path)
        eq(code, status, "status of " + path)
        return json.loads(body)

    def link_ids(self):
        """IDs of the BPF links this connscope holds: others' instances on the
        shared machine attach and detach links of their own."""
        return fd_link_ids(self.p.pid)

    def metrics(self):
        code, _, body = self.get("/metrics")
        eq(code, 200, "/metrics status")
        return Metrics(parse_metrics(body.decode()))

    def ticks_since(self, t):
        """History points connscope took after wall-clock time t."""
        return sum(p["time_unix_ms"] > t * 1000 for p in self.json("/api/v1/history")["points"])

    def open_per_point(self, port, key="connections_open"):
        """connscope's open connections on the port at each history point (at
        its end; connections_open_peak: the most during it)."""
        return [l[key] for p in self.json("/api/v1/history")["points"]
                for l in p.get("listeners", []) if l["listener"].endswith(":%d" % port)]

    def why(self, d, port):
        """For a wrong verdict: the causes with their evidence and, per history
        point, the listener's open connections, queue, accepts and drops."""
        rows = []
        for p in self.json("/api/v1/history")["points"]:
            for l in p.get("listeners", []):
                if l["listener"].endswith(":%d" % port):
                    rows.append("%.2fs %d^%d %d/%d +%d(%d after a close) -%d d%d" % (
                        p.get("seconds", 0), l["connections_open"], l["connections_open_peak"], l["accept_queue_length"],
                        l["accept_queue_limit"], l["accepts"], l["accepts_after_close"], l["local_closes"],
                        l["listen_drops"]))
        return ("causes %r; seconds open^peak queue/limit +accepts(right after a close) -local closes "
                "drops per point: %s") % (
            [(c["cause"], c["evidence"]) for c in d["causes"]], ", ".join(rows))

    def stop(self, sig=signal.SIGINT):
        """Stops connscope; returns its stdout. Fails on sanitizer reports."""
        self.p.send_signal(sig)
        rc = self.p.wait(30)
        time.sleep(0.1)
        err = "\n".join(self.err_lines)
        check("Sanitizer" not in err and "runtime error" not in err, "sanitizer report:\n" + err[-3000:])
        eq(rc, 0, "connscope exit code (stderr: %s)" % err[-500:])
        return "\n".join(self.lines)


def ss_listener(port, netns=None, host=None):
    """(recv-q, send-q, drops) of the listener on port (and host, if given), as `ss -lntm` shows."""
    argv = ["ss", "-lntmH", "sport = :%d" % port + (" and src %s" % host if host else "")]
    if netns:
        argv = ["ip", "netns", "exec", netns.name] + argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    m = re.search(r"LISTEN\s+(\d+)\s+(\d+)\s.*?skmem:\(([^)]*)\)", out, re.S)
    if not m:
        raise AssertionError("ss shows no listener on port %d: %r" % (port, out))
    d = re.search(r"\bd(\d+)", m.group(3))
    return int(m.group(1)), int(m.group(2)), int(d.group(1)) if d else 0


def tcp_ext(pid):
    """TcpExt counters of PID's network namespace."""
    with open("/proc/%d/net/netstat" % pid) as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:])))
    raise AssertionError("no TcpExt in /proc/%d/net/netstat" % pid)


def fd_link_ids(pid):
    """IDs of the BPF links PID holds, from its fds' fdinfo."""
    out = set()
    fdinfo = "/proc/%d/fdinfo" % pid
    try:
        fds = os.listdir(fdinfo)
    except OSError:
        return out
    for fd in fds:
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("link_id:"):
                        out.add(int(line.split()[1]))
        except OSError:
            pass
    return out


def bpf_recursion_misses(pid):
    """{program name: the kernel's count of its skipped runs} for the BPF programs
    process pid holds (their ids from its fds' fdinfo)."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith("prog_id:"))
        except OSError:
            pass
    check(ids, "no BPF programs among process %d's fds" % pid)
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True)
    progs = {pr["id"]: pr for pr in json.loads(out.stdout or "[]")}
    check(ids <= set(progs), "programs %s of process %d not listed by bpftool" % (ids - set(progs), pid))
    return {progs[i]["name"]: progs[i].get("recursion_misses", 0) for i in ids}


def bpf_link_ids():
    out = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True, check=True)
    return {l["id"] for l in json.loads(out.stdout or "[]")}


def run_connscope(args, env=None, timeout=20, prefix=()):
    """Runs connscope to completion (bad-input cases); returns (rc, stdout, stderr)."""
    out = subprocess.run(list(prefix) + [CONNSCOPE] + list(args), capture_output=True, text=True,
                         timeout=timeout, env=env)
    return out.returncode, out.stdout, out.stderr
