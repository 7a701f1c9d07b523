// socket.io (npm, pinned) with two replicas behind the gateway and `proxy: { affinity: { cookie } }`:
// a browser client keeps one session across 100 polls and through its WebSocket upgrade, every
// answer from one instance (without affinity socket.io fails with "Session ID unknown").
import { test, expect } from "@playwright/test";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startFleet } from "./fleet.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const example = path.join(root, "examples/socketio");
let fleet;

test.beforeAll(() => {
  const text = readFileSync(path.join(example, "squadron.yaml"), "utf8")
    .split("127.0.0.1:9900").join("127.0.0.1:0")
    .split("127.0.0.1:8080").join("127.0.0.1:0")
    .split("server.js").join(path.join(example, "server.js"));
  fleet = startFleet(text);
});
test.afterAll(() => { fleet?.stop(); });

test("a socket.io client keeps one instance over 100 polls and its WebSocket upgrade", async ({ page }) => {
  expect(fleet.ps().filter((i) => i.service === "chat" && i.state === "ready")).toHaveLength(2);
  await page.goto(fleet.app + "/");
  const polled = await page.evaluate(async () => {
    const socket = io({ transports: ["polling"], reconnection: false });
    let errors = 0;
    socket.on("connect_error", () => { errors += 1; });
    await new Promise((resolve, reject) => {
      socket.on("connect", resolve);
      setTimeout(() => reject(new Error("no connect")), 10000);
    });
    const id = socket.id;
    const instances = new Set();
    for (let i = 0; i < 100; i += 1) {
      const answer = await socket.timeout(5000).emitWithAck("ping");
      instances.add(answer.instance);
    }
    const same = socket.id === id && socket.connected;
    socket.close();
    return { instances: [...instances], errors, same, transport: "polling" };
  });
  expect(polled.errors).toBe(0);
  expect(polled.same).toBe(true);
  expect(polled.instances).toHaveLength(1);

  const upgraded = await page.evaluate(async () => {
    const socket = io({ reconnection: false });  // polling first, then the upgrade to WebSocket
    await new Promise((resolve, reject) => {
      socket.io.engine.on("upgrade", resolve);
      socket.on("connect_error", (e) => reject(e));
      setTimeout(() => reject(new Error("no upgrade")), 10000);
    });
    const instances = new Set();
    let transport = "";
    for (let i = 0; i < 20; i += 1) {
      const answer = await socket.timeout(5000).emitWithAck("ping");
      instances.add(answer.instance);
      transport = answer.transport;
    }
    socket.close();
    return { instances: [...instances], transport };
  });
  expect(upgraded.transport).toBe("websocket");
  expect(upgraded.instances).toHaveLength(1);
  // The page itself came through the same cookie: one instance for the whole session.
  const cookies = await page.context().cookies();
  expect(cookies.find((c) => c.name === "io-sticky")).toBeTruthy();
});
