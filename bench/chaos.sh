#!/usr/bin/env bash
# Chaos run: 3 hello replicas behind the Squadron gateway; a bounded load (wrk, 20 s) while
# `kill -9` hits one replica every 2 s (the supervisor restarts it; the gateway retries GETs that
# hit a dying instance on another one). Prints wrk's requests, non-2xx answers and socket errors.
#
#   bench/chaos.sh                   # 20 s, a kill every 2 s
#   DURATION=10 EVERY=1 bench/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
source bench/lib.sh
DURATION=${DURATION:-20}
EVERY=${EVERY:-2}
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

start_fleet <<YAML
name: chaos
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    replicas: 3
    ready: { path: /readyz }
    routes: [/hello]
YAML
echo "gateway on 127.0.0.1:$gateway; wrk -t1 -c32 -d${DURATION}s; kill -9 of a hello replica every ${EVERY}s"

wrk -t1 -c32 -d"${DURATION}s" "http://127.0.0.1:$gateway/hello" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
kills=0
end=$((SECONDS + DURATION - 1))
while [ "$SECONDS" -lt "$end" ]; do
  sleep "$EVERY"
  victim=$(S ps --json | /usr/bin/python3 -c "
import json,sys,random
l=[i for i in json.load(sys.stdin) if i['service']=='hello' and i['state']=='ready']
print(random.choice(l)['pid'] if l else '')")
  if [ -n "$victim" ]; then kill -9 "$victim" && kills=$((kills + 1)); fi
done
wait "$wrk_pid"
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
errors=$(awk -F'Socket errors: ' '/Socket errors/ {print $2}' "$work/wrk.txt")
echo "kills: $kills   requests: $requests   non-2xx: ${non2xx:-0}   socket errors: ${errors:-none}"
S ps
