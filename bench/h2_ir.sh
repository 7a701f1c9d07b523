#!/usr/bin/env bash
# bench/h2.sh's load counted in instructions, which this machine's timing cannot blur: the
# user-space instructions per request (callgrind) of the Squadron gateway and of HAProxy (with
# its defaults, and adding the gateway's forwarded fields as SAME_HEADERS=1 of bench/front.sh
# has it), and of the upstream (build/bin/hello, which shares the proxies' core in bench/h2.sh)
# behind each. Each: WARM requests, callgrind's counters zeroed, then REQUESTS requests (h2load
# over TLS, h2 by ALPN, 16 connections x 100 streams), counted. System calls and cache misses
# are not in these counts: bench/h2.sh's CPU per request has them.
#
#   bench/h2_ir.sh                    # REQUESTS=16000
#   GATEWAY=/tmp/old/build/bin/squadron bench/h2_ir.sh    # another build's gateway
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-16000}
WARM=${WARM:-3200}
GATEWAY=${GATEWAY:-build/bin/squadron}
HELLO=${HELLO:-build/bin/hello}
PY=/usr/bin/python3

[ -x build/bin/squadron ] && [ -x build/bin/hello ] || scripts/build
command -v valgrind >/dev/null && command -v h2load >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
source bench/lib.sh
work=$(mktemp -d)
running=()
cleanup() {
  for p in "${running[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/site.key" -out "$work/site.pem" 2>/dev/null
cat "$work/site.pem" "$work/site.key" >"$work/site.combined.pem"

# A port answering a connection within 30 s (callgrind starts a program slowly).
ready() { for _ in 1 2 3; do wait_port "$1" 2>/dev/null && return 0; done; return 1; }

start_gateway() {  # under_callgrind upstream_port port
  cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$3
tls: { cert: site.pem, key: site.key }
upstreams:
  hello: { endpoints: ["127.0.0.1:$2"], routes: [/hello], proxy: { max_in_flight: 100000 } }
GW
  if [ "$1" = 1 ]; then
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$GATEWAY" gateway \
      -c "$work/gateway.yaml" --threads 1 --idle-timeout 300 >"$work/gateway.log" 2>&1 &
  else
    "$GATEWAY" gateway -c "$work/gateway.yaml" --threads 1 --idle-timeout 300 >"$work/gateway.log" 2>&1 &
  fi
  echo $!
}

start_haproxy() {  # same_headers upstream_port port [under_callgrind]
  local headers=""
  [ "$1" = 1 ] && headers='  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  unique-id-format %[uuid()]
  unique-id-header X-Request-Id'
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
  http-reuse always
frontend front
  bind 127.0.0.1:$3 ssl crt $work/site.combined.pem alpn h2,http/1.1
$headers
  default_backend hello
backend hello
  server hello1 127.0.0.1:$2
CFG
  if [ "${4:-0}" = 1 ]; then  # in the foreground (-db), its pid valgrind's
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" haproxy -f "$work/haproxy.cfg" \
      -db >"$work/haproxy.log" 2>&1 &
    echo $!
    return
  fi
  haproxy -f "$work/haproxy.cfg" -D >"$work/haproxy.log" 2>&1
  sleep 0.3
  cat "$work/haproxy.pid"
}

# Instructions per request of `pid` (under callgrind) with `port` as the front door.
count() {  # pid port
  local total
  h2load -t1 -c16 -m100 -n"$WARM" "https://127.0.0.1:$2/hello" >/dev/null 2>&1
  callgrind_control -z "$1" >/dev/null 2>&1
  h2load -t1 -c16 -m100 -n"$REQUESTS" "https://127.0.0.1:$2/hello" 2>&1 |
    grep -q "$REQUESTS succeeded" || { echo "not every request succeeded" >&2; return 1; }
  callgrind_control -d "$1" >/dev/null 2>&1
  sleep 1
  total=$(grep -h -E '^(summary|totals):' "$work"/cg."$1".* | head -1 | awk '{print $2}')
  awk -v t="$total" -v n="$REQUESTS" 'BEGIN {printf "%.0f", t / n}'
}

stop() { for p in "$@"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; }

printf '%-44s %12s\n' "what is counted (user space, callgrind)" "instr/request"
# The gateway itself.
up=$(free_port); front=$(free_port)
PORT=$up "$HELLO" --threads 1 >"$work/hello.log" 2>&1 & hello=$!; running+=("$hello")
gw=$(start_gateway 1 "$up" "$front"); running+=("$gw")
ready "$up"; ready "$front"
printf '%-44s %12s\n' "the gateway" "$(count "$gw" "$front")"
stop "$gw" "$hello"
# HAProxy itself, with its defaults and adding the same fields as the gateway.
for same in 0 1; do
  up=$(free_port); front=$(free_port)
  PORT=$up "$HELLO" --threads 1 >"$work/hello.log" 2>&1 & hello=$!; running+=("$hello")
  proxy=$(start_haproxy "$same" "$up" "$front" 1); running+=("$proxy")
  ready "$up"; ready "$front"
  printf '%-44s %12s\n' "HAProxy$([ "$same" = 1 ] && echo ", adding the same fields")" \
    "$(count "$proxy" "$front")"
  stop "$proxy" "$hello"
done

# The upstream behind each front door.
for who in squadron haproxy haproxy-same-headers; do
  up=$(free_port); front=$(free_port)
  PORT=$up valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$HELLO" --threads 1 \
    >"$work/hello.log" 2>&1 &
  hello=$!; running+=("$hello")
  case $who in
    squadron) proxy=$(start_gateway 0 "$up" "$front") ;;
    haproxy) proxy=$(start_haproxy 0 "$up" "$front") ;;
    *) proxy=$(start_haproxy 1 "$up" "$front") ;;
  esac
  running+=("$proxy")
  ready "$up"; ready "$front"
  printf '%-44s %12s\n' "the upstream behind $who" "$(count "$hello" "$front")"
  stop "$proxy" "$hello"
done
