#!/usr/bin/env bash
# scripts/hosts: hosts reach each other over their bridge and nothing else; a partition (both ways,
# or one way with nft) cuts what it says and heal restores it; down leaves no namespace behind.
# Run by scripts/test (needs root); its hosts have a prefix of their own.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HOSTS_PREFIX=sqtest$$ HOSTS_SUBNET=10.213.9
H=scripts/hosts
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
trap '$H down >/dev/null 2>&1 || true' EXIT

# connects FROM TO_HOST PORT: 0 when a TCP connection from host FROM reaches TO_HOST:PORT in 1 s
connects() {
  $H exec "$1" $PY -c "import socket,sys; socket.create_connection(('$($H addr "$2")', $3), 1)" 2>/dev/null
}
# A listener on h3:7000 for the whole test (accepts and closes, in a loop).
$H up 3 >/dev/null
$H exec h3 $PY -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 7000)); s.listen(16)
while True: s.accept()[0].close()" &
listener=$!
trap 'kill $listener 2>/dev/null || true; $H down >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 50); do connects h1 h3 7000 && break; sleep 0.1; done

connects h1 h3 7000 || fail "h1 does not reach h3"
connects h2 h3 7000 || fail "h2 does not reach h3"
[ "$($H addr h2)" = 10.213.9.12 ] || fail "h2's address is $($H addr h2)"
# The machine's own namespace has no route to the hosts, and the hosts have no default route.
ip -o addr | grep -q "inet 10\.213\.9\." && fail "the root namespace has an address of the hosts' subnet"
ip route | grep -q "^10\.213\.9\." && fail "the root namespace routes the hosts' subnet"
$H exec h1 ip route | grep -q default && fail "h1 has a default route"

$H partition h3
connects h1 h3 7000 && fail "h1 reaches h3 through a partition"
$H list | grep -q "^h3 .*partitioned" || fail "list does not show h3 partitioned"
$H heal h3
connects h1 h3 7000 || fail "h1 does not reach h3 after heal"

$H partition h3 --in
connects h1 h3 7000 && fail "h1 reaches h3 with h3's input cut"
$H list | grep -q "^h3 .*partitioned (in)" || fail "list does not show h3's one-way partition"
$H heal h3
connects h1 h3 7000 || fail "h1 does not reach h3 after healing the one-way partition"

$H partition h1 --out
connects h1 h3 7000 && fail "h1 reaches h3 with h1's output cut"
connects h2 h3 7000 || fail "h2 lost h3 when only h1's output was cut"
$H heal h1

out=$($H partition h9 2>&1) && fail "a partition of a host that does not exist succeeded"
grep -q "host h9 does not exist" <<<"$out" || fail "unclear error: $out"

kill $listener; wait $listener 2>/dev/null || true
$H down
ip netns list | grep -q "^$HOSTS_PREFIX-" && fail "namespaces left after down"
echo "hosts_test: ok"
