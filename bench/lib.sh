# Shared by the bench scripts (sourced): ports, waiting, medians. Needs $PY.
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2; return 1
}
# The resident memory (KiB) and the user + system clock ticks, summed over a list of pids.
rss_kib() { local t=0 p; for p in $1; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
# The median of a space-separated list of numbers.
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# $1 $2: space-separated lists in round order -> the median of the per-round ratios $1/$2.
paired() {
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
    awk '{print $1/$2}' | tr '\n' ' ' | { read -r l; median "$l"; }
}

# A fleet of the manifest read from stdin, in a temporary folder: `start_fleet <<YAML ... YAML`.
# Sets $work and $gateway (the gateway's port, if it has one); S runs the CLI on it. At exit the
# fleet is stopped, the processes listed in $pids are killed and the folder is removed.
pids=()
S() { build/bin/squadron --file "$work/squadron.yaml" "$@"; }
port_of() { S ps --json | $PY -c "import json,sys;print(([i['port'] for i in json.load(sys.stdin) if i['service']=='$1'] or [''])[0])"; }
stop_fleet() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  S down >/dev/null 2>&1 || true
  rm -rf "$work"
}
start_fleet() {
  work=$(mktemp -d)
  trap stop_fleet EXIT
  cat >"$work/squadron.yaml"
  S up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
  gateway=$(port_of gateway)
}

# h2load against each of $servers in interleaved rounds (needs PIDS, PORTS, servers, work,
# ROUNDS, DURATION, CLIENTS, STREAMS, CLIENT_CPU): `h2load_rounds UNIT URL_FORMAT [h2load args]`,
# URL_FORMAT a printf format taking the port. Prints per round each server's rate, p99 (from
# h2load's per-request log) and CPU time per request; then medians, and squadron's ratios
# against nginx and haproxy (medians of per-round ratios). One warm-up run each first.
h2load_rounds() {
  local unit=$1 format=$2 s r rps p99 cpu
  shift 2
  local hz
  hz=$(getconf CLK_TCK)
  one_h2load() {  # server seconds -> "rate p99_ms cpu_us_per_request upstream_cpu_us"
    local s=$1 seconds=$2 out t0 t1 u0=0 u1=0 log=$work/h2load-$1.log failed done_ url
    shift 2
    url=$(printf "$format" "${PORTS[$s]}")
    rm -f "$log"
    t0=$(cpu_ticks "${PIDS[$s]}")
    [ -n "${UPSTREAM_PID:-}" ] && u0=$(cpu_ticks "$UPSTREAM_PID")
    out=$(taskset -c "$CLIENT_CPU" h2load -t1 -c"$CLIENTS" -m"$STREAMS" -D"$seconds" --log-file="$log" \
      "$@" "$url" 2>&1)
    t1=$(cpu_ticks "${PIDS[$s]}")
    [ -n "${UPSTREAM_PID:-}" ] && u1=$(cpu_ticks "$UPSTREAM_PID")
    rps=$(awk '/^finished in/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^req\/s/) {gsub(",","",$i); print $i}}' <<<"$out")
    failed=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^failed/) print $i}' <<<"$out")
    [ "${failed:-0}" = 0 ] || echo "  $s: $failed failed" >&2
    # The log: start time, status, microseconds per request.
    p99=$(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]/1000}')
    done_=$(wc -l <"$log")
    echo "$rps $p99 $(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$done_" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')" \
      "$(awk -v t=$((u1 - u0)) -v hz="$hz" -v n="$done_" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
  }
  for s in $servers; do one_h2load "$s" 2 "$@" >/dev/null; done  # warm-up, not counted
  declare -A RPS P99 CPU UCPU
  printf '%-6s %-9s %10s %8s %8s %12s\n' round server "$unit" "p99 ms" "CPU us" "upstream us"
  for r in $(seq 1 "$ROUNDS"); do
    for s in $servers; do
      read -r rps p99 cpu ucpu < <(one_h2load "$s" "$DURATION" "$@")
      RPS[$s]+="$rps "; P99[$s]+="$p99 "; CPU[$s]+="$cpu "; UCPU[$s]+="$ucpu "
      printf '%-6s %-9s %10s %8s %8s %12s\n' "$r" "$s" "$rps" "$p99" "$cpu" "$ucpu"
    done
  done
  echo
  for s in $servers; do
    printf 'median   %-9s %8.0f %s (p99 %s ms, CPU %s us each, the upstream %s us)\n' "$s" \
      "$(median "${RPS[$s]}")" "$unit" "$(median "${P99[$s]}")" "$(median "${CPU[$s]}")" \
      "$(median "${UCPU[$s]}")"
  done
  for peer in nginx haproxy; do
    printf 'ratio    squadron/%-8s %s %.2f (p99 %.2f, CPU each %.2f)   (medians of per-round ratios)\n' \
      "$peer" "$unit" "$(paired "${RPS[squadron]}" "${RPS[$peer]}")" \
      "$(paired "${P99[squadron]}" "${P99[$peer]}")" "$(paired "${CPU[squadron]}" "${CPU[$peer]}")"
  done
}
