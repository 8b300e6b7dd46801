// Measures the first paint of the dashboard's pages in Debian's headless
// Chromium: first-contentful-paint, and the time until every chart is
// drawn (the module marks body[data-loaded]), cold and with cached assets.
// Prints JSON. Used by cmd/dashbench: node web/e2e/paint.mjs BASE_URL
import { chromium } from 'playwright-core';

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = [];
for (const view of ['/', '/pipeline']) {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  for (const warm of [false, true]) {
    const start = Date.now();
    await page.goto(base + view);
    await page.waitForSelector('body[data-loaded]', { timeout: 60000 });
    const charts = Date.now() - start;
    const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
    out.push({ view, warm, fcp_ms: fcp, charts_ms: charts });
  }
  await ctx.close();
}
await browser.close();
console.log(JSON.stringify(out));
