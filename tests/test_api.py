# SPDX-License-Identifier: MIT
"""The HTTP API (JSON equals /metrics, 404/405/gzip/content type)
and every bad-input case of the command line, each one clear line."""
import gzip, json, os, socket, subprocess
from lib import (PY, Connscope, Proc, Server, check, client, eq, free_port, pinned, run_connscope,
                 settle, ss_listener, wait_until)


def test_snapshot_json_equals_metrics():
    srv = Server("--backlog", 4, "--max-accepts", 20)
    cs = Connscope(srv.pid)
    client("127.0.0.1", srv.port, 40, hold=0.2, timeout=1.0)
    lbl = "127.0.0.1:%d" % srv.port
    (m, s), ss = pinned(lambda: ss_listener(srv.port), lambda: (cs.metrics(), cs.json("/api/v1/snapshot")),
                        what="listener counters")
    eq(s["accepts_total"], m.get1("connscope_accepts_total", listener=lbl), "accepts json vs metrics")
    eq(s["accepts_total"], 20, "accepts (server caps at 20)")
    l = [x for x in s["listeners"] if x["listener"] == lbl][0]
    eq(l["listen_drops_total"], m.get1("connscope_listen_drops_total", listener=lbl), "drops json vs metrics")
    eq(l["listen_drops_total"], ss[2], "drops vs ss")
    eq(l["accept_queue_limit"], m.get1("connscope_accept_queue_limit", listener=lbl), "limit json vs metrics")
    eq(l["accept_queue_length"], m.get1("connscope_accept_queue_length", listener=lbl), "queue json vs metrics")
    eq(s["fds"]["soft_limit"], m.get1("connscope_fd_limit", kind="soft"), "fd soft limit json vs metrics")
    eq(s["fds"]["open"], m.get1("connscope_open_fds"), "open fds json vs metrics")
    p = [x for x in s["ports"] if x["listener"] == lbl][0]
    eq(p["accept_wait_seconds"]["count"], m.get1("connscope_accept_wait_seconds_count", listener=lbl),
       "accept wait count json vs metrics")
    eq(s["target"]["pid"], srv.pid, "target pid")
    cs.stop()


def test_http_paths_methods_gzip():
    srv = Server()
    cs = Connscope(srv.pid)
    code, hdr, body = cs.get("/metrics")
    eq(code, 200, "GET /metrics")
    eq(hdr["Content-Type"], "text/plain; version=0.0.4; charset=utf-8", "metrics content type")
    check(b"# TYPE connscope_accepts_total counter" in body, "TYPE lines present")
    code, hdr, zbody = cs.get("/metrics", headers={"Accept-Encoding": "gzip"})
    eq(hdr.get("Content-Encoding"), "gzip", "Content-Encoding with Accept-Encoding: gzip")
    check(b"connscope_build_info" in gzip.decompress(zbody), "gzip body decompresses to the metrics")
    code, hdr, body = cs.get("/metrics", method="HEAD")
    eq((code, body), (200, b""), "HEAD /metrics")
    code, hdr, body = cs.get("/nope")
    eq(code, 404, "unknown path")
    check("error" in json.loads(body), "404 has a JSON error")
    code, hdr, body = cs.get("/metrics", method="POST")
    eq(code, 405, "POST /metrics")
    eq(hdr.get("Allow"), "GET, HEAD", "Allow header on 405")
    code, hdr, body = cs.get("/")
    eq(code, 200, "landing page")
    check(b"/api/v1/diagnosis" in body, "landing page links the API")
    eq(cs.get("/healthz")[2], b"ok\n", "healthz body")
    for path in ("/api/v1/diagnosis?window=-5s", "/api/v1/diagnosis?window=abc",
                 "/api/v1/diagnosis?format=xml", "/api/v1/history?seconds=abc",
                 "/api/v1/history?seconds=0", "/api/v1/events?limit=0", "/api/v1/events?limit=100000",
                 "/api/v1/events?limit=x"):
        code, hdr, body = cs.get(path)
        eq(code, 400, "status of " + path)
        eq(hdr["Content-Type"], "application/json", "400 content type for " + path)
        check(json.loads(body)["error"], "400 body names the problem for " + path)
    cs.stop()


def one_line_error(args, expect, prefix=(), env=None):
    rc, out, err = run_connscope(args, prefix=prefix, env=env)
    check(rc != 0, "exit code for %s is 0" % (args,))
    lines = [l for l in err.splitlines() if l.strip()]
    eq(len(lines), 1, "stderr lines for %s: %r" % (args, err))
    check(expect in lines[0], "%s: %r does not say %r" % (args, lines[0], expect))


def test_bad_command_lines():
    srv = Server()
    pid = str(srv.pid)
    one_line_error([], "--pid PID is required")
    one_line_error(["--pid", "abc"], "not a process ID")
    one_line_error(["--pid", "-3"], "not a process ID")
    dead = 4194000
    while os.path.exists("/proc/%d" % dead):
        dead -= 1
    one_line_error(["--pid", str(dead)], "PID %d does not exist" % dead)
    one_line_error(["--pid", pid, "--bogus"], "unknown option --bogus")
    one_line_error(["--pid", pid, "--listen"], "needs a value")
    one_line_error(["--pid", pid, "--interval", "0"], "--interval 0")
    one_line_error(["--pid", pid, "--listen", "nonsense"], "expected ADDR:PORT")
    one_line_error(["--pid", pid, "--listen", "999.1.1.1:80"], "not an IPv4")
    one_line_error(["--pid", pid, "--listen", "127.0.0.1:99999"], "port must be")
    one_line_error(["--pid", pid, "--listen", "127.0.0.1:"], "port must be")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    one_line_error(["--pid", pid, "--listen", "127.0.0.1:%d" % busy.getsockname()[1]], "in use")
    busy.close()
    port = "127.0.0.1:%d" % free_port()
    one_line_error(["--pid", pid, "--listen", port], "needs root",
                   prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    # a kernel without BTF: hide /sys/kernel/btf in a mount namespace of our own
    one_line_error(["--pid", pid, "--listen", port], "no kernel BTF",
                   prefix=["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /sys/kernel/btf && exec "$0" "$@"'])
    rc, out, err = run_connscope(["--help"])
    eq(rc, 0, "--help exit code")
    check("--pid PID" in out and "--listen" in out and "--interval" in out, "--help names the options")
    rc, out, err = run_connscope(["--version"])
    eq((rc, out.split()[0]), (0, "connscope"), "--version")


def test_thread_id_resolves_to_its_process():
    # a TID from top -H or a Java thread dump: connscope watches its process
    code = ("import socket, threading, time, os\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64)\n"
            "def run():\n"
            "    os.write(1, ('TID %d %d\\n' % (threading.get_native_id(), s.getsockname()[1])).encode())\n"
            "    while True: s.accept()\n"
            "threading.Thread(target=run, daemon=True).start()\n"
            "time.sleep(600)\n")
    srv = Proc([PY, "-c", code])
    tid, port = map(int, srv.wait_line("TID").split()[1:])
    check(tid != srv.pid, "the thread has its own id")
    cs = Connscope(tid)
    wait_until(lambda: any("is a thread of process %d" % srv.pid in l for l in cs.err_lines), 5,
               "connscope says which process it watches")
    client("127.0.0.1", port, 12, hold=0.2)
    eq(settle(lambda: cs.metrics().get1("connscope_accepts_total", listener="127.0.0.1:%d" % port),
              what="accepts"), 12, "accepts of the thread's process")
    eq(cs.json("/api/v1/snapshot")["target"]["pid"], srv.pid, "target pid is the process")
    cs.stop()
