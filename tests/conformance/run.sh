#!/usr/bin/env bash
# Runs llhttp's strict request cases (tests/conformance/llhttp, copied from shared/conformance)
# against the echo service on a free port; fails on any disagreement.
#   tests/conformance/run.sh build/bin/echo [python3]
set -euo pipefail
echo_bin=$1
py=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
"$echo_bin" --port 0 --threads 1 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "echo did not start:"; cat "$log"; exit 1; }
"$py" "$here/blackbox_llhttp.py" 127.0.0.1 "$port" "$here/llhttp/cases.jsonl" 0.5
