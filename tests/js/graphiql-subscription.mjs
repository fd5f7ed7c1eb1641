// Opens GraphiQL in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), runs a subscription from the page, and waits until the response pane
// shows EXPECT. Prints {"event":"running"} once the subscription is started and
// {"event":"seen"} when the text appears; exits 1 (with the pane's text) after 60 s.
//   node graphiql-subscription.mjs http://127.0.0.1:PORT/graphql 'subscription {...}' EXPECT [SCREENSHOT.png]
import { chromium } from 'playwright-core';

const [url, query, expected, screenshot] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  await page.goto(`${url}#query=${encodeURIComponent(query)}`);
  const run = page.locator('.graphiql-execute-button');
  await run.waitFor({ timeout: 30000 });
  await run.click();
  print({ event: 'running' });
  const pane = page.locator('.graphiql-response');
  const deadline = Date.now() + 60000;
  while (!(await pane.textContent()).includes(expected)) {
    if (Date.now() > deadline) {
      print({ event: 'timeout', pane: await pane.textContent() });
      process.exitCode = 1;
      break;
    }
    await page.waitForTimeout(100);
  }
  if (!process.exitCode) print({ event: 'seen' });
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
