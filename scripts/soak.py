#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make soak: connscope under hours-like churn, in minutes. Churns short
connections to the demo server (in a network namespace of its own) at the
highest rate asked for, samples connscope's RSS every 30 s, and reports
accepts and connections_open against the server's own counts, lost events and
the RSS slope. Exits non-zero when a count differs or an event was lost."""
import argparse, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import DEMO, LOAD, Daemon, Demo  # noqa: E402
from lib import Netns, Proc, cleanup_all, pinned  # noqa: E402

SAMPLE_S = 30
# connscope's tick here: its history ring (points_max points, allocated at
# start, its pages touched as it fills) is full after points_max ticks, so
# RSS after that is what tells a leak from the ring filling up
INTERVAL_S = 0.2


class NsDemo(Demo):
    """The demo server in a namespace of the soak's own: its churn must not
    overflow anyone else's SYN queues."""

    def __init__(self, ns, *args):
        Proc.__init__(self, [DEMO, "--listen", "127.0.0.1:0"] + [str(x) for x in args], netns=ns)
        self.port = int(self.wait_line("READY").split()[1])


def metric(cs, name, **labels):
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}" if labels else "")
    for line in cs.get("/metrics")[1].decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise RuntimeError("metric %s missing from /metrics" % want)


def lost(cs):
    return sum(float(l.split()[-1]) for l in cs.get("/metrics")[1].decode().splitlines()
               if l.startswith("connscope_events_lost_total{"))


def slope(points):
    """Least-squares slope of (t, v) points, v per second."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=int, default=5000, help="connects per second asked of connscope-load")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "soak.json"))
    a = ap.parse_args()
    ns = Netns()
    srv = NsDemo(ns, "--backlog", "4096")
    cs = Daemon(srv.pid, extra=["--interval", str(INTERVAL_S)])
    ring_full_s = json.loads(cs.get("/api/v1/history?seconds=1")[1]).get("points_max", 900) * INTERVAL_S
    lbl = "127.0.0.1:%d" % srv.port
    t0 = time.monotonic()
    end = t0 + a.minutes * 60
    rss = [(0.0, cs.rss_bytes())]
    asked = 0
    while time.monotonic() < end:
        chunk = min(SAMPLE_S, end - time.monotonic())
        if chunk < 1:
            break
        out = subprocess.run(["ip", "netns", "exec", ns.name, LOAD, "127.0.0.1:%d" % srv.port, "--json",
                              "--rate", str(a.rate), "--duration", "%.0f" % chunk, "--timeout", "5"],
                             capture_output=True, text=True, timeout=chunk + 120)
        if out.returncode:
            raise RuntimeError("connscope-load: " + out.stderr[-300:])
        asked += sum(json.loads(out.stdout)["outcomes"].values())
        rss.append((time.monotonic() - t0, cs.rss_bytes()))
        print("%5.0f s  %8d connections  rss %.1f MiB" % (rss[-1][0], asked, rss[-1][1] / 2**20), flush=True)
    elapsed = time.monotonic() - t0
    (acc, opn, lst), st = pinned(lambda: (lambda s: (s["accepted"], s["open"]))(srv.stats()),
                                 lambda: (metric(cs, "connscope_accepts_total", listener=lbl),
                                          metric(cs, "connscope_connections_open", listener=lbl), lost(cs)),
                                 timeout=60, what="server counts")
    r = {
        "minutes": elapsed / 60, "connections": asked, "rate_per_s": asked / elapsed,
        "accepts_server": st[0], "accepts_connscope": acc,
        "open_server": st[1], "open_connscope": opn, "events_lost": lst,
        "rss_first_mib": rss[0][1] / 2**20, "rss_last_mib": rss[-1][1] / 2**20,
        "rss_slope_kib_per_min": slope(rss[1:] if len(rss) > 2 else rss) * 60 / 1024,
        "history_full_after_s": ring_full_s,
        "rss_slope_after_history_full_kib_per_min":
            slope([p for p in rss if p[0] >= ring_full_s + SAMPLE_S]) * 60 / 1024
            if sum(1 for p in rss if p[0] >= ring_full_s + SAMPLE_S) >= 3 else None,
        "rss_samples": [[round(t), v] for t, v in rss],
    }
    cs.stop()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(r, f, indent=1)
    print("soak: %.1f min, %d connections (%.0f/s)" % (r["minutes"], asked, r["rate_per_s"]))
    print("  accepts          connscope %d  server %d" % (acc, st[0]))
    print("  connections_open connscope %d  server %d" % (opn, st[1]))
    print("  events lost      %d" % lst)
    print("  rss              %.1f -> %.1f MiB, slope %.1f KiB/min (after the first sample)"
          % (r["rss_first_mib"], r["rss_last_mib"], r["rss_slope_kib_per_min"]))
    if r["rss_slope_after_history_full_kib_per_min"] is not None:
        print("  rss slope        %.1f KiB/min once the history ring was full (after %.0f s)"
              % (r["rss_slope_after_history_full_kib_per_min"], ring_full_s))
    print("wrote " + a.out)
    return 0 if acc == st[0] and opn == st[1] and lst == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup_all()
