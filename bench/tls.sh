#!/usr/bin/env bash
# TLS termination: the Squadron gateway (standalone, `squadron gateway -c FILE` with `tls:`),
# nginx (Debian's, `listen ... ssl`) and HAProxy (Debian's, `bind ... ssl crt`), each with one
# thread or worker on CPU 1, the same ECDSA P-256 certificate, the Mozilla intermediate
# protocols, in front of the same build/bin/hello (1 I/O thread, CPU 1, plain HTTP); wrk on CPU 0.
# In interleaved rounds, each server in turn:
#   keep-alive   wrk -t1 -c64 over https: req/s and p99
#   handshakes   wrk -t1 -c64 over https with `Connection: close`: every request a new
#                connection and a new TLS handshake (wrk resumes no session): connections/s
# Each with the server's CPU time per request (user + system, from /proc: less swayed by this
# shared machine's noise than req/s). Then the memory of IDLE (10,000) idle TLS connections (each made its handshake and one request,
# then stays quiet: bench/idle.py with IDLE_TLS=1), held against each server in turn: RSS per
# connection. Prints per-run figures, medians and the ratios squadron/nginx, squadron/haproxy.
#
#   bench/tls.sh                              # 5 rounds of 10 s, 10,000 idle connections
#   ROUNDS=3 DURATION=5s IDLE=2000 bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
IDLE=${IDLE:-10000}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PY=/usr/bin/python3

[ -x build/bin/squadron ] && [ -x build/bin/hello ] || scripts/build
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
want=$((IDLE + 2000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)
# HAProxy wants two descriptors per connection it may hold (maxconn): it refuses to start past
# half the limit. Without CAP_SYS_RESOURCE the limit stays, and so do the idle connections.
fit=$(((limit - 500) / 2))
if [ "$IDLE" -gt "$fit" ]; then
  echo "note: the descriptor limit is $limit and cannot be raised here: $fit idle connections against each server instead of $IDLE" >&2
  IDLE=$fit
fi

work=$(mktemp -d)
pids=()
holder_pid=
cleanup() {
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

source bench/front.sh

p99_of() {  # wrk --latency output -> p99 in ms
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'
}
hz=$(getconf CLK_TCK)
seconds=${DURATION%s}
run_wrk() {  # server extra-wrk-args... -> "req/s p99_ms cpu_us_per_request"
  local s=$1 out t0 t1
  shift
  t0=$(cpu_ticks "${PIDS[$s]}")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@" "https://127.0.0.1:${PORTS[$s]}/hello" 2>&1)
  t1=$(cpu_ticks "${PIDS[$s]}")
  echo "$out" >"$work/wrk-$s-last.txt"
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errors" ] && echo "  $s: $errors" >&2
  local rps
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  echo "$rps $(p99_of <<<"$out") $(awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$rps" -v d="$seconds" 'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}')"
}

for s in $servers; do  # warm-up, not counted
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:${PORTS[$s]}/hello" >/dev/null 2>&1
done

declare -A KA P99 KACPU HS HSP99 HSCPU
printf '%-6s %-9s %14s %8s %8s %14s %8s %8s\n' round server "keep-alive/s" "p99 ms" "CPU us" "handshakes/s" "p99 ms" "CPU us"
for r in $(seq 1 "$ROUNDS"); do
  for s in $servers; do
    read -r rps p99 cpu < <(run_wrk "$s")
    read -r hs hsp99 hscpu < <(run_wrk "$s" -H "Connection: close")
    KA[$s]+="$rps "; P99[$s]+="$p99 "; KACPU[$s]+="$cpu "; HS[$s]+="$hs "; HSP99[$s]+="$hsp99 "; HSCPU[$s]+="$hscpu "
    printf '%-6s %-9s %14s %8s %8s %14s %8s %8s\n' "$r" "$s" "$rps" "$p99" "$cpu" "$hs" "$hsp99" "$hscpu"
  done
done

echo
for s in $servers; do
  printf 'median   %-9s keep-alive %8.0f req/s (p99 %s ms, CPU %s us/req)   handshakes %7.0f/s (p99 %s ms, CPU %s us each)\n' "$s" \
    "$(median "${KA[$s]}")" "$(median "${P99[$s]}")" "$(median "${KACPU[$s]}")" "$(median "${HS[$s]}")" \
    "$(median "${HSP99[$s]}")" "$(median "${HSCPU[$s]}")"
done
for peer in nginx haproxy; do
  printf 'ratio    squadron/%-8s keep-alive req/s %.2f (p99 %.2f, CPU/req %.2f)   handshakes/s %.2f (CPU each %.2f)   (medians of per-round ratios)\n' \
    "$peer" "$(paired "${KA[squadron]}" "${KA[$peer]}")" "$(paired "${P99[squadron]}" "${P99[$peer]}")" \
    "$(paired "${KACPU[squadron]}" "${KACPU[$peer]}")" "$(paired "${HS[squadron]}" "${HS[$peer]}")" \
    "$(paired "${HSCPU[squadron]}" "${HSCPU[$peer]}")"
done

[ "$IDLE" -gt 0 ] || exit 0
# Idle TLS connections: each server in turn, from source addresses of their own.
hold() {  # port count source
  rm -f "$work/holder.in"; mkfifo "$work/holder.in"
  IDLE_TLS=1 taskset -c "$CLIENT_CPU" $PY bench/idle.py "$1" "$2" /hello "$3" <"$work/holder.in" >"$work/holder.out" &
  holder_pid=$!
  exec 7>"$work/holder.in"
  until grep -q '^ready' "$work/holder.out"; do
    kill -0 "$holder_pid" 2>/dev/null || { echo "the idle connections could not be opened" >&2; exit 1; }
    sleep 0.5
  done
}
release() { echo quit >&7; exec 7>&-; wait "$holder_pid" || true; holder_pid=; }
check_alive() { echo check >&7; until grep -q '^alive' "$work/holder.out"; do sleep 0.2; done; awk '/^alive/ {print $2}' "$work/holder.out"; }
echo
printf '%-9s %7s %10s %10s %10s %8s\n' server idle "RSS KiB" "+idle KiB" "KiB/conn" alive
source=10
declare -A PER
for s in $servers; do
  source=$((source + 1))
  before=$(rss_kib "${PIDS[$s]}")
  hold "${PORTS[$s]}" "$IDLE" "$source"
  sleep 2
  after=$(rss_kib "${PIDS[$s]}")
  alive=$(check_alive)
  release
  PER[$s]=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN {printf "%.2f", (a - b) / n}')
  [ "$alive" = 100 ] || echo "  $s closed some of the idle connections: its figure is too low" >&2
  printf '%-9s %7s %10s %10s %10s %8s\n' "$s" "$IDLE" "$before" "$after" "${PER[$s]}" "$alive/100"
done
printf 'ratio    idle TLS connection memory squadron/nginx %.2f   squadron/haproxy %.2f\n' \
  "$(awk -v a="${PER[squadron]}" -v b="${PER[nginx]}" 'BEGIN {print a / b}')" \
  "$(awk -v a="${PER[squadron]}" -v b="${PER[haproxy]}" 'BEGIN {print a / b}')"
