#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes README's picture of the live page (dashboards/page.png): the demo server
# capped at 600 connections under three load phases, connscope attached, the
# page taken by headless Chromium. Needs root and `make all`; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
out=$(mktemp -d)
cleanup() { kill "${cs:-}" "${demo:-}" 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
$B/connscope-demo-server --listen 127.0.0.1:0 --max-connections 600 --backlog 100 >"$out/demo" &
demo=$!
for _ in $(seq 50); do grep -q READY "$out/demo" && break; sleep 0.1; done
port=$(awk '/READY/ {print $2}' "$out/demo")
$B/connscope --pid "$demo" --listen 127.0.0.1:19477 >"$out/cs" 2>&1 &
cs=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19477/healthz >/dev/null && break; sleep 0.1; done
$B/connscope-load "127.0.0.1:$port" --steps 100,300,800 --step-seconds 8 --hold 12 --timeout 3 \
	--message hi --source 127.0.0.1-127.0.0.8 >/dev/null
sleep 2
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
	--hide-scrollbars --user-data-dir="$out/profile" --virtual-time-budget=8000 \
	--window-size=1280,1520 --screenshot=dashboards/page.png http://127.0.0.1:19477/ 2>/dev/null
echo "dashboards/page.png written"
