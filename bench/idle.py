#!/usr/bin/env python3
"""Holds COUNT idle keep-alive connections to 127.0.0.1:PORT, for bench/idle.sh.

    idle.py PORT COUNT PATH [SOURCE]
    IDLE_TLS=1 idle.py ...      # the same over TLS (certificates not checked), for bench/tls.sh

Each connection sends one request (GET PATH) and reads its whole answer, then stays open and
quiet. They come from 127.0.0.SOURCE (default 2), and past each 20,000 from the next address,
so that no source address runs out of ports (nor meets the TIME_WAIT of an earlier run: give
each run its own SOURCE). Prints "ready N" once all N answered, then waits for a line
on stdin: "check" sends a second request on a sample of 100 connections and prints "alive K"
(how many got an answer: the server kept them), "quit" (or EOF) closes them all and exits.
"""
import os
import selectors
import socket
import ssl
import sys
import time

PER_SOURCE = 20000


def answered(buf):
    """Whether buf holds one whole HTTP/1.1 answer with Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(buf) >= end + 4 + length


def exchange(socks, request, deadline):
    """Sends request on every socket and waits for each answer; returns how many answered."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        try:
            s.send(request)
        except OSError:
            continue
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
    done = 0
    while bufs and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                del bufs[s]
                continue
            bufs[s] += data
            if answered(bufs[s]):
                sel.unregister(s)
                del bufs[s]
                done += 1
    sel.close()
    return done


def tls_exchange(socks, request, deadline):
    """exchange() over TLS sockets, one after the other (blocking, under the deadline)."""
    done = 0
    for s in socks:
        try:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.sendall(request)
            buf = b""
            while not answered(buf):
                data = s.recv(65536)
                if not data:
                    break
                buf += data
            done += answered(buf)
        except OSError:
            pass
    return done


def main():
    port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    tls = None
    if os.environ.get("IDLE_TLS") == "1":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        tls.set_alpn_protocols(["http/1.1"])
    first_source = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    socks = []
    deadline = time.monotonic() + 600
    batch = 500
    for start in range(0, count, batch):
        part = []
        for i in range(start, min(count, start + batch)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            s.bind((f"127.0.0.{first_source + i // PER_SOURCE}", 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            if tls:
                s = tls.wrap_socket(s, server_hostname="localhost")
            else:
                s.setblocking(False)
            part.append(s)
        got = (tls_exchange if tls else exchange)(part, request, deadline)
        if got != len(part):
            print(f"only {got} of {len(part)} connections got an answer", file=sys.stderr)
            sys.exit(1)
        socks.extend(part)
    print(f"ready {len(socks)}", flush=True)
    for line in sys.stdin:
        if line.strip() == "check":
            sample = socks[:: max(1, len(socks) // 100)][:100]
            check = tls_exchange if tls else exchange
            print(f"alive {check(sample, request, time.monotonic() + 10)}", flush=True)
        else:
            break
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
