#!/usr/bin/env bash
# Cold start from zero: the C++ hello behind the gateway with `autoscale: { min: 0 }`; each
# trial scales it to zero (`squadron scale hello=0`, which returns once it is gone), then times
# one request through the gateway, which holds it while the service wakes. Prints each trial,
# then p50 and max over TRIALS trials, and the errors.
#
#   bench/coldstart.sh               # 20 trials
#   TRIALS=5 bench/coldstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-20}
PY=/usr/bin/python3
[ -x build/bin/squadron ] || scripts/build
source bench/lib.sh

start_fleet <<YAML
name: coldstart
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    routes: [/hello]
    autoscale: { min: 0, max: 2, target: 8, scale_down_delay: 60s }
YAML
echo "gateway on 127.0.0.1:$gateway; $TRIALS trials: scale hello=0, then one request"
times=""
errors=0
for t in $(seq 1 "$TRIALS"); do
  S scale hello=0 >/dev/null
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "http://127.0.0.1:$gateway/hello" || echo "000 10")
  read -r code secs <<<"$out"
  ms=$(awk -v s="$secs" 'BEGIN {printf "%.1f", s * 1000}')
  [ "$code" = 200 ] || errors=$((errors + 1))
  printf 'trial %2d  %s  %7s ms\n' "$t" "$code" "$ms"
  times+="$ms "
done
max=$(tr ' ' '\n' <<<"$times" | grep -v '^$' | sort -g | tail -1)
printf 'cold start over %d trials: p50 %s ms, max %s ms, errors %d\n' "$TRIALS" "$(median "$times")" "$max" "$errors"
