#!/usr/bin/env bash
# WebSocket tunnels: TUNNELS (1,000) WebSocket connections through the Squadron gateway
# (standalone, 1 thread), nginx (1 worker, `proxy_pass` with Upgrade) and HAProxy (1 thread,
# `timeout tunnel`) in turn, all on CPU 1 in front of the same upstream, examples/ws-echo (Python,
# CPU 1), and once straight to it; the client (bench/ws_load.py, Python) on CPU 0. Per round and
# server: each tunnel echoes one message, then stays quiet while the proxy's RSS is read (its
# memory per open tunnel), then every tunnel echoes 32-byte messages back to back for DURATION:
# round trips per second, and the proxy's CPU time per round trip (user + system, from /proc).
# The Python client and echo service bound the rate for all alike: the CPU per round trip and the
# memory per tunnel are the proxies' own figures.
#
#   bench/ws.sh                              # 3 rounds, 1,000 tunnels, 10 s each
#   ROUNDS=1 TUNNELS=200 DURATION=5 bench/ws.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
TUNNELS=${TUNNELS:-1000}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3

[ -x build/bin/squadron ] || scripts/build
command -v nginx >/dev/null && command -v haproxy >/dev/null && $PY -c 'import websockets' 2>/dev/null ||
  scripts/bootstrap
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

UP_PORT=$(free_port); SQUADRON_PORT=$(free_port); HAPROXY_PORT=$(free_port); NGINX_PORT=$(free_port)

PORT=$UP_PORT taskset -c "$SERVER_CPU" $PY examples/ws-echo/app.py >"$work/ws-echo.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")

cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$SQUADRON_PORT
upstreams:
  ws:
    endpoints: [127.0.0.1:$UP_PORT]
    routes: [/]
GW
taskset -c "$SERVER_CPU" build/bin/squadron gateway -c "$work/gateway.yaml" --threads 1 \
  >"$work/squadron.log" 2>&1 &
squadron_pid=$!
pids+=("$squadron_pid")

cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $((TUNNELS + 500))
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
frontend front
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend ws
backend ws
  server ws1 127.0.0.1:$UP_PORT
CFG
taskset -c "$SERVER_CPU" haproxy -f "$work/haproxy.cfg" -D >"$work/haproxy.log" 2>&1 ||
  { cat "$work/haproxy.log" >&2; exit 1; }

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $((2 * TUNNELS + 500)); }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:$UP_PORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)

wait_port "$UP_PORT"; wait_port "$SQUADRON_PORT"; wait_port "$HAPROXY_PORT"; wait_port "$NGINX_PORT"
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
declare -A PIDS=([direct]="" [squadron]="$squadron_pid" [haproxy]="$(cat "$work/haproxy.pid")" [nginx]="$nginx_worker")
declare -A PORTS=([direct]=$UP_PORT [squadron]=$SQUADRON_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT)
servers="direct squadron nginx haproxy"

hz=$(getconf CLK_TCK)

run() {  # server -> "roundtrips/s KiB_per_tunnel cpu_us_per_roundtrip wrong closed"
  local s=$1 before after t0 t1 out
  before=$(rss_kib "${PIDS[$s]}")
  rm -f "$work/load.out"
  taskset -c "$CLIENT_CPU" $PY bench/ws_load.py "ws://127.0.0.1:${PORTS[$s]}/echo" "$TUNNELS" "$DURATION" 3 \
    >"$work/load.out" 2>&1 &
  local load=$!
  until grep -q '^open' "$work/load.out"; do
    kill -0 "$load" 2>/dev/null || { echo "$s: the tunnels could not be opened: $(tail -3 "$work/load.out")" >&2; exit 1; }
    sleep 0.2
  done
  sleep 1
  after=$(rss_kib "${PIDS[$s]}")
  sleep 2  # the rest of the client's quiet hold
  t0=$(cpu_ticks "${PIDS[$s]}")
  wait "$load"
  t1=$(cpu_ticks "${PIDS[$s]}")
  read -r _ n _ rate _ wrong _ closed < <(grep '^roundtrips' "$work/load.out")
  awk -v r="$rate" -v a="$after" -v b="$before" -v k="$TUNNELS" -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" \
    -v w="$wrong" -v c="$closed" 'BEGIN {printf "%s %.2f %.1f %s %s\n", r, (a - b) / k, (n > 0 ? t / hz * 1e6 / n : 0), w, c}'
}

declare -A RATE MEM CPU
printf '%-6s %-9s %8s %14s %14s %16s %7s %7s\n' round server tunnels "roundtrips/s" "KiB/tunnel" "CPU us/roundtrip" wrong closed
for r in $(seq 1 "$ROUNDS"); do
  for s in $servers; do
    read -r rate mem cpu wrong closed < <(run "$s")
    # Memory from the first round only: a fresh process's growth (later rounds reuse what the
    # first freed, and HAProxy's pools keep it).
    RATE[$s]+="$rate "; CPU[$s]+="$cpu "; [ "$r" = 1 ] && MEM[$s]=$mem
    printf '%-6s %-9s %8s %14s %14s %16s %7s %7s\n' "$r" "$s" "$TUNNELS" "$rate" \
      "$([ "$s" = direct ] && echo - || echo "$mem")" "$([ "$s" = direct ] && echo - || echo "$cpu")" "$wrong" "$closed"
  done
done
echo
for s in $servers; do
  if [ "$s" = direct ]; then
    printf 'median   %-9s %6.0f round trips/s\n' "$s" "$(median "${RATE[$s]}")"
  else
    printf 'median   %-9s %6.0f round trips/s   %.2f KiB per open tunnel (round 1)   %.1f us CPU per round trip\n' \
      "$s" "$(median "${RATE[$s]}")" "${MEM[$s]}" "$(median "${CPU[$s]}")"
  fi
done
for peer in nginx haproxy; do
  printf 'ratio    squadron/%-8s round trips/s %.2f   memory per tunnel %.2f   CPU per round trip %.2f\n' "$peer" \
    "$(awk -v a="$(median "${RATE[squadron]}")" -v b="$(median "${RATE[$peer]}")" 'BEGIN {print a / b}')" \
    "$(awk -v a="${MEM[squadron]}" -v b="${MEM[$peer]}" 'BEGIN {print (b > 0 ? a / b : 0)}')" \
    "$(awk -v a="$(median "${CPU[squadron]}")" -v b="$(median "${CPU[$peer]}")" 'BEGIN {print (b > 0 ? a / b : 0)}')"
done
