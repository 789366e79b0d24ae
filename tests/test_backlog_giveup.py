# SPDX-License-Identifier: MIT
"""Clients that give up while queued in the accept backlog of a server at its
connection cap, accepted later: counted as having left in the backlog (equal
to what the server itself found on accept), never as peers that gave up on
the app's workers, so accepted_not_served is not named."""
from lib import Connscope, Counted, causes, check, client, eq, settle, wait_until


def test_left_in_backlog_is_not_accepted_not_served():
    # 10 in, 20 queued; every client sends a request and leaves after 1 s,
    # while the server holds its first 10 for 1.5 s: the 20 are accepted
    # after their peers closed, and the greeting they get back is answered
    # with a reset by the closed client
    srv = Counted("cap_greeter.py", "--cap", 10, "--hold", 1.5)
    cs = Connscope(srv.pid)
    r = client("127.0.0.1", srv.port, 30, send="GET / HTTP/1.0\r\n\r\n", hold=1.0)
    eq(r["connected"], 30, "clients connected (the backlog holds the rest)")
    wait_until(lambda: srv.stats().get("accepted") == 30, 15, "the server to accept all 30")
    wait_until(lambda: srv.stats().get("open") == 0, 15, "the server to close all 30")
    st = srv.stats()
    eq(st["peak_open"], 10, "the cap held")
    check(st["left_in_backlog"] > 0, "some peers left while queued: %r" % st)
    m = settle(lambda: cs.metrics().get1("connscope_connections_left_in_backlog_total", listener=srv.listener),
               what="left in backlog")
    eq(m, st["left_in_backlog"], "left in backlog vs the server's TCP_INFO on accept")
    m = cs.metrics()
    eq(m.get1("connscope_connections_abandoned_unread_total", listener=srv.listener), 0,
       "no peer gave up on the app (the server read every connection it had before its peer left)")
    eq(m.get1("connscope_connections_unread", listener=srv.listener), 0, "nothing left unread")
    d = cs.json("/api/v1/diagnosis?window=all")
    check("accepted_not_served" not in causes(d), "not accepted_not_served: %r" % causes(d))
    ports = [p for p in cs.json("/api/v1/snapshot")["ports"] if p["listener"] == srv.listener]
    eq(ports[0]["connections_left_in_backlog_total"], st["left_in_backlog"], "JSON vs the server's")
    cs.stop()
