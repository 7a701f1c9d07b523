#!/usr/bin/env bash
# HTTP/2 attacks against the gateway while a well-behaved client uses it: the victim's p99 and
# the gateway's memory under each attack, against the same victim alone. The gateway (standalone,
# one thread, h2c by prior knowledge) and build/bin/hello on CPU 1; the victim (h2load, 4
# connections x 10 streams, for DURATION s) on CPU 0; the attacker (tests/support/h2_client.py,
# ATTACKERS processes in a loop, new connections each time) on CPU 0 at nice 19, so that it
# takes CPU from the victim's client as little as it can ("cpu": the same processes burning CPU
# without attacking, to tell the client's share of the slowdown from the gateway's). For each attack: the victim's req/s and
# p99 (from h2load's per-request log), p99 against the baseline, and the gateway's RSS before
# and at its peak (sampled every 0.2 s).
#   bench/h2_attacks.sh                  # 8 s per phase
#   DURATION=5 ATTACKERS=2 bench/h2_attacks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
ATTACKERS=${ATTACKERS:-2}
PY=/usr/bin/python3
[ -x build/bin/squadron ] && [ -x build/bin/hello ] || scripts/build
command -v h2load >/dev/null || scripts/bootstrap
work=$(mktemp -d)
pids=()
attackers=()
cleanup() {
  touch "$work/stop" 2>/dev/null || true
  for p in "${attackers[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

HELLO_PORT=$(free_port); GATEWAY_PORT=$(free_port)
PORT=$HELLO_PORT taskset -c 1 build/bin/hello --threads 1 >"$work/hello.log" 2>&1 &
pids+=($!)
cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$GATEWAY_PORT
upstreams:
  hello:
    endpoints: [127.0.0.1:$HELLO_PORT]
    routes: [/]
GW
taskset -c 1 build/bin/squadron gateway -c "$work/gateway.yaml" --threads 1 >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_port "$HELLO_PORT"; wait_port "$GATEWAY_PORT"

attack_loop() {  # mode args... : the attack again and again until $work/stop exists
  while [ ! -e "$work/stop" ]; do
    if [ "$1" = cpu ]; then  # no attack: the attackers' CPU on the victim's core, for reference
      nice -n 19 taskset -c 0 timeout 1 $PY -c 'while True: pass' || true
    else
      nice -n 19 taskset -c 0 $PY tests/support/h2_client.py "$GATEWAY_PORT" "$@" >/dev/null 2>&1 || true
    fi
  done
}

phase() {  # name [attack args...] -> a line of figures
  local name=$1 log=$work/victim-$1.log peak before now sampler
  shift
  attackers=()
  rm -f "$work/stop"
  if [ $# -gt 0 ]; then
    for _ in $(seq 1 "$ATTACKERS"); do attack_loop "$@" & attackers+=($!); done
    sleep 1
  fi
  before=$(rss_kib "$gateway_pid")
  peak=$before
  ( while true; do rss_kib "$gateway_pid"; sleep 0.2; done ) >"$work/rss-$name" &
  sampler=$!
  out=$(taskset -c 0 h2load -t1 -c4 -m10 -D"$DURATION" --log-file="$log" \
    "http://127.0.0.1:$GATEWAY_PORT/hello" 2>&1)
  kill "$sampler" 2>/dev/null || true
  touch "$work/stop"  # each attacker ends after its current (bounded) round
  for p in "${attackers[@]}"; do wait "$p" 2>/dev/null || true; done
  attackers=()
  peak=$(sort -n "$work/rss-$name" | tail -1)
  local rps p99 failed
  rps=$(awk '/^finished in/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^req\/s/) {gsub(",","",$i); print $i}}' <<<"$out")
  failed=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^failed/) print $i}' <<<"$out")
  p99=$(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]/1000}')
  echo "$name $rps $p99 ${failed:-0} $before $peak"
}

printf '%-16s %10s %9s %8s %7s %12s %12s\n' phase "req/s" "p99 ms" "p99 x" failed "RSS KiB" "peak KiB"
read -r _ brps bp99 bfail bbefore bpeak < <(phase baseline)
printf '%-16s %10s %9s %8s %7s %12s %12s\n' baseline "$brps" "$bp99" 1.00 "$bfail" "$bbefore" "$bpeak"
for attack in "cpu" "rapid-reset 20000 /hello" "continuation 10000" "hpack-bomb 3000" "ping-flood 20000" "settings-flood 20000"; do
  # shellcheck disable=SC2086
  read -r name rps p99 failed before peak < <(phase "${attack%% *}" $attack)
  printf '%-16s %10s %9s %8.2f %7s %12s %12s\n' "$name" "$rps" "$p99" \
    "$(awk -v a="$p99" -v b="$bp99" 'BEGIN {print a / b}')" "$failed" "$before" "$peak"
done
