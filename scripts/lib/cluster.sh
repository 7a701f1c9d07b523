# Test hosts running one Squadron fleet (scripts/hosts): an etcd member on each of h1-h3,
# `squadron server` where asked, `squadron agent` with its gateway (:8080) on every host. Sourced by
# bench/cluster.sh and scripts/demo (--cluster). Needs, set before: BIN (the binaries), WORK (a
# folder for data and logs), MANIFEST (with cluster: naming the three members), FLEET_NAME (its
# name:), TTL; HOSTS_PREFIX and HOSTS_SUBNET as scripts/hosts takes them. Processes are started
# as `scripts/hosts exec ... &`, never through a function, so that $! is the program's own pid;
# cluster_stop ends them by those pids (agents by SIGINT: their instances stop too).
declare -A ETCD_PID AGENT_PID SERVER_PID
# (In the background, started as `scripts/hosts exec ... &`, never through H: then $! is the
# program's own pid, which the scenarios signal.)
H() { scripts/hosts exec "$@"; }
addr() { echo "$HOSTS_SUBNET.$((10 + ${1#h}))"; }
now_ms() { date +%s%3N; }

cluster_stop() {
  set +e
  exec 2>/dev/null  # (no "Killed" notice per background job)
  for h in "${!AGENT_PID[@]}"; do kill -INT "${AGENT_PID[$h]}"; done
  for h in "${!AGENT_PID[@]}"; do timeout 6 tail --pid="${AGENT_PID[$h]}" -f /dev/null; done
  for p in "${SERVER_PID[@]}" "${AGENT_PID[@]}" "${ETCD_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
  scripts/hosts down >/dev/null 2>&1  # (kills by pid whatever is left inside the hosts)
}

ETCD_MEMBERS=""
ETCD_CLUSTER=""
for i in 1 2 3; do
  ETCD_MEMBERS+="${ETCD_MEMBERS:+, }$(addr h$i):2379"
  ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://$(addr h$i):2380"
done
ETCD_URLS="http://$(addr h1):2379,http://$(addr h2):2379,http://$(addr h3):2379"
cluster_etcd_up() {  # the three members, until they answer
  local i
  for i in 1 2 3; do start_etcd h$i; done
  wait_for 20 H h1 etcdctl --endpoints "$ETCD_URLS" endpoint health >/dev/null 2>&1
}

start_etcd() {  # hN [new|existing]
  local h=$1 a
  a=$(addr "$h")
  scripts/hosts exec "$h" etcd --name "e${h#h}" --data-dir "$WORK/etcd-$h" \
    --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
    --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "${2:-new}" \
    --heartbeat-interval 50 --election-timeout 500 >"$WORK/etcd-$h.log" 2>&1 &
  ETCD_PID[$h]=$!
}
start_agent() {  # hN
  local h=$1
  mkdir -p "$WORK/agent-$h"
  scripts/hosts exec "$h" "$BIN/squadron" agent --etcd "$(addr h1):2379" --etcd "$(addr h2):2379" \
    --etcd "$(addr h3):2379" --fleet "$FLEET_NAME" --name "$h" --address "$(addr "$h")" --ttl "$TTL" \
    --state-dir "$WORK/agent-$h" --gateway 8080 \
    --control "http://$(addr h1):9900" --control "http://$(addr h2):9900" \
    >>"$WORK/agent-$h.log" 2>&1 &
  AGENT_PID[$h]=$!
}
start_server() {  # hN
  local h=$1
  scripts/hosts exec "$h" "$BIN/squadron" -f "$MANIFEST" server --name "s${h#h}" \
    --listen "$(addr "$h"):9900" >>"$WORK/server-$h.log" 2>&1 &
  SERVER_PID[$h]=$!
}

token() { cat "$(dirname "$MANIFEST")/.squadron/token" 2>/dev/null; }
api() {  # METHOD PATH [JSON] — asked of s1 (a standby forwards to the leader), else s2
  local h
  for h in h1 h2; do
    if H h1 curl -sf -m 5 -X "$1" -H "Authorization: Bearer $(token)" \
      -H 'Content-Type: application/json' ${3:+-d "$3"} "http://$(addr "$h"):9900$2"; then
      return 0
    fi
  done
  return 1
}
# The leader's events (its own clock, to the millisecond): "at_ms|service|instance|message"
events() { api GET /api/v1/events 2>/dev/null | jq -r '(.events // .)[] | "\(.at_ms)|\(.service)|\(.instance)|\(.message)"'; }
wait_for() {  # SECONDS CMD... : until CMD succeeds; 1 past the time
  local until=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$until" ] || return 1
    sleep 0.05
  done
}
# "service state node pid id" per instance
instances() {
  api GET /api/v1/instances 2>/dev/null |
    jq -r '.[] | "\(.service) \(.state) \(.node // "-") \(.pid // 0) \(.id)"' || true
}
all_ready() {  # SERVICE=N ...: N ready of each
  local out s n
  out=$(instances)
  for s in "$@"; do
    n=$(awk -v s="${s%=*}" '$1 == s && $2 == "ready" {n++} END {print n + 0}' <<<"$out")
    [ "$n" -eq "${s#*=}" ] || return 1
  done
}
ready_off() {  # HOST SERVICE=N ...: N ready on hosts other than HOST, for each
  local out s n off=$1
  shift
  out=$(instances)
  for s in "$@"; do
    n=$(awk -v s="${s%=*}" -v off="$off" '$1 == s && $2 == "ready" && $3 != off {n++} END {print n + 0}' <<<"$out")
    [ "$n" -eq "${s#*=}" ] || return 1
  done
}
per_host() { instances | awk '{n[$3 " " $1]++} END {for (k in n) print k, n[k]}' | sort | awk '
  {if ($1 != h) {if (h != "") print line; h = $1; line = h ":"} line = line " " $2 "=" $3}
  END {print line}'; }
hosts_registered() {  # N: at least N hosts registered in etcd
  [ "$(H h1 etcdctl --endpoints "$ETCD_URLS" get --prefix "/squadron/$FLEET_NAME/hosts/" --keys-only 2>/dev/null | grep -c .)" -ge "$1" ]
}
host_state() { api GET /api/v1/hosts 2>/dev/null | jq -r --arg h "$1" '.[] | select(.name == $h) | .state'; }
kill_host() {  # hN: every process of it SIGKILLed (its agent, its instances), as a lost machine
  local victims p
  victims=$(jq -r '.instances[].pid' "$WORK/agent-$1/agent.json" 2>/dev/null || true)
  kill -KILL "${AGENT_PID[$1]}"
  for p in $victims; do kill -KILL -- "-$p" 2>/dev/null || true; done
}
