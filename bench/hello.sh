#!/usr/bin/env bash
# Peer benchmark: build/bin/hello (1 I/O thread) vs nginx (1 worker, `return 200`) vs the
# course's Flask app, in interleaved rounds, each server pinned to CPU 1 and wrk to CPU 0.
# Prints req/s and p99 per run, the medians, and the ratios squadron/nginx, squadron/flask.
#
#   bench/hello.sh                  # 3 rounds of 10 s each per server
#   ROUNDS=5 DURATION=5s bench/hello.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3   # Debian's python3, which has python3-flask (not a pyenv one)

[ -x build/bin/hello ] || scripts/build
command -v wrk >/dev/null && command -v nginx >/dev/null && $PY -c 'import flask' 2>/dev/null || scripts/bootstrap

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

source bench/lib.sh

HELLO_PORT=$(free_port); NGINX_PORT=$(free_port); FLASK_PORT=$(free_port)

PORT=$HELLO_PORT taskset -c "$SERVER_CPU" build/bin/hello --threads 1 >"$work/hello.log" 2>&1 &
pids+=($!); hello_pid=$!

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { return 200 "Hello World!"; }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)

HOST=127.0.0.1 PORT=$FLASK_PORT taskset -c "$SERVER_CPU" $PY examples/flask/app.py >"$work/flask.log" 2>&1 &
pids+=($!)

wait_port "$HELLO_PORT"; wait_port "$NGINX_PORT"; wait_port "$FLASK_PORT"
sleep 0.5
hello_idle_rss=$(rss_kib "$hello_pid")

run_wrk() {  # name port -> "rps p99_ms"
  local out
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/hello" 2>&1)
  echo "$out" >"$work/wrk-$1-last.txt"
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errors" ] && echo "  $1: $errors" >&2
  echo "$rps $p99"
}

# warm-up, not counted
for s in hello:$HELLO_PORT nginx:$NGINX_PORT flask:$FLASK_PORT; do
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:${s#*:}/hello" >/dev/null 2>&1
done

declare -A RPS P99
printf '%-6s %-8s %12s %10s\n' round server "req/s" "p99 ms"
for r in $(seq 1 "$ROUNDS"); do
  for s in hello:$HELLO_PORT nginx:$NGINX_PORT flask:$FLASK_PORT; do
    name=${s%%:*}
    read -r rps p99 < <(run_wrk "$name" "${s#*:}")
    RPS[$name]+="$rps "; P99[$name]+="$p99 "
    printf '%-6s %-8s %12s %10s\n' "$r" "$name" "$rps" "$p99"
  done
done

h=$(median "${RPS[hello]}"); n=$(median "${RPS[nginx]}"); f=$(median "${RPS[flask]}")
hp=$(median "${P99[hello]}"); np=$(median "${P99[nginx]}"); fp=$(median "${P99[flask]}")
echo
printf 'median   hello %.0f req/s (p99 %s ms)   nginx %.0f req/s (p99 %s ms)   flask %.0f req/s (p99 %s ms)\n' "$h" "$hp" "$n" "$np" "$f" "$fp"
awk -v h="$h" -v n="$n" -v f="$f" -v hp="$hp" -v np="$np" 'BEGIN {
  printf "ratio    squadron/nginx req/s %.2f   p99 squadron/nginx %.2f   squadron/flask req/s %.1f\n", h/n, hp/np, h/f }'
echo "idle RSS of hello: $((hello_idle_rss / 1024)).$(( (hello_idle_rss % 1024) * 10 / 1024 )) MiB ($hello_idle_rss KiB)"
