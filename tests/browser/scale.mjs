// The dashboard with a big fleet: SERVICES services x INSTANCES instances of the C++ hello
// (50 x 10 by default: 500 processes). Prints how long the page takes to show every service
// ready, how long a scale from the page takes to show, the size of one watch snapshot and the
// page's JS heap. Used by bench/dashboard.sh.
import { chromium } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const services = Number(process.env.SERVICES || 50);
const instances = Number(process.env.INSTANCES || 10);
const dir = mkdtempSync(path.join(tmpdir(), "squadron-scale-"));
const manifest = path.join(dir, "squadron.yaml");
let text = "name: big\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n";
for (let i = 0; i < services; i++) {
  text += `  svc-${String(i).padStart(2, "0")}:\n    command: [${root}/build/bin/hello, --threads, "1"]\n` +
          `    replicas: ${instances}\n    routes: [/s${i}]\n`;
}
writeFileSync(manifest, text);
const cli = (...args) => execFileSync(path.join(root, "build/bin/squadron"), ["-f", manifest, ...args],
                                       { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
let browser;
try {
  let t = Date.now();
  cli("up", "-d", "--timeout", "120s");
  console.log(`up -d: ${services * instances} instances ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const run = JSON.parse(readFileSync(path.join(dir, ".squadron/run.json"), "utf8"));
  const token = readFileSync(path.join(dir, ".squadron/token"), "utf8").trim();
  const snapshot = execFileSync("curl", ["-s", run.control + "/api/v1/watch"], { encoding: "utf8" });
  console.log(`one watch snapshot: ${(snapshot.length / 1024).toFixed(0)} KiB`);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  t = Date.now();
  await page.goto(run.control + "/");
  await page.locator("#services tbody tr").nth(services).waitFor();  // + the gateway's row
  await page.waitForFunction((n) => document.querySelectorAll("#services .pill.ok").length >= n, services);
  console.log(`dashboard: ${services + 1} services shown, all ready, ${Date.now() - t} ms after opening`);
  await page.locator('input[data-scale="svc-07"]').fill(String(instances + 2));
  await page.locator('#services tr[data-service="svc-07"] button[data-action="scale"]').click();
  await page.locator("#token-input").fill(token);
  t = Date.now();
  await page.locator("#token-ok").click();
  await page.locator('#services tr[data-service="svc-07"] .pill', { hasText: `${instances + 2}/${instances + 2}` }).waitFor();
  console.log(`scale svc-07 ${instances} -> ${instances + 2} from the page: shown ready after ${Date.now() - t} ms`);
  await page.waitForTimeout(10_000);  // ten seconds of live updates
  const heap = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : 0);
  console.log(`page JS heap after 10 s live: ${(heap / 1048576).toFixed(1)} MiB`);
  const lag = await page.evaluate(async () => {
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 0));
    return performance.now() - t0;
  });
  console.log(`main-thread lag at the end: ${lag.toFixed(1)} ms`);
} finally {
  if (browser) await browser.close();
  try { cli("down", "--timeout", "120s"); } catch (e) { /* already down */ }
  rmSync(dir, { recursive: true, force: true });
}
