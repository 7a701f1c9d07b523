// Starts the streamflix demo for a test, as `scripts/demo` would, but on free ports and with its
// data in a temporary folder; stops it afterwards (startFleet: any manifest). Only processes it
// started are stopped.
import { execFileSync } from "node:child_process";
import http from "node:http";
import https from "node:https";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const squadron = path.join(root, "build/bin/squadron");
const example = path.join(root, "examples/streamflix");

export function startDemo() {
  const dir = mkdtempSync(path.join(tmpdir(), "squadron-browser-"));
  let text = readFileSync(path.join(example, "squadron.yaml"), "utf8");
  const swap = (from, to) => { text = text.split(from).join(to); };
  swap("127.0.0.1:9900", "127.0.0.1:0");
  swap("127.0.0.1:8443", "127.0.0.1:0");
  swap("127.0.0.1:8080", "127.0.0.1:0");
  swap("../../build/bin", path.join(root, "build/bin"));
  swap(".data/ratings.db", path.join(dir, "ratings.db"));
  swap("recommendations/app.py", path.join(example, "recommendations/app.py"));
  swap("../flask/app.py", path.join(root, "examples/flask/app.py"));
  swap("data/titles.json", path.join(example, "data/titles.json"));
  swap("data/ratings-seed.json", path.join(example, "data/ratings-seed.json"));
  return startFleet(text, dir);
}

// A fleet of manifest `text` in folder `dir` (a new temporary one by default) on free ports
// (control.listen and gateway.listen of 127.0.0.1:0 in `text`); stopped and removed by stop().
export function startFleet(text, dir = mkdtempSync(path.join(tmpdir(), "squadron-browser-"))) {
  const manifest = path.join(dir, "squadron.yaml");
  writeFileSync(manifest, text);
  const cli = (...args) => execFileSync(squadron, ["-f", manifest, ...args], { encoding: "utf8" });
  cli("up", "-d", "--timeout", "60s");
  const run = JSON.parse(readFileSync(path.join(dir, ".squadron/run.json"), "utf8"));
  const token = readFileSync(path.join(dir, ".squadron/token"), "utf8").trim();
  const ps = () => JSON.parse(cli("ps", "--json"));
  const gateway = ps().find((i) => i.service === "gateway");
  // gateway.tls.self_signed: HTTPS with the certificate `up` made, which get() trusts by its file
  // (the browser is told to accept it: playwright.config.mjs).
  const secure = /\btls:/.test(text);
  const ca = secure ? readFileSync(path.join(dir, ".squadron/tls/self-signed.pem")) : undefined;
  const app = `${secure ? "https" : "http"}://127.0.0.1:${gateway.port}`;
  return {
    dir, cli, ps, token,
    control: run.control,                              // "http://127.0.0.1:N"
    app,                                               // "https://127.0.0.1:N" with tls:
    // The body of GET app + target (a load's request; rejects on an error).
    get(target) {
      return new Promise((resolve, reject) => {
        const req = (secure ? https : http).get(app + target, { ca }, (res) => {
          let body = "";
          res.on("data", (d) => { body += d; });
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
      });
    },
    stop() {
      try { cli("down"); } catch (e) { /* already down */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
