// The browser tests: Debian's chromium (scripts/bootstrap installs it), headless, one worker
// (the tests share one fleet), a screenshot and a trace of every failure in test-results/.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: ".",
  testMatch: /.*\.spec\.mjs/,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    browserName: "chromium",
    headless: true,
    // The demo's gateway has a self-signed certificate (gateway.tls.self_signed).
    ignoreHTTPSErrors: true,
    launchOptions: { executablePath: process.env.CHROMIUM || "/usr/bin/chromium" },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
});
