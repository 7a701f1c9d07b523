#!/usr/bin/env bash
# A compressed day against an autoscaled service: echo (each request takes 20 ms) behind the
# gateway with `autoscale: { min: 1, max: 20, metric: concurrency, target: 2,
# scale_down_delay: 5s }`. The load follows the day of a consumer service, hour by hour (one
# STEP each, wrk with a fixed number of connections, each always with one request in flight):
# a trough of 4 requests in flight at 4-5 am, a plateau through the afternoon, a peak of 40 at
# 9 pm — 10x peak to trough, the shape of published streaming-traffic days (Sandvine's Global
# Internet Phenomena: the evening peak, the early-morning trough). PROFILE=cosine gives a
# raised cosine instead (the same 10x, symmetric, a broad peak). Prints the instance-seconds
# the autoscaled fleet used against a fleet provisioned for the peak all day (20 instances),
# the floor of that ratio for the curve (its mean over its peak: a perfect autoscaler), the
# errors, and the p99 per step and overall (the worst step's).
#
# The scale-down delay is compressed with the day: 5 s of a 3-minute day is 40 minutes of a
# real one (the autoscaler's default is 30 s; Kubernetes' HPA waits 5 minutes).
#
#   bench/diurnal.sh                 # 24 hours of 7 s: a 3-minute day
#   STEP=4 bench/diurnal.sh          # a faster day
#   PROFILE=cosine SEGMENTS=18 STEP=10 bench/diurnal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-streaming}
SEGMENTS=${SEGMENTS:-24}
STEP=${STEP:-7}
DELAY=${DELAY:-5s}
PEAK=20   # instances at the peak: 40 in flight / target 2
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

start_fleet <<YAML
name: diurnal
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  echo:
    command: [$PWD/build/bin/echo, --threads, "1"]
    routes: [/echo]
    ready: { path: /readyz }
    autoscale: { min: 1, max: $PEAK, metric: concurrency, target: 2, scale_down_delay: $DELAY }
YAML
url="http://127.0.0.1:$gateway/echo?delay_ms=20"

# Instances of echo, sampled every 0.5 s for the whole day.
(
  while true; do
    n=$(S ps --json 2>/dev/null | $PY -c "import json,sys;print(sum(1 for i in json.load(sys.stdin) if i['service']=='echo'))" 2>/dev/null || echo "")
    [ -n "$n" ] && echo "$(date +%s.%N) $n" >>"$work/instances.txt"
    sleep 0.5
  done
) &
sampler=$!
pids+=("$sampler")

# Requests in flight for step i of SEGMENTS: the profile's share of the peak (40), at least 4.
load_at() {
  $PY - "$PROFILE" "$1" "$SEGMENTS" <<'PYEOF'
import math, sys
profile, i, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# A consumer service's day by the hour (0 h .. 23 h), peak 1.0 at 21 h, trough 0.1 at 5 h.
day = [0.62, 0.42, 0.27, 0.17, 0.11, 0.10, 0.12, 0.16, 0.21, 0.25, 0.28, 0.31,
       0.35, 0.37, 0.38, 0.40, 0.44, 0.52, 0.63, 0.78, 0.92, 1.00, 0.95, 0.80]
if profile == "cosine":
    share = 0.1 + 0.9 * (1 - math.cos(2 * math.pi * i / n)) / 2
else:
    h = 24 * i / n
    a, b = day[int(h) % 24], day[(int(h) + 1) % 24]
    share = a + (b - a) * (h - int(h))
print(max(4, round(40 * share)))
PYEOF
}
floor=0
for i in $(seq 0 $((SEGMENTS - 1))); do floor=$((floor + $(load_at "$i"))); done

echo "gateway on 127.0.0.1:$gateway; a $PROFILE day of $SEGMENTS steps of ${STEP}s, 4 to 40 requests in flight"
printf '%-5s %11s %12s %10s %8s\n' step connections "req/s" "p99" errors
start=$(date +%s.%N)
errors=0
p99s=""
for i in $(seq 0 $((SEGMENTS - 1))); do
  c=$(load_at "$i")
  out=$(wrk -t1 -c"$c" -d"${STEP}s" --latency "$url" 2>&1)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  e=$(awk '/Non-2xx or 3xx responses:/ {n+=$NF} /Socket errors:/ {gsub(/,/,""); n+=$4+$6+$8+$10} END {print n+0}' <<<"$out")
  errors=$((errors + e))
  p99s+="$p99 "
  printf '%-5s %11s %12s %9sms %8s\n' "$i" "$c" "$rps" "$p99" "$e"
done
end=$(date +%s.%N)
kill "$sampler" 2>/dev/null || true
sampler=""
$PY - "$work/instances.txt" "$start" "$end" "$PEAK" "$errors" "$p99s" "$floor" "$SEGMENTS" <<'PYEOF'
import sys
path, start, end, peak, errors, p99s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
floor = int(sys.argv[7]) / (2 * peak * int(sys.argv[8]))  # mean in flight / target, over the peak's
samples = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
samples = [s for s in samples if start <= s[0] <= end]
used = 0.0
for (t0, n0), (t1, _) in zip(samples, samples[1:]):
    used += n0 * (t1 - t0)
used += samples[-1][1] * (end - samples[-1][0]) if samples else 0
static = peak * (end - start)
p = sorted(float(x) for x in p99s.split())
print(f"instance-seconds: autoscaled {used:.0f}, static for the peak {static:.0f} ({peak} x {end - start:.0f} s): {used / static * 100:.0f} %")
print(f"the curve's floor (a perfect autoscaler, instances = load / target): {floor * 100:.0f} %")
print(f"errors: {errors}")
print(f"p99 per step: median {p[len(p) // 2]:.2f} ms, worst {p[-1]:.2f} ms")
PYEOF
S events echo | grep autoscale | sed 's/^/  /'
