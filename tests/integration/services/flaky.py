"""A test upstream on $PORT (Python standard library only): answers 200 "ok <instance>", or 503
when its SQUADRON_INSTANCE equals $FAIL_INSTANCE; /hang never answers; /count says how many
requests it got (not counting /count)."""
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = os.environ.get("SQUADRON_INSTANCE", "?")
FAILING = INSTANCE == os.environ.get("FAIL_INSTANCE", "")
hits = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global hits
        if self.path == "/count":
            return self.answer(200, str(hits))
        with lock:
            hits += 1
        if self.path.endswith("/hang"):
            time.sleep(3600)
        if FAILING:
            return self.answer(503, "failing " + INSTANCE)
        return self.answer(200, "ok " + INSTANCE)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
