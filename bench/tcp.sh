#!/usr/bin/env bash
# The gateway's TCP front (protocol: tcp) against HAProxy's `mode tcp` and no proxy at all:
# redis-benchmark (SET and GET, 50 connections, 3-byte values) against one redis-server, directly,
# through HAProxy and through a fleet's gateway (SQUADRON_REDIS_PORT), interleaved per round,
# medians. The proxies each get one thread (the gateway's SQUADRON_THREADS=1, HAProxy nbthread 1)
# and CPU 0; redis-server and the client share CPU 1.
#   bench/tcp.sh                              # ROUNDS=3 REQUESTS=100000
set -euo pipefail
[ -n "${DEBUG:-}" ] && set -x
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v redis-benchmark >/dev/null && command -v haproxy >/dev/null || scripts/bootstrap

# A fleet whose only service is Redis over TCP; its gateway on CPU 0 with one I/O thread (the
# gateway reads SQUADRON_THREADS from the environment `up` passes on).
export SQUADRON_THREADS=1
start_fleet <<YAML
name: tcpbench
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  redis:
    command: [redis-server, --bind, 127.0.0.1, --port, "\${PORT}", --save, "", --appendonly, "no"]
    protocol: tcp
YAML
redis_pid=$(S ps --json | $PY -c "import json,sys; print([i['pid'] for i in json.load(sys.stdin) if i['service']=='redis'][0])")
redis_port=$(port_of redis)
gateway_pid=$(S ps --json | $PY -c "import json,sys; print([i['pid'] for i in json.load(sys.stdin) if i['service']=='gateway'][0])")
# SQUADRON_REDIS_PORT (redis-server writes its title over its environment: read the gateway's
# --internal redis=PORT instead).
through=$(tr '\0' '\n' </proc/"$gateway_pid"/cmdline | awk -F= '$1=="redis" {print $2}')
for t in /proc/"$gateway_pid"/task/*; do taskset -pc 0 "${t##*/}" >/dev/null; done
for t in /proc/"$redis_pid"/task/*; do taskset -pc 1 "${t##*/}" >/dev/null; done
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
listen redis
  bind 127.0.0.1:$haproxy_port
  server r1 127.0.0.1:$redis_port
CFG
taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
pids+=($!)
wait_port "$haproxy_port"

rate() {  # rate PORT TEST: requests a second
  taskset -c 1 redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -c 50 -q 2>/dev/null |
    awk -F'[: ]+' '/requests per second/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) {print $i; exit}}'
}
declare -A all
for round in $(seq "$ROUNDS"); do
  line="round $round:"
  for t in set get; do
    for who in direct haproxy squadron; do
      case $who in
        direct) p=$redis_port ;; haproxy) p=$haproxy_port ;; squadron) p=$through ;;
      esac
      v=$(rate "$p" "$t")
      all[$t-$who]+="$v "
      line+=" $t/$who $v"
    done
  done
  echo "$line"
done
for t in set get; do
  d=$(median "${all[$t-direct]}"); h=$(median "${all[$t-haproxy]}"); s=$(median "${all[$t-squadron]}")
  echo "== $t, median of $ROUNDS (requests/s): direct $d, haproxy $h, squadron $s;" \
    "squadron/haproxy $(awk -v a="$h" -v b="$s" 'BEGIN {printf "%.2f", b/a}')x," \
    "squadron/direct $(awk -v a="$d" -v b="$s" 'BEGIN {printf "%.2f", b/a}')x"
done
