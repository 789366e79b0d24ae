#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A STOMP-over-WebSocket broker written independently of connscope's C code,
that behaves like Spring's simple broker: it never sends RECEIPT frames.
Modes: --error-on-send (answers SEND with an ERROR frame and closes),
--broadcast DEST (every SEND is pushed as a MESSAGE to DEST's subscribers),
--heartbeat MS (insists on heart-beats both ways, closes a silent client).
It counts the frames it saw and sent itself and prints them as
'STATS {json}' on SIGUSR1 and on SIGTERM."""
import argparse, base64, hashlib, json, os, selectors, signal, socket, struct, time

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--error-on-send", metavar="TEXT", default=None, help="ERROR frame message for every SEND")
p.add_argument("--broadcast", metavar="DEST", default=None, help="push every SEND to DEST's subscribers")
p.add_argument("--heartbeat", type=int, default=0, metavar="MS", help="insist on heart-beats every MS")
a = p.parse_args()

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
stats = {"connections": 0, "upgrades": 0, "connect": 0, "send": 0, "subscribe": 0, "receipt_requested": 0,
         "receipts_sent": 0, "errors_sent": 0, "messages_sent": 0, "subscribers_delivered": 0,
         "heartbeats_sent": 0, "heartbeats_received": 0, "closed_silent": 0, "closed_by_client": 0}
want_stats = []


def emit():
    os.write(1, ("STATS " + json.dumps(stats) + "\n").encode())


signal.signal(signal.SIGUSR1, lambda *_: want_stats.append(1))
signal.signal(signal.SIGTERM, lambda *_: want_stats.append(0))


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.upgraded = False
        self.subs = {}  # destination -> subscription id
        self.delivered = False
        self.last_in = time.monotonic()
        self.last_hb = time.monotonic()


def ws_frame(payload, opcode=1):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def stomp(command, headers, body=b""):
    h = "".join("%s:%s\n" % kv for kv in headers)
    return ("%s\n%s\n" % (command, h)).encode() + body + b"\0"


def parse_stomp(payload):
    text = payload.rstrip(b"\0\r\n")
    head, _, body = text.partition(b"\n\n")
    lines = head.decode(errors="replace").split("\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k, v.rstrip("\r"))
    return lines[0].rstrip("\r"), headers, body


sel = selectors.DefaultSelector()
ls = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((a.host, a.port))
ls.listen(4096)
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
conns = {}
subscribers = {}  # destination -> {fd: Conn}


def send(c, data):
    try:
        c.sock.setblocking(True)
        c.sock.sendall(data)
        c.sock.setblocking(False)
        return True
    except OSError:
        return False


def close(c):
    sel.unregister(c.sock)
    for d in c.subs:
        subscribers.get(d, {}).pop(c.sock.fileno(), None)
    conns.pop(c.sock.fileno(), None)
    c.sock.close()


def on_stomp(c, payload):
    if not payload.strip(b"\r\n"):
        stats["heartbeats_received"] += 1
        return True
    cmd, h, body = parse_stomp(payload)
    if cmd in ("CONNECT", "STOMP"):
        stats["connect"] += 1
        hb = "%d,%d" % (a.heartbeat, a.heartbeat) if a.heartbeat else "0,0"
        return send(c, ws_frame(stomp("CONNECTED", [("version", "1.2"), ("heart-beat", hb)])))
    if cmd == "SUBSCRIBE":
        stats["subscribe"] += 1
        c.subs[h.get("destination", "")] = h.get("id", "0")
        subscribers.setdefault(h.get("destination", ""), {})[c.sock.fileno()] = c
        return True
    if cmd == "SEND":
        stats["send"] += 1
        if "receipt" in h:
            stats["receipt_requested"] += 1  # and, like Spring's simple broker, no RECEIPT
        if a.error_on_send is not None:
            stats["errors_sent"] += 1
            send(c, ws_frame(stomp("ERROR", [("message", a.error_on_send), ("content-type", "text/plain")],
                                   b"the broker refuses every SEND")))
            return False  # STOMP: the server closes after an ERROR frame
        if a.broadcast:
            for fd, s in list(subscribers.get(a.broadcast, {}).items()):
                frame = stomp("MESSAGE", [("destination", a.broadcast), ("subscription", s.subs[a.broadcast]),
                                          ("message-id", str(stats["messages_sent"]))], body)
                if send(s, ws_frame(frame)):
                    stats["messages_sent"] += 1
                    if not s.delivered:
                        s.delivered = True
                        stats["subscribers_delivered"] += 1
        return True
    if cmd == "DISCONNECT":
        return False
    return True


def on_data(c):
    if not c.upgraded:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return len(c.buf) < 8192
        head = c.buf[:end].decode(errors="replace").split("\r\n")
        c.buf = c.buf[end + 4:]
        key = next((l.split(":", 1)[1].strip() for l in head if l.lower().startswith("sec-websocket-key:")), None)
        if not key:
            send(c, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        acc = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        stats["upgrades"] += 1
        c.upgraded = True
        if not send(c, ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n" % acc).encode()):
            return False
    while len(c.buf) >= 2:
        b0, b1 = c.buf[0], c.buf[1]
        n, i = b1 & 0x7F, 2
        if n == 126:
            if len(c.buf) < 4:
                return True
            n, i = struct.unpack("!H", c.buf[2:4])[0], 4
        elif n == 127:
            if len(c.buf) < 10:
                return True
            n, i = struct.unpack("!Q", c.buf[2:10])[0], 10
        mask = b""
        if b1 & 0x80:
            mask, i = c.buf[i:i + 4], i + 4
        if len(c.buf) < i + n:
            return True
        data = c.buf[i:i + n]
        if mask:
            data = bytes(x ^ mask[j & 3] for j, x in enumerate(data))
        c.buf = c.buf[i + n:]
        if b0 & 0x0F == 8:
            stats["closed_by_client"] += 1
            return False
        if b0 & 0x0F == 1 and not on_stomp(c, data):
            return False
    return True


print("READY %d" % ls.getsockname()[1], flush=True)
while True:
    while want_stats:
        emit()
        if want_stats.pop() == 0:
            raise SystemExit(0)
    for key, _ in sel.select(0.05):
        if key.fileobj is ls:
            for _ in range(256):
                try:
                    s, _ = ls.accept()
                except (BlockingIOError, InterruptedError):
                    break
                s.setblocking(False)
                stats["connections"] += 1
                conns[s.fileno()] = Conn(s)
                sel.register(s, selectors.EVENT_READ)
            continue
        c = conns.get(key.fileobj.fileno())
        if not c:
            continue
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:
            close(c)
            continue
        c.last_in = time.monotonic()
        c.buf += data
        if not on_data(c):
            close(c)
    if a.heartbeat:
        now, every = time.monotonic(), a.heartbeat / 1000
        for c in list(conns.values()):
            if not c.upgraded:
                continue
            if now - c.last_in > 3 * every:
                stats["closed_silent"] += 1
                close(c)
            elif now - c.last_hb >= every:
                c.last_hb = now
                if send(c, ws_frame(b"\n")):
                    stats["heartbeats_sent"] += 1
