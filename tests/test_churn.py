# SPDX-License-Identifier: MIT
"""Connection accounting under churn: after tens of thousands of short
connections to a server whose workers accept on every core (so accept() can
take a child before its state change to ESTABLISHED is traced), connscope's
accepts and open connections equal the server's own counts, exactly."""
import os, signal, subprocess
from lib import BUILD, Connscope, Netns, Server, check, eq, pinned, wait_until

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
