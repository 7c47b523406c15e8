// Screenshot of the admin page with uploads in progress (docs/admin_page.png), in headless Chromium.
//
//   npm install --prefix /tmp/shot playwright-core            # once; uses Debian's /usr/bin/chromium
//   ERAG_USERS_FILE=config/users.demo.yaml .venv/bin/erag serve --port 8765 &     # an app with the demo users
//   PLAYWRIGHT_PREFIX=/tmp/shot node scripts/screenshot_admin.mjs http://localhost:8765 FILE... [OUT.png]
//
// Signs in as the demo admin, opens the admin page, drops FILEs on the uploader, submits, waits until
// some files are past "queued" while others are still in the works, and saves the page.
import { openBrowser } from "./browser.mjs";

const [url, ...rest] = process.argv.slice(2);
const out = rest.length && rest[rest.length - 1].endsWith(".png") ? rest.pop() : "docs/admin_page.png";
const { page, close } = await openBrowser({ width: 1400, height: 1500 });
await page.goto(url);
await page.locator('input[aria-label="User name"]').fill("ada");
await page.locator('input[type="password"]').fill("ada-demo-pass");
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByText("Signed in as Ada Admin").waitFor({ timeout: 120000 });
await page.getByRole("link", { name: "Admin" }).click();
await page.getByText("Upload documents", { exact: true }).waitFor({ timeout: 120000 });
await page.locator('input[type="file"]').setInputFiles(rest);
await page.getByText(rest[0].split("/").pop()).first().waitFor();
await page.getByRole("button", { name: "Upload and ingest" }).click();
await page.getByText("for ingestion").first().waitFor({ timeout: 60000 });
// Wait for a mix: files in progress while others still wait (the progress caption counts them).
await page.waitForFunction(() => {
  const text = document.body.innerText;
  return /[1-9]\d* queued ·/.test(text) && /[1-9]\d* in progress/.test(text) && /[1-9]\d* indexed/.test(text);
}, null, { timeout: 180000, polling: 250 });
await page.waitForTimeout(2500);
await page.screenshot({ path: out, fullPage: true });
console.log(`saved ${out}`);
await close();
