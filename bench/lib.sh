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
