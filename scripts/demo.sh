#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: the seed's load test. A WebSocket+STOMP server with Tomcat's
# defaults (acceptCount 100, maxConnections 8192) is loaded in steps of 1,000,
# 5,000 and 10,000 connects/s (one connscope-load run, clients held) while
# connscope watches it; each step prints what the clients got and, from
# connscope-load --connscope, connscope's verdict; then the post-mortem.
# --short: the same story at a tenth of the scale (used by make test).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build

if [ "$(id -u)" != 0 ]; then
	echo "make demo: connscope loads BPF programs: run as root (sudo make demo)" >&2
	exit 1
fi
if [ "${1:-}" = "--short" ]; then
	CAP=500 BACKLOG=64 HOLD=6 TIMEOUT=2 STEPS=200,500,1500 STEP_SECONDS=0.6 SOURCES=127.0.0.1
else
	CAP=8192 BACKLOG=100 HOLD=8 TIMEOUT=3 STEPS=1000,5000,10000 STEP_SECONDS=1
	# one source address: connect() slows as its ephemeral ports fill (16,000 here)
	SOURCES=127.0.0.1-127.0.0.16
fi

tmp=$(mktemp -d)
srv_pid= cs_pid=
cleanup() {
	[ -n "$cs_pid" ] && kill -TERM "$cs_pid" 2>/dev/null && wait "$cs_pid" 2>/dev/null || true
	[ -n "$srv_pid" ] && kill -TERM "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN: the first line of FILE matching PATTERN, within 10 s
	for _ in $(seq 100); do
		line=$(grep -m1 -e "$2" "$1" 2>/dev/null || true)
		[ -n "$line" ] && { echo "$line"; return 0; }
		sleep 0.1
	done
	echo "demo: timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

$B/connscope-demo-server --listen 127.0.0.1:0 --backlog "$BACKLOG" --max-connections "$CAP" \
	> "$tmp/server.out" &
srv_pid=$!
port=$(wait_for "$tmp/server.out" '^READY' | cut -d' ' -f2)
$B/connscope --pid "$srv_pid" --listen 127.0.0.1:0 --interval 0.5 > "$tmp/cs.out" 2> "$tmp/cs.err" &
cs_pid=$!
api=$(wait_for "$tmp/cs.err" 'serving http' | sed 's|.*http://\([^/]*\)/.*|\1|')

echo "== connscope demo: WebSocket+STOMP server on 127.0.0.1:$port (PID $srv_pid)"
echo "   backlog $BACKLOG, connection cap $CAP (Tomcat's acceptCount / maxConnections);"
echo "   clients connect, upgrade, STOMP CONNECT, SEND, and stay connected ${HOLD}s"
echo "   connscope: http://$api/metrics  http://$api/api/v1/diagnosis"
echo
echo "== load: steps of $STEPS connects/s, ${STEP_SECONDS}s each; after each step, connscope's verdict"
echo "   \$ connscope-load 127.0.0.1:$port --steps $STEPS --step-seconds $STEP_SECONDS --hold $HOLD \\"
echo "       --timeout $TIMEOUT --websocket /ws --stomp --message '{...}' --source $SOURCES \\"
echo "       --connscope http://$api"
$B/connscope-load "127.0.0.1:$port" --steps "$STEPS" --step-seconds "$STEP_SECONDS" --timeout "$TIMEOUT" \
	--hold "$HOLD" --websocket /ws --stomp --message '{"rider":42,"lat":52.52,"lon":13.40}' \
	--source "$SOURCES" --connscope "http://$api" | sed 's/^/   /'

echo
echo "== post-mortem (connscope, on SIGINT)"
kill -INT "$cs_pid"
wait "$cs_pid" || true
cs_pid=
cat "$tmp/cs.out"
left=$(bpftool link list 2>/dev/null | grep -c 'prog' || true)
echo
echo "connscope detached; BPF links left on this machine: $left"
