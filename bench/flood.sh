#!/usr/bin/env bash
# The control plane and the gateway under a connection flood (issue 12): see bench/flood.py.
#   bench/flood.sh                 # ROUNDS=3 SECONDS_PER_RUN=5
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/squadron ] || scripts/build
exec python3 bench/flood.py
