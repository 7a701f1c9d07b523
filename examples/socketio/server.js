// A socket.io service (npm's socket.io, pinned): each client's "ping" is answered with the
// instance that served it. socket.io keeps a session per client in the instance's memory, so with
// two replicas every poll and the WebSocket upgrade of one client must reach the same instance —
// what the gateway's `proxy: { affinity: { cookie: ... } }` does. GET / is a page that loads the
// client library the server itself serves at /socket.io/socket.io.js.
const http = require("node:http");
const { Server } = require("socket.io");

const instance = process.env.SQUADRON_INSTANCE || `pid-${process.pid}`;
const page = `<!doctype html><meta charset="utf-8"><title>socket.io behind Squadron</title>
<script src="/socket.io/socket.io.js"></script><p id="who">${instance}</p>`;

const server = http.createServer((req, res) => {
  if (req.url === "/" || req.url === "/healthz") {
    res.writeHead(200, { "Content-Type": req.url === "/" ? "text/html" : "text/plain" });
    res.end(req.url === "/" ? page : "ok\n");
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(server);
io.on("connection", (socket) => {
  socket.on("ping", (ack) => {
    if (typeof ack === "function") ack({ instance, transport: socket.conn.transport.name });
  });
});
server.listen(Number(process.env.PORT || 3000), process.env.HOST || "127.0.0.1", () => {
  console.log(`socketio listening on http://${process.env.HOST || "127.0.0.1"}:${process.env.PORT || 3000}`);
});
process.on("SIGTERM", () => { io.close(); server.close(() => process.exit(0)); });
