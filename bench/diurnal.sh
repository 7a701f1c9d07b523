#!/usr/bin/env bash
# A compressed day against an autoscaled service: echo (each request takes 20 ms) behind the
# gateway with `autoscale: { min: 1, max: 10, metric: concurrency, target: 2,
# scale_down_delay: 10s }`; the load follows a day's curve from 2 requests in flight (night) to
# 20 (noon) and back, in SEGMENTS steps of STEP seconds (wrk, one run per step). Prints the
# instance-seconds the autoscaled fleet used against a fleet provisioned for the peak all day
# (10 instances), the errors, and the p99 per step and overall (the worst step's).
#
#   bench/diurnal.sh                 # 18 steps of 10 s: a 3-minute day
#   SEGMENTS=12 STEP=5 bench/diurnal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENTS=${SEGMENTS:-18}
STEP=${STEP:-10}
PEAK=10
PY=/usr/bin/python3
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

work=$(mktemp -d)
S() { build/bin/squadron --file "$work/squadron.yaml" "$@"; }
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  S down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/squadron.yaml" <<YAML
name: diurnal
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  echo:
    command: [$PWD/build/bin/echo, --threads, "1"]
    routes: [/echo]
    ready: { path: /readyz }
    autoscale: { min: 1, max: $PEAK, metric: concurrency, target: 2, scale_down_delay: 10s }
YAML
S up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
gateway=$(S ps --json | $PY -c "import json,sys;print([i['port'] for i in json.load(sys.stdin) if i['service']=='gateway'][0])")
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

echo "gateway on 127.0.0.1:$gateway; a day of $SEGMENTS steps of ${STEP}s, 2 to 20 requests in flight"
printf '%-5s %11s %12s %10s %8s\n' step connections "req/s" "p99" errors
start=$(date +%s.%N)
errors=0
p99s=""
for i in $(seq 0 $((SEGMENTS - 1))); do
  c=$($PY -c "import math; print(round(2 + 18 * (1 - math.cos(2 * math.pi * $i / $SEGMENTS)) / 2))")
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
$PY - "$work/instances.txt" "$start" "$end" "$PEAK" "$errors" "$p99s" <<'PYEOF'
import sys
path, start, end, peak, errors, p99s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
samples = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
samples = [s for s in samples if start <= s[0] <= end]
used = 0.0
for (t0, n0), (t1, _) in zip(samples, samples[1:]):
    used += n0 * (t1 - t0)
used += samples[-1][1] * (end - samples[-1][0]) if samples else 0
static = peak * (end - start)
p = sorted(float(x) for x in p99s.split())
print(f"instance-seconds: autoscaled {used:.0f}, static for the peak {static:.0f} ({peak} x {end - start:.0f} s): {used / static * 100:.0f} %")
print(f"errors: {errors}")
print(f"p99 per step: median {p[len(p) // 2]:.2f} ms, worst {p[-1]:.2f} ms")
PYEOF
S events echo | grep autoscale | sed 's/^/  /'
