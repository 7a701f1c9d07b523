#!/usr/bin/env bash
# Bad neighbours, with and without resource limits. hello behind the gateway under a bounded wrk
# load (RATE requests a second over 8 connections, far below what the machine serves, as a
# service in production runs: the question is whether it keeps its latency and its rate), alone
# and then beside services that misbehave:
#   spinner  spins every core              (with limits: cpu: 0.5)
#   hog      allocates 16 MiB every 20 ms   (with limits: memory: 128Mi; without: it stops at
#            HOG_CAP_MB, 3 GiB, so that the run cannot take the machine down)
#   bomb     forks sleeping children        (with limits: pids: 64; without: it stops at
#            BOMB_CAP), in a phase of its own
# Per mode, medians over ROUNDS rounds (alone, beside spinner + hog, beside the bomb, in turn):
# hello's p99 and req/s and their ratios to alone, the hog's OOM kills and restarts, the
# spinner's share of a core, the machine's available memory at its lowest beside them less its
# lowest alone, the bomb's processes, and how long `squadron ps` took beside the bomb.
#
#   bench/neighbours.sh                      # ROUNDS=5 DURATION=8s RATE=2000 MODES="limits none"
#                                            # CLIENT=rt (or normal) WITH="spinner hog"
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8s}
RATE=${RATE:-2000}
MODES=${MODES:-limits none}
HOG_CAP_MB=${HOG_CAP_MB:-3072}
BOMB_CAP=${BOMB_CAP:-1500}
WITH=${WITH:-spinner hog}  # the neighbours of the second phase
# The load generator stands for clients on other machines: by default it runs real-time
# (SCHED_FIFO) on its core, so that what the spinner does to wrk's own scheduling is not counted
# as hello's latency (bench/spinner_latency.sh shows the difference). CLIENT=normal: as any task.
CLIENT=${CLIENT:-rt}
PY=/usr/bin/python3
source bench/lib.sh
[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null || scripts/bootstrap

# MemAvailable plus the free pages the kernel keeps on its per-CPU lists: those are free (any
# allocation takes them first) but not in MemAvailable, and since Linux 6.7 their size tunes
# itself with the rate of frees — here it swings between ~25 and ~200 MiB at rest, more than
# the bar's 32 MiB margin, so MemAvailable alone measured the kernel's free lists, not the hog.
mem_available_mb() {
  local pcp
  pcp=$(awk '/^ +count:/ {s += $2} END {print s * 4}' /proc/zoneinfo)
  awk -v pcp="$pcp" '/^MemAvailable:/ {print int(($2 + pcp) / 1024)}' /proc/meminfo
}
# The bomb's processes, sampled with the memory: "pids" at most while hello's load ran.
bomb_procs() {
  local f
  f=$(find /sys/fs/cgroup -maxdepth 7 -path "*squadron-neighbours-*/bomb-*/cgroup.procs" 2>/dev/null | head -1)
  [ -n "$f" ] && wc -l <"$f" || echo 0
}
p99_ms() {
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }
metric() {  # metric NAME SERVICE: its first instance's value on the control plane's /metrics
  curl -s "$control/metrics" | awk -v n="$1" -v s="$2" 'index($0, n "{service=\"" s "\"")==1 {print $2; exit}'
}
field() {  # field SERVICE KEY: from ps --json
  S ps --json | $PY -c "import json,sys; l=[i for i in json.load(sys.stdin) if i['service']=='$1']; print(l[0]['$2'] if l else '')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b/a}'; }
# One bounded load of hello: prints "p99_ms req_per_s lowest_available_mb".
load() {
  ( while sleep 0.2; do mem_available_mb; bomb_procs >>"$work/procs.txt"; done ) >"$work/mem.txt" &
  local sampler=$! out
  local rt=()
  [ "$CLIENT" = rt ] && rt=(chrt -f 10)
  out=$("${rt[@]}" taskset -c 1 wrk -t1 -c8 -d"$DURATION" --latency -s "$work/rate.lua" \
    "http://127.0.0.1:$gateway/hello")
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "$(p99_ms <<<"$out") $(rps <<<"$out") $(sort -n "$work/mem.txt" | head -1)"
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
    ready: none
    replicas: 0
$spin_res
  hog:
    command: [$PY, -c, "import time\nheap = []\nwhile len(heap) * 16 < $HOG_CAP_MB:\n  heap.append(bytearray(16 << 20)); time.sleep(0.02)\ntime.sleep(3600)"]
    ready: none
    replicas: 0
$hog_res
  bomb:
    command: [sh, -c, 'n=0; while [ \$\$n -lt $BOMB_CAP ]; do sleep 120 & n=\$((n+1)); done; wait']
    ready: none
    replicas: 0
$bomb_res
YAML
  # Each of the 8 connections sends one request every 8000/RATE ms.
  echo "function delay() return $(awk -v r="$RATE" 'BEGIN {print 8000 / r}') end" >"$work/rate.lua"
  control=$($PY -c "import json; print(json.load(open('$work/.squadron/run.json'))['control'])")
  local ap=() ar=() wp=() wr=() bp=() br=() share=() drop=() procs=() ps_ms=() ooms=()
  for round in $(seq "$ROUNDS"); do
    read -r p r alone_low < <(load)
    ap+=("$p"); ar+=("$r")
    S scale $(for n in $WITH; do printf '%s=1 ' "$n"; done) --no-wait >/dev/null
    sleep 2
    spin0=$(metric squadron_instance_cpu_seconds_total spinner); t0=$(date +%s.%N)
    read -r p r low < <(load)
    spin1=$(metric squadron_instance_cpu_seconds_total spinner); t1=$(date +%s.%N)
    wp+=("$p"); wr+=("$r")
    share+=("$(awk -v a="$spin0" -v b="$spin1" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", (b-a)/(t1-t0)}')")
    drop+=("$((alone_low - low))")
    ooms+=("$(field hog oom_kills)/$(field hog restarts)")
    last=$(field hog last_exit)
    S scale spinner=0 hog=0 >/dev/null 2>&1 || true
    S scale bomb=1 --no-wait >/dev/null
    sleep 2
    : >"$work/procs.txt"
    read -r p r _ < <(load)
    bp+=("$p"); br+=("$r")
    s0=$(date +%s%N); S ps >/dev/null; s1=$(date +%s%N)
    ps_ms+=("$(( (s1 - s0) / 1000000 ))")
    procs+=("$(sort -n "$work/procs.txt" | tail -1)")
    bomb_exit=$(field bomb last_exit)
    S scale bomb=0 >/dev/null 2>&1 || true
    echo "$mode round $round: hello alone p99 ${ap[-1]} ms ${ar[-1]} req/s;" \
      "beside spinner+hog p99 ${wp[-1]} ms ${wr[-1]} req/s, spinner ${share[-1]} of a core," \
      "hog oom-kills/restarts ${ooms[-1]} (last: ${last:-none}), available memory ${drop[-1]} MiB lower;" \
      "beside the bomb p99 ${bp[-1]} ms ${br[-1]} req/s, ${procs[-1]} processes at most" \
      "(last exit: ${bomb_exit:-none}), ps ${ps_ms[-1]} ms"
    sleep 1
  done
  local map mwp mar mwr
  map=$(median "${ap[*]}"); mwp=$(median "${wp[*]}"); mar=$(median "${ar[*]}"); mwr=$(median "${wr[*]}")
  echo "== $mode, median of $ROUNDS, RATE=$RATE, CLIENT=$CLIENT: beside spinner+hog hello p99 ${map} -> ${mwp} ms" \
    "($(ratio "$map" "$mwp")x, bar 1.5x), req/s ${mar} -> ${mwr} ($(ratio "$mar" "$mwr")x, bar 0.8x);" \
    "spinner $(median "${share[*]}") of a core (bar 0.55); available memory $(median "${drop[*]}") MiB" \
    "lower (bar 128 + 32); hog oom-kills/restarts per round ${ooms[*]};" \
    "beside the bomb p99 $(median "${bp[*]}") ms ($(ratio "$map" "$(median "${bp[*]}")")x)," \
    "req/s $(median "${br[*]}") ($(ratio "$mar" "$(median "${br[*]}")")x), $(median "${procs[*]}") processes at most," \
    "ps $(median "${ps_ms[*]}") ms"
  stop_fleet
  trap - EXIT
}

for mode in $MODES; do run_mode "$mode"; done
