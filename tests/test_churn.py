# SPDX-License-Identifier: MIT
"""Connection accounting under churn: after tens of thousands of short
connections to a server whose workers accept on every core (so accept() can
take a child before its state change to ESTABLISHED is traced, and a peer's
FIN or reset can land while accept() returns), connscope's accepts, open and
closed connections equal the server's own counts, exactly."""
import os, signal, subprocess
from lib import BUILD, Connscope, Netns, Server, check, client, eq, pinned, wait_until

LOAD = os.path.join(BUILD, "connscope-load")
CHURN_SECONDS = 30


def test_churn_30s_accounting_is_exact():
    # a namespace of its own: this rate must not overflow others' SYN queues
    ns = Netns()
    srv = Server("--workers", 2, "--mode", "close_on_eof", "--backlog", 4096, netns=ns)
    cs = Connscope(srv.pid)
    os.kill(srv.pid, signal.SIGUSR1)
    srv.wait_line("WORKERS")
    out = subprocess.run(["ip", "netns", "exec", ns.name, LOAD, "127.0.0.1:%d" % srv.port, "--json", "--rate", "3000", "--duration",
                          str(CHURN_SECONDS), "--timeout", "5"], capture_output=True, text=True,
                         timeout=CHURN_SECONDS + 60)
    eq(out.returncode, 0, "connscope-load exit (stderr %r)" % out.stderr[-300:])
    # every connection the server accepted it also closed: nothing is left open
    wait_until(lambda: srv.total("accepted") > 0 and srv.total("accepted") == srv.total("closed"), 60,
               "server to close every connection it accepted")
    lbl = "127.0.0.1:%d" % srv.port
    m, (accepted, closed) = pinned(lambda: (srv.total("accepted"), srv.total("closed")), cs.metrics,
                                   what="server counts")
    check(accepted > 20000, "churn too small to mean anything: %d connections" % accepted)
    eq(m.get1("connscope_accepts_total", listener=lbl), accepted, "accepts vs the server's count")
    eq(m.get1("connscope_connections_open", listener=lbl), accepted - closed,
       "connections open vs the server's own open count")
    eq(m.get1("connscope_connections_closed_before_accept_total", listener=lbl), 0,
       "closed before accept (the server accepted every connection)")
    eq(sum(m.find("connscope_connections_closed_total", listener=lbl).values()), closed,
       "connections closed vs the server's count")
    eq(m.get1("connscope_accept_wait_seconds_count", listener=lbl), accepted, "accept-wait samples")
    eq(sum(m.find("connscope_events_lost_total").values()), 0, "events lost")
    cs.stop()


def test_clients_resetting_before_accept_accounting_is_exact():
    # Clients that reset right after connecting: most resets land while the
    # connection waits in the queue, and accept() still returns it (closed).
    # The server counts it accepted and reset; so must connscope.
    ns = Netns()
    srv = Server("--workers", 2, "--mode", "close_on_eof", "--backlog", 4096, netns=ns)
    cs = Connscope(srv.pid)
    os.kill(srv.pid, signal.SIGUSR1)
    srv.wait_line("WORKERS")
    for _ in range(3):
        r = client("127.0.0.1", srv.port, 1500, netns=ns, hold=0, abort=True)
        eq(r["connected"], 1500, "clients connected")
    wait_until(lambda: srv.total("accepted") == 4500 and srv.total("closed") == 4500, 60,
               "server to accept and close 4500")
    lbl = "127.0.0.1:%d" % srv.port
    m, (accepted, closed, resets) = pinned(lambda: (srv.total("accepted"), srv.total("closed"), srv.total("reset")),
                                           cs.metrics, what="server counts")
    eq(m.get1("connscope_accepts_total", listener=lbl), accepted, "accepts vs the server's count")
    eq(m.get1("connscope_connections_open", listener=lbl), accepted - closed, "connections open vs the server's")
    eq(m.get1("connscope_connections_closed_before_accept_total", listener=lbl), 0,
       "closed before accept (the server accepted every one)")
    eq(m.get1("connscope_connections_closed_total", listener=lbl, initiator="reset"), resets,
       "closed by reset vs the server's ECONNRESETs")
    eq(m.get1("connscope_connection_duration_seconds_count", listener=lbl), closed, "duration samples")
    cs.stop()
