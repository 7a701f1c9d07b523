#!/usr/bin/env bash
# Fault isolation through the gateway: hello's p99 (wrk, 10 s) alone, then again while 500
# requests hang on a second service whose instance never answers (its route timeout: 30 s, so
# they stay in flight the whole run). Prints both p99s and their ratio (the issue's bar: 2x).
#
#   bench/isolation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
HANGING=${HANGING:-500}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

start_fleet <<YAML
name: isolation
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    replicas: 2
    routes: [/hello]
  stuck:
    command: [$PY, $PWD/tests/integration/services/flaky.py]
    routes: [/stuck]
    proxy: { timeout: 30s, retries: 0 }
YAML

p99() {
  wrk -t1 -c32 -d"$DURATION" --latency "http://127.0.0.1:$gateway/hello" |
    awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'
}
base=$(p99)
# HANGING connections, each with a request to the stuck service that will not be answered.
$PY - "$gateway" "$HANGING" <<'PYEOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /stuck/hang HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
time.sleep(60)
PYEOF
hold_pid=$!
pids+=("$hold_pid")
sleep 2
loaded=$(p99)
echo "hello p99 through the gateway: alone ${base} ms; with ${HANGING} requests hanging on another service ${loaded} ms"
awk -v a="$base" -v b="$loaded" 'BEGIN {printf "ratio %.2f (bar: 2.00)\n", b/a}'
