// A gRPC client (npm's @grpc/grpc-js) for the example through the gateway; prints one JSON line.
//   node client.js 127.0.0.1:8080 say 20     unary calls: how many succeeded, on which instances
//   node client.js 127.0.0.1:8080 chat 5     one call streaming 5 messages both ways
//   node client.js 127.0.0.1:8080 deadline   the deadline the instance saw, a call past its own
//   node client.js 127.0.0.1:8080 unrouted   a method of a service the gateway has no route for
//   node client.js 127.0.0.1:8080 cancel     a stream cancelled by its client in its middle
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const [address = "127.0.0.1:8080", mode = "say", arg = "1"] = process.argv.slice(2);
const pkg = grpc.loadPackageDefinition(
  loader.loadSync(path.join(__dirname, "echo.proto"), { longs: Number, keepCase: true })
).squadron.example;
const client = new pkg.Echo(address, grpc.credentials.createInsecure());
const after = (ms) => ({ deadline: Date.now() + ms });
const unary = (method, request, options) =>
  new Promise((resolve) =>
    client[method](request, options, (err, reply) => resolve(err ? { code: err.code, details: err.details } : { code: 0, reply }))
  );

async function say(n) {
  const codes = {};
  const instances = new Set();
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const r = await unary("Say", { text: `hello ${i}` }, after(5000));
    codes[r.code] = (codes[r.code] || 0) + 1;
    if (r.code === 0 && r.reply.text === `hello ${i}`) {
      ok++;
      instances.add(r.reply.instance);
    } else if (r.code !== 0) {
      codes[`${r.code}: ${r.details}`] = true;
    }
  }
  return { ok, codes, instances: [...instances].sort() };
}

function chat(n) {
  return new Promise((resolve) => {
    const call = client.Chat(after(10000));
    const got = [];
    const instances = new Set();
    let sent = 0;
    const next = () => {
      if (sent < n) call.write({ text: `message ${sent++}` });
      else call.end();
    };
    call.on("data", (m) => {
      got.push(m.text);
      instances.add(m.instance);
      next(); // each message after the echo of the one before: both ways at once
    });
    call.on("error", (e) => resolve({ code: e.code, details: e.details, echoed: got.length }));
    call.on("end", () => {
      const inOrder = got.every((t, i) => t === `message ${i}`);
      resolve({ code: 0, echoed: got.length, in_order: inOrder, instances: [...instances] });
    });
    next();
  });
}

async function deadline() {
  const seen = await unary("Say", { text: "when" }, after(2000));
  const tag = `slow-${process.pid}-${Date.now()}`;
  const started = Date.now();
  const slow = await unary("Slow", { ms: 3000, tag }, after(300));
  const took = Date.now() - started;
  // The instance that ran Slow saw its cancel (the gateway reset its stream): ask both.
  const cancelled = await seenCancelled(tag);
  return {
    seen_code: seen.code,
    seen_deadline_ms: seen.code === 0 ? seen.reply.deadline_ms : -1,
    slow_code: slow.code,
    slow_took_ms: took,
    cancelled,
  };
}

// Did an instance see the call tagged `tag` cancelled? Both are asked (a few times).
async function seenCancelled(tag) {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const c = await unary("Cancelled", { text: tag }, after(2000));
    if (c.code === 0 && c.reply.text === "true") return true;
  }
  return false;
}

async function cancel() {
  const tag = `chat-${process.pid}-${Date.now()}`;
  const code = await new Promise((resolve) => {
    const call = client.Chat(after(10000));
    call.on("data", () => call.cancel()); // the first echo came: give up in the middle
    call.on("error", (e) => resolve(e.code));
    call.on("end", () => resolve(0));
    call.write({ text: tag });
  });
  return { code, cancelled: await seenCancelled(tag) };
}

function unrouted() {
  const raw = (b) => b;
  return new Promise((resolve) =>
    client.makeUnaryRequest("/squadron.example.Nowhere/Say", raw, raw, Buffer.alloc(0), after(5000),
      (err) => resolve(err ? { code: err.code, details: err.details } : { code: 0 })));
}

(async () => {
  let out;
  if (mode === "say") out = await say(Number(arg));
  else if (mode === "chat") out = await chat(Number(arg));
  else if (mode === "deadline") out = await deadline();
  else if (mode === "unrouted") out = await unrouted();
  else if (mode === "cancel") out = await cancel();
  else {
    console.error(`unknown mode ${mode}: say N, chat N or deadline`);
    process.exit(2);
  }
  console.log(JSON.stringify(out));
  client.close();
})();
