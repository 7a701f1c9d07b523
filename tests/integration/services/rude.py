"""An upstream that misbehaves on demand, for the gateway's strictness tests (PORT from env).

GET  /hop       answers with a header named in its Connection field (X-Hop) and X-Kept
GET  /many      answers with 3,000 header fields
GET  /ctl       answers with a control byte in a header value
GET  /bighead   answers with a 70 KB head
GET  /drip      a 2-second body, a piece every 250 ms (longer than the route timeout)
HEAD /len       Content-Length: 12345, no body (as HEAD)
POST /upload    answers 413 at once, without reading the body, and closes
GET  /echo      answers the request's headers as text, one "name: value" a line
"""
import os
import socket
import socketserver
import time


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = []
            length = 0
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
                if name.strip().lower() == "content-length":
                    length = int(value)
            w = self.wfile.write
            if target == "/upload":
                w(b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 9\r\nConnection: close\r\n\r\ntoo large")
                self.wfile.flush()
                time.sleep(0.2)  # as servers do: a moment for the answer to leave, then close
                return
            if length:
                self.rfile.read(length)
            if target == "/hop":
                w(b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: secret\r\nX-Kept: yes\r\n"
                  b"Content-Length: 2\r\n\r\nok")
            elif target == "/many":
                w(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(3000)) +
                  b"Content-Length: 2\r\n\r\nok")
            elif target == "/ctl":
                w(b"HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok")
            elif target == "/bighead":
                w(b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok")
            elif target == "/drip":
                w(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(8):
                    self.wfile.flush()
                    time.sleep(0.25)
                    w(b"5\r\npiece\r\n")
                w(b"0\r\n\r\n")
            elif method == "HEAD" and target == "/len":
                w(b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n")
            else:
                body = "".join("%s: %s\n" % (n.lower(), v) for n, v in headers).encode()
                w(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
