# SPDX-License-Identifier: MIT
"""What counts as the target's: only its own sockets (listeners as bound,
connections accepted from them), never another process's listener on the
same port at another address, nor connects to an address nobody listens on;
softirq-side events carry no bystander's PID."""
import subprocess
from lib import (RESET_REASONS, Connscope, Netns, Server, causes, check, client, eq, pinned, settle, ss_listener,
                 wait_until)

PORT = 18081


def ss_sockets(ns, host, port):
    """Connections on host:port that the kernel has not ended (neither
    listening nor in TIME-WAIT)."""
    out = subprocess.run(["ip", "netns", "exec", ns.name, "ss", "-tnH", "state", "connected",
                          "exclude", "time-wait", "src", "%s:%d" % (host, port)],
                         capture_output=True, text=True, check=True).stdout
    return [l for l in out.splitlines() if l.strip()]


def target_numbers(cs, lbl):
    m = cs.metrics()
    return {
        "accepts": m.get1("connscope_accepts_total", listener=lbl),
        "closed_before_accept": m.get1("connscope_connections_closed_before_accept_total", listener=lbl),
        "open": m.get1("connscope_connections_open", listener=lbl),
        "resets_sent": sum(m.find("connscope_tcp_resets_sent_total").values()),
        "resets_received": m.get1("connscope_tcp_resets_received_total"),
        "synack_retransmits": sum(m.find("connscope_synack_retransmits_total").values()),
    }


def test_unrelated_listener_and_scan_on_the_same_port():
    with Netns() as ns:
        srv = Server("--mode", "close_on_eof", "--port", PORT, netns=ns)
        # another process on the same port at another address: never accepts,
        # so what reaches it closes in its queue, and it aborts nothing
        other = Server("--port", PORT, "--host", "127.0.0.2", "--backlog", 4, "--max-accepts", 0, netns=ns)
        cs = Connscope(srv.pid)
        lbl = "127.0.0.1:%d" % PORT
        r = client("127.0.0.1", PORT, 30, netns=ns, hold=0.2)
        eq(r["connected"], 30, "clients of the target")
        wait_until(lambda: srv.total("closed") == 30, 15, "target to close 30")
        wait_until(lambda: not ss_sockets(ns, "127.0.0.1", PORT), 15, "the target's connections to end")
        before, accepted = pinned(lambda: srv.total("accepted"), lambda: target_numbers(cs, lbl))
        eq(before["accepts"], accepted, "target's accepts vs its own count")
        # the neighbour: connections that close in its queue, SYN-ACK retransmits
        # to clients whose handshake it drops, resets as they give up
        client("127.0.0.2", PORT, 60, netns=ns, send="x", hold=0.3, timeout=1.5)
        # a scan of an address where nothing listens on that port: resets with no socket
        r = client("127.0.0.3", PORT, 80, netns=ns, hold=0.0, timeout=1.0)
        eq(r["refused"], 80, "connects to 127.0.0.3 refused")
        check(other.p.poll() is None, "the neighbour still runs")
        check(ss_listener(PORT, ns, host="127.0.0.2")[2] > 0, "the neighbour's queue overflowed")
        # its exit closes what waits in its queue: closed before accept, but not the target's
        other.kill()
        after, _ = pinned(lambda: srv.total("accepted"), lambda: target_numbers(cs, lbl))
        eq(after, before, "the target's numbers after the neighbour's traffic and the scan")
        d = cs.json("/api/v1/diagnosis")
        eq(d["verdict"], "healthy", "verdict")
        cs.stop()


def test_dual_stack_target_and_reset_events_carry_no_bystander_pid():
    with Netns() as ns:
        srv = Server("--mode", "abort_on_data", "--host", "::", "--port", PORT, netns=ns)
        cs = Connscope(srv.pid)
        client("127.0.0.1", PORT, 20, netns=ns, send="unread", hold=1.0)  # v4-mapped
        client("::1", PORT, 10, netns=ns, send="unread", hold=1.0)
        wait_until(lambda: srv.total("closed") == 30, 20, "server to abort 30")
        sent, closed = pinned(lambda: srv.total("closed"), lambda: cs.metrics().get1(
            "connscope_tcp_resets_sent_total", reason="tcp_abort_on_close"))
        eq(sent, closed, "aborting resets of a dual-stack listener vs the server's closes")
        events = [e for e in cs.json("/api/v1/events?limit=100")["events"] if e["kind"] == "reset_sent"]
        check(events, "reset events")
        for e in events:
            check(e.get("pid") in (None, 0, srv.pid), "reset event names pid %r: %r" % (e.get("pid"), e))
            check(e.get("remote"), "reset event has the client's address: %r" % e)
        cs.stop()


def nstat_ns(ns, name):
    out = subprocess.run(["ip", "netns", "exec", ns.name, "nstat", "-az", name],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("nstat has no %s: %r" % (name, out))


RAW_ACKS = r'''
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
src = dst = socket.inet_aton("127.0.0.1")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(n):
    hdr = struct.pack("!HHIIBBHHH", 40000 + i, port, 1000 + i, 5000 + i, 5 << 4, 0x10, 1024, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    raw.sendto(hdr, ("127.0.0.1", 0))
'''


def test_listener_reset_events_name_the_client():
    """A listener's own resets (an ACK that no handshake and no cookie
    matches, as an ACK scan sends: reason tcp_flags, or passive_reset before
    6.10) have no peer in the socket: the event names the client from the
    segment, and the count equals what the namespace sent (the listener is
    its only sender of resets). They are no abort: reset_on_close is not
    named (before 6.10 they were counted as aborts, and a netfilter test in
    the 6.1 guest saw stray ACKs at the listener named reset_on_close)."""
    with Netns() as ns:
        srv = Server("--max-accepts", 0, netns=ns)
        cs = Connscope(srv.pid)
        lbl = "127.0.0.1:%d" % srv.port
        subprocess.run(["ip", "netns", "exec", ns.name, "python3", "-c", RAW_ACKS, str(srv.port), "20"],
                       check=True, timeout=30)
        sent = settle(lambda: nstat_ns(ns, "TcpOutRsts"), quiet=1.2, what="TcpOutRsts")
        eq(sent, 20, "the listener answered each stray ACK with a reset")
        counted = settle(lambda: sum(cs.metrics().find("connscope_tcp_resets_sent_total").values()),
                         what="resets counted")
        eq(counted, sent, "resets counted vs the namespace's TcpOutRsts")
        events = [e for e in cs.json("/api/v1/events?limit=100")["events"]
                  if e["kind"] == "reset_sent" and e.get("local") == lbl]
        check(events, "reset events from the listener")
        reason = "tcp_flags" if RESET_REASONS else "passive_reset"
        for e in events:
            eq(e.get("reason"), reason, "reason")
            host, _, port = e.get("remote", "").rpartition(":")
            check(host == "127.0.0.1" and 40000 <= int(port or 0) < 40020, "the event names the client: %r" % e)
        eq(cs.metrics().get1("connscope_tcp_resets_sent_total", reason=reason), sent, "resets with reason " + reason)
        d = cs.json("/api/v1/diagnosis")
        check("reset_on_close" not in causes(d), "a listener's resets are no abort: %r" % causes(d))
        eq(d["verdict"], "healthy", "verdict")
        cs.stop()
