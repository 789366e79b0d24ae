# SPDX-License-Identifier: MIT
"""The daemon's hostile-side behaviour: a separate scraper keeps getting
/metrics during idle-connection and slowloris floods; pipelined requests are
answered in order; garbage (bare CRLF, a TLS ClientHello) is closed at the
request deadline; HTTP trouble is logged as summary lines; JSON errors are
valid UTF-8; TLS and basic auth from --web-config (curl with the right and
wrong CA, password, client certificate); a non-root run with exactly the
README's capabilities counts what a root run counts, then holds only the
steady-state ones under no_new_privs and seccomp; SIGHUP prints the
post-mortem; SIGKILL leaves no BPF link of the daemon's programs."""
import contextlib, ctypes, ctypes.util, json, os, re, select, signal, socket, subprocess, tempfile, time
import urllib.parse, urllib.request
from lib import (CONNSCOPE, Connscope, Netns, Proc, Server, check, client, eq, free_port, pinned,
                 wait_until)

# What README's Security section lists, and what the daemon keeps after attach.
ATTACH_CAPS = "+bpf,+perfmon,+sys_admin,+sys_ptrace,+dac_read_search"
STEADY_CAPS = {"cap_sys_ptrace", "cap_dac_read_search"}
CAP_BITS = {"cap_dac_read_search": 2, "cap_sys_ptrace": 19, "cap_sys_admin": 21,
            "cap_perfmon": 38, "cap_bpf": 39}
# The daemon's request deadline (HTTP_FIRST_REQUEST_SECONDS) and idle timeout:
# a connection closed before the idle timeout was closed by the deadline.
DEADLINE_S, IDLE_S = 5, 15


CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(ns):
    """This thread (and what it starts) in network namespace ns: the floods'
    listen overflows and syncookies then count there, not in the root
    namespace other tests read."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + ns.name, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns into " + ns.name)
        yield
    finally:
        libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def open_many(addrs, per_addr, port, first=b""):
    """per_addr connections from each source address, each sent `first`."""
    socks = []
    for a in addrs:
        for _ in range(per_addr):
            s = socket.socket()
            s.bind((a, 0))
            s.connect(("127.0.0.1", port))
            if first:
                s.sendall(first)
            socks.append(s)
    return socks


def scrape(port, seconds, what):
    """/metrics from 127.0.0.1 (an address of its own) every 0.1 s for `seconds`;
    returns the latencies. Every scrape must answer 200."""
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(lat) < 1000:
        t = time.monotonic()
        code, body = http_get(port, "/metrics")
        eq(code, 200, "scrape %d during %s" % (len(lat), what))
        check(b"connscope_accepts_total" in body, "scrape body during " + what)
        lat.append(time.monotonic() - t)
        time.sleep(0.1)
    return lat


def http_get(port, path, timeout=10, src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    data = b""
    while True:
        x = s.recv(65536)
        if not x:
            break
        data += x
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def closed_within(s, seconds):
    """True when the peer closes s (EOF or reset) within `seconds`."""
    s.setblocking(False)
    end = time.monotonic() + seconds
    while True:
        pl = select.poll()
        pl.register(s, select.POLLIN)
        if pl.poll(int(min(0.2, seconds) * 1000)):
            try:
                if s.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
            except BlockingIOError:
                pass
        if time.monotonic() >= end:
            return False


def http_lines(cs):
    with cs.lock:
        return [l for l in cs.err_lines if "HTTP" in l]


def established(port, src_prefix):
    out = subprocess.run(["ss", "-tnH", "state", "established", "sport = :%d" % port],
                         capture_output=True, text=True).stdout
    return sum(1 for l in out.splitlines() if l.split()[-1].startswith(src_prefix))


def test_scraper_answered_during_idle_and_slowloris_floods():
    with Netns() as ns, inside(ns):
        scraper_answered_during_floods()


def scraper_answered_during_floods():
    srv = Server()
    cs = Connscope(srv.pid)
    # 1,000 idle connections from 8 addresses (125 each, under the per-address
    # limit): the daemon holds them all, which puts its fds past FD_SETSIZE.
    idle = open_many(["127.0.1.%d" % i for i in range(1, 9)], 125, cs.port)
    # 950 slowloris connections from 10 more addresses, a header byte each second
    slow = open_many(["127.0.2.%d" % i for i in range(1, 11)], 95, cs.port,
                     first=b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    peak, lat = 0, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE_S - 1:
        lat += scrape(cs.port, 0.5, "1,000 idle + 950 slowloris")
        peak = max(peak, len(os.listdir("/proc/%d/fd" % cs.pid)))
        for s in slow:
            try:
                s.send(b"X")
            except OSError:
                pass
    # select() mode could not go past fd 1023; epoll must
    check(peak > 1024, "the daemon's open fds during the flood: %d" % peak)
    check(len(lat) >= 10, "scrapes made during the flood")
    # the request deadline, not the idle timeout, closes every one of them
    closed = sum(closed_within(s, IDLE_S - DEADLINE_S - 1) for s in slow + idle)
    eq(closed, len(slow) + len(idle), "flood connections closed by the request deadline")
    wait_until(lambda: any("dropped: incomplete request" in l for l in http_lines(cs)), 15,
               "summary line for the dropped connections")
    # one summary line per interval, not one per connection
    check(len(http_lines(cs)) <= 6, "HTTP log lines: %r" % http_lines(cs))
    for s in idle + slow:
        s.close()
    cs.stop()


def test_one_address_gets_at_most_its_share():
    with Netns() as ns, inside(ns):
        one_address_share()


def one_address_share():
    srv = Server()
    cs = Connscope(srv.pid)
    socks = open_many(["127.0.3.1"], 400, cs.port)
    lat = scrape(cs.port, 1, "400 connections from one address")
    # the ones past the per-address limit are closed at once; the rest are held
    refused = set()

    def settled():
        for i, s in enumerate(socks):
            if i not in refused and closed_within(s, 0):
                refused.add(i)
        return len(refused) + established(cs.port, "127.0.3.1") == 400
    wait_until(settled, 10, "refused + held connections from one address to add up to 400")
    eq(len(socks) - len(refused), 256, "connections held for one address (HTTP_PER_IP_LIMIT)")
    check(len(lat) >= 5, "scrapes answered")
    for s in socks:
        s.close()
    cs.stop()


def read_response(f):
    """(status, body) of one HTTP/1.1 response with Content-Length from file f."""
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.lower() == b"content-length":
            length = int(v)
    return status, f.read(length)


def test_pipelined_requests_answered_in_order():
    srv = Server()
    cs = Connscope(srv.pid)
    s = socket.create_connection(("127.0.0.1", cs.port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /api/v1/events?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    f = s.makefile("rb")
    got = [read_response(f) for _ in range(4)]
    eq([g[0] for g in got], [200, 200, 404, 200], "statuses in request order")
    eq(got[0][1], b"ok\n", "first body")
    check(isinstance(json.loads(got[1][1])["events"], list), "second body is the events JSON")
    check("no such path: /nope" in json.loads(got[2][1])["error"], "third body names its path")
    # the connection stays open for a fifth
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    eq(read_response(f), (200, b"ok\n"), "a request after the pipelined ones")
    s.close()
    cs.stop()


def test_garbage_closed_at_the_request_deadline():
    srv = Server()
    cs = Connscope(srv.pid)
    hello = bytes.fromhex("160301002e0100002a0303") + os.urandom(32) + bytes.fromhex("000002c02f0100")
    for what, payload in (("bare CRLF", b"\r\n"), ("TLS ClientHello", hello), ("nothing", b"")):
        s = socket.create_connection(("127.0.0.1", cs.port), timeout=5)
        s.sendall(payload)
        check(closed_within(s, IDLE_S - 2), what + " closed before the idle timeout")
        s.close()
    eq(http_get(cs.port, "/healthz")[0], 200, "still serving")
    cs.stop()


def test_json_errors_are_valid_utf8():
    srv = Server()
    cs = Connscope(srv.pid)
    for q in ("/api/v1/diagnosis?window=%ff%fe", "/api/v1/diagnosis?format=%c3%28",
              "/api/v1/events?limit=%ed%a0%80", "/api/v1/history?seconds=%f4%90%80%80x",
              "/nope%e2%82", "/api/v1/diagnosis?window=caf%c3%a9"):
        code, body = http_get(cs.port, q)
        eq(code, 400 if "nope" not in q else 404, "status of " + q)
        msg = json.loads(body.decode("utf-8", errors="strict"))["error"]
        if "caf%c3%a9" in q:
            check("café" in msg, "valid UTF-8 kept: %r" % msg)
        else:
            check("\ufffd" in msg, "invalid bytes replaced by U+FFFD in %r" % msg)
    cs.stop()


def test_sighup_prints_postmortem_and_detaches():
    srv = Server()
    cs = Connscope(srv.pid)
    progs = prog_ids_of(cs.pid)
    check(bpf_links_of(progs), "links of the daemon's programs while it runs")
    client("127.0.0.1", srv.port, 5)
    out = cs.stop(sig=signal.SIGHUP)
    check("connscope post-mortem: PID %d" % srv.pid in out, "post-mortem on SIGHUP: %r" % out[:300])
    wait_until(lambda: not bpf_links_of(progs), 10, "links of its programs gone after SIGHUP")


def prog_ids_of(pid):
    """IDs of the BPF programs process pid holds, from its fdinfo."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                m = re.search(r"^prog_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def bpf_links_of(progs):
    """Link IDs whose program is in progs (all links when progs is None)."""
    out = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True, check=True)
    return {l["id"] for l in json.loads(out.stdout or "[]") if progs is None or l.get("prog_id") in progs}


def test_sigkill_leaves_no_bpf_link():
    srv = Server()
    cs = Connscope(srv.pid)
    progs = prog_ids_of(cs.pid)
    check(progs, "the daemon holds BPF programs")
    links = bpf_links_of(progs)
    check(links, "links of the daemon's programs exist while it runs")
    cs.kill(signal.SIGKILL)
    wait_until(lambda: not bpf_links_of(progs), 15, "no link of its programs after SIGKILL")


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)


def setpriv_connscope(pid, port, caps):
    argv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
            "--inh-caps", caps, "--ambient-caps", caps, "--", CONNSCOPE, "--pid", str(pid),
            "--listen", "127.0.0.1:%d" % port, "--interval", "0.2"]
    return Proc(argv, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))


def test_nonroot_with_readme_caps_counts_like_root():
    srv = Server()  # runs as root: another user's process, for the daemon below
    root = Connscope(srv.pid)
    port = free_port()
    p = setpriv_connscope(srv.pid, port, ATTACH_CAPS)
    wait_until(lambda: any(l.startswith("connscope: watching") for l in p.err_lines) or
               p.p.poll() is not None, 20, "non-root connscope started")
    eq(p.p.poll(), None, "non-root connscope running (stderr: %s)" % "\n".join(p.err_lines[-5:]))
    st = status_fields(p.pid)
    eq(st["Uid"].split()[1], str(int(subprocess.check_output(["id", "-u", "nobody"]))), "euid nobody")
    eff = int(st["CapEff"], 16)
    eq({n for n, b in CAP_BITS.items() if eff & (1 << b)}, STEADY_CAPS, "capabilities after attach")
    eq(eff & ~sum(1 << CAP_BITS[c] for c in STEADY_CAPS), 0, "no other capability")
    eq(st["NoNewPrivs"].strip(), "1", "no_new_privs")
    eq(st["Seccomp"].strip(), "2", "seccomp filter mode")
    client("127.0.0.1", srv.port, 30, hold=0.3)
    scrape_other = lambda: http_get(port, "/api/v1/snapshot")
    ours, _ = pinned(lambda: srv.total("accepted"),
                     lambda: (json.loads(scrape_other()[1]), root.json("/api/v1/snapshot")),
                     what="accepts")
    nonroot, asroot = ours
    eq(nonroot["accepts_total"], srv.total("accepted"), "non-root accepts vs the server's count")
    eq(nonroot["accepts_total"], asroot["accepts_total"], "non-root accepts vs root's")
    eq(nonroot["fds"]["open"], asroot["fds"]["open"], "open fds (another user's /proc/PID/fd)")
    p.kill(signal.SIGINT)
    eq(p.p.returncode, 0, "non-root connscope exit code: %s" % "\n".join(p.err_lines[-5:]))
    check(not any("Sanitizer" in l or "runtime error" in l for l in p.err_lines), "no sanitizer report")
    root.stop()


def test_missing_capability_is_named():
    srv = Server()
    p = setpriv_connscope(srv.pid, free_port(), "+perfmon,+sys_admin,+sys_ptrace,+dac_read_search")
    p.p.wait(20)
    eq(p.p.returncode, 1, "exit code without CAP_BPF")
    time.sleep(0.2)
    err = "\n".join(p.err_lines)
    eq(len(err.splitlines()), 1, "one line: " + err)
    check("needs root or capabilities; missing CAP_BPF (loading the BPF programs and maps) (" in err, err)
    check("CAP_PERFMON" not in err, "only the missing one named: " + err)


def bcrypt(password):
    lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt.restype = ctypes.c_char_p
    salt = lib.crypt_gensalt(b"$2b$", 5, None, 0)
    return lib.crypt(password.encode(), salt).decode()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server cert for 127.0.0.1 and a client cert (both from the CA),
    and a second CA that signed neither."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2", "-subj", "/CN=" + ca, cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)


def curl(url, *args):
    """(curl exit code, HTTP status)."""
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                          url] + list(args), capture_output=True, text=True)
    return out.returncode, int(out.stdout or 0)


def tls_connscope(pid, config):
    cs = Connscope(pid, extra=["--web-config", config], wait=False)
    wait_until(lambda: any("serving https://" in l for l in cs.err_lines) or cs.p.poll() is not None,
               20, "connscope with TLS started")
    eq(cs.p.poll(), None, "connscope running: %s" % "\n".join(cs.err_lines[-5:]))
    return cs


def test_tls_and_basic_auth():
    srv = Server()
    with tempfile.TemporaryDirectory() as d:
        make_pki(d)
        with open(os.path.join(d, "web.yml"), "w") as f:
            f.write("# exporter-toolkit format\ntls_server_config:\n  cert_file: server.crt\n"
                    "  key_file: server.key\n  min_version: TLS12\nbasic_auth_users:\n"
                    "  alice: '%s'\n  bob: %s\n" % (bcrypt("s3cret"), bcrypt("other")))
        cs = tls_connscope(srv.pid, os.path.join(d, "web.yml"))
        url = "https://127.0.0.1:%d/metrics" % cs.port
        ca, other = os.path.join(d, "ca.crt"), os.path.join(d, "other-ca.crt")
        eq(curl(url, "--cacert", ca, "-u", "alice:s3cret"), (0, 200), "right CA and password")
        eq(curl(url, "--cacert", ca, "-u", "bob:other"), (0, 200), "second user")
        eq(curl(url, "--cacert", ca), (0, 401), "no password")
        eq(curl(url, "--cacert", ca, "-u", "alice:wrong"), (0, 401), "wrong password")
        eq(curl(url, "--cacert", ca, "-u", "mallory:s3cret"), (0, 401), "unknown user")
        eq(curl(url, "--cacert", other, "-u", "alice:s3cret")[0], 60, "wrong CA: curl refuses the peer")
        eq(curl(url.replace("https", "http"), "-u", "alice:s3cret")[1], 0, "plain HTTP on the TLS port")
        eq(curl(url, "--cacert", ca, "-u", "alice:s3cret", "--tls-max", "1.1")[0], 35,
           "TLS 1.1 below min_version")
        cs.stop()


def test_tls_client_certificate_required():
    srv = Server()
    with tempfile.TemporaryDirectory() as d:
        make_pki(d)
        with open(os.path.join(d, "web.yml"), "w") as f:
            f.write("tls_server_config:\n  cert_file: %s/server.crt\n  key_file: server.key\n"
                    "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n" % d)
        cs = tls_connscope(srv.pid, os.path.join(d, "web.yml"))
        url = "https://127.0.0.1:%d/healthz" % cs.port
        ca = os.path.join(d, "ca.crt")
        eq(curl(url, "--cacert", ca, "--cert", os.path.join(d, "client.crt"), "--key",
                os.path.join(d, "client.key")), (0, 200), "client certificate signed by client_ca_file")
        eq(curl(url, "--cacert", ca), (0, 403), "no client certificate")
        eq(curl(url, "--cacert", ca, "--cert", os.path.join(d, "other-ca.crt"), "--key",
                os.path.join(d, "other-ca.key")), (0, 403), "a certificate client_ca_file did not sign")
        cs.stop()


def test_web_config_errors_and_exposure_warning():
    srv = Server()
    with tempfile.TemporaryDirectory() as d:
        cases = (("tls_server_config:\n  cert_file: a.crt\n", "tls_server_config needs cert_file and key_file"),
                 ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n",
                  "unsupported key client_allowed_sans"),
                 ("basic_auth_users:\n  alice: plaintext\n", "expected a bcrypt hash ($2y$...) for alice"),
                 ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
                  "cert_file %s/nope.crt: No such file or directory" % d),
                 ("tls_server_config: [\n", "web.yml:"))
        for text, want in cases:
            with open(os.path.join(d, "web.yml"), "w") as f:
                f.write(text)
            out = subprocess.run([CONNSCOPE, "--pid", str(srv.pid), "--web-config",
                                  os.path.join(d, "web.yml")], capture_output=True, text=True, timeout=20)
            eq(out.returncode, 2, "exit code for %r" % text)
            check(want in out.stderr, "%r in %r" % (want, out.stderr))
    with Netns() as ns:
        srv2 = Server(netns=ns)
        p = Proc([CONNSCOPE, "--pid", str(srv2.pid), "--listen", "0.0.0.0:%d" % free_port()], netns=ns)
        wait_until(lambda: any(l.startswith("connscope: watching") for l in p.err_lines) or
                   p.p.poll() is not None, 20, "connscope on 0.0.0.0 started")
        warn = [l for l in p.err_lines if "warning" in l]
        eq(len(warn), 1, "one warning line: %r" % p.err_lines)
        check("beyond loopback without TLS or auth" in warn[0], warn[0])
        p.kill(signal.SIGINT)
        srv2.kill()


def prom_query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    eq(body["status"], "success", "query status for " + expr)
    return {x["metric"].get("job", ""): float(x["value"][1]) for x in body["data"]["result"]}


def test_prometheus_scrapes_over_tls_with_basic_auth():
    srv = Server()
    with tempfile.TemporaryDirectory() as d:
        make_pki(d)
        with open(os.path.join(d, "web.yml"), "w") as f:
            f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    "basic_auth_users:\n  prometheus: %s\n" % bcrypt("scrape-pw"))
        cs = tls_connscope(srv.pid, os.path.join(d, "web.yml"))
        port = free_port()
        job = ("  - job_name: %s\n    scheme: https\n    tls_config: {ca_file: %s}\n"
               "    basic_auth: {username: prometheus, password: %s}\n"
               "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s}\nscrape_configs:\n" +
                    job % ("connscope", os.path.join(d, "ca.crt"), "scrape-pw", cs.port) +
                    job % ("wrong_password", os.path.join(d, "ca.crt"), "nope", cs.port))
        prom = Proc(["prometheus", "--config.file", os.path.join(d, "prometheus.yml"),
                     "--storage.tsdb.path", os.path.join(d, "data"), "--web.listen-address",
                     "127.0.0.1:%d" % port])
        base = "http://127.0.0.1:%d" % port
        def scraped():
            try:
                return len(prom_query(base, "up")) == 2
            except OSError:
                return False  # not listening yet
        wait_until(scraped, 60, "both jobs scraped")
        eq(prom_query(base, "up"), {"connscope": 1.0, "wrong_password": 0.0}, "up per job")
        eq(prom_query(base, "connscope_target_up"), {"connscope": 1.0}, "connscope's own metric over TLS")
        with urllib.request.urlopen(base + "/api/v1/targets", timeout=10) as r:
            targets = json.load(r)["data"]["activeTargets"]
        err = [t["lastError"] for t in targets if t["labels"]["job"] == "wrong_password"][0]
        check("401" in err, "the wrong password's scrape error: %r" % err)
        prom.kill(signal.SIGTERM)
        cs.stop()



def test_user_switch_after_attach():
    srv = Server()
    cs = Connscope(srv.pid, extra=["--user", "nobody"])
    st = status_fields(cs.pid)
    nobody = subprocess.check_output(["id", "-u", "nobody"]).decode().strip()
    eq(st["Uid"].split(), [nobody] * 4, "real, effective, saved, fs uid after --user nobody")
    eff = int(st["CapEff"], 16)
    eq(eff, sum(1 << CAP_BITS[c] for c in STEADY_CAPS), "capabilities after the switch")
    eq(int(st["CapBnd"], 16), eff, "bounding set: only those two")
    eq(st["NoNewPrivs"].strip(), "1", "no_new_privs")
    client("127.0.0.1", srv.port, 12, hold=0.2)
    ours, truth = pinned(lambda: srv.total("accepted"), lambda: cs.json("/api/v1/snapshot")["accepts_total"],
                         what="accepts")
    eq(ours, truth, "accepts as nobody vs the server's count")
    cs.stop()
