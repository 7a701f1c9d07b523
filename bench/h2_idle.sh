#!/usr/bin/env bash
# Memory of idle HTTP/2 connections (h2c by prior knowledge): IDLE (2,000) connections that each
# made one request and keep quiet, held against the Squadron gateway (one thread) and nginx (one
# worker, `listen ... http2`), both in front of build/bin/hello on CPU 1. Prints each one's RSS
# per idle connection right after and 2.5 s later (bench/h2_idle.py).
#   bench/h2_idle.sh
#   IDLE=500 bench/h2_idle.sh
#   GATEWAY=/tmp/old/build/bin/squadron bench/h2_idle.sh    # another build's gateway
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-2000}
GATEWAY=${GATEWAY:-build/bin/squadron}
PY=/usr/bin/python3
SERVER_CPU=${SERVER_CPU:-1}
[ -x build/bin/hello ] && [ -x build/bin/squadron ] || scripts/build
command -v nginx >/dev/null || scripts/bootstrap
ulimit -n $((IDLE + 1000)) 2>/dev/null || true
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
HELLO_PORT=$(free_port); SQUADRON_PORT=$(free_port); NGINX_PORT=$(free_port)
PORT=$HELLO_PORT taskset -c "$SERVER_CPU" build/bin/hello --threads 1 >"$work/hello.log" 2>&1 &
pids+=($!)
cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$SQUADRON_PORT
upstreams:
  hello: { endpoints: [127.0.0.1:$HELLO_PORT], routes: [/hello] }
GW
taskset -c "$SERVER_CPU" "$GATEWAY" gateway -c "$work/gateway.yaml" --threads 1 \
  --idle-timeout 300 >"$work/squadron.log" 2>&1 &
pids+=($!)
squadron_pid=$!
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NG
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections $((IDLE + 500)); }
http {
  access_log off;
  keepalive_timeout 300s;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream hello { server 127.0.0.1:$HELLO_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    location /hello { proxy_pass http://hello; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NG
taskset -c "$SERVER_CPU" nginx -c "$work/nginx.conf" -p "$work/nginx"
wait_port "$SQUADRON_PORT"
wait_port "$NGINX_PORT"
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
echo "squadron: $(/usr/bin/python3 bench/h2_idle.py "$SQUADRON_PORT" "$IDLE" "$squadron_pid")"
echo "nginx:    $(/usr/bin/python3 bench/h2_idle.py "$NGINX_PORT" "$IDLE" "$nginx_worker")"
