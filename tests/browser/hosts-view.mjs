// The dashboard's hosts view in a real browser (Debian's chromium), for `scripts/demo --cluster`:
// waits until host NAME shows STATE, saves a screenshot, exits 0; 1 (and what it saw) otherwise.
//   node tests/browser/hosts-view.mjs http://127.0.0.1:9900 h3 lost [screenshot.png]
import { chromium } from "@playwright/test";

const [control, host, want, shot] = process.argv.slice(2);
if (!control || !host || !want) {
  console.error("usage: node tests/browser/hosts-view.mjs CONTROL_URL HOST STATE [SCREENSHOT]");
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(control + "/");
  const row = page.locator(`#hosts tr[data-host="${host}"][data-state="${want}"]`);
  try {
    await row.waitFor({ timeout: 20_000 });
  } catch (e) {
    const seen = await page.locator("#hosts tbody").innerText().catch(() => "(no hosts view)");
    console.error(`hosts view: ${host} not ${want} within 20 s; it shows:\n${seen}`);
    process.exit(1);
  }
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  console.log((await page.locator("#hosts tbody").innerText()).replace(/\t/g, "  "));
} finally {
  await browser.close();
}
