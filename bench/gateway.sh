#!/usr/bin/env bash
# Proxy benchmark: one build/bin/hello upstream (1 I/O thread) on CPU 1 and, in turn, in front
# of it on the same CPU: the Squadron gateway (1 thread, started by `squadron up`), the same
# gateway standalone (`squadron gateway -c FILE`, 1 thread, the upstream by address), HAProxy
# (1 thread, `http-reuse always`) and nginx (1 worker, `proxy_pass` to an upstream with
# `keepalive 64`); wrk (-t1 -c64, --latency) on CPU 0 against each and against hello directly,
# in interleaved rounds. Prints req/s, p99 and the proxy's CPU time per request (user + system,
# from /proc: what a proxy costs, less swayed by this shared machine's noise than req/s) per
# run, the medians, and the ratios squadron/haproxy and squadron/nginx.
#
#   bench/gateway.sh                 # 3 rounds of 10 s each
#   ROUNDS=5 DURATION=5s bench/gateway.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3

[ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap

work=$(mktemp -d)
pids=()
peer_groups=()
cleanup() {
  [ -f "$work/squadron.yaml" ] && build/bin/squadron --file "$work/squadron.yaml" down >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  rm -rf "$work"
  for g in "${peer_groups[@]}"; do  # empty once the killed processes are gone
    for _ in $(seq 1 30); do rmdir "$g" 2>/dev/null && break; sleep 0.1; done
  done
}
trap cleanup EXIT

source bench/lib.sh

HELLO_PORT=$(free_port); GATEWAY_PORT=$(free_port); HAPROXY_PORT=$(free_port); NGINX_PORT=$(free_port)
STANDALONE_PORT=$(free_port)

# The upstream and the Squadron gateway: one fleet, everything on CPU 1, one I/O thread each.
cat >"$work/squadron.yaml" <<YAML
name: gateway-bench
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:$GATEWAY_PORT }
services:
  hello:
    command: [$PWD/build/bin/hello, --threads, "1"]
    port: $HELLO_PORT
    routes: [/hello]
YAML
SQUADRON_THREADS=1 taskset -c "$SERVER_CPU" build/bin/squadron --file "$work/squadron.yaml" up -d \
  >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }

cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4000
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend front
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend hello
backend hello
  server hello1 127.0.0.1:$HELLO_PORT
CFG
taskset -c "$SERVER_CPU" haproxy -f "$work/haproxy.cfg" -D >"$work/haproxy.log" 2>&1

cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$STANDALONE_PORT
upstreams:
  hello:
    endpoints: [127.0.0.1:$HELLO_PORT]
    routes: [/hello]
GW
taskset -c "$SERVER_CPU" build/bin/squadron gateway -c "$work/gateway.yaml" --threads 1 \
  >"$work/standalone.log" 2>&1 &
standalone_pid=$!
pids+=("$standalone_pid")

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  upstream hello { server 127.0.0.1:$HELLO_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://hello;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)

wait_port "$HELLO_PORT"; wait_port "$GATEWAY_PORT"; wait_port "$HAPROXY_PORT"; wait_port "$NGINX_PORT"
wait_port "$STANDALONE_PORT"
sleep 0.5

# The processes of each server, for their CPU time.
gateway_pid=$(build/bin/squadron --file "$work/squadron.yaml" ps --json | $PY -c "import json,sys;print(' '.join(str(i['pid']) for i in json.load(sys.stdin) if i['service']=='gateway'))")
hello_pid=$(build/bin/squadron --file "$work/squadron.yaml" ps --json | $PY -c "import json,sys;print(' '.join(str(i['pid']) for i in json.load(sys.stdin) if i['service']=='hello'))")
haproxy_pid=$(cat "$work/haproxy.pid")
nginx_pids="$(cat "$work/nginx/nginx.pid") $(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')"
declare -A PIDS=([direct]="$hello_pid" [squadron]="$gateway_pid" [standalone]="$standalone_pid"
  [haproxy]="$haproxy_pid" [nginx]="$nginx_pids")

# The fleet runs its gateway and hello each in a CPU cgroup of its own; the scheduler treats a task
# in a group differently from one in the root (measured: the standalone gateway made 0.86-0.89x of
# the fleet's req/s from the root, 0.99x moved into the fleet gateway's group). So each peer gets one,
# where cgroup v1's cpu controller is writable (on v2 they stay where they are, and it is said).
own_cpu_group() {  # name pids...
  local dir=/sys/fs/cgroup/cpu/squadron-bench-$$-$1 p t
  shift
  mkdir "$dir" 2>/dev/null || return 1
  peer_groups+=("$dir")
  for p in "$@"; do for t in /proc/"$p"/task/*; do echo "${t##*/}" >"$dir/tasks"; done; done
}
if [ -w /sys/fs/cgroup/cpu/tasks ] && [ "${PEER_CGROUPS:-1}" = 1 ]; then
  own_cpu_group standalone $standalone_pid && own_cpu_group haproxy $haproxy_pid &&
    own_cpu_group nginx $nginx_pids && echo "each peer in a CPU cgroup of its own, as the fleet's gateway"
else
  echo "the peers stay in this shell's CPU cgroup (no writable cgroup v1 cpu controller, or PEER_CGROUPS=0)"
fi
seconds=${DURATION%s}
hz=$(getconf CLK_TCK)

run_wrk() {  # name port -> "rps p99_ms cpu_us_per_request"
  local out t0 t1
  t0=$(cpu_ticks "${PIDS[$1]}")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/hello" 2>&1)
  t1=$(cpu_ticks "${PIDS[$1]}")
  echo "$out" >"$work/wrk-$1-last.txt"
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errors" ] && echo "  $1: $errors" >&2
  echo "$rps $p99 $(awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$rps" -v d="$seconds" 'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}')"
}

servers="direct:$HELLO_PORT squadron:$GATEWAY_PORT standalone:$STANDALONE_PORT haproxy:$HAPROXY_PORT nginx:$NGINX_PORT"
for s in $servers; do  # warm-up, not counted
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:${s#*:}/hello" >/dev/null 2>&1
done

declare -A RPS P99 CPU
printf '%-6s %-9s %12s %10s %14s\n' round server "req/s" "p99 ms" "CPU us/req"
for r in $(seq 1 "$ROUNDS"); do
  for s in $servers; do
    name=${s%%:*}
    read -r rps p99 cpu < <(run_wrk "$name" "${s#*:}")
    RPS[$name]+="$rps "; P99[$name]+="$p99 "; CPU[$name]+="$cpu "
    printf '%-6s %-9s %12s %10s %14s\n' "$r" "$name" "$rps" "$p99" "$cpu"
  done
done

d=$(median "${RPS[direct]}"); s=$(median "${RPS[squadron]}"); h=$(median "${RPS[haproxy]}"); n=$(median "${RPS[nginx]}")
sp=$(median "${P99[squadron]}"); hp=$(median "${P99[haproxy]}"); np=$(median "${P99[nginx]}")
echo
printf 'median   direct %.0f   squadron %.0f (p99 %s ms)   haproxy %.0f (p99 %s ms)   nginx %.0f (p99 %s ms)\n' \
  "$d" "$s" "$sp" "$h" "$hp" "$n" "$np"
awk -v s="$s" -v h="$h" -v n="$n" -v sp="$sp" -v hp="$hp" -v np="$np" 'BEGIN {
  printf "ratio    squadron/haproxy req/s %.2f (p99 %.2f)   squadron/nginx req/s %.2f (p99 %.2f)\n", s/h, sp/hp, s/n, sp/np }'
# The same, paired by round (each round runs the servers back to back, so pairing cancels the
# machine's slow drift): the median of the per-round ratios (bench/lib.sh's paired).
printf 'paired   squadron/haproxy req/s %.2f   squadron/nginx req/s %.2f   (median of per-round ratios)\n' \
  "$(paired "${RPS[squadron]}" "${RPS[haproxy]}")" "$(paired "${RPS[squadron]}" "${RPS[nginx]}")"
printf 'standalone %.0f req/s (p99 %s ms): standalone/haproxy req/s %.2f paired, standalone/nginx %.2f, CPU per request %s us\n' \
  "$(median "${RPS[standalone]}")" "$(median "${P99[standalone]}")" \
  "$(paired "${RPS[standalone]}" "${RPS[haproxy]}")" "$(paired "${RPS[standalone]}" "${RPS[nginx]}")" \
  "$(median "${CPU[standalone]}")"
sc=$(median "${CPU[squadron]}"); hc=$(median "${CPU[haproxy]}"); nc=$(median "${CPU[nginx]}")
printf 'CPU      per request: squadron %s us   haproxy %s us   nginx %s us   haproxy/squadron %.2f   nginx/squadron %.2f\n' \
  "$sc" "$hc" "$nc" "$(awk -v a="$hc" -v b="$sc" 'BEGIN {print a/b}')" "$(awk -v a="$nc" -v b="$sc" 'BEGIN {print a/b}')"
printf 'paired   CPU per request haproxy/squadron %.2f   nginx/squadron %.2f   (median of per-round ratios)\n' \
  "$(paired "${CPU[haproxy]}" "${CPU[squadron]}")" "$(paired "${CPU[nginx]}" "${CPU[squadron]}")"
