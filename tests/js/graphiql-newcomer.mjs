// Opens GraphiQL in headless Chromium as a newcomer would, and reports what they meet:
// the docs explorer's list of Query fields, the editor's autocomplete for `{ us`, whether
// a header typed into the Headers tab survives a reload, and every console error.
// Prints one JSON line; exits 1 when a step fails.
//   node graphiql-newcomer.mjs http://127.0.0.1:PORT/graphql
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const found = { consoleErrors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') found.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => found.consoleErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) found.consoleErrors.push(`${r.status()} ${r.url()}`); });
  await page.goto(url);
  await page.locator('.graphiql-execute-button').waitFor({ timeout: 30000 });
  found.defaultQuery = await page.locator('.graphiql-query-editor').innerText();
  found.credentialsNote = await page.locator('#credentials').innerText();

  // The docs explorer: open it, then the Query type, and list its fields.
  await page.locator('button[aria-label="Show Documentation Explorer"]').click();
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().click();
  await page.locator('.graphiql-doc-explorer-field-name').first().waitFor({ timeout: 15000 });
  found.queryFields = await page.locator('.graphiql-doc-explorer-field-name').allInnerTexts();

  // Autocomplete: a fresh editor, `{ us`, and the hints offered.
  const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type('{ us');
  const hint = page.locator('.CodeMirror-hint');
  await hint.first().waitFor({ timeout: 15000 });
  found.hints = await hint.allInnerTexts();

  // A header survives a reload.
  await page.locator('button[data-name="headers"]').click();
  const headers = page.locator('.graphiql-editor-tool .graphiql-editor:visible .CodeMirror').first();
  await headers.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('{"x-meridian-trace": "1"}');
  // GraphiQL saves editors a moment after the last keystroke.
  await page.waitForFunction(() => (localStorage.getItem('graphiql:headers') || '').includes('x-meridian-trace'), null, { timeout: 10000 });
  await page.reload();
  await page.locator('.graphiql-execute-button').waitFor({ timeout: 30000 });
  await page.locator('button[data-name="headers"]').click();
  found.headersAfterReload = await page.locator('.graphiql-editor-tool .graphiql-editor:visible').first().innerText();
} catch (err) {
  found.failed = String(err);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(found));
