#!/usr/bin/env bash
# Two builds of the gateway side by side, in front of one hello: which one costs less per request?
# This machine's speed swings by half within seconds, so runs minutes apart (bench/gateway.sh of
# one tree, then of the other) can disagree by more than the change measured. Here both gateways
# run at once on CPU 1 (one I/O thread each) and wrk (-t1 -c64, CPU 0) drives them in turn, in
# short windows, the order alternating: each pair of windows sees the same machine. Prints each
# pair, then the median of the per-pair ratios new/old of CPU time per request and of requests.
# With IR=1 it also counts the user-space instructions per request of each build under callgrind
# (valgrind): deterministic, so a change of a few percent shows where timing cannot.
# With TARGET=hello it compares the two builds' hello (the SDK's server) the same way, directly.
#
#   git worktree add /tmp/old <commit> && (cd /tmp/old && scripts/build)
#   bench/builds.sh /tmp/old                 # this tree is the new one
#   PAIRS=30 WINDOW=2s IR=1 bench/builds.sh /tmp/old /path/to/new
#   TARGET=hello IR=1 bench/builds.sh /tmp/old
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/builds.sh OLD_TREE [NEW_TREE]  (trees built: build/bin/squadron)" >&2; exit 2; }
OLD=$(cd "$1" && pwd); NEW=$(cd "${2:-.}" && pwd)
PAIRS=${PAIRS:-20}
WINDOW=${WINDOW:-2s}
TARGET=${TARGET:-gateway}
[ "$TARGET" = gateway ] || [ "$TARGET" = hello ] || { echo "TARGET is gateway or hello" >&2; exit 2; }
PY=/usr/bin/python3
for t in "$OLD" "$NEW"; do
  [ -x "$t/build/bin/squadron" ] || { echo "$t/build/bin/squadron is missing: build that tree first (scripts/build)" >&2; exit 2; }
done
source bench/lib.sh

if [ "$TARGET" = hello ]; then
  work=$(mktemp -d)
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
  OLD_PORT=$(free_port); NEW_PORT=$(free_port)
  PORT=$OLD_PORT taskset -c 1 "$OLD/build/bin/hello" --threads 1 >"$work/old.log" 2>&1 &
  old_pid=$!; pids+=("$old_pid")
  PORT=$NEW_PORT taskset -c 1 "$NEW/build/bin/hello" --threads 1 >"$work/new.log" 2>&1 &
  new_pid=$!; pids+=("$new_pid")
  wait_port "$OLD_PORT"; wait_port "$NEW_PORT"
else
HELLO_PORT=$(free_port); OLD_PORT=$(free_port)
export SQUADRON_THREADS=1  # the fleet's gateway: one I/O thread
start_fleet <<YAML
name: builds-bench
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$NEW/build/bin/hello, --threads, "1"]
    port: $HELLO_PORT
    routes: [/hello]
YAML
NEW_PORT=$gateway
new_pid=$(S ps --json | $PY -c "import json,sys;print([i['pid'] for i in json.load(sys.stdin) if i['service']=='gateway'][0])")
control=$(tr '\0' ' ' <"/proc/$new_pid/cmdline" | grep -o -- '--control [^ ]*' | cut -d' ' -f2)
# The fleet was started by this tree's CLI; move its processes onto the server CPU.
for p in $(S ps --json | $PY -c "import json,sys;print(' '.join(str(i['pid']) for i in json.load(sys.stdin)))"); do
  taskset -apc 1 "$p" >/dev/null
done
taskset -c 1 "$OLD/build/bin/squadron" gateway --control "$control" --port "$OLD_PORT" --threads 1 \
  >"$work/old-gateway.log" 2>&1 &
old_pid=$!; pids+=("$old_pid")
wait_port "$OLD_PORT"
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
window() {  # pid port -> "cpu_us_per_request requests"
  local t0 t1 out n
  t0=$(ticks "$1")
  out=$(taskset -c 0 wrk -t1 -c64 -d"$WINDOW" "http://127.0.0.1:$2/hello")
  t1=$(ticks "$1")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  grep -qE 'Non-2xx|Socket errors' <<<"$out" && echo "  errors on port $2: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2
  awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN {printf "%.2f %d", t / hz * 1e6 / n, n}'
}
for port in "$NEW_PORT" "$OLD_PORT"; do taskset -c 0 wrk -t1 -c64 -d2s "http://127.0.0.1:$port/hello" >/dev/null; done

printf '%-5s %16s %10s %16s %10s\n' pair "old CPU us/req" requests "new CPU us/req" requests
: >"$work/pairs"
for i in $(seq 1 "$PAIRS"); do
  if ((i % 2)); then
    o=$(window "$old_pid" "$OLD_PORT"); n=$(window "$new_pid" "$NEW_PORT")
  else
    n=$(window "$new_pid" "$NEW_PORT"); o=$(window "$old_pid" "$OLD_PORT")
  fi
  echo "$o $n" >>"$work/pairs"
  printf '%-5s %16s %10s %16s %10s\n' "$i" $o $n
done
cpu=$(median "$(awk '{print $3 / $1}' "$work/pairs" | tr '\n' ' ')")
req=$(median "$(awk '{print $4 / $2}' "$work/pairs" | tr '\n' ' ')")
printf 'paired   new/old CPU per request %.3f   new/old requests %.3f   (medians of %s pairs)\n' \
  "$cpu" "$req" "$PAIRS"

[ "${IR:-0}" = 1 ] || exit 0
command -v valgrind >/dev/null || { echo "IR=1 needs valgrind (apt install valgrind)" >&2; exit 2; }
# Instructions per request: callgrind's total after 4400 requests less its total after 400 (the
# start, the first connections and the idle timers cancel out), over the 4000 between.
client() {  # port count: count requests, 8 keep-alive connections
  $PY - "$1" "$2" <<'PYCLIENT'
import http.client, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
def run():
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n // 8):
        c.request("GET", "/hello"); r = c.getresponse(); r.read()
        assert r.status == 200, r.status
failed = []
def guarded():
    try: run()
    except Exception as e: failed.append(e)
ts = [threading.Thread(target=guarded) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
sys.exit(f"requests failed: {failed[0]!r}" if failed else 0)
PYCLIENT
}
instructions() {  # tree count -> callgrind's total instructions
  local port vp
  port=$(free_port)
  if [ "$TARGET" = hello ]; then
    PORT=$port valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$1/build/bin/hello" \
      --threads 1 >/dev/null 2>"$work/valgrind.log" &
  else
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$1/build/bin/squadron" gateway \
      --control "$control" --port "$port" --threads 1 >/dev/null 2>"$work/valgrind.log" &
  fi
  vp=$!
  # Up once it answers /hello: under valgrind it listens a while before it has the routes.
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/hello")" = 200 ] && break
    sleep 0.1
  done
  client "$port" "$2"
  kill -INT "$vp"; wait "$vp" || true
  callgrind_annotate "$work/cg.out" | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}
for t in "$OLD" "$NEW"; do
  a=$(instructions "$t" 400); b=$(instructions "$t" 4400)
  echo "$t: $(((b - a) / 4000)) instructions per request in its $TARGET (user space, callgrind)"
done
