#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: the seed's load test. A WebSocket+STOMP server with Tomcat's
# defaults (acceptCount 100, maxConnections 8192) is loaded at 1,000, 5,000
# and 10,000 connects/s while connscope watches it; each phase prints what
# the clients got and connscope's verdict, then the post-mortem.
# --short: the same story at a tenth of the scale (used by make test).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build

if [ "$(id -u)" != 0 ]; then
	echo "make demo: connscope loads BPF programs: run as root (sudo make demo)" >&2
	exit 1
fi
if [ "${1:-}" = "--short" ]; then
	CAP=500 BACKLOG=16 HOLD=3.5 TIMEOUT=2
	PHASES=("200 1" "500 1" "1500 0.6")
else
	CAP=8192 BACKLOG=100 HOLD=4 TIMEOUT=3
	PHASES=("1000 2" "5000 1.5" "10000 1.2")
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
for _ in $(seq 50); do curl -sf "http://$api/healthz" >/dev/null && break; sleep 0.1; done

echo "== connscope demo: WebSocket+STOMP server on 127.0.0.1:$port (PID $srv_pid)"
echo "   backlog $BACKLOG, connection cap $CAP (Tomcat's acceptCount / maxConnections);"
echo "   clients connect, upgrade, STOMP CONNECT, SEND, and stay connected ${HOLD}s"
echo "   connscope: http://$api/metrics  http://$api/api/v1/diagnosis"
n=0
for phase in "${PHASES[@]}"; do
	n=$((n + 1))
	set -- $phase
	rate=$1 secs=$2
	echo
	echo "== phase $n: $rate connects/s for ${secs}s"
	t0=$(date +%s.%N)
	$B/connscope-load "127.0.0.1:$port" --rate "$rate" --duration "$secs" --timeout "$TIMEOUT" \
		--hold "$HOLD" --websocket /ws --stomp --message '{"rider":42,"lat":52.52,"lon":13.40}' \
		2> "$tmp/load.err" | sed 's/^/   /'
	window=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a + 1.5 }')
	sleep 0.6 # one more tick into history
	verdict=$(curl -s "http://$api/api/v1/diagnosis?window=${window}s&format=text")
	echo "phase $n verdict: $(echo "$verdict" | grep -m1 '^verdict: ' | sed 's/^verdict: \([a-z_]*\).*/\1/')"
	echo "$verdict" | grep -v -e '^verdict: ' -e '^$' | sed 's/^/   /'
done

echo
echo "== post-mortem (connscope, on SIGINT)"
kill -INT "$cs_pid"
wait "$cs_pid" || true
cs_pid=
cat "$tmp/cs.out"
left=$(bpftool link list 2>/dev/null | grep -c 'prog' || true)
echo
echo "connscope detached; BPF links left on this machine: $left"
