#!/usr/bin/env bash
# HTTP/2 on the front door: the Squadron gateway, nginx (`listen ... ssl http2`) and HAProxy
# (`alpn h2,http/1.1`), each one thread or worker on CPU 1 with the same certificate before the
# same build/bin/hello (HTTP/1.1 upstream, kept alive), as bench/front.sh sets them up; h2load
# (Debian's nghttp2-client) on CPU 0 over TLS with h2 by ALPN: CLIENTS connections with STREAMS
# concurrent streams each. In interleaved rounds, each server in turn: req/s, p99 (from h2load's
# per-request log) and the server's CPU time per request. Prints per-round figures, medians and
# the ratios squadron/nginx and squadron/haproxy (medians of per-round ratios).
#
#   bench/h2.sh                               # 5 rounds of 10 s, 16 connections x 100 streams
#   ROUNDS=3 DURATION=5 bench/h2.sh
#   UPSTREAM_H2=1 bench/h2.sh                 # HTTP/2 to the upstream too (bench/front.sh)
#   SAME_HEADERS=1 SAME_LIMITS=1 bench/h2.sh  # the peers add the gateway's fields, and HAProxy
#                                             # queues past 1,024 upstream connections as it does
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
STREAMS=${STREAMS:-100}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
IDLE=0
PY=/usr/bin/python3

[ -x build/bin/squadron ] && [ -x build/bin/hello ] || scripts/build
command -v h2load >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
limit=$(ulimit -n)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
FRONT_H2=1
HAPROXY_MAXCONN=4000  # its streams count against it: room for CLIENTS x STREAMS
source bench/front.sh
for s in $servers; do  # each speaks h2 before anything is measured
  v=$(curl -sS -o /dev/null -w '%{http_version}' --http2 --cacert "$work/site.pem" "https://localhost:${PORTS[$s]}/hello")
  [ "$v" = 2 ] || { echo "$s does not answer over h2 (HTTP/$v)" >&2; exit 1; }
done

h2load_rounds "req/s" "https://127.0.0.1:%s/hello"
