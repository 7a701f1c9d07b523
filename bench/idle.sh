#!/usr/bin/env bash
# What an idle keep-alive connection costs: IDLE (10,000) connections that each sent one request
# and then keep quiet, held against build/bin/hello, nginx (`return 200`), the Squadron gateway
# in front of hello and HAProxy in front of hello — one I/O thread or worker each, all on CPU 1,
# descriptor limits raised for all. Prints each server's RSS before and after, the RSS per idle
# connection, and the req/s of a wrk load (-t1 -c64, CPU 0) on other connections with no idle
# ones and with them held. Then HUGE (100,000) idle connections against hello alone (from
# 127.0.0.100 on, the next address past each 20,000): its RSS, and how long a new client waits for an answer.
#
#   bench/idle.sh
#   IDLE=5000 HUGE=0 ROUNDS=1 DURATION=3s bench/idle.sh     # HUGE=0 skips the 100,000
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-10000}
HUGE=${HUGE:-100000}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3

[ -x build/bin/hello ] && [ -x build/bin/squadron ] || scripts/build
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
# Room for the held connections (each process holds one end of each) and the load. Raising the
# hard limit needs CAP_SYS_RESOURCE; without it the 100,000 shrink to what the limit allows.
want=$(((HUGE > IDLE ? HUGE : IDLE) + 2000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)
if [ "$limit" -lt "$want" ]; then
  fit=$((limit * 8 / 10))  # below the server's own cap (the limit less a tenth)
  ((IDLE <= fit)) || { echo "the descriptor limit ($limit) leaves no room for $IDLE connections" >&2; exit 1; }
  if ((HUGE > fit)); then
    echo "note: the descriptor limit is $limit and cannot be raised here (no CAP_SYS_RESOURCE): $fit idle connections against hello instead of $HUGE" >&2
    HUGE=$fit
  fi
fi

source bench/lib.sh

work=$(mktemp -d)
pids=()
holder_pid=
cleanup() {
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null || true
  [ -f "$work/squadron.yaml" ] && build/bin/squadron --file "$work/squadron.yaml" down >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

HELLO_PORT=$(free_port); GATEWAY_PORT=$(free_port); HAPROXY_PORT=$(free_port); NGINX_PORT=$(free_port)

cat >"$work/squadron.yaml" <<YAML
name: idle-bench
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

# HAProxy wants two descriptors per connection it may hold (the front one and the server one):
# under a limit of 20,000 it holds fewer than 10,000 and is measured with what it can hold.
haproxy_maxconn=$((IDLE + 500 < limit / 2 - 100 ? IDLE + 500 : limit / 2 - 100))
declare -A COUNT=([hello]=$IDLE [nginx]=$IDLE [squadron]=$IDLE [haproxy]=$((haproxy_maxconn - 500 < IDLE ? haproxy_maxconn - 500 : IDLE)))
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $haproxy_maxconn
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 300s
  timeout server 30s
  timeout http-keep-alive 300s
  http-reuse always
frontend front
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend hello
backend hello
  server hello1 127.0.0.1:$HELLO_PORT
CFG
taskset -c "$SERVER_CPU" haproxy -f "$work/haproxy.cfg" -D >"$work/haproxy.log" 2>&1 || { cat "$work/haproxy.log"; exit 1; }

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile $limit;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $limit; }
http {
  access_log off;
  default_type text/plain;
  keepalive_timeout 300s;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / { return 200 "Hello World!"; }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)

wait_port "$HELLO_PORT"; wait_port "$GATEWAY_PORT"; wait_port "$HAPROXY_PORT"; wait_port "$NGINX_PORT"
sleep 0.5
gateway_pid=$(build/bin/squadron --file "$work/squadron.yaml" ps --json | $PY -c "import json,sys;print(' '.join(str(i['pid']) for i in json.load(sys.stdin) if i['service']=='gateway'))")
hello_pid=$(build/bin/squadron --file "$work/squadron.yaml" ps --json | $PY -c "import json,sys;print(' '.join(str(i['pid']) for i in json.load(sys.stdin) if i['service']=='hello'))")
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
declare -A PIDS=([hello]="$hello_pid" [nginx]="$nginx_worker" [squadron]="$gateway_pid" [haproxy]="$(cat "$work/haproxy.pid")")
declare -A PORTS=([hello]=$HELLO_PORT [nginx]=$NGINX_PORT [squadron]=$GATEWAY_PORT [haproxy]=$HAPROXY_PORT)

load() {  # port -> req/s of wrk on 64 connections of its own
  taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"$DURATION" "http://127.0.0.1:$1/hello" | awk '/^Requests\/sec:/ {print $2}'
}
# Opens $2 idle connections to port $1 from 127.0.0.$3 on in the background (holder_pid, its output in
# $work/holder.out, its input the fifo $work/holder.in) and waits until they are all open.
hold() {
  rm -f "$work/holder.in"; mkfifo "$work/holder.in"
  taskset -c "$CLIENT_CPU" $PY bench/idle.py "$1" "$2" /hello "$3" <"$work/holder.in" >"$work/holder.out" &
  holder_pid=$!
  exec 7>"$work/holder.in"
  until grep -q '^ready' "$work/holder.out"; do
    kill -0 "$holder_pid" 2>/dev/null || { echo "the idle connections could not be opened" >&2; exit 1; }
    sleep 0.5
  done
}
release() { echo quit >&7; exec 7>&-; wait "$holder_pid" || true; holder_pid=; }
check_alive() { echo check >&7; until grep -q '^alive' "$work/holder.out"; do sleep 0.2; done; awk '/^alive/ {print $2}' "$work/holder.out"; }

for s in hello nginx squadron haproxy; do  # warm-up, not counted
  taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d2s "http://127.0.0.1:${PORTS[$s]}/hello" >/dev/null 2>&1
done

# Per server, ROUNDS times: the load alone, then with the idle connections held (from source
# addresses of their own each time: no TIME_WAIT of an earlier round in the way). The RSS is the
# first round's (a fresh process: what the connections cost it, not memory an earlier round
# left free); the load's ratio is the median of the rounds'.
printf '%-9s %7s %10s %10s %10s %13s %13s %8s\n' server idle "RSS KiB" "+idle KiB" "KiB/conn" \
  "req/s alone" "req/s +idle" alive
source=2
for s in hello nginx squadron haproxy; do
  ratios=""
  for r in $(seq 1 "$ROUNDS"); do
    source=$((source + 1))
    alone=$(load "${PORTS[$s]}")
    before=$(rss_kib "${PIDS[$s]}")
    hold "${PORTS[$s]}" "${COUNT[$s]}" "$source"
    sleep 2  # whatever the server frees once a connection has gone quiet
    after=$(rss_kib "${PIDS[$s]}")
    loaded=$(load "${PORTS[$s]}")
    alive=$(check_alive)
    release
    ratios+="$(awk -v a="$alone" -v l="$loaded" 'BEGIN {print l / a}') "
    [ "$r" = 1 ] && per_conn=$(awk -v a="$after" -v b="$before" -v n="${COUNT[$s]}" 'BEGIN {printf "%.2f", (a - b) / n}')
    printf '%-9s %7s %10s %10s %10s %13s %13s %8s\n' "$s" "${COUNT[$s]}" "$before" "$after" \
      "$(awk -v a="$after" -v b="$before" -v n="${COUNT[$s]}" 'BEGIN {printf "%.2f", (a - b) / n}')" \
      "$alone" "$loaded" "$alive/100"
  done
  printf '  => %s: %s KiB per idle connection; req/s with them held / without: %.2f (median of %s)\n' \
    "$s" "$per_conn" "$(median "$ratios")" "$ROUNDS"
done

[ "$HUGE" -gt 0 ] || exit 0
# A fresh hello: its RSS then counts what these connections cost, not memory earlier rounds left.
HUGE_PORT=$(free_port)
PORT=$HUGE_PORT taskset -c "$SERVER_CPU" build/bin/hello --threads 1 >"$work/hello-huge.log" 2>&1 &
huge_pid=$!; pids+=("$huge_pid")
wait_port "$HUGE_PORT"
taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d2s "http://127.0.0.1:$HUGE_PORT/hello" >/dev/null 2>&1
echo
before=$(rss_kib "$huge_pid")
hold "$HUGE_PORT" "$HUGE" 100
sleep 2
after=$(rss_kib "$huge_pid")
first=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$HUGE_PORT/hello")
alive=$(check_alive)
release
printf 'hello, %s idle connections: RSS %s -> %s KiB (%.2f MiB, %.2f KiB each); a new client answered in %.1f ms; %s/100 sampled still answer\n' \
  "$HUGE" "$before" "$after" "$(awk -v a="$after" 'BEGIN {print a / 1024}')" \
  "$(awk -v a="$after" -v b="$before" -v n="$HUGE" 'BEGIN {print (a - b) / n}')" \
  "$(awk -v t="$first" 'BEGIN {print t * 1000}')" "$alive"
