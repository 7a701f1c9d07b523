#!/usr/bin/env bash
# Bad neighbours, with and without resource limits: hello behind the gateway under a bounded wrk
# load, alone and then beside three services that misbehave —
#   spinner  spins every core              (with limits: cpu: 0.5)
#   hog      allocates 16 MiB every 20 ms   (with limits: memory: 128Mi; without: stops at
#            HOG_CAP, 3 GiB, so the run cannot take the machine down)
#   bomb     forks sleeping children        (with limits: pids: 64; without: stops at BOMB_CAP)
# Prints, per mode and as medians over ROUNDS rounds (alone and beside them, interleaved):
# hello's p99 and req/s and their ratios to alone, the hog's OOM kills and restarts, the
# spinner's share of a core, the bomb's processes, the machine's available memory before and at
# its lowest, and how long `squadron ps` took meanwhile (the fleet stays responsive).
#
#   bench/neighbours.sh                      # ROUNDS=3 DURATION=8s MODES="limits none"
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
MODES=${MODES:-limits none}
HOG_CAP_MB=${HOG_CAP_MB:-3072}
BOMB_CAP=${BOMB_CAP:-1500}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap
secs=${DURATION%s}

mem_available_mb() { awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo; }
p99_ms() {
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }
metric() {  # metric NAME SERVICE: the value for SERVICE's first instance on the control /metrics
  curl -s "$control/metrics" | awk -v n="$1" -v s="$2" 'index($0, n "{service=\"" s "\"")==1 {print $2; exit}'
}
field() {  # field SERVICE KEY: from ps --json
  S ps --json | $PY -c "import json,sys; l=[i for i in json.load(sys.stdin) if i['service']=='$1']; print(l[0]['$2'] if l else '')"
}

run_mode() {
  local mode=$1 spin_res="" hog_res="" bomb_res=""
  if [ "$mode" = limits ]; then
    spin_res="    resources: { cpu: 0.5 }"
    hog_res="    resources: { memory: 128Mi }"
    bomb_res="    resources: { pids: 64 }"
  fi
  start_fleet <<YAML
name: neighbours
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    routes: [/hello]
  spinner:
    command: [sh, -c, 'for i in \$(seq $(nproc)); do (while :; do :; done) & done; wait']
    ready: { tcp: false, path: /none }
    replicas: 0
$spin_res
  hog:
    command: [$PY, -c, "import time\nheap = []\nwhile len(heap) * 16 < $HOG_CAP_MB:\n  heap.append(bytearray(16 << 20)); time.sleep(0.02)\ntime.sleep(3600)"]
    ready: { tcp: false, path: /none }
    replicas: 0
$hog_res
  bomb:
    command: [sh, -c, 'n=0; while [ \$n -lt $BOMB_CAP ]; do sleep 120 & n=\$((n+1)); done; wait']
    ready: { tcp: false, path: /none }
    replicas: 0
$bomb_res
YAML
  control=$($PY -c "import json; print(json.load(open('$work/.squadron/run.json'))['control'])")
  local alone_p99=() alone_rps=() with_p99=() with_rps=() spin_share=() drops=() ps_ms=() procs=()
  for round in $(seq "$ROUNDS"); do
    out=$(taskset -c 1 wrk -t1 -c16 -d"$DURATION" --latency "http://127.0.0.1:$gateway/hello")
    alone_p99+=("$(p99_ms <<<"$out")"); alone_rps+=("$(rps <<<"$out")")
    before=$(mem_available_mb)
    S scale spinner=1 hog=1 bomb=1 --no-wait >/dev/null
    sleep 2
    lowest=$before
    ( while sleep 0.2; do mem_available_mb; done ) >"$work/mem.txt" &
    sampler=$!
    spin0=$(metric squadron_instance_cpu_seconds_total spinner)
    t0=$(date +%s.%N)
    out=$(taskset -c 1 wrk -t1 -c16 -d"$DURATION" --latency "http://127.0.0.1:$gateway/hello")
    t1=$(date +%s.%N)
    spin1=$(metric squadron_instance_cpu_seconds_total spinner)
    s0=$(date +%s%N); S ps >/dev/null; s1=$(date +%s%N)
    ps_ms+=("$(( (s1 - s0) / 1000000 ))")
    procs+=("$(find /sys/fs/cgroup/pids /sys/fs/cgroup -maxdepth 6 -path '*squadron-neighbours-*/bomb-1/cgroup.procs' 2>/dev/null | head -1 | xargs -r cat | wc -l)")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    lowest=$(sort -n "$work/mem.txt" | head -1)
    with_p99+=("$(p99_ms <<<"$out")"); with_rps+=("$(rps <<<"$out")")
    spin_share+=("$(awk -v a="$spin0" -v b="$spin1" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", (b-a)/(t1-t0)}')")
    drops+=("$((before - lowest))")
    oom=$(field hog oom_kills); restarts=$(field hog restarts); last=$(field hog last_exit)
    echo "$mode round $round: hello alone p99 ${alone_p99[-1]} ms ${alone_rps[-1]} req/s; beside them p99 ${with_p99[-1]} ms ${with_rps[-1]} req/s; spinner ${spin_share[-1]} of a core; hog oom-kills $oom restarts $restarts (last: ${last:-none}); bomb ${procs[-1]} processes; available memory ${before} -> ${lowest} MiB; ps ${ps_ms[-1]} ms"
    S scale spinner=0 hog=0 bomb=0 >/dev/null 2>&1 || true
    sleep 1
  done
  local ap wp ar wr
  ap=$(median "${alone_p99[*]}"); wp=$(median "${with_p99[*]}")
  ar=$(median "${alone_rps[*]}"); wr=$(median "${with_rps[*]}")
  echo "== $mode (median of $ROUNDS): hello p99 ${ap} -> ${wp} ms ($(awk -v a="$ap" -v b="$wp" 'BEGIN {printf "%.2f", b/a}')x, bar 1.5x), req/s ${ar} -> ${wr} ($(awk -v a="$ar" -v b="$wr" 'BEGIN {printf "%.2f", b/a}')x, bar 0.8x); spinner $(median "${spin_share[*]}") of a core (bar 0.55); available memory down $(median "${drops[*]}") MiB (bar: 128 + 32); bomb $(median "${procs[*]}") processes; ps $(median "${ps_ms[*]}") ms"
  stop_fleet
  trap - EXIT
}

for mode in $MODES; do run_mode "$mode"; done
