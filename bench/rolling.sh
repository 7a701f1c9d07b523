#!/usr/bin/env bash
# Rolling deploys under load: echo x4 behind the gateway; a steady load (wrk, 16 connections,
# DURATION s) plus 20 clients each keeping one 2-second request in flight
# (/echo?delay_ms=2000); at 8 s a deploy of a new revision, at 18 s a deploy of a revision that
# cannot start (it must roll back by itself). Prints non-2xx answers and socket errors of the
# steady load, the long requests answered and cut, each rollout's duration and outcome, and
# the fewest ready instances seen (sampled every 0.2 s).
#
#   bench/rolling.sh                 # 30 s
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

start_fleet <<YAML
name: rolling
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  echo:
    command: [$PWD/build/bin/echo, --threads, "1"]
    replicas: 4
    routes: [/echo]
    ready: { path: /readyz }
YAML
echo "gateway on 127.0.0.1:$gateway; ${DURATION} s of load; deploy at 8 s, a failing deploy at 18 s"

# Ready instances of echo, every 0.2 s.
(
  while true; do
    S ps --json 2>/dev/null | $PY -c "import json,sys;print(sum(1 for i in json.load(sys.stdin) if i['service']=='echo' and i['state']=='ready'))" 2>/dev/null >>"$work/ready.txt" || true
    sleep 0.2
  done
) &
pids+=($!)
# 20 clients, each with one 2 s request in flight at all times.
$PY - "$gateway" "$DURATION" >"$work/long.txt" <<'PYEOF' &
import http.client, sys, threading, time
port, duration = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + duration - 2.5
ok = cut = 0
lock = threading.Lock()
def client():
    global ok, cut
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/echo?delay_ms=2000")
            r = c.getresponse()
            r.read()
            good = r.status == 200
            c.close()
        except Exception:
            good = False
        with lock:
            if good: ok += 1
            else: cut += 1
threads = [threading.Thread(target=client) for _ in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print(ok, cut)
PYEOF
long_pid=$!
pids+=($long_pid)
wrk -t1 -c16 -d"${DURATION}s" "http://127.0.0.1:$gateway/echo" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=($wrk_pid)

rollout() {  # label, deploy args...
  local label=$1; shift
  local start end rc=0
  start=$(date +%s.%N)
  S deploy echo "$@" >"$work/deploy.txt" 2>&1 || rc=$?
  end=$(date +%s.%N)
  printf '%-22s %6.2f s, exit %d: %s\n' "$label" "$(echo "$end - $start" | bc -l)" "$rc" \
    "$(tail -1 "$work/deploy.txt")"
}
sleep 8
rollout "deploy revision 2" --env RELEASE=2
sleep $((18 - 8 - 3))
rollout "deploy a failing one" --command "/bin/sh -c 'exit 3'"
wait "$wrk_pid" || true
wait "$long_pid" || true
read -r long_ok long_cut <"$work/long.txt"
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/wrk.txt"); non2xx=${non2xx:-0}
sockets=$(awk '/Socket errors:/ {gsub(/,/,""); print $4+$6+$8+$10}' "$work/wrk.txt"); sockets=${sockets:-0}
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
min_ready=$(sort -n "$work/ready.txt" | head -1)
echo "steady load: $requests requests, non-2xx $non2xx, socket errors $sockets"
echo "2 s requests: $long_ok answered, $long_cut cut"
echo "fewest ready instances at any sample: $min_ready (of 4)"
S history echo
S events echo | grep -E "deploy|rolling back|rollback|done" | sed 's/^/  /'
