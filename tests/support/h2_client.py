#!/usr/bin/python3
"""An HTTP/2 client for the tests, with Python's h2 (well-behaved clients) and raw frames
(hyperframe, hpack) for the known attacks. Prints one JSON line saying what it saw.

  h2_client.py PORT streams N PATH          N concurrent GETs on one connection
  h2_client.py PORT upload BYTES PATH       one POST of BYTES (window-limited), its answer
  h2_client.py PORT download PATH           one GET, the body's length and a checksum
  h2_client.py PORT rapid-reset N PATH      N streams each reset at once (CVE-2023-44487)
  h2_client.py PORT continuation N          HEADERS then N CONTINUATION frames (CVE-2024-27316)
  h2_client.py PORT hpack-bomb N            one 4 KiB field, then a block that names it N times
  h2_client.py PORT ping-flood N            N PINGs (acks not read until the end)
  h2_client.py PORT settings-flood N        N SETTINGS frames
  h2_client.py PORT too-many-streams N PATH N streams opened at once, ignoring the server's limit
  h2_client.py PORT hold PATH SECONDS       one GET, then waits for GOAWAY and the answer
  h2_client.py PORT twice PATH SECONDS      one GET, quiet for SECONDS, another on the same connection
  h2_client.py PORT websocket N PATH        N WebSockets over one connection (RFC 8441's extended
                                            CONNECT): each sends a message, reads its echo, closes

With H2_TLS=1 the connection is TLS (h2 by ALPN, the certificate not checked).

Every mode is bounded: a socket timeout of 10 s, a fixed count of frames.
"""
import hashlib
import json
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on small frames
    s.settimeout(10)
    if os.environ.get("H2_TLS") == "1":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def client(port):
    s = connect(port)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def request_headers(path, method="GET", extra=()):
    return [(":method", method), (":path", path), (":scheme", "http"),
            (":authority", "localhost")] + list(extra)


def pump(s, c, until, deadline=10.0):
    """Reads events until until(events) is true; returns all events (or stops at EOF)."""
    seen = []
    end = time.time() + deadline
    while time.time() < end:
        try:
            data = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            seen.append("eof")
            break
        try:
            events = c.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            seen.append("protocol-error:" + type(e).__name__)
            break
        seen.extend(events)
        out = c.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                pass
        if until(seen):
            break
    return seen


def summary(events):
    statuses, bodies, resets, goaway = {}, {}, {}, None
    for e in events:
        if isinstance(e, h2.events.ResponseReceived):
            statuses[e.stream_id] = int(dict(e.headers)[b":status"])
        elif isinstance(e, h2.events.DataReceived):
            bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
        elif isinstance(e, h2.events.StreamReset):
            resets[e.stream_id] = int(e.error_code)
        elif isinstance(e, h2.events.ConnectionTerminated):
            goaway = {"code": int(e.error_code), "last_stream_id": e.last_stream_id}
    return statuses, bodies, resets, goaway


def ended(events, ids):
    done = set()
    for e in events:
        if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
            done.add(e.stream_id)
        if isinstance(e, h2.events.ConnectionTerminated) or e == "eof":
            return True
    return ids <= done


def mode_streams(port, n, path):
    s, c = client(port)
    ids = set()
    for i in range(n):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, request_headers(f"{path}?i={i}"), end_stream=True)
        ids.add(sid)
    s.sendall(c.data_to_send())
    events = pump(s, c, lambda ev: ended(ev, ids), 20)
    statuses, bodies, resets, goaway = summary(events)
    # The answers' fields the server sent "never indexed" (RFC 7541 §6.2.3).
    never = {n.decode() if isinstance(n, bytes) else n
             for e in events if isinstance(e, h2.events.ResponseReceived)
             for n, _ in (h for h in e.headers if isinstance(h, hpack.NeverIndexedHeaderTuple))}
    return {"answered": len(statuses), "ok": sum(1 for v in statuses.values() if v == 200),
            "bodies": sorted(b.decode(errors="replace") for b in bodies.values()),
            "resets": len(resets), "goaway": goaway, "never_indexed": sorted(never)}


def mode_upload(port, size, path):
    s, c = client(port)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, request_headers(path, "POST", [("content-length", str(size))]))
    s.sendall(c.data_to_send())
    sent = 0
    events = []
    chunk = b"x" * 16384
    end = time.time() + 20
    while sent < size and time.time() < end:
        window = min(c.local_flow_control_window(sid), c.max_outbound_frame_size)
        if window > 0:
            n = min(window, size - sent, len(chunk))
            c.send_data(sid, chunk[:n], end_stream=(sent + n == size))
            sent += n
            s.sendall(c.data_to_send())
            continue
        events += pump(s, c, lambda ev: any(isinstance(e, h2.events.WindowUpdated) for e in ev), 5)
    events += pump(s, c, lambda ev: ended(ev, {sid}), 10)
    statuses, bodies, resets, goaway = summary(events)
    return {"sent": sent, "status": statuses.get(sid), "body": bodies.get(sid, b"").decode(),
            "reset": resets.get(sid), "goaway": goaway}


def mode_download(port, path):
    s, c = client(port)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, request_headers(path), end_stream=True)
    s.sendall(c.data_to_send())
    total, digest, status = 0, hashlib.sha256(), None
    end = time.time() + 20
    done = False
    while not done and time.time() < end:
        data = s.recv(65536)
        if not data:
            break
        for e in c.receive_data(data):
            if isinstance(e, h2.events.ResponseReceived):
                status = int(dict(e.headers)[b":status"])
            elif isinstance(e, h2.events.DataReceived):
                total += len(e.data)
                digest.update(e.data)
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(c.data_to_send())
    return {"status": status, "bytes": total, "sha256": digest.hexdigest(), "complete": done}


# ---- raw frames, for what a well-behaved client library refuses to send ----

class Raw:
    def __init__(self, port):
        self.s = connect(port)
        self.enc = hpack.Encoder()
        self.s.sendall(PREFACE + SettingsFrame(0).serialize())
        self.buf = b""

    def send(self, *frames):
        try:
            self.s.sendall(b"".join(f.serialize() for f in frames))
            return True
        except OSError:
            return False

    def headers(self, sid, path, end_stream=True, end_headers=True, extra=()):
        f = HeadersFrame(sid)
        f.data = self.enc.encode(request_headers(path, extra=extra))
        f.flags.add("END_HEADERS") if end_headers else None
        f.flags.add("END_STREAM") if end_stream else None
        return f

    def frames(self, seconds, after_goaway=0.5, streams=None):
        """Frames received within `seconds`, or until the connection ends, or `after_goaway`
        after a GOAWAY, or (`streams`) once that many streams were answered or reset."""
        out = []
        ended = set()
        end = time.time() + seconds
        self.s.settimeout(0.2)
        while time.time() < end:
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                out.append("eof")
                break
            if not data:
                out.append("eof")
                break
            self.buf += data
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                out.append(f)
                if isinstance(f, GoAwayFrame):
                    end = min(end, time.time() + after_goaway)
                if isinstance(f, (HeadersFrame, RstStreamFrame)):
                    ended.add(f.stream_id)
            if streams is not None and len(ended) >= streams:
                break
        return out


def raw_summary(frames):
    goaway = None
    statuses = {}
    resets = {}
    dec = hpack.Decoder()
    dec.max_header_list_size = 1 << 20
    for f in frames:
        if isinstance(f, GoAwayFrame):
            goaway = {"code": f.error_code, "last_stream_id": f.last_stream_id}
        elif isinstance(f, HeadersFrame):
            h = dict(dec.decode(f.data))
            statuses[f.stream_id] = int(h.get(":status", h.get(b":status", 0)))
        elif isinstance(f, RstStreamFrame):
            resets[f.stream_id] = f.error_code
    return {"goaway": goaway, "answered": len(statuses),
            "statuses": sorted(set(statuses.values())), "resets": len(resets),
            "refused": sum(1 for v in resets.values() if v == 7), "eof": "eof" in frames}


def flood(r, batches):
    """Sends each batch of frames (one write each) until the server stops taking them; what it
    answered, with how many batches went out."""
    sent = 0
    for frames in batches:
        if not r.send(*frames):
            break
        sent += 1
    out = raw_summary(r.frames(3))
    out["sent"] = sent
    return out


def mode_rapid_reset(port, n, path):
    # As the attack does it: HEADERS and RST_STREAM of many streams back to back, 50 pairs a
    # write, without waiting for any answer.
    r = Raw(port)

    def pairs(first):
        for i in range(first, min(n, first + 50)):
            yield from (r.headers(1 + 2 * i, path), RstStreamFrame(1 + 2 * i, error_code=8))

    out = flood(r, (list(pairs(first)) for first in range(0, n, 50)))
    out["sent"] = min(n, out["sent"] * 50)  # streams
    return out


def mode_continuation(port, n):
    r = Raw(port)

    def continuation():
        c = ContinuationFrame(1)
        c.data = r.enc.encode([("x-filler", "a" * 100)])
        return [c]

    head = [r.headers(1, "/", end_stream=True, end_headers=False)]
    out = flood(r, (head if i == 0 else continuation() for i in range(n + 1)))
    out["sent"] = max(0, out["sent"] - 1)  # CONTINUATION frames
    return out


def mode_hpack_bomb(port, n):
    r = Raw(port)
    plain = lambda path: [hpack.NeverIndexedHeaderTuple(k, v) for k, v in request_headers(path)]
    # One big field into the dynamic table (its only entry: index 62)...
    seed = HeadersFrame(1)
    seed.data = r.enc.encode(plain("/bomb-seed") + [("x-bomb", "b" * 4000)])
    seed.flags.add("END_HEADERS")
    seed.flags.add("END_STREAM")
    r.send(seed)
    time.sleep(0.2)
    # ... then a block that names it n times, one byte each.
    f = HeadersFrame(3)
    f.data = r.enc.encode(plain("/bomb")) + bytes([0x80 | 62]) * n
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    r.send(f)
    time.sleep(0.2)
    after = HeadersFrame(5)
    after.data = r.enc.encode(plain("/after-bomb"))
    after.flags.add("END_HEADERS")
    after.flags.add("END_STREAM")
    r.send(after)
    frames = r.frames(3, streams=3)
    out = raw_summary(frames)
    dec = hpack.Decoder()
    dec.max_header_list_size = 1 << 24
    by_stream = {}
    for fr in frames:
        if isinstance(fr, HeadersFrame):
            by_stream[fr.stream_id] = int(dict(dec.decode(fr.data, raw=True))[b":status"])
    out["by_stream"] = {str(k): v for k, v in sorted(by_stream.items())}
    return out


def mode_ping_flood(port, n):
    r = Raw(port)
    return flood(r, ([PingFrame(0, opaque_data=i.to_bytes(8, "big"))] for i in range(n)))


def mode_settings_flood(port, n):
    r = Raw(port)

    def settings():
        f = SettingsFrame(0)
        f.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 65535}
        return [f]

    return flood(r, (settings() for _ in range(n)))


def mode_too_many_streams(port, n, path):
    r = Raw(port)
    frames = [r.headers(1 + 2 * i, f"{path}?i={i}") for i in range(n)]
    r.send(*frames)
    return raw_summary(r.frames(6, streams=n))


def mode_hold(port, path, seconds):
    # Raw frames: h2's state machine takes nothing after a GOAWAY, which a graceful stop follows
    # with the answers of the streams it lets finish.
    r = Raw(port)
    r.send(r.headers(1, path))
    print(json.dumps({"sent": 1}), flush=True)
    frames = r.frames(seconds, after_goaway=seconds)
    out = raw_summary(frames)
    dec = hpack.Decoder()
    status, body = None, b""
    for f in frames:
        if isinstance(f, HeadersFrame) and f.stream_id == 1:
            status = int(dict(dec.decode(f.data, raw=True))[b":status"])
        elif isinstance(f, DataFrame) and f.stream_id == 1:
            body += f.data
    return {"status": status, "body": body.decode(), "goaway": out["goaway"], "eof": out["eof"]}


def mode_twice(port, path, seconds):
    s, c = client(port)
    out = []
    for sid in (1, 3):
        if sid == 3:
            time.sleep(seconds)
        c.send_headers(sid, request_headers(path), end_stream=True)
        s.sendall(c.data_to_send())
        statuses, bodies, _, goaway = summary(pump(s, c, lambda ev, sid=sid: ended(ev, {sid})))
        out.append({"status": statuses.get(sid), "body": bodies.get(sid, b"").decode(),
                    "goaway": goaway})
    return {"first": out[0], "second": out[1]}


def ws_frame(opcode, payload):
    """A client's WebSocket frame (RFC 6455 §5.2): final, masked."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(data):
    """The first whole frame of a server's bytes: (opcode, payload, rest) or None."""
    if len(data) < 2:
        return None
    n, at = data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, at = int.from_bytes(data[2:4], "big"), 4
    if len(data) < at + n:
        return None
    return data[0] & 0x0F, data[at:at + n], data[at + n:]


def mode_websocket(port, n, path):
    s, c = client(port)
    settings = {}

    def got_settings(seen):
        for e in seen:
            if isinstance(e, h2.events.RemoteSettingsChanged):
                settings.update({int(k): v.new_value for k, v in e.changed_settings.items()})
                return True
        return False
    pump(s, c, got_settings)
    enabled = settings.get(8) == 1  # SETTINGS_ENABLE_CONNECT_PROTOCOL
    out = {"enabled": enabled, "statuses": [], "echoed": 0, "closed": 0, "close_codes": []}
    if not enabled:
        return out
    ids = []
    for _ in range(n):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                             (":scheme", "http"), (":path", path), (":authority", "localhost"),
                             ("sec-websocket-version", "13")])
        ids.append(sid)
    s.sendall(c.data_to_send())
    statuses, buffers = {}, {sid: b"" for sid in ids}

    def absorb(seen):
        for e in seen:
            if isinstance(e, h2.events.ResponseReceived):
                statuses[e.stream_id] = int(dict(e.headers)[b":status"])
            elif isinstance(e, h2.events.DataReceived):
                buffers[e.stream_id] += e.data
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        del seen[:]

    def heads(seen):
        absorb(seen)
        return len(statuses) == n
    pump(s, c, heads)
    out["statuses"] = [statuses.get(sid) for sid in ids]
    live = [sid for sid in ids if statuses.get(sid) == 200]
    if not live:
        return out
    for sid in live:
        c.send_data(sid, ws_frame(0x1, f"hello {sid}".encode()))
    s.sendall(c.data_to_send())

    def frames(opcode):
        def enough(seen):
            absorb(seen)
            return all(ws_parse(buffers[sid]) is not None for sid in live)
        return enough
    pump(s, c, frames(0x1))
    for sid in live:
        got = ws_parse(buffers[sid])
        if got and got[0] == 0x1 and got[1] == f"hello {sid}".encode():
            out["echoed"] += 1
        buffers[sid] = got[2] if got else b""
        c.send_data(sid, ws_frame(0x8, (1000).to_bytes(2, "big")))
    s.sendall(c.data_to_send())
    pump(s, c, frames(0x8))
    for sid in live:
        got = ws_parse(buffers[sid])
        if got and got[0] == 0x8:
            out["closed"] += 1
            out["close_codes"].append(int.from_bytes(got[1][:2], "big"))
    return out


def main():
    port, mode, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if mode == "streams":
        out = mode_streams(port, int(args[0]), args[1])
    elif mode == "upload":
        out = mode_upload(port, int(args[0]), args[1])
    elif mode == "download":
        out = mode_download(port, args[0])
    elif mode == "rapid-reset":
        out = mode_rapid_reset(port, int(args[0]), args[1])
    elif mode == "continuation":
        out = mode_continuation(port, int(args[0]))
    elif mode == "hpack-bomb":
        out = mode_hpack_bomb(port, int(args[0]))
    elif mode == "ping-flood":
        out = mode_ping_flood(port, int(args[0]))
    elif mode == "settings-flood":
        out = mode_settings_flood(port, int(args[0]))
    elif mode == "too-many-streams":
        out = mode_too_many_streams(port, int(args[0]), args[1])
    elif mode == "hold":
        out = mode_hold(port, args[0], float(args[1]))
    elif mode == "twice":
        out = mode_twice(port, args[0], float(args[1]))
    elif mode == "websocket":
        out = mode_websocket(port, int(args[0]), args[1])
    else:
        sys.exit("unknown mode " + mode)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
