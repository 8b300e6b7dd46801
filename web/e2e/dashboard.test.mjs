// End-to-end tests of tote's dashboard in Debian's headless Chromium,
// driven by playwright-core. Run by web's Go test TestBrowser, which starts
// the dashboard on a seeded warehouse and passes, in the environment:
//   BASE_URL     the dashboard (loopback, no token, run now wired)
//   GUARDED_URL  the same dashboard with a token, as beyond the loopback
//   CONTROL_URL  POST /: insert a sale in the source and load it; POST
//                /delete: delete the newest GBP sale, load, answer {order}
//   EXPECT_FILE  the figures the default view must show, computed in SQL
//   CHROMIUM     the browser; DOWNLOADS a directory for downloads
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const GUARDED = process.env.GUARDED_URL;
const expect = JSON.parse(fs.readFileSync(process.env.EXPECT_FILE, 'utf8'));
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

// open gives a page that fails on any request off the test server's host
// and on any console error.
async function open(url, opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true, reducedMotion: 'reduce', ...opts });
  const page = await ctx.newPage();
  const origin = new URL(url).origin;
  const problems = { offHost: [], errors: [] };
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + '/') || u === origin || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
    problems.offHost.push(u);
    return route.abort();
  });
  page.on('console', (m) => { if (m.type() === 'error') problems.errors.push(m.text()); });
  page.on('pageerror', (e) => problems.errors.push(String(e.stack || e)));
  await page.goto(url);
  return { page, ctx, problems };
}
async function loaded(page, since = 0) {
  await page.waitForFunction((s) => Number(document.body.dataset.loaded || 0) > s, since, { timeout: 20000 });
  return page.evaluate(() => Number(document.body.dataset.loaded));
}
const kpi = (page, key) => page.getAttribute(`[data-kpi="${key}"] .value`, 'data-value');
function clean(problems, what) {
  assert.deepEqual(problems.offHost, [], `${what}: requests off the host`);
  assert.deepEqual(problems.errors, [], `${what}: console errors`);
}

test('the pages load with no console error and no off-host request', async () => {
  for (const p of ['/', '/?preset=all', '/pipeline']) {
    const { page, ctx, problems } = await open(BASE + p);
    await loaded(page);
    await page.waitForTimeout(300);
    clean(problems, p);
    if (p === '/pipeline') {
      assert.ok(await page.locator('#t-lag tbody tr').count() >= 2, 'the loads are listed');
    } else {
      assert.ok(await page.locator('#kpis .kpi').count() >= 5, 'KPI cards are shown');
      assert.match(await page.textContent('#freshness'), /data as of .* lag/);
    }
    await ctx.close();
  }
});

test('each KPI equals the same figure computed in SQL', async () => {
  const { page, ctx, problems } = await open(BASE + '/');
  await loaded(page);
  for (const [cur, k] of Object.entries(expect.kpis)) {
    assert.equal(await kpi(page, `orders:${cur}`), k.orders, `orders ${cur}`);
    assert.equal(await kpi(page, `revenue:${cur}`), k.revenue, `revenue ${cur}`);
  }
  clean(problems, 'KPIs');
  await ctx.close();
});

test('a filter changes the charts and the URL, and a reload restores it', async () => {
  const { page, ctx, problems } = await open(BASE + '/');
  const t0 = await loaded(page);
  const before = await page.locator('#kpis .kpi').count();
  await page.selectOption('select[name=cur]', ['GBP']);
  await loaded(page, t0);
  assert.match(page.url(), /[?&]cur=GBP/);
  assert.equal(await page.locator('#kpis .kpi').count(), 5, 'one currency: five cards');
  assert.ok(before > 5);
  const rows = await page.locator('#t-countries tbody tr').count();
  await page.reload();
  await loaded(page);
  assert.match(page.url(), /[?&]cur=GBP/);
  assert.equal(await page.locator('#kpis .kpi').count(), 5);
  assert.deepEqual(await page.$eval('select[name=cur]', (s) => [...s.selectedOptions].map((o) => o.value)), ['GBP']);
  assert.equal(await page.locator('#t-countries tbody tr').count(), rows);
  clean(problems, 'filter');
  await ctx.close();
});

test('clicking a bar cross-filters every chart, shown as a removable chip', async () => {
  const { page, ctx, problems } = await open(BASE + '/?cur=GBP');
  const t0 = await loaded(page);
  // The top city's bar in the cities chart, clicked where ECharts drew it.
  const target = await page.evaluate(() => {
    const node = document.getElementById('c-cities');
    node.scrollIntoView({ block: 'center' });
    const chart = echarts.getInstanceByDom(node);
    const opt = chart.getOption();
    const cats = opt.yAxis[0].data;
    const i = cats.length - 1;
    const v = opt.series[0].data[i].value;
    const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, [v / 2, i]);
    const r = node.getBoundingClientRect();
    return { x: r.left + x, y: r.top + y, city: opt.series[0].data[i].xf };
  });
  await page.mouse.click(target.x, target.y);
  const t1 = await loaded(page, t0);
  assert.match(decodeURIComponent(page.url()), new RegExp('xf=' + target.city.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll(' ', '\\+')));
  const chip = page.locator('#chips li');
  assert.equal(await chip.count(), 1);
  assert.match(await chip.textContent(), /City: /);
  assert.equal(await page.locator('#t-cities tbody tr').count(), 1, 'the cities chart shows the one city');
  await chip.locator('button').click();
  await loaded(page, t1);
  assert.equal(await page.locator('#chips li').count(), 0);
  assert.doesNotMatch(page.url(), /xf=/);
  clean(problems, 'cross-filter');
  await ctx.close();
});

test("a drill-down's row count equals its figure", async () => {
  const { page, ctx, problems } = await open(BASE + '/');
  await loaded(page);
  const cur = Object.keys(expect.kpis)[0];
  const orders = await kpi(page, `orders:${cur}`);
  await page.click(`[data-kpi="orders:${cur}"]`);
  await page.waitForSelector('#drill-summary[data-total]');
  assert.equal(await page.getAttribute('#drill-summary', 'data-total'), orders);
  assert.ok(await page.locator('#drill-table tbody tr').count() === Math.min(50, Number(orders)));
  const first = await page.textContent('#drill-table tbody tr td:nth-child(3)');
  assert.match(first, /^\d{12}-/, 'each row names the batch that loaded it');
  clean(problems, 'drill-down');
  await ctx.close();
});

test('CSV rows equal the table', async () => {
  const { page, ctx, problems } = await open(BASE + '/?preset=all');
  await loaded(page);
  const table = await page.$$eval('#t-countries table tr', (trs) => trs.map((tr) =>
    [...tr.children].filter((c) => c.textContent !== 'Actions' && !c.querySelector('button')).map((c) => c.textContent)));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#p-countries [data-act=csv]')]);
  const file = path.join(process.env.DOWNLOADS, 'countries.csv');
  await download.saveAs(file);
  const csv = fs.readFileSync(file, 'utf8').trim().split(/\r\n/).map((l) => l.split(','));
  assert.deepEqual(csv, table);
  assert.ok(csv.length > 2);
  clean(problems, 'CSV');
  await ctx.close();
});

test('dark mode follows the system and the toggle', async () => {
  const { page, ctx, problems } = await open(BASE + '/', { colorScheme: 'dark' });
  await loaded(page);
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(await bg(), 'rgb(13, 17, 23)');
  assert.equal(await page.getAttribute('#theme', 'aria-pressed'), 'true');
  await page.click('#theme');
  assert.equal(await bg(), 'rgb(246, 247, 249)');
  assert.equal(await page.getAttribute('#theme', 'aria-pressed'), 'false');
  await page.reload();
  await loaded(page);
  assert.equal(await bg(), 'rgb(246, 247, 249)', 'the choice outlives a reload');
  clean(problems, 'dark mode');
  await ctx.close();
});

test('a sale inserted in the source shows in the orders KPI within 15 s, with no reload', async () => {
  const { page, ctx, problems } = await open(BASE + '/?cur=GBP');
  await loaded(page);
  await page.waitForSelector('#live.on');
  const before = Number(await kpi(page, 'orders:GBP'));
  await page.evaluate(() => { window.sameDocument = true; });
  const start = Date.now();
  const r = await fetch(process.env.CONTROL_URL, { method: 'POST' });
  assert.equal(r.status, 204);
  await page.waitForFunction((n) => Number(document.querySelector('[data-kpi="orders:GBP"] .value')?.dataset.value) === n,
    before + 1, { timeout: 15000 - (Date.now() - start) });
  assert.ok(await page.evaluate(() => window.sameDocument === true), 'the page was not reloaded');
  clean(problems, 'live');
  await ctx.close();
});

test('a sale deleted in the source leaves the figures, and its history shows the deletion', async () => {
  const { page, ctx, problems } = await open(BASE + '/?cur=GBP&preset=all');
  await loaded(page);
  await page.waitForSelector('#live.on');
  const before = Number(await kpi(page, 'orders:GBP'));
  const r = await fetch(process.env.CONTROL_URL + '/delete', { method: 'POST' });
  assert.equal(r.status, 200);
  const { order } = await r.json();
  await page.waitForFunction((n) => Number(document.querySelector('[data-kpi="orders:GBP"] .value')?.dataset.value) === n,
    before - 1, { timeout: 15000 });
  await page.fill('#history-id', String(order));
  await page.click('#history-form button[type=submit]');
  await page.waitForSelector('#history-table table');
  const caption = await page.textContent('#history-table caption');
  assert.match(caption, new RegExp(`Sales order ${order}: \\d+ version\\(s\\).*deleted`), caption);
  const changes = await page.$$eval('#history-table tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent));
  assert.equal(changes[changes.length - 1], 'deleted', 'the last version is the deletion');
  assert.ok(changes.slice(0, -1).every((c) => c === ''), 'the versions before it are not deletions');
  clean(problems, 'deletion');
  await ctx.close();
});

test('run now is refused without the token beyond the loopback', async () => {
  const { page, ctx, problems } = await open(GUARDED + '/pipeline');
  assert.equal(await page.locator('input[name=token]').count(), 1, 'a login form, not the dashboard');
  const status = await page.evaluate(async () => (await fetch('/api/run', { method: 'POST' })).status);
  assert.equal(status, 401);
  problems.errors = problems.errors.filter((e) => !/401/.test(e)); // the page's own 401s
  await page.goto(GUARDED + '/pipeline?token=e2e-token');
  await loaded(page);
  assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar');
  await page.click('#run-now');
  await page.waitForFunction(() => /Run queued/.test(document.getElementById('run-status').textContent));
  clean(problems, 'run now');
  await ctx.close();
});
