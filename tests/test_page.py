# SPDX-License-Identifier: MIT
"""The live page at /: served from the binary, rendered by a real headless
Chromium during a scenario with listen drops. The verdict it shows equals
/api/v1/diagnosis's, every chart series holds exactly the points that
/api/v1/history had when the page read it, and the events table shows the
scenario's listen overflow. Also: the page and its assets use only relative
URLs; the page says so when the target exited, and when connscope is gone,
and picks up again when connscope comes back on the same address (driven in
real time over the DevTools protocol)."""
import base64, html.parser, json, os, re, shutil, socket, struct, subprocess, tempfile, time
import urllib.request
from lib import (BUILD, CONNSCOPE, Connscope, Proc, Server, check, client, eq, free_port, ss_listener,
                 wait_until)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]
CHARTS = ["accepts", "queue", "fds", "resets", "open", "wait"]


def chromium(url, *args, budget_ms=8000):
    """Runs headless Chromium with a fresh profile; returns its stdout."""
    exe = shutil.which("chromium")
    check(exe, "chromium is not installed: make deps")
    profile = tempfile.mkdtemp(prefix="cs-chromium-")
    try:
        out = subprocess.run([exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile,
                              "--virtual-time-budget=%d" % budget_ms] + list(args) + [url],
                             capture_output=True, text=True, timeout=120)
        eq(out.returncode, 0, "chromium exit code (stderr: %s)" % out.stderr[-800:])
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Dom(html.parser.HTMLParser):
    """The parts of the rendered page the test reads."""

    def __init__(self, text):
        super().__init__()
        self.attrs, self.text, self.charts, self.series, self.events = {}, {}, {}, [], []
        self._id, self._chart, self._in_events = None, None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.attrs[a["id"]] = a
            self._id = a["id"]
            self.text.setdefault(self._id, "")
        if tag == "figure" and "data-chart" in a:
            self._chart = a["data-chart"]
            self.charts[self._chart] = int(a["data-points"])
        if tag == "polyline":
            pts = a.get("points", "").split()
            self.series.append((self._chart, a["data-series"], len(pts)))
        if tag == "tr" and "data-kind" in a:
            self.events.append(a["data-kind"])

    def handle_data(self, data):
        if self._id:
            self.text[self._id] += data

    def handle_endtag(self, tag):
        if tag in ("code", "div", "span") and self._id:
            self._id = None


def stalled_scenario():
    """A server whose small accept queue fills and that stops accepting at
    the 20 it holds (a connection cap): the kernel drops what comes after
    (ss d<N> > 0)."""
    srv = Server("--backlog", 8, "--max-accepts", 20)
    cs = Connscope(srv.pid, interval=0.5)
    client("127.0.0.1", srv.port, 80, rate=200, hold=0.2, timeout=1.5)
    eq(srv.total("accepted"), 20, "server accepted up to its cap")
    wait_until(lambda: ss_listener(srv.port)[2] > 0, 10, "listen drops in ss")
    # the verdict is steady once the cap has held a few ticks
    wait_until(lambda: cs.json("/api/v1/diagnosis")["verdict"] == "connection_cap", 15,
               "verdict connection_cap")
    return srv, cs


def test_page_assets_relative_and_embedded():
    srv = Server()
    cs = Connscope(srv.pid)
    code, hdr, body = cs.get("/")
    eq(code, 200, "/ status")
    check(hdr["Content-Type"].startswith("text/html"), "content type of /: %r" % hdr["Content-Type"])
    page = body.decode()
    for path in ("/page.js", "/page.css"):
        c, h, b = cs.get(path)
        eq(c, 200, path + " status")
        page += b.decode()
    # nothing leaves the machine, and every link is relative (works behind --listen and a prefix)
    refs = re.findall(r'(?:href|src)="([^"]*)"', page) + re.findall(r'getJSON\("([^"]*)"', page)
    check(refs, "the page links its assets and the API")
    for r in refs:
        check(not r.startswith("/") and "://" not in r, "absolute URL in the page: %r" % r)
    check("http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page,
          "the page names an outside host")
    eq(cs.get("/page.js", headers={"Accept-Encoding": "gzip"})[1].get("Content-Encoding"), "gzip",
       "assets gzip'd when asked")
    cs.stop()
    srv.kill()


def test_page_in_chromium_during_listen_drops():
    srv, cs = stalled_scenario()
    before = cs.json("/api/v1/diagnosis")["verdict"]
    dom = Dom(chromium(cs.base + "/", "--dump-dom"))
    after = cs.json("/api/v1/diagnosis")["verdict"]
    hist = cs.json("/api/v1/history")
    eq(before, after, "verdict steady while the page loaded")
    eq(dom.attrs["verdict"]["data-verdict"], after, "verdict on the page vs /api/v1/diagnosis")
    eq(dom.text["verdict"].strip(), after, "verdict text on the page")
    eq(dom.text["verdict-sentence"].strip(), cs.json("/api/v1/diagnosis")["summary"], "the one-sentence verdict")
    # the history the page drew: every point up to the newest it showed
    last = int(dom.attrs["charts"]["data-last-ms"])
    n = len([p for p in hist["points"] if p["time_unix_ms"] <= last])
    check(n >= 4 and len(hist["points"]) < 900, "history has %d points" % n)
    # after the first full read the page appends only the newest points: the
    # counts below hold for what it pieced together
    check(int(dom.attrs["charts"]["data-incremental-reads"]) >= 1, "the page read the history incrementally")
    eq(sorted(dom.charts), sorted(CHARTS), "charts on the page")
    for name, pts in dom.charts.items():
        eq(pts, n, "points of chart %s vs /api/v1/history" % name)
    check(len(dom.series) >= 10, "series drawn: %r" % dom.series)
    for chart, series, pts in dom.series:
        eq(pts, n, "points of %s / %s vs /api/v1/history" % (chart, series))
    label = "127.0.0.1:%d" % srv.port
    check(any(s == "drops/s " + label for _, s, _ in dom.series), "a drops/s series for " + label)
    check("listen_overflow" in dom.events, "events table shows the overflow: %r" % dom.events[:5])
    check("PID %d" % srv.pid in dom.text["target"], "target on the page: %r" % dom.text["target"])
    eq(dom.attrs["status"]["data-state"], "live", "status")
    # a picture to look at, and for the README
    shot = os.path.join(BUILD, "page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chromium(cs.base + "/", "--screenshot=" + shot, "--window-size=1280,1500")
    check(os.path.getsize(shot) > 10000, "screenshot written to " + shot)
    cs.stop()
    srv.kill()


def test_page_target_exited():
    srv = Server()
    cs = Connscope(srv.pid, interval=0.5)
    srv.kill()
    wait_until(lambda: not cs.json("/api/v1/snapshot")["target"]["up"], 10, "target_up false")
    dom = Dom(chromium(cs.base + "/", "--dump-dom"))
    eq(dom.attrs["status"]["data-state"], "exited", "status when the target exited")
    check("exited" in dom.text["status"], "says the target exited: %r" % dom.text["status"])
    eq(dom.attrs["verdict"]["data-verdict"], cs.json("/api/v1/diagnosis")["verdict"], "verdict")
    cs.stop()


class DevTools:
    """A headless Chromium showing url, read in real time over the DevTools
    protocol: a WebSocket (RFC 6455) client just big enough for
    Runtime.evaluate."""

    def __init__(self, url):
        self.profile = tempfile.mkdtemp(prefix="cs-chromium-")
        port = free_port()
        self.proc = Proc([shutil.which("chromium")] + CHROMIUM_FLAGS +
                         ["--user-data-dir=" + self.profile, "--remote-debugging-port=%d" % port, url])
        self.seq = 0

        def page_ws():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
            except OSError:
                return None
            return pages and pages[0]["webSocketDebuggerUrl"]
        ws_url = wait_until(page_ws, 30, "Chromium's DevTools endpoint")
        host, path = re.match(r"ws://([^/]+)(/.*)", ws_url).groups()
        self.sock = socket.create_connection((host.split(":")[0], int(host.split(":")[1])), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            check(chunk, "DevTools closed the handshake")
            head += chunk
        check(head.startswith(b"HTTP/1.1 101"), "DevTools handshake: %r" % head[:100])

    def _recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            check(chunk, "DevTools connection closed")
            out += chunk
        return out

    def _send(self, text):
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else (
            struct.pack("!BBH", 0x81, 0x80 | 126, n) if n < 65536 else struct.pack("!BBQ", 0x81, 0x80 | 127, n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _message(self):
        msg = b""
        while True:
            b0, b1 = self._recv(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv(8))[0]
            msg += self._recv(n)
            if b0 & 0x80:
                return msg

    def eval(self, expression):
        self.seq += 1
        self._send(json.dumps({"id": self.seq, "method": "Runtime.evaluate",
                               "params": {"expression": expression, "returnByValue": True}}))
        for _ in range(1000):
            m = json.loads(self._message())
            if m.get("id") == self.seq:
                return m["result"]["result"].get("value")
        raise AssertionError("no DevTools answer to " + expression)

    def state(self):
        """(status, target line, verdict); empty strings before the page loaded."""
        v = self.eval("document.getElementById('status') && [document.getElementById('status').dataset.state,"
                      " document.getElementById('target').textContent,"
                      " document.getElementById('verdict').dataset.verdict]")
        return tuple(v) if v else ("", "", "")

    def shows(self, status, pid):
        st = self.state()
        return st[0] == status and "PID %d " % pid in st[1]

    def close(self):
        self.sock.close()
        self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def connscope_at(port, pid):
    """connscope on a given port (Connscope picks a free one)."""
    cs = Connscope.__new__(Connscope)
    cs.port, cs.base = port, "http://127.0.0.1:%d" % port
    Proc.__init__(cs, [CONNSCOPE, "--pid", str(pid), "--listen", "127.0.0.1:%d" % port, "--interval", "0.5"],
                  env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"))
    wait_until(cs.healthy, 15, "connscope /healthz")
    return cs


def test_page_reconnects_after_connscope_restarts():
    first, second = Server(), Server()
    cs = Connscope(first.pid, interval=0.5)
    browser = DevTools(cs.base + "/")
    try:
        wait_until(lambda: browser.shows("live", first.pid), 30, "the page live on the first target")
        cs.stop()
        status = wait_until(lambda: browser.state()[0] == "down" and
                            browser.eval("document.getElementById('status').textContent"), 20,
                            "the page to say connscope is gone")
        check("not reachable" in status and "retrying" in status, "what the page says: %r" % status)
        cs = connscope_at(cs.port, second.pid)
        wait_until(lambda: browser.shows("live", second.pid), 30,
                   "the page live again, on the restarted connscope's target")
        eq(browser.state()[2], cs.json("/api/v1/diagnosis")["verdict"], "verdict after the restart")
        cs.stop()
    finally:
        browser.close()
        first.kill()
        second.kill()
