// Opens /dashboard in headless Chromium, waits until it is live with its prices drawn,
// prints {"event":"ready", ...}, then waits until the live update counter moves and the
// page shows EXPECT (a price the test ingests), and prints {"event":"updated", ...} with
// every console error seen. Exits 1 after 60 s without the update.
//   node dashboard.mjs http://127.0.0.1:PORT/dashboard#token=... EXPECT
import { chromium } from 'playwright-core';

const [url, expected] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const consoleErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.url()}`); });
  await page.goto(url);
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 30000 });
  await page.locator('#prices tbody tr').first().waitFor({ timeout: 30000 });
  await page.locator('#board li').first().waitFor({ timeout: 30000 });
  // With a token, the top trader's positions load after the first board arrives.
  if (url.includes('#token=')) await page.locator('#positions tbody tr').first().waitFor({ timeout: 30000 });
  const before = await page.locator('main').innerText();
  print({
    event: 'ready',
    rows: await page.locator('#prices tbody tr').count(),
    sparklines: await page.locator('#prices svg.spark polyline').count(),
    board: await page.locator('#board li').count(),
    positions: await page.locator('#positions tbody tr').count(),
  });
  await page.waitForFunction(
    (want) => Number(document.querySelector('#updates').dataset.count) > 0
      && document.querySelector('#prices').innerText.includes(want),
    expected,
    { timeout: 60000 },
  );
  const after = await page.locator('main').innerText();
  print({ event: 'updated', changed: before !== after, consoleErrors });
} catch (err) {
  print({ event: 'failed', error: String(err), consoleErrors });
  process.exitCode = 1;
} finally {
  await browser.close();
}
