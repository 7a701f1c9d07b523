#!/usr/bin/env bash
# The fleet's figures of issue 3, measured on loopback with the real binaries:
#   - `up -d` of hello x2 + echo + Flask: time until it returns (all ready)
#   - kill -9 of one instance: time until the registry shows it ready again (new pid)
#   - `scale hello=8` / `scale hello=1`: time until the CLI returns (ready / surplus gone)
#   - a crash-looping service: the fleet process's CPU time over 10 s, and its restart delays
#   - 20 instances: the fleet process's RSS and its CPU time over 10 s idle
# Bounded: every fleet is stopped at the end (`squadron down`, then SIGKILL of the pid it wrote
# if it is still there). Usage: bench/fleet.sh (after scripts/build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/bin
dir=$(mktemp -d)
S() { "$bin/squadron" --file "$dir/squadron.yaml" "$@"; }
cleanup() {
  if [ -f "$dir/.squadron/run.json" ]; then
    pid=$(python3 -c "import json;print(json.load(open('$dir/.squadron/run.json'))['pid'])")
    S down >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
ms() { date +%s%N; }
elapsed() { echo $(( ($(ms) - $1) / 1000000 )); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fleet_pid() { python3 -c "import json;print(json.load(open('$dir/.squadron/run.json'))['pid'])"; }
url() { python3 -c "import json;print(json.load(open('$dir/.squadron/run.json'))['control'])"; }

cat >"$dir/squadron.yaml" <<YAML
name: bench
control: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$bin/hello, --threads, "1"]
    replicas: 2
    ready: { path: /readyz }
  echo:
    command: [$bin/echo, --threads, "1"]
  flask:
    command: [/usr/bin/python3, $PWD/examples/flask-hello/app.py]
YAML
t=$(ms); S up -d >/dev/null 2>&1; echo "up -d (hello x2, echo, flask): all ready in $(elapsed "$t") ms"

u=$(url)
# Each round kills another instance: a second crash of the same one within 60 s would wait
# the backoff's 0.5 s, by design. Times come from the fleet's own events (ms since the epoch).
for id in hello-1 hello-2 echo-1; do
  rev=$(curl -s "$u/api/v1/fleet" | python3 -c "import json,sys;print(json.load(sys.stdin)['revision'])")
  old=$(curl -s "$u/api/v1/instances/$id" | python3 -c "import json,sys;print(json.load(sys.stdin)['pid'])")
  t=$(date +%s%3N); kill -9 "$old"
  sleep 1
  curl -s "$u/api/v1/events?since=$rev" | python3 -c "
import json,sys
ready=[e['at_ms'] for e in json.load(sys.stdin)['events'] if e['instance']=='$id' and e['message'].startswith('ready')]
print('kill -9 $id: ready again in', ready[0]-$t if ready else 'NOT READY', 'ms')"
done

for round in 1 2 3; do
  t=$(ms); S scale hello=8 >/dev/null 2>&1; up_ms=$(elapsed "$t")
  t=$(ms); S scale hello=1 >/dev/null 2>&1; down_ms=$(elapsed "$t")
  echo "scale hello=8: ${up_ms} ms; scale hello=1 (7 stopped gracefully): ${down_ms} ms (round $round)"
done
S scale hello=2 >/dev/null 2>&1
S down >/dev/null 2>&1

cat >"$dir/squadron.yaml" <<YAML
name: bench
control: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$bin/hello, --threads, "1"]
    replicas: 20
    ready: { path: /readyz }
YAML
S up -d >/dev/null 2>&1
p=$(fleet_pid)
sleep 1
c0=$(cpu_ticks "$p"); sleep 10; c1=$(cpu_ticks "$p")
echo "20 instances: fleet process RSS $(awk '/VmRSS/{print $2/1024 " MiB"}' "/proc/$p/status"), CPU over 10 s idle: $((c1 - c0)) ticks of $(getconf CLK_TCK)/s ($(python3 -c "print(round(100*($c1-$c0)/$(getconf CLK_TCK)/10, 2))") %)"
S down >/dev/null 2>&1

cat >"$dir/squadron.yaml" <<YAML
name: bench
control: { listen: 127.0.0.1:0 }
services:
  hello:
    command: [$bin/hello, --threads, "1"]
  crasher:
    command: sh -c 'exit 3'
YAML
S up -d >/dev/null 2>&1 || true
p=$(fleet_pid)
c0=$(cpu_ticks "$p"); sleep 10; c1=$(cpu_ticks "$p")
echo "crash loop: fleet process CPU over 10 s: $((c1 - c0)) ticks ($(python3 -c "print(round(100*($c1-$c0)/$(getconf CLK_TCK)/10, 2))") %); hello: $(S ps --json | python3 -c "import json,sys;print([i['state'] for i in json.load(sys.stdin) if i['service']=='hello'][0])")"
curl -s "$(url)/api/v1/events" | python3 -c "
import json,sys
starts=[e['at_ms'] for e in json.load(sys.stdin)['events'] if e['instance']=='crasher-1' and e['message'].startswith('starting')]
print('crash loop: delays between starts (s):', [round((b-a)/1000,2) for a,b in zip(starts,starts[1:])])"
