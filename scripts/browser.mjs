// Headless Debian Chromium with a fresh profile, for the docs screenshots (scripts/screenshot_*.mjs).
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

// playwright-core lives outside the repository (a docs tool, not a product dependency).
const { chromium } = createRequire(join(process.env.PLAYWRIGHT_PREFIX ?? process.cwd(), "package.json"))(
  "playwright-core");

/** Open a browser; returns { browser, page, close } where close() also removes the profile. */
export async function openBrowser(viewport) {
  const profile = mkdtempSync(join(tmpdir(), "erag-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const close = async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { browser, page, close };
}
