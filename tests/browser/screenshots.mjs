// Screenshots for the README (docs/img/): the dashboard under examples/streamflix/load.sh, a
// service's page, and the application's front page. Not a test: run it by hand.
//   node tests/browser/screenshots.mjs
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startDemo } from "./fleet.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const out = (name) => path.join(root, "docs/img", name);
const fleet = startDemo();
try {
  const load = spawn(path.join(root, "examples/streamflix/load.sh"), [], {
    env: { ...process.env, URL: fleet.app + "/", DURATION: "40s", CONNECTIONS: "16" },
    stdio: "ignore",
  });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 }, ignoreHTTPSErrors: true });
  await page.goto(fleet.control + "/");
  await page.waitForTimeout(30_000);  // the load runs; the autoscaler acts; the charts fill
  await page.screenshot({ path: out("dashboard.png") });
  await page.goto(fleet.control + "/#/service/catalog");
  await page.waitForTimeout(3_000);
  await page.screenshot({ path: out("dashboard-service.png"), fullPage: false });
  await page.goto(fleet.app + "/");
  await page.screenshot({ path: out("streamflix.png") });
  await browser.close();
  load.kill();
} finally {
  fleet.stop();
}
