# SPDX-License-Identifier: MIT
"""/metrics passes promtool; the shipped rules pass promtool's
checks and tests; a real Prometheus scraping connscope during a scenario
with drops, EMFILE and resets returns data for every dashboard expression
and fires the alerts written for that scenario."""
import json, os, re, subprocess, tempfile, time, urllib.parse, urllib.request
from lib import (PY, ROOT, SERVER, Connscope, Proc, check, client, eq, free_port, wait_until)

DASH = os.path.join(ROOT, "dashboards")

# Three servers under one parent, started before connscope attaches: one
# runs out of fds, one closes with unread data, one never accepts.
LAUNCHER = r'''
import subprocess, sys
args = [["--nofile", "64", "--emfile-limit", "30"], ["--mode", "abort_on_data"],
        ["--backlog", "8", "--max-accepts", "0"]]
kids = [subprocess.Popen([sys.executable, %r] + a, stdout=subprocess.PIPE, text=True) for a in args]
ports = [k.stdout.readline().split()[1] for k in kids]
print("PORTS " + " ".join(ports), flush=True)
for k in kids:
    k.wait()
''' % SERVER


def promtool(*args):
    return subprocess.run(["promtool"] + list(args), capture_output=True, text=True, cwd=DASH)


def test_rules_check_and_unit_tests():
    r = promtool("check", "rules", "alerts.yml")
    eq(r.returncode, 0, "promtool check rules: " + r.stdout + r.stderr)
    r = promtool("test", "rules", "alerts.test.yml")
    eq(r.returncode, 0, "promtool test rules: " + r.stdout + r.stderr)
    r = promtool("check", "config", "prometheus.yml")
    eq(r.returncode, 0, "promtool check config: " + r.stdout + r.stderr)


def dashboard_exprs():
    with open(os.path.join(DASH, "connscope.json")) as f:
        dash = json.load(f)
    names = [v["name"] for v in dash["templating"]["list"]]
    check("datasource" in names and "instance" in names, "dashboard variables: %r" % names)
    exprs = []
    for p in dash["panels"]:
        eq(p["datasource"]["uid"], "${datasource}", "panel %r datasource" % p["title"])
        for t in p["targets"]:
            exprs.append((p["title"], t["expr"]))
    return exprs


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    eq(body["status"], "success", "query status for " + expr)
    return body["data"]["result"]


def test_live_prometheus_dashboard_and_alerts():
    parent = Proc([PY, "-c", LAUNCHER])
    pa, pb, pc = map(int, parent.wait_line("PORTS").split()[1:])
    cs = Connscope(parent.pid, interval=0.5)
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="cs-prom-")
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "rule_files: [%s]\n"
                "scrape_configs:\n  - job_name: connscope\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
                % (json.dumps(os.path.join(DASH, "alerts.yml")), cs.port))
    prom = Proc(["prometheus", "--config.file", os.path.join(tmp, "prometheus.yml"),
                 "--storage.tsdb.path", os.path.join(tmp, "data"), "--web.listen-address",
                 "127.0.0.1:%d" % port])
    base = "http://127.0.0.1:%d" % port
    wait_until(lambda: _ready(base), 30, "prometheus ready")
    # counters must be scraped before they rise, or increase() sees them flat
    wait_until(lambda: query(base, 'connscope_target_up[10s]') and
               len(query(base, 'connscope_target_up[10s]')[0]["values"]) >= 2, 30, "2 scrapes")
    client("127.0.0.1", pa, 150, hold=1.0, timeout=1.0)
    client("127.0.0.1", pb, 60, send="unread", hold=1.0)
    client("127.0.0.1", pc, 60, hold=0.2, timeout=1.0)
    wait_until(lambda: query(base, 'connscope_target_up') and
               len(query(base, 'connscope_target_up[30s]')[0]["values"]) >= 10, 30, "10 scrapes")
    # promtool on the live exposition, with drops, EMFILE and resets in it
    code, _, body = cs.get("/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    eq((r.returncode, r.stdout + r.stderr), (0, b""), "promtool check metrics on live /metrics")
    empty = []
    for title, expr in dashboard_exprs():
        q = expr.replace("$instance", ".*").replace("$__rate_interval", "30s")
        if not query(base, q):
            empty.append("%s: %s" % (title, q))
    eq(empty, [], "dashboard expressions without data")
    def firing():
        with urllib.request.urlopen(base + "/api/v1/alerts", timeout=10) as r:
            alerts = json.load(r)["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
    want = {"ConnscopeFdExhaustion", "ConnscopeListenDrops"}
    got = wait_until(lambda: want <= firing() and firing(), 20, "alerts firing %r" % want)
    check(want <= got, "firing: %r" % got)
    prom.kill()
    cs.stop()


def _ready(base):
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
