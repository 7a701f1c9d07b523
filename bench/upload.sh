#!/usr/bin/env bash
# Streamed bodies: a 1 GiB upload through the Squadron gateway to a Python upstream that reads it
# in pieces, twice (Content-Length, then chunked). Prints the time, the throughput, the bytes and
# CRC the upstream counted, and the gateway's peak resident memory before and after (VmHWM):
# streamed, it stays flat however large the body.
#
#   bench/upload.sh                  # 1 GiB
#   MIB=256 bench/upload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
source bench/lib.sh
MIB=${MIB:-1024}
[ -x build/bin/squadron ] || scripts/build

start_fleet <<YAML
name: upload
control: { listen: 127.0.0.1:0 }
gateway: { listen: 127.0.0.1:0 }
services:
  sink:
    command: [/usr/bin/python3, $PWD/tests/integration/services/flaky.py]
    routes: [/sink]
    proxy: { timeout: 300s }
YAML
read -r gateway gateway_pid < <(S ps --json | /usr/bin/python3 -c "import json,sys;g=[i for i in json.load(sys.stdin) if i['service']=='gateway'][0];print(g['port'],g['pid'])")
hwm() { awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status"; }
bytes=$((MIB * 1024 * 1024))
echo "gateway on 127.0.0.1:$gateway (pid $gateway_pid); peak RSS before: $(hwm) KiB"
for framing in length chunked; do
  # curl -T - sends chunked; with a Content-Length of our own, its Transfer-Encoding goes.
  if [ "$framing" = length ]; then extra=(-H "Content-Length: $bytes" -H "Transfer-Encoding:"); else extra=(); fi
  start=$(date +%s.%N)
  answer=$(head -c "$bytes" /dev/zero | curl -sS --max-time 300 -X POST -T - "${extra[@]}" \
    -H "Expect:" "http://127.0.0.1:$gateway/sink")
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc -l)
  printf '%-8s %5d MiB in %6.2f s (%6.0f MiB/s); upstream says: %s; gateway peak RSS now %s KiB\n' \
    "$framing" "$MIB" "$secs" "$(echo "$MIB / $secs" | bc -l)" "$answer" "$(hwm)"
done
