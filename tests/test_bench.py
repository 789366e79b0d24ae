# SPDX-License-Identifier: MIT
"""make bench-quick produces every figure, and the exact counts the
bench reports agree with their ground truth. Never a timing assert: timings
belong to make bench."""
import json, os, subprocess, tempfile
from lib import ROOT, check, eq

FIGURES = ["per_connection_cost_us", "churn_bpf_net_ns_per_conn", "churn_daemon_cpu_ns_per_conn",
           "per_connection_cost_raw_us", "bpf_stats_floor_ns_per_run", "unrelated_bpf_ns_per_syscall",
           "unrelated_watched_bpf_ns_per_syscall", "throughput_ratio_median", "throughput_ratio_min",
           "throughput_ratio_max", "metrics_p99_ms", "snapshot_ms", "daemon_rss_mib", "bpf_map_mib",
           "startup_ms", "detach_ms", "baseline_per_connection_cost_us", "full_probes_programs_ns_per_conn",
           "full_probes_programs_percent"]


def test_bench_quick_produces_every_figure():
    out = os.path.join(tempfile.mkdtemp(prefix="cs-bench-"), "bench.json")
    r = subprocess.run(["python3", os.path.join(ROOT, "scripts", "bench.py"), "--quick", "--out", out],
                       capture_output=True, text=True, timeout=300)
    eq(r.returncode, 0, "bench exit (stderr %r)" % r.stderr[-800:])
    with open(out) as f:
        b = json.load(f)
    missing = [k for k in FIGURES if not isinstance(b.get(k), (int, float))]
    eq(missing, [], "figures missing")
    for k in FIGURES:
        check(b[k] >= 0, "%s is negative: %r" % (k, b[k]))
    eq(b["churn_accepts_counted"], b["churn_connections"], "churn: every accept counted")
    # an A/B difference: either sign, but a number
    check(isinstance(b.get("full_probes_cost_percent"), float), "A/B figure: %r" % b.get("full_probes_cost_percent"))
    check(b["full_probes_programs_runs_per_conn"] > 0, "the full set's own programs ran")
    eq(b["baseline_full_probes_programs_runs"], 0, "the baseline ran without them")
    eq(b["scale_accepts_counted"], b["scale_held"], "scale: every held connection counted")
    eq(b["scale_events_lost"], 0, "scale: events lost")
    check(b["burst_drops_ss"] > 0, "the burst overflowed the queue")
    eq(b["burst_drops_counted"], b["burst_drops_ss"], "burst: drops counted vs ss d<N>")
    eq(b["burst_accepts_counted"], b["burst_accepts_server"], "burst: accepts vs the server's count")
    eq(b["burst_events_lost"], 0, "burst: events lost")
    check("wrote" in r.stdout and "per-connection cost" in r.stdout, "the table was printed")
