# SPDX-License-Identifier: MIT
"""What connscope watches on the kernel it runs on: each probe's form
(full, reduced, unavailable) from the running kernel's BTF, each source's
health, the minimum kernel, and the counts that differ by kernel (resets
without a reason before 6.10). Runs on the host and in the 6.1 guest
(tests/kernels/run-guest.sh); tests named guest_test_* run only in a guest,
where they may unload modules."""
import os, platform, re, signal, subprocess, time
from lib import (CONNSCOPE, Connscope, Netns, Server, check, client, eq, run_connscope, settle,
                 tcp_ext, wait_until)

KERNEL = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", platform.release()).groups())
# tcp_send_reset(sk, skb, reason) and enum sk_rst_reason: Linux 6.10
RESET_REASONS = KERNEL >= (6, 10)
REDUCED_RESETS = "reset reasons need Linux 6.10; counting resets without a reason"


def probes(cs):
    return {p["probe"]: p for p in cs.json("/api/v1/snapshot")["probes"]}


def test_every_probe_reported_with_its_form():
    srv = Server()
    cs = Connscope(srv.pid, extra=["-v"])
    snap = probes(cs)
    m = cs.metrics()
    for name in ("sys_exit_accept4", "sched_process_fork", "inet_sock_set_state", "tcp_send_reset",
                 "tcp_receive_reset", "tcp_retransmit_synack", "mark_victim"):
        check(name in snap, "probe %s listed in the snapshot: %r" % (name, sorted(snap)))
        eq(snap[name]["state"] in ("active", "reduced"), True, "%s attached: %r" % (name, snap[name]))
    for name, p in snap.items():
        eq(m.get1("connscope_probe_active", probe=name), 0 if p["state"] == "unavailable" else 1,
           "connscope_probe_active{probe=%s} vs snapshot %s" % (name, p["state"]))
        eq(m.get1("connscope_probe_reduced", probe=name), 1 if p["state"] == "reduced" else 0,
           "connscope_probe_reduced{probe=%s}" % name)
    for src in ("sock_diag", "procfs", "tcp_ext", "bpf"):
        eq(m.get1("connscope_source_up", source=src), 1, "connscope_source_up{source=%s}" % src)
    cs.stop()
    err = "\n".join(cs.err_lines)
    if RESET_REASONS:
        eq(snap["tcp_send_reset"]["state"], "active", "tcp_send_reset with reasons")
        check(REDUCED_RESETS not in err, "no reduced-form line on %d.%d" % KERNEL)
    else:
        eq(snap["tcp_send_reset"]["state"], "reduced", "tcp_send_reset before 6.10")
        eq(snap["tcp_send_reset"]["why"], REDUCED_RESETS, "why it is reduced")
        # -v lists every probe; the reduced one says so, once
        eq(err.count(REDUCED_RESETS), 1, "stderr names the reduced form once:\n" + err[-1500:])
        check("probe tcp_send_reset: reduced: " + REDUCED_RESETS in err, "-v line:\n" + err[-1500:])
