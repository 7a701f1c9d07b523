#!/usr/bin/env bash
# Why hello's p99 beside a spinning neighbour is not a matter of the neighbour's CPU limit on
# this machine: hello behind the gateway under the bounded load of bench/neighbours.sh, alone and
# beside a spinner (every core) held in different ways, interleaved per round, medians:
#   quota        the fleet's spinner with resources: { cpu: 0.5 }: CFS quota over a 100 ms
#                period, on one core (a CPU limit of N cores runs on N of them, decision 0012)
#   every-core   the same quota, its spinners on every core (as before decision 0012); the
#                modes below keep every core
#   quota-10ms   the same quota over a 10 ms period (shorter bursts)
#   quota-idle   the same, its cgroup cpu.idle = 1 (it yields to any other task at once)
#   no-quota     its cgroup without a quota, idle (SCHED_IDLE tasks)
#   outside      two SCHED_IDLE spinners outside any fleet cgroup
# cgroup v1 (cpu controller) as on this project's machine. CLIENT=rt runs wrk real-time (as
# bench/neighbours.sh does by default), CLIENT=normal (the default here) as any task.
#   bench/spinner_latency.sh               # ROUNDS=3 DURATION=5s RATE=2000 CLIENT=normal
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
RATE=${RATE:-2000}
CLIENT=${CLIENT:-normal}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
[ -d /sys/fs/cgroup/cpu ] || { echo "needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu" >&2; exit 1; }
start_fleet <<YAML
name: spinlat
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    routes: [/hello]
  spinner:
    command: [sh, -c, 'for i in \$(seq $(nproc)); do (while :; do :; done) & done; wait']
    ready: none
    replicas: 0
    resources: { cpu: 0.5 }
YAML
echo "function delay() return $(awk -v r="$RATE" 'BEGIN {print 8000 / r}') end" >"$work/rate.lua"
p99() {
  local rt=()
  [ "$CLIENT" = rt ] && rt=(chrt -f 10)
  "${rt[@]}" taskset -c 1 wrk -t1 -c8 -d"$DURATION" --latency -s "$work/rate.lua" \
    "http://127.0.0.1:$gateway/hello" |
    awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else {sub(/s$/,"",v); v*=1000}; print v}'
}
spinner_dir() {  # the running spinner instance's cgroup in controller $1's hierarchy
  local id
  id=$(S ps --json | $PY -c "import json,sys; l=[i['id'] for i in json.load(sys.stdin) if i['service']=='spinner']; print(l[0] if l else '')")
  [ -n "$id" ] && find "/sys/fs/cgroup/$1" -maxdepth 3 -type d -path "*squadron-spinlat-*/$id" | head -1
}
declare -A all
modes="alone quota every-core quota-10ms quota-idle no-quota outside"
for round in $(seq "$ROUNDS"); do
  declare -A got=()
  got[alone]=$(p99)
  S scale spinner=1 --no-wait >/dev/null
  d=""
  for _ in $(seq 20); do d=$(spinner_dir cpu || true); [ -n "$d" ] && break; sleep 0.2; done
  [ -n "$d" ] || { echo "the spinner's cgroup was not found" >&2; exit 1; }
  sleep 1
  got[quota]=$(p99)
  cs=$(spinner_dir cpuset || true)
  [ -n "$cs" ] && cat "$(dirname "$cs")/cpuset.cpus" >"$cs/cpuset.cpus"
  got[every-core]=$(p99)
  echo 10000 >"$d/cpu.cfs_quota_us"; echo 10000 >"$d/cpu.cfs_period_us"; echo 5000 >"$d/cpu.cfs_quota_us"
  got[quota-10ms]=$(p99)
  echo 1 >"$d/cpu.idle"
  got[quota-idle]=$(p99)
  echo 0 >"$d/cpu.idle"; echo -1 >"$d/cpu.cfs_quota_us"
  for t in $(cat "$d/tasks"); do chrt -i -p 0 "$t" 2>/dev/null || true; done
  got[no-quota]=$(p99)
  S scale spinner=0 >/dev/null 2>&1
  sp=()
  for c in $(seq 0 $(($(nproc) - 1))); do chrt -i 0 sh -c 'while :; do :; done' & sp+=($!); pids+=($!); done
  got[outside]=$(p99)
  kill "${sp[@]}"; wait "${sp[@]}" 2>/dev/null || true
  line="round $round:"
  for m in $modes; do line+=" $m ${got[$m]}"; all[$m]+="${got[$m]} "; done
  echo "$line ms"
done
line="== median of $ROUNDS, CLIENT=$CLIENT, hello p99 (ms, and x alone):"
alone=$(median "${all[alone]}")
for m in $modes; do
  v=$(median "${all[$m]}")
  line+=" $m $v ($(awk -v a="$alone" -v b="$v" 'BEGIN {printf "%.2f", b/a}')x);"
done
echo "$line"
