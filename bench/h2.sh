#!/usr/bin/env bash
# HTTP/2 on the front door: the Squadron gateway, nginx (`listen ... ssl http2`) and HAProxy
# (`alpn h2,http/1.1`), each one thread or worker on CPU 1 with the same certificate before the
# same build/bin/hello (HTTP/1.1 upstream, kept alive), as bench/front.sh sets them up; h2load
# (Debian's nghttp2-client) on CPU 0 over TLS with h2 by ALPN: CLIENTS connections with STREAMS
# concurrent streams each. In interleaved rounds, each server in turn: req/s, p99 (from h2load's
# per-request log) and the server's CPU time per request. Prints per-round figures, medians and
# the ratios squadron/nginx and squadron/haproxy (medians of per-round ratios).
#
#   bench/h2.sh                               # 5 rounds of 10 s, 16 connections x 100 streams
#   ROUNDS=3 DURATION=5 bench/h2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
STREAMS=${STREAMS:-100}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
IDLE=0
PY=/usr/bin/python3

[ -x build/bin/squadron ] && [ -x build/bin/hello ] || scripts/build
command -v h2load >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null ||
  scripts/bootstrap
limit=$(ulimit -n)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
FRONT_H2=1
HAPROXY_MAXCONN=4000  # its streams count against it: room for CLIENTS x STREAMS
source bench/front.sh
for s in $servers; do  # each speaks h2 before anything is measured
  v=$(curl -sS -o /dev/null -w '%{http_version}' --http2 --cacert "$work/site.pem" "https://localhost:${PORTS[$s]}/hello")
  [ "$v" = 2 ] || { echo "$s does not answer over h2 (HTTP/$v)" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)
run_h2load() {  # server -> "req/s p99_ms cpu_us_per_request"
  local s=$1 out t0 t1 log=$work/h2load-$1.log
  rm -f "$log"
  t0=$(cpu_ticks "${PIDS[$s]}")
  out=$(taskset -c "$CLIENT_CPU" h2load -t1 -c"$CLIENTS" -m"$STREAMS" -D"$DURATION" --log-file="$log" \
    "https://127.0.0.1:${PORTS[$s]}/hello" 2>&1)
  t1=$(cpu_ticks "${PIDS[$s]}")
  echo "$out" >"$work/h2load-$s-last.txt"
  local rps failed p99 done_
  rps=$(awk '/^finished in/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^req\/s/) {gsub(",","",$i); print $i}}' <<<"$out")
  failed=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^failed/) print $i}' <<<"$out")
  [ "${failed:-0}" = 0 ] || echo "  $s: $failed requests failed" >&2
  # The log: start time, status, microseconds per request.
  p99=$(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]/1000}')
  done_=$(wc -l <"$log")
  echo "$rps $p99 $(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$done_" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}

for s in $servers; do  # warm-up, not counted
  taskset -c "$CLIENT_CPU" h2load -t1 -c"$CLIENTS" -m"$STREAMS" -D2 "https://127.0.0.1:${PORTS[$s]}/hello" >/dev/null 2>&1
done

declare -A RPS P99 CPU
printf '%-6s %-9s %10s %8s %8s\n' round server "req/s" "p99 ms" "CPU us"
for r in $(seq 1 "$ROUNDS"); do
  for s in $servers; do
    read -r rps p99 cpu < <(run_h2load "$s")
    RPS[$s]+="$rps "; P99[$s]+="$p99 "; CPU[$s]+="$cpu "
    printf '%-6s %-9s %10s %8s %8s\n' "$r" "$s" "$rps" "$p99" "$cpu"
  done
done

echo
for s in $servers; do
  printf 'median   %-9s %8.0f req/s (p99 %s ms, CPU %s us/req)\n' "$s" \
    "$(median "${RPS[$s]}")" "$(median "${P99[$s]}")" "$(median "${CPU[$s]}")"
done
for peer in nginx haproxy; do
  printf 'ratio    squadron/%-8s h2 req/s %.2f (p99 %.2f, CPU/req %.2f)   (medians of per-round ratios)\n' \
    "$peer" "$(paired "${RPS[squadron]}" "${RPS[$peer]}")" "$(paired "${P99[squadron]}" "${P99[$peer]}")" \
    "$(paired "${CPU[squadron]}" "${CPU[$peer]}")"
done
