# SPDX-License-Identifier: MIT
"""A listener the target closes while connscope watches: the snapshot keeps
it with the wall-clock time it stopped (between the test's own clock
readings around the close), resets to its address after the close are
counted as the target's, and the reset_no_listener evidence names it."""
import os, signal, time
from lib import Connscope, Netns, Server, check, client, eq, settle


def listener(snap, label):
    found = [l for l in snap["listeners"] if l["listener"] == label]
    check(len(found) == 1, "one listener entry %s in %r" % (label, snap["listeners"]))
    return found[0]


def test_stopped_listener_has_its_time():
    ns = Netns()  # namespace-wide TcpExt: see test_healthy
    srv = Server("--close-listener-on-usr2", netns=ns)
    label = "127.0.0.1:%d" % srv.port
    cs = Connscope(srv.pid)
    check("stopped_at" not in listener(cs.json("/api/v1/snapshot"), label), "listening: no stopped_at")
    before = time.time()
    os.kill(srv.pid, signal.SIGUSR2)
    srv.wait_line("CLOSED")
    after = time.time()
    r = client("127.0.0.1", srv.port, 20, hold=0.2, timeout=1.0, netns=ns)
    eq(r["refused"], 20, "clients refused by the closed listener")
    l = settle(lambda: listener(cs.json("/api/v1/snapshot"), label).get("stopped_at"), what="stopped_at")
    check(before <= l <= after, "stopped_at %.6f within the close's %.6f .. %.6f" % (l, before, after))
    eq(l, listener(cs.json("/api/v1/snapshot"), label)["stopped_at"], "stopped_at stays")
    resets = settle(lambda: cs.json("/api/v1/snapshot")["tcp_resets_sent_total"].get("no_socket"),
                    what="no_socket resets")
    eq(resets, r["refused"], "resets to the stopped listener vs the clients' refusals")
    d = cs.json("/api/v1/diagnosis?window=all")
    c = [c for c in d["causes"] if c["cause"] == "reset_no_listener"]
    check(c, "reset_no_listener named: %r" % [c["cause"] for c in d["causes"]])
    ev = c[0]["evidence"]
    eq(ev["resets_no_socket"], r["refused"], "evidence resets")
    eq(ev["stopped_listener"], label, "evidence names the stopped listener")
    since = ev["seconds_since_listener_stopped"]
    check(0 <= since <= time.time() - before + 0.01, "seconds since it stopped: %r" % since)
    cs.stop()
