#!/usr/bin/env bash
# The autoscaler under a step: echo (each request takes 50 ms) behind the gateway with
# `autoscale: { min: 1, max: 10, metric: concurrency, target: 2, scale_down_delay: 10s }`.
# Low load (wrk, 2 connections, so ~2 requests in flight), then a 10x step (20 connections)
# for STEP seconds, then quiet. Prints the time from the step to the first scale-up decision and
# to enough ready instances (20 in flight / target 2 = 10), the p99 during the step, the time
# from quiet to the scale-down, and the reversals (a change undone within scale_down_delay).
#
#   bench/autoscale.sh
#   STEP=20 bench/autoscale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=${STEP:-15}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

start_fleet <<YAML
name: autoscale
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  echo:
    command: [$PWD/build/bin/echo, --threads, "1"]
    routes: [/echo]
    ready: { path: /readyz }
    autoscale: { min: 1, max: 10, metric: concurrency, target: 2, scale_down_delay: 10s }
YAML
url="http://127.0.0.1:$gateway/echo?delay_ms=50"
now() { date +%s.%N; }
ready() { S ps --json | $PY -c "import json,sys;print(sum(1 for i in json.load(sys.stdin) if i['service']=='echo' and i['state']=='ready'))"; }
count() { S ps --json | $PY -c "import json,sys;print(sum(1 for i in json.load(sys.stdin) if i['service']=='echo'))"; }

echo "gateway on 127.0.0.1:$gateway; low load 8 s (2 connections), step ${STEP} s (20), then quiet"
wrk -t1 -c2 -d8s "$url" >/dev/null 2>&1
step=$(now)
wrk -t1 -c20 -d"${STEP}s" --latency "$url" >"$work/step.txt" 2>&1 &
wrk_pid=$!
enough=""
while kill -0 "$wrk_pid" 2>/dev/null; do
  if [ -z "$enough" ] && [ "$(ready)" -ge 10 ]; then enough=$(now); fi
  sleep 0.1
done
wait "$wrk_pid" || true
quiet=$(now)
down=""
for _ in $(seq 1 300); do
  if [ "$(count)" -le 1 ]; then down=$(now); break; fi
  sleep 0.1
done
S events echo >"$work/events.txt"
# The first scale-up decision after the step, from the events' times (local HH:MM:SS.mmm).
first=$($PY - "$step" "$work/events.txt" <<'PYEOF'
import sys, datetime
step = float(sys.argv[1])
day = datetime.datetime.fromtimestamp(step).date()
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) < 3 or "autoscale" not in line or "->" not in line:
        continue
    t = datetime.datetime.combine(day, datetime.datetime.strptime(parts[0], "%H:%M:%S.%f").time()).timestamp()
    before, after = line.split("autoscale ", 1)[1].split(":", 1)[0].split(" -> ")
    if t >= step and int(after) > int(before):
        print(t)
        break
PYEOF
)
reversals=$($PY - "$work/events.txt" <<'PYEOF'
import sys, datetime
changes = []
for line in open(sys.argv[1]):
    if "autoscale " not in line or " -> " not in line.split(":", 3)[-1]:
        continue
    try:
        t = datetime.datetime.strptime(line.split()[0], "%H:%M:%S.%f")
        a, b = line.split("autoscale ", 1)[1].split(":", 1)[0].split(" -> ")
        changes.append((t, int(a), int(b)))
    except ValueError:
        pass
n = 0
for (t0, a0, b0), (t1, a1, b1) in zip(changes, changes[1:]):
    if (b0 - a0) * (b1 - a1) < 0 and (t1 - t0).total_seconds() < 10:
        n += 1
print(n)
PYEOF
)
p99=$(awk '$1=="99%" {print $2}' "$work/step.txt")
errors=$(grep -E "Non-2xx|Socket errors" "$work/step.txt" || true)
span() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f s", b - a}' || echo "never"; }
echo "first scale-up decision after the step: $(span "$step" "$first")"
echo "10 instances ready after the step:       $(span "$step" "$enough")"
echo "p99 during the step:                      $p99 ${errors:+($errors)}"
echo "back to 1 instance after the quiet:       $(span "$quiet" "$down") (scale_down_delay 10 s)"
echo "reversals within the window:              $reversals"
echo "decisions:"
grep "autoscale" "$work/events.txt" | sed 's/^/  /'
