#!/usr/bin/env bash
# A bounded load on streamflix's front page, so that web and catalog scale out (watch
# `squadron -f examples/streamflix/squadron.yaml events` or the dashboard), then back in once it
# stops: wrk, CONNECTIONS connections for DURATION over HTTPS (the demo's self-signed
# certificate: wrk does not check it; the check below is told not to, -k), each page one call to
# catalog, ratings and recommendations behind it.
#   examples/streamflix/load.sh                     # 16 connections for 60 s
#   CONNECTIONS=32 DURATION=30s examples/streamflix/load.sh
set -euo pipefail
URL=${URL:-https://127.0.0.1:8443/}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-60s}
command -v wrk >/dev/null || { echo "load.sh needs wrk: scripts/bootstrap installs it" >&2; exit 1; }
curl -fsSk -o /dev/null "$URL" || { echo "nothing answers at $URL: start the demo (scripts/demo)" >&2; exit 1; }
echo "load: $CONNECTIONS connections on $URL for $DURATION"
exec wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL"
