"""A test upstream on $PORT (Python standard library only): answers 200 "ok <instance>", or 503
when its SQUADRON_INSTANCE equals $FAIL_INSTANCE; /hang never answers; /count says how many
requests it got (not counting /count); POST and PUT read the body (Content-Length or chunked)
in pieces and answer "bytes=N crc=C framing=F"; /bytes/N answers N bytes with Content-Length,
/chunked/N the same chunked, /close/N the same delimited by closing the connection."""
import os
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = os.environ.get("SQUADRON_INSTANCE", "?")
FAILING = INSTANCE == os.environ.get("FAIL_INSTANCE", "")
hits = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle holds the body until
    # the peer's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_bytes(self, framing, n):
        piece = bytes(range(256)) * 4096  # 1 MiB
        self.send_response(200)
        if framing == "bytes":
            self.send_header("Content-Length", str(n))
        elif framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        left = n
        while left:
            part = piece[: min(left, len(piece))]
            if framing == "chunked":
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            else:
                self.wfile.write(part)
            left -= len(part)
        if framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        global hits
        if self.path == "/count":
            return self.answer(200, str(hits))
        parts = self.path.split("/")  # .../bytes/N, whatever prefix came along
        if len(parts) >= 3 and parts[-2] in ("bytes", "chunked", "close") and parts[-1].isdigit():
            return self.send_bytes(parts[-2], int(parts[-1]))
        with lock:
            hits += 1
        if self.path.endswith("/hang"):
            time.sleep(3600)
        if len(parts) >= 3 and parts[-2] == "slow" and parts[-1].isdigit():
            time.sleep(int(parts[-1]) / 1000)  # .../slow/MS; SIGTERM (the default) cuts it
        if FAILING:
            return self.answer(503, "failing " + INSTANCE)
        return self.answer(200, "ok " + INSTANCE)


    def do_POST(self):
        crc, total = 0, 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            framing = "chunked"
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 1 << 20))
                    crc, total, left = zlib.crc32(piece, crc), total + len(piece), left - len(piece)
                self.rfile.readline()
        else:
            framing = "length"
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, 1 << 20))
                if not piece:
                    break
                crc, total, left = zlib.crc32(piece, crc), total + len(piece), left - len(piece)
        self.answer(200, "bytes=%d crc=%08x framing=%s" % (total, crc, framing))

    do_PUT = do_POST


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
