#!/usr/bin/env python3
"""Issue 12's "done when" under a flood, measured (run from the repository root after a build):

1. The control API of a fleet started under `ulimit -n 1024`, with 2,000 idle connections and
   200 non-reading streams (SSE watch and logs?follow=1) open: /healthz latency (p50, max of
   50), a kill -9'd instance back ready (ms), the fleet's RSS growth, and how long `down` takes.
2. The gateway with 5,000 idle connections open: the p99 of other clients (wrk, pinned to a core)
   against the same run without them, interleaved, ROUNDS rounds, the median ratio.

Every load is bounded (counts and seconds); everything it starts, it stops.
"""
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.getcwd()
SQUADRON = os.path.join(ROOT, "build/bin/squadron")
HELLO = os.path.join(ROOT, "build/bin/hello")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "5"))

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cli(work, *args, prefix=()):
    return subprocess.run([*prefix, SQUADRON, "--file", os.path.join(work, "squadron.yaml"), *args],
                          capture_output=True, text=True, timeout=120)


def fleet(manifest, prefix=()):
    work = tempfile.mkdtemp(prefix="squadron-flood-")
    with open(os.path.join(work, "squadron.yaml"), "w") as f:
        f.write(manifest)
    r = cli(work, "up", "-d", prefix=prefix)
    if r.returncode != 0:
        sys.exit("up failed: " + r.stdout + r.stderr)
    return work


def ps(work):
    return json.loads(cli(work, "ps", "--json").stdout)


def run_info(work):
    with open(os.path.join(work, ".squadron/run.json")) as f:
        info = json.load(f)
    return info["pid"], int(info["control"].rsplit(":", 1)[1])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def get_ms(port, path, timeout=5.0):
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("answered " + data[:40].decode(errors="replace"))
    return (time.monotonic() - t) * 1000


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def control_plane():
    work = fleet("name: flood\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
                 "  hello:\n    command: [%s, --threads, \"1\"]\n    ready: { path: /readyz }\n" % HELLO,
                 prefix=("prlimit", "--nofile=1024"))
    try:
        pid, port = run_info(work)
        token = open(os.path.join(work, ".squadron/token")).read().strip()
        base = [get_ms(port, "/healthz") for _ in range(50)]
        rss_before = rss_kib(pid)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2000)]
        streams = []
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            if i % 2:
                s.sendall(b"GET /api/v1/watch?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Accept: text/event-stream\r\n\r\n")
            else:
                s.sendall(("GET /api/v1/logs?follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Authorization: Bearer %s\r\n\r\n" % token).encode())
            streams.append(s)
        time.sleep(0.5)
        flooded = []
        for _ in range(50):
            try:
                flooded.append(get_ms(port, "/healthz"))
            except Exception as e:  # counted as a failure, not a latency
                print("  /healthz failed under the flood:", e)
        victim = [i for i in ps(work) if i["service"] == "hello"][0]
        t = time.monotonic()
        os.kill(victim["pid"], 9)
        back_ms = None
        while time.monotonic() - t < 10:
            now = [i for i in ps(work) if i["service"] == "hello"]
            if now and now[0]["pid"] != victim["pid"] and now[0]["state"] == "ready":
                back_ms = (time.monotonic() - t) * 1000
                break
            time.sleep(0.005)
        rss_after = rss_kib(pid)
        t = time.monotonic()
        down = cli(work, "down")
        down_s = time.monotonic() - t
        for s in idle + streams:
            s.close()
        print("control API under ulimit -n 1024, 2,000 idle connections + 200 stalled streams:")
        print("  /healthz p50 %.2f ms, max %.2f ms (without the flood: p50 %.2f, max %.2f); %d/50 answered"
              % (median(flooded) if flooded else -1, max(flooded) if flooded else -1,
                 median(base), max(base), len(flooded)))
        print("  kill -9'd instance back ready after %s ms" % ("%.0f" % back_ms if back_ms else "NEVER"))
        print("  fleet RSS %d -> %d KiB (+%.1f MiB)" % (rss_before, rss_after,
                                                       (rss_after - rss_before) / 1024))
        print("  down: exit %d in %.2f s" % (down.returncode, down_s))
    finally:
        cli(work, "down")
        shutil.rmtree(work, ignore_errors=True)


def wrk_p99(port):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d%ds" % SECONDS, "--latency",
                          "http://127.0.0.1:%d/hello" % port], capture_output=True, text=True,
                         timeout=SECONDS + 30).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "99%":
            v = parts[1]
            return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") \
                else float(v[:-1]) * 1000
    raise RuntimeError("no p99 in wrk's output:\n" + out)


def gateway():
    work = fleet("name: door\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
                 "services:\n  hello:\n    command: [%s, --threads, \"1\"]\n    replicas: 2\n"
                 "    ready: { path: /readyz }\n    routes: [/hello]\n" % HELLO)
    try:
        door = [i for i in ps(work) if i["service"] == "gateway"][0]["port"]
        ratios = []
        for r in range(ROUNDS):
            base = wrk_p99(door)
            idle = [socket.create_connection(("127.0.0.1", door)) for _ in range(5000)]
            time.sleep(0.5)
            flooded = wrk_p99(door)
            for s in idle:
                s.close()
            time.sleep(0.5)
            ratios.append(flooded / base)
            print("  round %d: p99 %.2f ms alone, %.2f ms with 5,000 idle connections (%.2fx)"
                  % (r + 1, base, flooded, flooded / base))
        print("gateway, 5,000 idle connections: p99 ratio, median of %d rounds: %.2fx (bar 2x)"
              % (ROUNDS, median(ratios)))
    finally:
        cli(work, "down")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    control_plane()
    gateway()
