#!/usr/bin/env bash
# The gateway standalone as a new user would try it (issue 16's check): `squadron gateway -c FILE`
# in front of two C++ hello instances on loopback, under a bounded wrk load (keep-alive, -c16,
# DURATION): one hello SIGKILLed a quarter in, the file rewritten (a third hello in, the dead
# one out) and SIGHUP at half, rewritten again (its routes widened) at three quarters, which the
# gateway sees by itself. Prints wrk's count and failures (non-2xx, socket errors), each hello's
# share from its own /metrics, and what the gateway logged.
#
#   bench/standalone.sh                  # 8 s
#   DURATION=20 bench/standalone.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
PY=/usr/bin/python3
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap
source bench/lib.sh

work=$(mktemp -d)
declare -A HELLO
gateway_pid=
cleanup() {
  for p in "${HELLO[@]}" $gateway_pid; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_hello() {  # name -> its port, in PORT_<name>
  local port
  port=$(free_port)
  build/bin/hello --threads 1 --port "$port" >"$work/$1.log" 2>&1 &
  HELLO[$1]=$!
  eval "PORT_$1=$port"
  wait_port "$port"
}
requests_of() {  # name -> the /hello requests it answered
  curl -s "http://127.0.0.1:$(eval echo "\$PORT_$1")/metrics" |
    awk '/^squadron_http_requests_total\{.*route="\/hello"/ {n += $2} END {print n + 0}'
}
write_file() {  # routes endpoints...
  local routes=$1
  shift
  {
    echo "listen: 127.0.0.1:$GATEWAY_PORT"
    echo "upstreams:"
    echo "  hello:"
    echo "    endpoints: [$(IFS=,; echo "$*")]"
    echo "    routes: [$routes]"
  } >"$work/gateway.yaml.new"
  mv "$work/gateway.yaml.new" "$work/gateway.yaml"
}

start_hello a; start_hello b
GATEWAY_PORT=$(free_port)
write_file /hello "127.0.0.1:$PORT_a" "127.0.0.1:$PORT_b"
build/bin/squadron gateway -c "$work/gateway.yaml" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_port "$GATEWAY_PORT"

wrk -t1 -c16 -d"${DURATION}s" "http://127.0.0.1:$GATEWAY_PORT/hello" >"$work/wrk.log" 2>&1 &
wrk_pid=$!
quarter=$(awk -v d="$DURATION" 'BEGIN {print d / 4}')
sleep "$quarter"
before_kill_a=$(requests_of a); before_kill_b=$(requests_of b)
kill -KILL "${HELLO[b]}"; wait "${HELLO[b]}" 2>/dev/null || true; unset 'HELLO[b]'
echo "t=${quarter}s: hello b SIGKILLed (a had answered $before_kill_a, b $before_kill_b)"
sleep "$quarter"
start_hello c
write_file /hello "127.0.0.1:$PORT_a" "127.0.0.1:$PORT_c"
kill -HUP "$gateway_pid"
echo "t=$(awk -v q="$quarter" 'BEGIN {print 2 * q}')s: the file names a and c (a new one, in slow start), SIGHUP"
sleep "$quarter"
write_file "/hello, /other" "127.0.0.1:$PORT_a" "127.0.0.1:$PORT_c"
echo "t=$(awk -v q="$quarter" 'BEGIN {print 3 * q}')s: the file changed again (a route more), no signal"
wait "$wrk_pid"

echo
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$work/wrk.log" || true
failed=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$work/wrk.log")
echo "failed requests: $failed"
echo "answered by: a $(requests_of a), c $(requests_of c), b $before_kill_b before its kill"
echo "balance before the kill: a/b $(awk -v a="$before_kill_a" -v b="$before_kill_b" 'BEGIN {printf "%.2f", a / b}')"
echo "the gateway's log:"
sed 's/^/  /' "$work/gateway.log"
[ "$failed" = 0 ]
