#!/usr/bin/env bash
# The dashboard with a big fleet (issue 6: "usable with 50 services and 500 instances"):
# SERVICES x INSTANCES of the C++ hello behind the gateway, the dashboard in headless chromium.
# Prints the time to show every service ready, a scale from the page, a watch snapshot's size and
# the page's JS heap.
#   bench/dashboard.sh                       # 50 x 10
#   SERVICES=20 INSTANCES=5 bench/dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/squadron ] || scripts/build
[ -d tests/browser/node_modules ] ||
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
ulimit -n 65536 2>/dev/null || true
exec node tests/browser/scale.mjs
