# SPDX-License-Identifier: MIT
"""The live page at /: served from the binary, rendered by a real headless
Chromium during a scenario with listen drops. The verdict it shows equals
/api/v1/diagnosis's, every chart series holds exactly the points that
/api/v1/history had when the page read it, and the events table shows the
scenario's listen overflow. Also: the page and its assets use only relative
URLs, and the page says so when connscope is gone or the target exited."""
import html.parser, os, re, shutil, subprocess, tempfile, time
from lib import BUILD, Connscope, Server, check, client, eq, ss_listener, wait_until

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
    """A server whose small accept queue fills and that stops accepting:
    the kernel drops what comes after (ss d<N> > 0)."""
    srv = Server("--backlog", 8, "--max-accepts", 20)
    cs = Connscope(srv.pid, interval=0.5)
    client("127.0.0.1", srv.port, 80, rate=200, hold=0.2, timeout=1.5)
    eq(srv.total("accepted"), 20, "server accepted up to its cap")
    wait_until(lambda: ss_listener(srv.port)[2] > 0, 10, "listen drops in ss")
    # the verdict is steady once the stall has lasted a few ticks
    wait_until(lambda: cs.json("/api/v1/diagnosis")["verdict"] == "accept_queue_stalled", 15,
               "verdict accept_queue_stalled")
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
    check(dom.text["verdict-sentence"].strip(), "a one-sentence verdict")
    # the history the page drew: every point up to the newest it showed
    last = int(dom.attrs["charts"]["data-last-ms"])
    n = len([p for p in hist["points"] if p["time_unix_ms"] <= last])
    check(n >= 4 and len(hist["points"]) < 900, "history has %d points" % n)
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


def test_page_target_exited_and_connscope_gone():
    srv = Server()
    cs = Connscope(srv.pid, interval=0.5)
    srv.kill()
    wait_until(lambda: not cs.json("/api/v1/snapshot")["target"]["up"], 10, "target_up false")
    dom = Dom(chromium(cs.base + "/", "--dump-dom"))
    eq(dom.attrs["status"]["data-state"], "exited", "status when the target exited")
    check("exited" in dom.text["status"], "says the target exited: %r" % dom.text["status"])
    eq(dom.attrs["verdict"]["data-verdict"], cs.json("/api/v1/diagnosis")["verdict"], "verdict")
    cs.stop()
