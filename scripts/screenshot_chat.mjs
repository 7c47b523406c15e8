// Browser check of the chat page (docs/chat.png), in headless Chromium.
//
//   npm install --prefix /tmp/shot playwright-core            # once; uses Debian's /usr/bin/chromium
//   make run  (or: ERAG_USERS_FILE=config/users.demo.yaml .venv/bin/erag serve --port 8501 &)
//   PLAYWRIGHT_PREFIX=/tmp/shot node scripts/screenshot_chat.mjs http://localhost:8501 "QUESTION" [OUT.png]
//
// Signs in as the demo employee, asks QUESTION, waits until the answer has finished streaming with at least
// one citation, opens the first source card (unless it is open already) and saves the page. Exits non-zero
// when no cited answer comes. docs/table_answer.png: the same with a table question and that OUT.
import { openBrowser } from "./browser.mjs";

const [url, question = "How many days of parental leave do I get?", out = "docs/chat.png"] = process.argv.slice(2);
const { page, close } = await openBrowser({ width: 1300, height: Number(process.env.SHOT_HEIGHT ?? 1100) });
try {
  await page.goto(url);
  await page.locator('input[aria-label="User name"]').fill("erin");
  await page.locator('input[type="password"]').fill("erin-demo-pass");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as").first().waitFor({ timeout: 120000 });
  const input = page.locator('textarea[data-testid="stChatInputTextArea"]');
  await input.fill(question);
  await input.press("Enter");
  // The answer is complete when its feedback buttons appear (they are drawn after the stream ends).
  await page.locator('[data-testid="stFeedback"], [data-testid="stButtonGroup"]').first().waitFor(
    { timeout: 300000 });
  const card = page.locator('[data-testid="stExpander"] summary').first();
  await card.waitFor({ timeout: 10000 });
  // A computed answer's card opens by itself (it shows how the value was computed): clicking would close it.
  const open = await page.locator('[data-testid="stExpander"] details').first().evaluate((el) => el.open)
    .catch(() => false);
  if (!open) await card.click();
  await page.waitForTimeout(1500);
  // Show the answer from its start (Streamlit scrolls its own container to the bottom as the answer grows).
  await page.locator('[data-testid="stChatMessage"]').last().evaluate((el) => el.scrollIntoView({ block: "start" }));
  await page.waitForTimeout(500);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`saved ${out}`);
} catch (error) {
  await page.screenshot({ path: out.replace(/\.png$/, "-failed.png"), fullPage: true });  // what the page showed
  throw error;
} finally {
  await close();
}
