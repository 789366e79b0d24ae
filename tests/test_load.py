# SPDX-License-Identifier: MIT
"""connscope-load's outcomes equal what the servers counted (the demo
server's own counts, and servers written here), it rejects a wrong
WebSocket accept key, tells client limits from server failures, and the
short demo (one stepped run with connscope's verdict per step) names the
cause it set up."""
import glob, json, os, re, signal, socket, subprocess, threading, time
from lib import Demo, BUILD, ROOT, Netns, Proc, Server, bpf_link_ids, check, eq, free_port, wait_until

LOAD = os.path.join(BUILD, "connscope-load")


def load(port, *args, prefix=()):
    out = subprocess.run(list(prefix) + [LOAD, "127.0.0.1:%d" % port, "--json"] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=120)
    eq(out.returncode, 0, "connscope-load exit (stderr %r)" % out.stderr[-300:])
    return json.loads(out.stdout)


def test_plain_tcp_ok_equals_answered():
    d = Demo()
    r = load(d.port, "--connections", 300, "--rate", 3000, "--message", "ping")
    s = d.stats()
    eq(r["outcomes"]["ok"], 300, "ok")
    eq(s["accepted"], 300, "demo server accepted")
    eq(s["answered"], 300, "demo server answered")


def test_cap_50_of_150_gives_50_ok_100_timeout():
    d = Demo("--max-connections", 50, "--backlog", 16)
    r = load(d.port, "--connections", 150, "--rate", 1000, "--websocket", "/ws",
             "--timeout", 1.5, "--hold", 3)
    s = d.stats()
    # the server's own count of what it held at once, not the cap it was given
    check(0 < s["peak_open"] <= 50, "server held %r at once, cap 50" % s["peak_open"])
    eq(r["outcomes"]["ok"], s["peak_open"], "ok vs connections the server held at once")
    eq(r["outcomes"]["timeout"], 150 - s["peak_open"], "timeout (the rest, whatever step they were in)")
    eq(sum(r["outcomes"].values()), 150, "every client has one outcome")


def test_stomp_frames_parsed_by_server():
    d = Demo()
    r = load(d.port, "--connections", 200, "--rate", 2000, "--websocket", "/ws", "--stomp",
             "--message", '{"rider":7}')
    s = d.stats()
    eq(r["outcomes"]["ok"], 200, "ok")
    eq((s["ws_upgrades"], s["stomp_connected"], s["stomp_sends"]), (200, 200, 200),
       "server's upgrades, STOMP CONNECTs and SENDs")
    eq(r["latency_ms"]["upgrade"]["count"], 200, "upgrade latencies")


def one_shot_server(answer, n):
    """A server written here: answers each upgrade request with `answer`."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(256)
    seen = []

    def run():
        for _ in range(n):
            c, _ = ls.accept()
            c.recv(4096)
            c.sendall(answer)
            seen.append(c)
    threading.Thread(target=run, daemon=True).start()
    return ls, seen


def test_wrong_accept_key_and_http_error():
    bad = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    ls, seen = one_shot_server(bad, 20)
    r = load(ls.getsockname()[1], "--connections", 20, "--rate", 0, "--websocket", "/ws", "--timeout", 3)
    eq(r["outcomes"]["ws_bad_accept"], 20, "a wrong Sec-WebSocket-Accept is rejected")
    eq(r["outcomes"]["ok"], 0, "none ok")
    ls, seen = one_shot_server(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 10)
    r = load(ls.getsockname()[1], "--connections", 10, "--rate", 0, "--websocket", "/ws", "--timeout", 3)
    eq(r["outcomes"]["http_error"], 10, "non-101 answers")


def test_connected_but_unanswered_is_not_ok():
    srv = Server()  # accepts and holds, never answers
    r = load(srv.port, "--connections", 40, "--rate", 0, "--message", "hello?", "--timeout", 1)
    wait_until(lambda: srv.total("accepted") == 40, 5, "server accepted 40")
    eq(r["outcomes"]["ok"], 0, "ok")
    eq(r["outcomes"]["timeout"], 40, "timeout")
    eq(r["timeouts_by_step"]["reply"], 40, "all waiting for a reply")


def test_refused_and_client_fd_limit():
    r = load(free_port(), "--connections", 30, "--rate", 0, "--timeout", 2)
    eq(r["outcomes"]["refused"], 30, "refused by a closed port")
    d = Demo()
    r = load(d.port, "--connections", 200, "--rate", 0, "--message", "x", "--hold", 1,
             prefix=["prlimit", "--nofile=64:64"])
    s = d.stats()
    check(r["outcomes"]["client_emfile"] > 100, "client ran out of fds: %r" % r["outcomes"])
    eq(r["outcomes"]["ok"] + r["outcomes"]["client_emfile"], 200, "ok + client_emfile")
    eq(s["answered"], r["outcomes"]["ok"], "the server answered every client that had an fd")


def test_demo_short_names_the_cause():
    links = bpf_link_ids()
    # in a namespace of its own: some causes read namespace-wide counters
    # (syncookies) that other tests on this machine move in the root one
    with Netns() as ns:
        out = subprocess.run(["ip", "netns", "exec", ns.name, os.path.join(ROOT, "scripts", "demo.sh"), "--short"],
                             capture_output=True, text=True, timeout=170)
    eq(out.returncode, 0, "demo exit (stderr %r)" % out.stderr[-500:])
    # connscope-load --connscope prints each step's verdict under its outcomes
    steps = re.split(r"^   step (\d+): ", out.stdout.split("== post-mortem")[0], flags=re.M)[1:]
    verdicts = {int(n): re.search(r"connscope verdict: (\w+)", body) for n, body in zip(steps[::2], steps[1::2])}
    verdicts = {n: m.group(1) if m else None for n, m in verdicts.items()}
    check(verdicts.get(1) == "healthy" and verdicts.get(2) == "healthy",
          "steps 1 and 2 healthy: %r in:\n%s" % (verdicts, out.stdout[-3000:]))
    check(verdicts.get(3) == "connection_cap",
          "step 3 names the cap: %r in:\n%s" % (verdicts, out.stdout[-3000:]))
    step3 = dict(zip(map(int, steps[::2]), steps[1::2]))[3]
    check(re.search(r"^\s+Clients failed because .*connection cap", step3, re.M),
          "step 3 says the cause in one sentence:\n" + step3)
    post = out.stdout.split("== post-mortem")[1]
    check(re.search(r"verdict: connection_cap", post), "post-mortem names the cause")
    # a link another process just closed is released a moment later: what
    # the demo left stays, so wait for the rest to go
    new = bpf_link_ids() - links
    wait_until(lambda: not orphan_links(new), 10, "BPF links left by the demo (held by no process)")


def orphan_links(ids):
    """Of these BPF links, those no live process holds an fd of: others'
    connscopes run on this machine too, and their links are theirs."""
    held = set()
    for fdinfo in glob.glob("/proc/[0-9]*/fdinfo/*"):
        try:
            with open(fdinfo) as f:
                m = re.search(r"^link_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            held.add(int(m.group(1)))
    return (ids - held) & bpf_link_ids()  # a link closed meanwhile is gone, not left
