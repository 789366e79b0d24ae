# SPDX-License-Identifier: MIT
"""connscope-load against stacks other than our demo server, compared with
what those servers counted themselves: a STOMP-over-WebSocket broker written
here that never sends RECEIPT (as Spring's simple broker), one that answers
SEND with ERROR, one that broadcasts MESSAGEs to subscribers, one that insists
on heart-beats; a listener whose accept queue drops handshake ACKs (plain
connect is 'connected', never 'ok'); stepped runs; many workers and source
addresses (IPv4 and IPv6) against the demo server's SO_REUSEPORT workers with connscope
attached; the client's own limits (ports, fds) named with the flag that fixes
them; connscope's verdict printed per step, and a stopped connscope."""
import json, os, re, signal, subprocess
from lib import (BUILD, CONNSCOPE, HARNESS, PY, Connscope, Netns, Proc, check, eq, free_port, settle, ss_listener,
                 wait_until)

LOAD = os.path.join(BUILD, "connscope-load")
DEMO = os.path.join(BUILD, "connscope-demo-server")
BROKER = os.path.join(HARNESS, "servers", "stomp_broker.py")


def run_load(port, *args, json_out=True, timeout=180, netns=None):
    argv = [LOAD, "127.0.0.1:%d" % port] + (["--json"] if json_out else []) + [str(a) for a in args]
    if netns:
        argv = ["ip", "netns", "exec", netns.name] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    eq(out.returncode, 0, "connscope-load exit (stderr %r)" % out.stderr[-500:])
    return (json.loads(out.stdout) if json_out else out.stdout), out.stderr


class Counted(Proc):
    """A server that prints its own counts as one JSON line on SIGUSR1."""

    def __init__(self, argv, prefix, netns=None):
        super().__init__(argv, netns=netns)
        self.prefix = prefix
        self.port = int(self.wait_line("READY").split()[1])

    def _stats_lines(self):
        with self.lock:
            return [l for l in self.lines if l.startswith(self.prefix)]

    def stats(self):
        n = len(self._stats_lines())
        os.kill(self.pid, signal.SIGUSR1)
        wait_until(lambda: len(self._stats_lines()) > n, 10, "server stats")
        line = self._stats_lines()[-1]
        return json.loads(line[len(self.prefix):] if self.prefix.endswith(" ") else line)

    def settled(self, key, what):
        return settle(lambda: self.stats()[key], quiet=0.5, timeout=30, what=what)


def broker(*args):
    return Counted([PY, BROKER] + [str(a) for a in args], "STATS ")


def demo(*args, netns=None):
    return Counted([DEMO, "--listen", "127.0.0.1:0"] + [str(a) for a in args], "{", netns=netns)


STOMP = ("--websocket", "/ws", "--stomp", "--message", '{"rider":7,"lat":52.52,"lon":13.40}')


def test_stomp_broker_without_receipt():
    b = broker()
    r, _ = run_load(b.port, "--connections", 500, "--rate", 1000, *STOMP)
    s = b.stats()
    eq((s["connect"], s["send"]), (500, 500), "broker's CONNECT and SEND frames")
    eq(r["outcomes"]["ok"], 500, "ok: CONNECTED, SEND written, no ERROR or close within --settle")
    eq(s["receipt_requested"], 0, "SENDs asking for a RECEIPT by default")
    eq(r["latency_ms"]["stomp_connect"]["count"], 500, "CONNECT->CONNECTED latencies")
    # --receipt: the old behaviour, which this broker never satisfies
    r, _ = run_load(b.port, "--connections", 500, "--rate", 1000, "--receipt", "--timeout", 1.5, *STOMP)
    s = b.stats()
    eq((s["connect"], s["send"], s["receipt_requested"]), (1000, 1000, 500), "broker's frames after --receipt")
    eq(r["outcomes"]["timeout"], 500, "every --receipt client times out")
    eq(r["timeouts_by_step"]["reply"], 500, "all waiting at the receipt step")
    eq(r["outcomes"]["ok"], 0, "none ok")
    # the demo server does send RECEIPTs
    d = demo()
    r, _ = run_load(d.port, "--connections", 500, "--rate", 1000, "--receipt", *STOMP)
    eq(r["outcomes"]["ok"], 500, "--receipt against the demo server")
    eq(d.stats()["stomp_sends"], 500, "demo server's SENDs")
    eq(r["latency_ms"]["reply"]["count"], 500, "SEND->RECEIPT latencies")


def test_stomp_subscribe_gets_its_message():
    b = broker("--broadcast", "/topic/locations")
    r, _ = run_load(b.port, "--connections", 200, "--rate", 500, "--subscribe", "/topic/locations",
                    "--hold", 2, *STOMP)
    s = b.stats()
    eq((s["connect"], s["subscribe"], s["send"]), (200, 200, 200), "broker's CONNECT, SUBSCRIBE, SEND")
    eq(r["outcomes"]["ok"], 200, "ok: a MESSAGE on the subscribed destination")
    eq(s["subscribers_delivered"], r["outcomes"]["ok"], "clients the broker delivered a MESSAGE to = ok")
    eq(r["messages_received"], s["messages_sent"], "MESSAGE frames received = the broker's count sent")
    eq(r["latency_ms"]["reply"]["count"], 200, "delivery latencies")


def test_stomp_error_frame_is_its_own_outcome():
    b = broker("--error-on-send", "destination /app/location is not allowed")
    r, _ = run_load(b.port, "--connections", 100, "--rate", 1000, *STOMP)
    s = b.stats()
    eq(s["errors_sent"], 100, "broker's ERROR frames")
    eq(r["outcomes"]["stomp_error"], 100, "stomp_error")
    eq(r["outcomes"]["ok"], 0, "ok")
    eq(r["stomp_error_message"], "destination /app/location is not allowed", "first message header")
    text, _ = run_load(b.port, "--connections", 20, "--rate", 1000, *STOMP, json_out=False)
    check(re.search(r"stomp_error +20 .*message: destination /app/location is not allowed", text),
          "text report names the ERROR message:\n" + text)


def test_stomp_broker_insisting_on_heartbeats():
    b = broker("--heartbeat", 200)  # closes a client silent for 600 ms
    r, _ = run_load(b.port, "--connections", 100, "--rate", 500, "--hold", 2.5, *STOMP)
    s = b.stats()
    eq(r["outcomes"]["ok"], 100, "ok")
    eq(s["closed_silent"], 0, "clients the broker closed for missing heart-beats")
    eq(r["lost_while_held"], 0, "held clients lost")
    check(s["heartbeats_received"] >= 100, "clients answered heart-beats: %r" % s)


def client_established(port, ns):
    out = subprocess.run(["ip", "netns", "exec", ns.name, "ss", "-tnH", "state", "established",
                          "dport = :%d" % port], capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


# A listener that never accepts, with a queue of 9 (backlog 8). TCP_DEFER_ACCEPT
# keeps the first handshakes in SYN_RECV, so their clients' ACKs meet a full
# accept queue when they count: the clients are ESTABLISHED, the server
# dropped them (TcpExt ListenOverflows).
ACK_DROPPER = """
import socket, time
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
print("READY %d" % s.getsockname()[1], flush=True)
time.sleep(60)
"""


def test_plain_connect_is_connected_never_ok():
    with Netns() as ns:
        srv = Proc([PY, "-c", ACK_DROPPER], netns=ns)
        port = int(srv.wait_line("READY").split()[1])
        p = Proc([LOAD, "127.0.0.1:%d" % port, "--json", "--connections", "60", "--rate", "0", "--timeout",
                  "1.5", "--hold", "6"], netns=ns)
        seen = settle(lambda: client_established(port, ns), quiet=1.5, timeout=5,
                      what="client sockets established")
        queued = ss_listener(port, ns)[0]
        p.p.wait(30)
        r = json.loads("\n".join(p.lines))
        eq(r["outcomes"]["connected"], seen, "connected = client sockets the kernel shows established")
        eq(r["outcomes"]["ok"], 0, "ok (nothing was answered)")
        eq(r["outcomes"]["connected"] + r["outcomes"]["timeout"], 60, "every client has one outcome")
        check(queued < seen, "the server's accept queue holds %d, the clients believe %d connected"
              % (queued, seen))


def test_plain_connect_text_says_connected_proves_nothing():
    d = demo()
    text, _ = run_load(d.port, "--connections", 30, "--rate", 0, json_out=False)
    eq(d.settled("accepted", "demo accepts"), 30, "demo server accepted")
    check(re.search(r"^  ok +0 ", text, re.M) and re.search(r"^  connected +30 ", text, re.M),
          "ok 0, connected 30:\n" + text)
    check("proves nothing" in text and "accept queue drops handshake ACKs" in text, text)


def test_steps_report_each_step():
    d = demo("--backlog", 1024)
    r, _ = run_load(d.port, "--steps", "100,300", "--step-seconds", 2, "--message", "x", "--timeout", 3)
    eq(len(r["steps"]), 2, "steps reported")
    for st, rate in zip(r["steps"], (100, 300)):
        eq(st["connections"], rate * 2, "connections of the %d/s step" % rate)
        eq(sum(st["outcomes"].values()), st["connections"], "outcomes of the %d/s step" % rate)
        print("     step %d/s: achieved %.1f/s (%.1f%%)" % (rate, st["achieved_rate"],
                                                            100.0 * st["achieved_rate"] / rate))
    eq(sum(r["outcomes"].values()), 800, "total outcomes")
    eq(r["outcomes"]["ok"], sum(st["outcomes"]["ok"] for st in r["steps"]), "total ok = sum of steps")
    answered = d.settled("answered", "demo answers")
    eq(answered, r["outcomes"]["ok"], "demo server answered = ok")
    # --ramp: the first step reaches its rate linearly over 1 s
    r, _ = run_load(d.port, "--steps", "200,400", "--step-seconds", 1, "--ramp", 1, "--message", "x")
    eq([sum(st["outcomes"].values()) for st in r["steps"]], [200, 400], "outcomes per step with --ramp")
    eq(d.settled("answered", "demo answers") - answered, r["outcomes"]["ok"], "demo server answered = ok")


def test_workers_and_sources_hold_25000():
    n = 25000
    d = demo("--workers", 2, "--backlog", 4096)
    cs = Connscope(d.pid, interval=0.5)
    p = Proc([LOAD, "127.0.0.1:%d" % d.port, "--json", "--connections", str(n), "--rate", "5000",
              "--workers", "2", "--source", "127.0.0.1-127.0.0.4", "--message", "x", "--hold", "30",
              "--timeout", "10"])
    # each client holds 30 s from its answer: the counts below are read long
    # before the first one lets go, however slowly the 25,000 got in
    wait_until(lambda: d.stats()["answered"] >= n, 60, "%d answered" % n, interval=1)
    held = d.settled("open", "demo server's open connections")
    accepted = d.stats()["accepted"]  # ground truth first, connscope after it
    lbl = "127.0.0.1:%d" % d.port
    accepts = settle(lambda: cs.metrics().find("connscope_accepts_total", listener=lbl), quiet=1.0,
                     timeout=30, what="connscope accepts")
    opened = cs.metrics().find("connscope_connections_open", listener=lbl)
    p.p.wait(120)
    r = json.loads("\n".join(p.lines))
    s = d.stats()
    eq(r["outcomes"]["ok"], n, "ok")
    eq(s["accepted"], n, "the demo server's own count (summed over its workers)")
    eq(held, n, "held open at once by the demo server")
    eq(r["lost_while_held"], 0, "lost while held")
    eq(sum(accepts.values()), accepted, "connscope's accepts (attached to the demo parent)")
    eq(sum(opened.values()), held, "connscope_connections_open while held")
    cs.stop()


def test_connscope_verdict_per_step():
    # a namespace of its own: some causes read namespace-wide counters
    # (syncookies), which other tests on this machine move in the root one
    with Netns() as ns:
        d = demo("--backlog", 16, "--max-connections", 300, netns=ns)
        cs = Proc([CONNSCOPE, "--pid", str(d.pid), "--listen", "127.0.0.1:9477", "--interval", "0.5"], netns=ns,
                  env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"))
        wait_until(lambda: any("serving http" in l for l in cs.err_lines), 15, "connscope serving")
        url = "http://127.0.0.1:9477"
        r, err = run_load(d.port, "--steps", "100,800", "--step-seconds", 1, "--message", "x", "--timeout", 1.5,
                          "--hold", 5, "--connscope", url, netns=ns)
        eq(err.count("warning"), 0, "warnings (stderr %r)" % err)
        v1, v2 = (st["diagnosis"]["verdict"] for st in r["steps"])
        drops = ss_listener(d.port, ns)[2]
        eq(v1, "healthy", "verdict of the step under the cap")
        check(drops > 0, "the queue overflowed in step 2 (ss drops %d)" % drops)
        check(v2 in ("accept_queue_stalled", "connection_cap", "accept_queue_slow"),
              "verdict of the step where the queue overflows: %s" % v2)
        check(r["steps"][1]["outcomes"]["ok"] < 800, "step 2 lost clients: %r" % r["steps"][1]["outcomes"])
        text, _ = run_load(d.port, "--connections", 50, "--rate", 500, "--message", "x", "--connscope", url,
                           json_out=False, netns=ns)
        check(re.search(r"^  connscope verdict: \w+ \(window [\d.]+ s\)$", text, re.M), "text verdict:\n" + text)
        cs.p.send_signal(signal.SIGINT)
        eq(cs.p.wait(30), 0, "connscope exit")
        check(not any("Sanitizer" in l or "runtime error" in l for l in cs.err_lines), "sanitizer report")


def test_connscope_unreachable_warns_once():
    d = demo()
    url = "http://127.0.0.1:%d" % free_port()
    r, err = run_load(d.port, "--steps", "100,100", "--step-seconds", 0.5, "--message", "x", "--connscope", url)
    eq(len([l for l in err.splitlines() if "warning" in l]), 1, "warning lines (stderr %r)" % err)
    check(url in err, "the warning names the URL: %r" % err)
    eq([("diagnosis" in st) for st in r["steps"]], [False, False], "no verdict in the steps")
    eq(r["outcomes"]["ok"], 100, "the report is unchanged")
    base, _ = run_load(d.port, "--steps", "100,100", "--step-seconds", 0.5, "--message", "x")
    eq(sorted(base["steps"][0].keys()), sorted(r["steps"][0].keys()), "same report without --connscope")


def test_ipv6_source_range():
    with Netns() as ns:
        for i in range(1, 5):
            subprocess.run(["ip", "-n", ns.name, "addr", "add", "fd00::%d/128" % i, "dev", "lo", "nodad"], check=True)
        d = Counted([DEMO, "--listen", "[fd00::1]:0"], "{", netns=ns)
        p = Proc([LOAD, "[fd00::1]:%d" % d.port, "--json", "--connections", "200", "--rate", "1000",
                  "--source", "fd00::1-fd00::4", "--message", "x", "--hold", "4"], netns=ns)
        wait_until(lambda: d.stats()["answered"] == 200, 20, "200 answered")
        out = subprocess.run(["ip", "netns", "exec", ns.name, "ss", "-tnH", "state", "established",
                              "dport = :%d" % d.port], capture_output=True, text=True, check=True).stdout
        sources = {}
        for line in out.splitlines():
            addr = line.split()[-2].rsplit(":", 1)[0]
            sources[addr] = sources.get(addr, 0) + 1
        eq(sources, {"[fd00::%d]" % i: 50 for i in range(1, 5)}, "client sockets per source address (ss)")
        p.p.wait(30)
        r = json.loads("\n".join(p.lines))
        eq(r["outcomes"]["ok"], 200, "ok")
        eq(d.stats()["accepted"], 200, "demo server accepted")


def test_client_limits_name_the_flag_that_fixes_them():
    with Netns() as ns:
        # 10 ephemeral ports per source address in this namespace
        subprocess.run(["ip", "netns", "exec", ns.name, "sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40009"],
                       check=True)
        d = Counted([DEMO, "--listen", "127.0.0.1:8080"], "{", netns=ns)  # not an ephemeral port
        text, _ = run_load(d.port, "--connections", 30, "--rate", 0, "--message", "x", "--hold", 1,
                           json_out=False, netns=ns)
        eq(d.settled("accepted", "demo accepts"), 10, "demo server accepted (one address, 10 ports)")
        check(re.search(r"^  ok +10 ", text, re.M) and re.search(r"^  eaddrnotavail +20 .*--source", text, re.M),
              "10 ok, 20 eaddrnotavail naming --source:\n" + text)
        # 127.0.0.1's 10 ports sit in TIME_WAIT now: three other addresses
        r, _ = run_load(d.port, "--connections", 30, "--rate", 0, "--message", "x", "--hold", 1,
                        "--source", "127.0.0.2-127.0.0.4", netns=ns)
        eq(r["outcomes"]["ok"], 30, "ok over 3 source addresses")
        eq(d.settled("accepted", "demo accepts"), 40, "demo server accepted")
    d = demo()
    out = subprocess.run(["prlimit", "--nofile=40:40", LOAD, "127.0.0.1:%d" % d.port, "--connections", "100",
                          "--rate", "0", "--message", "x", "--hold", "1"], capture_output=True, text=True, timeout=60)
    eq(out.returncode, 0, "connscope-load exit (stderr %r)" % out.stderr[-300:])
    ok = int(re.search(r"^  ok +(\d+) ", out.stdout, re.M).group(1))
    eq(d.settled("answered", "demo answers"), ok, "demo server answered = ok")
    check(re.search(r"^  client_emfile +%d .*--workers" % (100 - ok), out.stdout, re.M),
          "the rest client_emfile, naming --workers:\n" + out.stdout)
