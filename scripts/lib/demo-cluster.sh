#!/usr/bin/env bash
# `scripts/demo --cluster`: streamflix (examples/streamflix/squadron-cluster.yaml) across three
# test hosts of this machine — network namespaces h1-h3 at 10.213.0.11-13 (scripts/hosts), each
# with an etcd member, `squadron agent` and its gateway; `squadron server` on h1 and h2. The front
# door and the dashboard are reached from this machine through one forwarded loopback port each
# (scripts/forward), never by routing the hosts' addresses. Prints how to lose a host and watch
# the fleet heal. Ctrl-C stops everything.
#   DEMO_ONESHOT=1 scripts/demo --cluster   # start, check, lose h3, check the healing, stop
#   DEMO_PORT=18080 DEMO_CONTROL_PORT=19900 scripts/demo --cluster   # other loopback ports
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "demo --cluster: needs root (its hosts are network namespaces): run it with sudo" >&2; exit 2; }
scripts/build >/dev/null
command -v etcd >/dev/null && command -v jq >/dev/null || scripts/bootstrap
ROOT=$PWD
BIN=$ROOT/build/bin
MANIFEST=$ROOT/examples/streamflix/squadron-cluster.yaml
FLEET_NAME=streamflix
TTL=3s
PORT=${DEMO_PORT:-8080}
CONTROL_PORT=${DEMO_CONTROL_PORT:-9900}
export HOSTS_PREFIX=sqd HOSTS_SUBNET=10.213.0  # (the manifest's cluster.etcd addresses)
WORK=$(mktemp -d /tmp/squadron-demo-cluster.XXXXXX)
source scripts/lib/cluster.sh
forward_pid=
stop() {
  [ -z "$forward_pid" ] || kill "$forward_pid" 2>/dev/null || true
  cluster_stop
  rm -rf "$WORK"
}
trap stop EXIT
"$BIN/squadron" -f "$MANIFEST" validate

scripts/hosts down >/dev/null 2>&1 || true
scripts/hosts up 3 >/dev/null
cluster_etcd_up || { echo "demo: etcd did not start:" >&2; tail -5 "$WORK/etcd-h1.log" >&2; exit 1; }
for h in h1 h2 h3; do start_agent "$h"; done
wait_for 20 hosts_registered 3 || { echo "demo: the agents did not register:" >&2; tail -5 "$WORK/agent-h1.log" >&2; exit 1; }
start_server h1
sleep 0.3
start_server h2
WANT=(web=3 catalog=2 ratings=1 recommendations=2 hello=2)
wait_for 60 all_ready "${WANT[@]}" || { echo "demo: the fleet did not get ready:" >&2; instances >&2; exit 1; }
scripts/forward "$HOSTS_PREFIX-h1" "$PORT=$(addr h1):8080" "$CONTROL_PORT=$(addr h1):9900" \
  >"$WORK/forward.log" 2>&1 &
forward_pid=$!
wait_for 10 curl -fs -o /dev/null "http://127.0.0.1:$PORT/" ||
  { echo "demo: nothing answers on 127.0.0.1:$PORT:" >&2; cat "$WORK/forward.log" >&2; exit 1; }
app=http://127.0.0.1:$PORT
control=http://127.0.0.1:$CONTROL_PORT
cat <<TEXT

  streamflix on 3 hosts (network namespaces $HOSTS_PREFIX-h1..h3, $(addr h1)-13), 3 etcd members, 2 servers:
$(per_host | sed 's/^/    /')

  The application:    $app/             (h1's gateway, forwarded to this machine's loopback)
  The dashboard:      $control/             (the leader's, forwarded; its hosts view at the bottom)
                      token: $(dirname "$MANIFEST")/.squadron/token

  Lose a host and watch the fleet heal (the dashboard shows h3 lost, its instances placed again):
    sudo HOSTS_PREFIX=$HOSTS_PREFIX scripts/hosts partition h3    # cut off; 'heal h3' brings it back
    sudo kill -9 ${AGENT_PID[h3]} \$(jq -r '.instances[].pid' $WORK/agent-h3/agent.json)   # or kill every process of h3
  Ask any host:       sudo HOSTS_PREFIX=$HOSTS_PREFIX scripts/hosts exec h2 curl -s $(addr h2):8080/titles
  The CLI:            sudo HOSTS_PREFIX=$HOSTS_PREFIX scripts/hosts exec h1 build/bin/squadron -f $MANIFEST ps
TEXT

if [ -z "${DEMO_ONESHOT:-}" ]; then
  echo "  Ctrl-C stops every host."
  while sleep 3600; do :; done
fi

# The self-check: what a newcomer should see, asserted.
page=$(curl -fsS "$app/")
for want in STREAMFLIX "Orbit of Nine" "Because you watched"; do
  grep -qF "$want" <<<"$page" || { echo "demo: the front page lacks \"$want\"" >&2; exit 1; }
done
echo "demo: the front page answers through h1's gateway, with ratings and recommendations"
for h in h1 h2 h3; do
  H h1 curl -fsS -o /dev/null "http://$(addr "$h"):8080/titles" || { echo "demo: $h's gateway does not answer" >&2; exit 1; }
done
echo "demo: every host's gateway answers"
t0=$(now_ms)
kill_host h3
lost_h3() { [ "$(host_state h3)" = lost ]; }
wait_for 30 lost_h3 || { echo "demo: h3 is not said lost: $(host_state h3)" >&2; exit 1; }
wait_for 30 ready_off h3 "${WANT[@]}" || { echo "demo: h3's instances were not placed again:" >&2; instances >&2; exit 1; }
echo "demo: h3 lost: every instance ready again on h1 and h2 $(($(now_ms) - t0)) ms after its processes were killed"
per_host | sed 's/^/      /' 
# The dashboard in a real browser (Debian's chromium through Playwright, as scripts/test runs it).
[ -d tests/browser/node_modules/@playwright ] ||
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
seen=$(node tests/browser/hosts-view.mjs "$control" h3 lost "${DEMO_SCREENSHOT:-$WORK/hosts.png}") ||
  { echo "demo: the dashboard's hosts view does not show h3 lost" >&2; exit 1; }
echo "demo: the dashboard's hosts view (in chromium) shows h3 lost:"
sed 's/^/      /' <<<"$seen"
curl -fsS "$app/" | grep -qF STREAMFLIX || { echo "demo: the front page is gone" >&2; exit 1; }
echo "demo: ok"
