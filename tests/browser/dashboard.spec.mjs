// The dashboard and the demo application in headless chromium, against the real binaries.
import { test, expect } from "@playwright/test";
import { startDemo } from "./fleet.mjs";

const SERVICES = ["web", "catalog", "ratings", "recommendations", "hello"];
let fleet;

test.beforeAll(() => { fleet = startDemo(); });
test.afterAll(() => { fleet?.stop(); });

test("the dashboard shows the fleet, scales with its button, and sees a killed instance replaced", async ({ page }) => {
  await page.goto(fleet.control + "/");
  await expect(page.locator("#fleet-name")).toHaveText("streamflix");
  // Every service ready: its pill says ready/desired with ready >= desired >= 1.
  for (const name of SERVICES) {
    const pill = page.locator(`#services tr[data-service="${name}"] .pill`).first();
    await expect(pill).toHaveClass(/\bok\b/);
  }

  // Squadron's own gateway runs once: its row has no Scale. Events wait for the token.
  await expect(page.locator('input[data-scale="gateway"]')).toHaveCount(0);
  await expect(page.locator("#events")).toContainText("need the fleet's token");

  // Scale catalog to 3 with the button; the token is asked for once.
  await page.locator('input[data-scale="catalog"]').fill("3");
  await page.locator('#services tr[data-service="catalog"] button[data-action="scale"]').click();
  await page.locator("#token-input").fill(fleet.token);
  await page.locator("#token-ok").click();
  await expect(page.locator('#services tr[data-service="catalog"] .pill').first())
    .toHaveText("3/3", { timeout: 20_000 });
  expect(fleet.ps().filter((i) => i.service === "catalog" && i.state === "ready").length).toBe(3);

  // Restart hello from its row (the token is kept for the tab): a new instance replaces it.
  const before = fleet.ps().find((i) => i.service === "hello");
  await page.locator('#services tr[data-service="hello"] button[data-action="restart"]').click();
  await expect(page.locator('#services tr[data-service="hello"] .message')).toContainText("accepted");
  await expect.poll(() => {
    const now = fleet.ps().filter((i) => i.service === "hello");
    return now.length === 1 && now[0].id !== before.id && now[0].state === "ready";
  }, { timeout: 20_000 }).toBe(true);

  // Kill one catalog instance: the dashboard shows it replaced (restarts counts up, ready again).
  await page.locator('#services a', { hasText: "catalog" }).click();
  await expect(page.locator("#instances tbody tr")).toHaveCount(3);
  const victim = fleet.ps().find((i) => i.service === "catalog");
  process.kill(victim.pid, "SIGKILL");
  const row = page.locator(`#instances tr[data-instance="${victim.id}"]`);
  await expect(row.locator("td").nth(4)).toHaveText("1", { timeout: 20_000 });  // restarts
  await expect(row.locator("td").nth(1)).toHaveText("ready");
  // What it uses, from its cgroup (or /proc): resident memory and a share of a core.
  await expect(row.locator("td").nth(6)).toHaveText(/^[0-9.]+ (KiB|MiB|GiB)/, { timeout: 10_000 });
  await expect(row.locator("td").nth(7)).toHaveText(/^[0-9.]+ %$/, { timeout: 10_000 });
  await expect(page.locator("#events")).toContainText(victim.id);

  // Deploy a revision from the page, then roll back to the one before.
  await page.locator("#deploy-env").fill("GREETING=hi");
  await page.locator('button[data-action="deploy"]').click();
  await expect(page.locator("h1")).toContainText("revision 2", { timeout: 20_000 });
  await expect(page.locator("#history")).toContainText("set GREETING");
  await page.locator('button[data-action="rollback"]').click();
  await expect(page.locator("h1")).toContainText("revision 1", { timeout: 20_000 });
  // (Every catalog instance back on revision 1: how many, the autoscaler decides by now.)
  await expect.poll(() => {
    const catalog = fleet.ps().filter((i) => i.service === "catalog");
    return catalog.length > 0 && catalog.every((i) => i.revision === "1" && i.state === "ready");
  }, { timeout: 20_000 }).toBe(true);
});

test("an action without the right token is refused and asks again", async ({ page }) => {
  await page.goto(fleet.control + "/");
  await expect(page.locator("#fleet-name")).toHaveText("streamflix");
  await page.locator('#services tr[data-service="hello"] button[data-action="restart"]').click();
  await page.locator("#token-input").fill("not-the-token");
  await page.locator("#token-ok").click();
  await expect(page.locator("#token-dialog")).toBeVisible();  // refused (401): asked again
  await page.locator("#token-dialog button[value=cancel]").click();
  await expect(page.locator('#services tr[data-service="hello"] .message')).toContainText("token");
});

test("under load the traffic columns and charts move", async ({ page }) => {
  await page.goto(fleet.control + "/");
  await expect(page.locator("#fleet-name")).toHaveText("streamflix");
  // Four clients on the front page for a few seconds (each page calls three services).
  let stop = false;
  const clients = Array.from({ length: 4 }, async () => {
    while (!stop) await fleet.get("/").catch(() => {});
  });
  const rps = page.locator('#services tr[data-service="web"] td').nth(3);
  await expect.poll(async () => parseFloat(await rps.textContent()) || 0, { timeout: 20_000 })
    .toBeGreaterThan(1);
  // The sparkline rose off its baseline: a drawn pixel above the bottom rows, right of the label.
  const risen = () => page.locator('canvas[data-spark="web"]').evaluate((c) => {
    const { data, width, height } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
    for (let y = 0; y < height - 4; y++) {
      for (let x = 40; x < width; x++) if (data[(y * width + x) * 4 + 3] > 0) return true;
    }
    return false;
  });
  await expect.poll(risen, { timeout: 10_000 }).toBe(true);
  stop = true;
  await Promise.all(clients);
});

test("the application's front page shows the catalogue, ratings and recommendations, over HTTPS with HTTP/2", async ({ page }) => {
  expect(fleet.app).toMatch(/^https:/);
  await page.goto(fleet.app + "/");
  // The page came over HTTP/2 (ALPN h2), through the gateway's TLS.
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  expect(protocol).toBe("h2");
  await expect(page.locator("h1")).toHaveText("STREAMFLIX");
  await expect(page.locator("#catalogue .card")).toHaveCount(24);
  await expect(page.locator("#recommendations")).toContainText("Because you watched");
  await expect(page.locator("#catalogue")).toContainText("★");
});

test("the dashboard says so when the control plane goes away", async ({ page }) => {
  await page.goto(fleet.control + "/");
  await expect(page.locator("#fleet-name")).toHaveText("streamflix");
  await expect(page.locator("#banner")).toBeHidden();
  fleet.stop();
  fleet = null;
  await expect(page.locator("#banner")).toBeVisible({ timeout: 15_000 });
  await expect(page.locator("#banner")).toContainText("unreachable");
});
