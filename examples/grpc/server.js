// A gRPC service (npm's @grpc/grpc-js, pinned) speaking HTTP/2 without TLS, as the gateway's
// `proxy: { protocol: h2c }` reaches it: Say answers who it is and the deadline it saw, Chat
// echoes a stream of messages back as they come, Slow outlives short deadlines (and notes when
// its caller cancels), and the gRPC health protocol says SERVING once it listens.
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const load = (file) =>
  grpc.loadPackageDefinition(loader.loadSync(path.join(__dirname, file), { longs: Number, keepCase: true }));
const echo = load("echo.proto").squadron.example;
const health = load("health.proto").grpc.health.v1;

const instance = process.env.SQUADRON_INSTANCE || `pid-${process.pid}`;
// The instance named here answers Say with UNAVAILABLE, as one that is stopping or overloaded
// does: the gateway sends such a call to another instance.
const unavailable = process.env.ECHO_UNAVAILABLE_FROM === instance;
// The instance named here says NOT_SERVING to the health protocol: never ready.
const notServing = process.env.ECHO_NOT_SERVING_FROM === instance;
const cancelled = new Map(); // Slow's tag -> whether its caller cancelled it

function deadlineMs(call) {
  const d = call.getDeadline();
  if (d === Infinity || d === undefined) return 0;
  return Math.max(0, Math.round((d instanceof Date ? d.getTime() : Number(d)) - Date.now()));
}

const server = new grpc.Server();
server.addService(echo.Echo.service, {
  Say(call, done) {
    if (unavailable) {
      done({ code: grpc.status.UNAVAILABLE, details: `${instance} is not taking calls` });
      return;
    }
    done(null, { text: call.request.text, instance, deadline_ms: deadlineMs(call) });
  },
  Chat(call) {
    let first = null;
    call.on("data", (m) => {
      if (first === null) first = m.text;
      call.write({ text: m.text, instance });
    });
    call.on("end", () => call.end());
    // A stream its caller cancels: noted under its first message (Cancelled asks).
    call.on("cancelled", () => cancelled.set(first, true));
  },
  Slow(call, done) {
    const tag = call.request.tag;
    cancelled.set(tag, false);
    const timer = setTimeout(() => done(null, { text: "slept", instance }), call.request.ms);
    call.on("cancelled", () => {
      clearTimeout(timer);
      cancelled.set(tag, true);
    });
  },
  Cancelled(call, done) {
    done(null, { text: String(cancelled.get(call.request.text) === true), instance });
  },
});
server.addService(health.Health.service, {
  Check(call, done) {
    done(null, { status: notServing ? "NOT_SERVING" : "SERVING" });
  },
});

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 50051);
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(`grpc: cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`grpc listening on ${host}:${port} (${instance})`);
});
// A rollout's SIGTERM: calls in flight finish (GOAWAY tells the gateway to send no new ones).
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
