#!/usr/bin/env bash
# One fleet across namespace hosts (issue 15's figures). HOSTS hosts (scripts/hosts, namespaces
# of their own: nothing reaches an address outside them), an etcd member on each of the first
# three, `squadron server` on h1 and h2, `squadron agent` with its gateway (:8080) on every host;
# a manifest of C++ hello x6, echo x3 and the course's Flask app x2. Every load is wrk from inside
# a host, bounded in time. Each scenario prints its figures:
#
#   place      time until every instance is ready; instances per host; every gateway, every route
#   host-kill  kill -9 of every process of h3 (agent, instances) under load through h1's gateway:
#              failed requests, time until the desired count is ready again
#   partition  h3 cut off for 10 s, then healed, under load through h1's and h2's gateways:
#              failed requests, and each service's count afterwards
#   etcd-kill  the etcd leader SIGKILLed under load, `scale hello=8` at once: failed requests,
#              time until 8 are ready
#   server-kill the leading server SIGKILLed: time until the standby leads, instances restarted
#   agent      h2's agent SIGTERMed and started again under load: failed requests, pids kept
#   scale-seen `scale echo=6`: time until every host's gateway routes by a table with the new ones
#   locality   which share of each host gateway's requests its own host's instances answer
#   etcd-rate  etcd requests per second (all members, from their /metrics) idle, then during a
#              rolling restart of hello
#   mass       (MASS=N, default 200, on every host) time to place and make ready N more C++
#              instances
#
#   bench/cluster.sh                      # 3 hosts, every scenario but mass
#   HOSTS=5 MASS=200 bench/cluster.sh     # the same on 5 hosts, then 200 hello instances
#   ONLY="place agent" bench/cluster.sh   # some scenarios (place always runs)
#   HOLD=300 KEEP=1 ONLY=place bench/cluster.sh   # then 5 minutes to look around; files kept
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/build/bin
HOSTS=${HOSTS:-3}
TTL=${TTL:-3s}
LOAD=${LOAD:-12}   # seconds of load per scenario
MASS=${MASS:-0}
ONLY=${ONLY:-}
export HOSTS_PREFIX=${HOSTS_PREFIX:-sqb} HOSTS_SUBNET=${HOSTS_SUBNET:-10.214.0}
[ "$(id -u)" -eq 0 ] || { echo "cluster.sh: needs root (network namespaces)" >&2; exit 2; }
[ "$HOSTS" -ge 3 ] || { echo "cluster.sh: HOSTS must be 3 or more" >&2; exit 2; }
[ -x "$BIN/squadron" ] || scripts/build
command -v wrk >/dev/null && command -v etcd >/dev/null || scripts/bootstrap

WORK=$(mktemp -d /tmp/squadron-cluster-bench.XXXXXX)
FLEET=$WORK/fleet
mkdir -p "$FLEET"
FLEET_NAME=bench
MANIFEST=$FLEET/squadron.yaml
source scripts/lib/cluster.sh
say() { printf '%s\n' "$*"; }
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
cleanup() {
  cluster_stop
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

count() {  # SERVICE [STATE] -> how many (any state but stopped/failed without STATE)
  instances | awk -v s="$1" -v st="${2:-}" '$1 == s && (st == "" ? ($2 != "stopped" && $2 != "failed") : $2 == st) {n++} END {print n + 0}'
}
exactly() {  # SERVICE=N ...: N ready and nothing else of it
  local out s
  out=$(instances)
  for s in "$@"; do
    [ "$(awk -v s="${s%=*}" '$1 == s {n++} END {print n + 0}' <<<"$out")" -eq "${s#*=}" ] || return 1
    [ "$(awk -v s="${s%=*}" '$1 == s && $2 == "ready" {n++} END {print n + 0}' <<<"$out")" -eq "${s#*=}" ] || return 1
  done
}
# ms from the last "scale A -> B" of SERVICE to the last of its instances ready after it
scale_to_ready() {
  events | awk -F'|' -v s="$1" '$2 == s && $4 ~ /^scale / {t = $1; n = 0; last = 0}
    t && $2 == s && $4 ~ /^ready/ {n++; last = $1} END {print (t && last ? last - t : -1), n}'
}
# ms from T0 (this machine's clock, which the leader shares) to the last "ready" event after it
last_ready_since() { events | awk -F'|' -v t0="$1" '$1 >= t0 && $4 ~ /^ready/ {last = $1} END {print (last ? last - t0 : -1)}'; }

LOADS=()
start_load() {  # FROM_HOST GATEWAY_HOST PATH SECONDS -> wrk in the background, output in a file
  local out="$WORK/wrk-$1-$2-${#LOADS[@]}.txt"
  scripts/hosts exec "$1" wrk -t1 -c8 -d"${4}s" --timeout 5s "http://$(addr "$2"):8080$3" >"$out" 2>&1 &
  LOADS+=("$!:$out")
}
end_loads() {  # waits for every load; sets TOTAL and FAILED (summed), ERRORS (what failed)
  local total=0 failed=0 l pid out r f
  ERRORS=""
  for l in "${LOADS[@]}"; do
    pid=${l%%:*}
    out=${l#*:}
    wait "$pid" || true
    r=$(awk '/requests in/ {print $1}' "$out")
    f=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
    total=$((total + ${r:-0}))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || ERRORS+=" $(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | tr '\n' ';')"
  done
  LOADS=()
  TOTAL=$total
  FAILED=$failed
}
loads_said() { say "   requests: $TOTAL, failed: $FAILED${ERRORS:+ (}${ERRORS}${ERRORS:+ )}"; }

# --- the hosts, etcd, servers, agents ------------------------------------------------------
scripts/hosts down >/dev/null 2>&1 || true
scripts/hosts up "$HOSTS" >/dev/null
cluster_etcd_up || { echo "etcd did not start:"; tail -5 "$WORK"/etcd-h1.log; exit 1; }
cat >"$FLEET/squadron.yaml" <<EOF
name: bench
cluster: { etcd: [$ETCD_MEMBERS], ttl: $TTL }
services:
  hello:
    command: [$BIN/hello, --threads, "1"]
    replicas: 6
    ready: { path: /readyz, interval: 500ms }
    routes: [/hello]
  echo:
    command: [$BIN/echo, --threads, "1"]
    replicas: 3
    ready: { path: /readyz, interval: 500ms }
    routes: [/echo]
  flask:
    command: [/usr/bin/python3, $ROOT/examples/flask/app.py]
    replicas: 2
    ready: { path: /hello, interval: 500ms }
    routes: [{ prefix: /py, strip_prefix: true }]
    stop_grace: 3s
EOF
for i in $(seq 1 "$HOSTS"); do start_agent h$i; done
wait_for 20 hosts_registered "$HOSTS" || { echo "the agents did not register:"; tail -5 "$WORK"/agent-h1.log; exit 1; }

say "== place: $HOSTS hosts, 3 etcd members, 2 servers; hello x6, echo x3, flask x2"
t0=$(now_ms)
start_server h1
sleep 0.3
start_server h2
wait_for 60 all_ready hello=6 echo=3 flask=2 || { say "not ready: $(instances)"; tail -20 "$WORK"/server-h1.log; exit 1; }
say "   every instance ready $(($(now_ms) - t0)) ms after the first server started"
per_host | sed 's/^/   /'
routes_ok=0
for i in $(seq 1 "$HOSTS"); do
  for path in /hello /echo/x /py/hello; do
    if wait_for 10 H h1 curl -sf -m 2 -o /dev/null "http://$(addr h$i):8080$path"; then
      routes_ok=$((routes_ok + 1))
    else
      say "   h$i's gateway: $path does not answer"
    fi
  done
done
say "   gateways answering: $routes_ok of $((HOSTS * 3)) (host x route)"

if wanted host-kill; then
  say "== host-kill: every process of h3 SIGKILLed under load through h1's and h2's gateways"
  start_load h1 h1 /hello "$LOAD"
  start_load h2 h2 /hello "$LOAD"
  sleep 2
  t0=$(now_ms)
  kill_host h3
  if wait_for 30 ready_off h3 hello=6 echo=3 flask=2; then
    say "   the desired count ready again on the other hosts; the last replacement ready $(last_ready_since "$t0") ms after the kill (TTL $TTL; the leader's events)"
    events | awk -F'|' -v t0="$t0" '$1 >= t0 && $4 ~ /lost/ {print "     " $1 - t0 " ms: " $4}' | head -n 2
  else
    say "   the desired count NOT back within 30 s"
  fi
  end_loads
  loads_said
  per_host | sed 's/^/   /'
  start_agent h3  # back, empty: later placements may use it
fi

if wanted partition; then
  say "== partition: h3 cut off for 10 s, then healed, under load through h1's and h2's gateways"
  start_load h1 h1 /hello "$LOAD"
  start_load h2 h2 /echo/x "$LOAD"
  sleep 1
  scripts/hosts partition h3
  sleep 10
  scripts/hosts heal h3
  end_loads
  loads_said
  if wait_for 30 exactly hello=6 echo=3 flask=2; then
    say "   afterwards exactly hello=6 echo=3 flask=2, all ready"
  else
    say "   afterwards NOT the desired count:"; instances | sed 's/^/     /'
  fi
fi

if wanted etcd-kill; then
  say "== etcd-kill: the etcd leader SIGKILLed under load; scale hello=8 at once"
  etcd_leader() {  # sets lh: the host of the etcd leader (every member answering, e.g. after a heal)
    local leader
    leader=$(H h1 etcdctl --endpoints "$ETCD_URLS" endpoint status -w json 2>/dev/null |
      jq -r '.[] | select(.Status.leader == .Status.header.member_id) | .Endpoint' | sed 's|.*//||; s|:.*||') || true
    [ -n "$leader" ] || return 1
    lh=h$((${leader##*.} - 10))
  }
  wait_for 20 etcd_leader || { say "   no etcd leader found"; exit 1; }
  start_load h1 h2 /hello "$LOAD"
  sleep 1
  kill -KILL "${ETCD_PID[$lh]}"
  t0=$(now_ms)
  wait_for 10 api POST /api/v1/services/hello/scale '{"replicas":8}' >/dev/null
  t1=$(now_ms)
  wait_for 20 all_ready hello=8 || say "   hello=8 NOT ready within 20 s"
  read -r ms n < <(scale_to_ready hello)
  say "   etcd leader $lh killed; scale answered $((t1 - t0)) ms after the kill; the 2 new instances ready $ms ms after the leader's scale event"
  end_loads
  loads_said
  start_etcd "$lh" existing
  wait_for 20 H h1 etcdctl --endpoints "http://$(addr "$lh"):2379" endpoint health >/dev/null 2>&1 || true
  api POST /api/v1/services/hello/scale '{"replicas":6}' >/dev/null
  wait_for 20 exactly hello=6 || true
fi

if wanted server-kill; then
  say "== server-kill: the leading server SIGKILLed"
  before=$(instances | awk '{print $5, $4}' | sort)
  lead=$(H h1 etcdctl --endpoints "$ETCD_URLS" get /squadron/bench/leader --print-value-only | jq -r .name)
  lh=h${lead#s}
  other=h1; [ "$lh" = h1 ] && other=h2
  kill -KILL "${SERVER_PID[$lh]}"
  t0=$(now_ms)
  leads() { H h1 curl -sf -m 1 -o /dev/null -D - -H "Authorization: Bearer $(token)" "http://$(addr "$other"):9900/api/v1/instances" | grep -qi "^x-squadron-answered-by" && return 1; H h1 curl -sf -m 1 -o /dev/null -H "Authorization: Bearer $(token)" "http://$(addr "$other"):9900/api/v1/instances"; }
  wait_for 15 leads && say "   s${other#h} leads $(($(now_ms) - t0)) ms after s${lh#h}'s SIGKILL (TTL $TTL)"
  sleep 1
  after=$(instances | awk '{print $5, $4}' | sort)
  say "   instances restarted or replaced: $(comm -3 <(echo "$before") <(echo "$after") | grep -c . || true)"
  start_server "$lh"
fi

if wanted agent; then
  say "== agent: h2's agent SIGTERMed and started again under load through h1's and h2's gateways"
  before=$(instances | awk '{print $5, $4}' | sort)
  start_load h1 h1 /hello "$LOAD"
  start_load h3 h2 /hello "$LOAD"
  sleep 2
  kill -TERM "${AGENT_PID[h2]}"
  wait "${AGENT_PID[h2]}" 2>/dev/null || true
  start_agent h2
  end_loads
  loads_said
  after=$(instances | awk '{print $5, $4}' | sort)
  say "   pids changed: $(comm -3 <(echo "$before") <(echo "$after") | grep -c . || true)"
fi

if wanted scale-seen; then
  say "== scale-seen: scale echo=6; until every host's gateway routes by a table with the 3 new ones"
  # A watcher in each host polls its gateway's /upstreams (the registry revision it routes by)
  # every 2 ms, started before the scale, and writes when each revision was first seen.
  seers=()
  for i in $(seq 1 "$HOSTS"); do
    scripts/hosts exec "h$i" python3 - "$WORK/seen-h$i" <<'EOF' &
import json, sys, time, urllib.request
seen, until, out = 0, time.time() + 12, open(sys.argv[1], "w")
while time.time() < until:
    try:
        r = json.load(urllib.request.urlopen("http://127.0.0.1:40999/upstreams", timeout=1))["revision"]
    except Exception:
        r = 0
    if r != seen:
        seen = r
        out.write(f"{int(time.time() * 1000)} {r}\n")
        out.flush()
    time.sleep(0.002)
EOF
    seers+=($!)
  done
  sleep 2
  t0=$(now_ms)
  api POST /api/v1/services/echo/scale '{"replicas":6}' >/dev/null
  wait_for 10 all_ready echo=6 || true
  # The revision of the last of the new instances' ready events.
  want=$(api GET /api/v1/events | jq -r --argjson t0 "$t0" '[(.events // .)[] | select(.service == "echo" and (.message | startswith("ready")) and .at_ms >= $t0) | .revision] | max')
  wait "${seers[@]}"
  read -r ms n < <(scale_to_ready echo)
  say "   the leader: the 3 new echo instances ready $ms ms after its scale event (registry revision $want)"
  for i in $(seq 1 "$HOSTS"); do
    at=$(awk -v r="$want" '$2 >= r {print $1; exit}' "$WORK/seen-h$i")
    if [ -n "$at" ]; then
      say "   h$i's gateway routes by revision >= $want $((at - t0)) ms after the scale was asked"
    else
      say "   h$i's gateway: NOT at revision $want within 10 s"
    fi
  done
  api POST /api/v1/services/echo/scale '{"replicas":3}' >/dev/null
  wait_for 20 exactly echo=3 || true
fi

if wanted locality; then
  say "== locality: 600 GETs of /echo/x through each host's gateway: answered by its own host's instances"
  for i in $(seq 1 "$HOSTS"); do
    mine=$(instances | awk -v h="h$i" '$1 == "echo" && $3 == h {print $5}' | tr '\n' ' ')
    H "h$i" python3 - "$(addr "h$i")" "$mine" <<'EOF'
import json, sys, urllib.request
mine, n, local = set(sys.argv[2].split()), 600, 0
for _ in range(n):
    local += json.load(urllib.request.urlopen(f"http://{sys.argv[1]}:8080/echo/x", timeout=5))["instance"] in mine
print(f"   {sys.argv[1]}'s gateway: {local} of {n} from its own host's {len(mine)} echo instance(s)")
EOF
  done
fi

if wanted etcd-rate; then
  say "== etcd-rate: etcd requests per second, summed over the members (grpc_server_started_total)"
  started() {
    local s=0 i n
    for i in 1 2 3; do
      n=$(H h1 curl -sf -m 2 "http://$(addr h$i):2379/metrics" | awk '/^grpc_server_started_total/ {n += $2} END {printf "%d", n}')
      s=$((s + ${n:-0}))
    done
    echo "$s"
  }
  a=$(started); t0=$(now_ms); sleep 10; b=$(started); t1=$(now_ms)
  say "   idle: $(( (b - a) * 1000 / (t1 - t0) )) requests/s ($HOSTS agents' keep-alives, 2 servers, $HOSTS gateways)"
  a=$(started); t0=$(now_ms)
  H h1 "$BIN/squadron" -f "$FLEET/squadron.yaml" restart hello --timeout 60s >/dev/null 2>&1 || true
  b=$(started); t1=$(now_ms)
  say "   rolling restart of hello x6: $(( (b - a) * 1000 / (t1 - t0) )) requests/s over its $((t1 - t0)) ms"
fi

if [ "$MASS" -gt 0 ]; then
  say "== mass: $MASS more C++ hello instances over $HOSTS hosts"
  t0=$(now_ms)
  api POST /api/v1/services/hello/scale "{\"replicas\":$((MASS + 6))}" >/dev/null
  if wait_for 300 all_ready hello=$((MASS + 6)); then
    say "   $MASS placed and ready in $(($(now_ms) - t0)) ms"
  else
    say "   only $(count hello ready) of $((MASS + 6)) ready after 300 s"
  fi
  per_host | sed 's/^/   /'
fi
if [ -n "${HOLD:-}" ]; then
  say "== holding for $HOLD s: scripts/hosts exec h1 ... (HOSTS_PREFIX=$HOSTS_PREFIX), files in $WORK"
  sleep "$HOLD"
fi
say "== done (logs were in $WORK)"
