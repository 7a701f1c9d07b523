#!/usr/bin/env bash
# gRPC through a proxy: the Squadron gateway (`proxy: { protocol: h2c }`), nginx (`grpc_pass`)
# and HAProxy (`proto h2` both sides), each one thread or worker on CPU 1, before the same
# examples/grpc service (Node's @grpc/grpc-js, one process, on CPU 1 too). The load: h2load over
# h2c on CPU 0, CLIENTS connections x STREAMS streams, each stream a unary Say call (one gRPC
# message, `te: trailers`). Interleaved rounds; per server: calls/s, p99 and the proxy's CPU time
# per call (the service is the same for all three, so the proxy's own cost is the difference).
# Every proxy is checked first with the example's own client (`say 10`: 10 of 10).
#
#   bench/grpc.sh                       # 5 rounds of 8 s, 8 connections x 20 streams
#   ROUNDS=3 DURATION=4 bench/grpc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-8}
STREAMS=${STREAMS:-20}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3

[ -x build/bin/squadron ] || scripts/build
command -v h2load >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
[ -d examples/grpc/node_modules ] || (cd examples/grpc && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

GRPC_PORT=$(free_port); SQUADRON_PORT=$(free_port); NGINX_PORT=$(free_port); HAPROXY_PORT=$(free_port)
SQUADRON_INSTANCE=echo-1 PORT=$GRPC_PORT taskset -c "$SERVER_CPU" node examples/grpc/server.js \
  >"$work/grpc.log" 2>&1 &
pids+=($!)
UPSTREAM_PID=$!  # its CPU per call is measured too: it shares $SERVER_CPU

cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$SQUADRON_PORT
upstreams:
  echo:
    endpoints: [127.0.0.1:$GRPC_PORT]
    routes: [/squadron.example.Echo/]
    proxy: { protocol: h2c, max_in_flight: 100000 }
GW
taskset -c "$SERVER_CPU" build/bin/squadron gateway -c "$work/gateway.yaml" --threads 1 \
  --idle-timeout 300 >"$work/squadron.log" 2>&1 &
squadron_pid=$!
pids+=("$squadron_pid")

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NG
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;  # no GOAWAY after 1,000 calls on a connection (its default)
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream echo { server 127.0.0.1:$GRPC_PORT; keepalive 32; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    http2_max_concurrent_streams 1000;
    location /squadron.example.Echo/ { grpc_pass grpc://echo; }
  }
}
NG
taskset -c "$SERVER_CPU" nginx -c "$work/nginx.conf" -p "$work/nginx"

cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4000
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 300s
  timeout server 30s
frontend front
  bind 127.0.0.1:$HAPROXY_PORT proto h2
  default_backend echo
backend echo
  server echo1 127.0.0.1:$GRPC_PORT proto h2
CFG
taskset -c "$SERVER_CPU" haproxy -D -f "$work/haproxy.cfg"

for p in $GRPC_PORT $SQUADRON_PORT $NGINX_PORT $HAPROXY_PORT; do wait_port "$p"; done
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
declare -A PIDS=([squadron]="$squadron_pid" [nginx]="$nginx_worker" [haproxy]="$(cat "$work/haproxy.pid")")
declare -A PORTS=([squadron]=$SQUADRON_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
servers="squadron nginx haproxy"
for s in $servers; do  # a real gRPC client through each, before anything is measured
  out=$(cd examples/grpc && timeout 20 node client.js "127.0.0.1:${PORTS[$s]}" say 10)
  grep -q '"ok":10' <<<"$out" || { echo "$s does not pass gRPC calls: $out" >&2; exit 1; }
done

# One unary Say call: a gRPC message (not compressed, 7 bytes: Text{text: "hello"}).
printf '\0\0\0\0\007\012\005hello' >"$work/say.bin"
h2load_rounds "calls/s" "http://127.0.0.1:%s/squadron.example.Echo/Say" -d "$work/say.bin" \
  -H 'content-type: application/grpc' -H 'te: trailers'
