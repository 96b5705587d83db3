/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser and use its globals)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { VERSION } from '../../src/version.js';
import { describeRequiring } from '../helpers/requires.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient } from '../helpers/ws-client.js';

/** Debian's Chromium; the test never downloads a browser. */
const CHROMIUM = '/usr/bin/chromium';
/**
 * Without the background-networking flags Chromium keeps trying Google's
 * hosts, which this machine's closed network refuses. Playwright gives every
 * launch a fresh, empty user-data-dir of its own.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = join(tmpdir(), 'tp-ws-status-page.png');
const SOURCES = ['socket', 'table', 'replay', 'api', 'daemon'];

/** The raw number behind a figure on the page (its data-value). */
async function value(page: Page, id: string): Promise<number | null> {
  const v = await page.getAttribute(`#${id}`, 'data-value');
  return v === null || v === '' ? null : Number(v);
}

/** Wait until the page shows a figure for which `pred` holds (the page polls once a second). */
async function shows(page: Page, id: string, what: string, pred: (v: number) => boolean): Promise<void> {
  await until(async () => {
    const v = await value(page, id);
    return v !== null && pred(v);
  }, `#${id} to show ${what}`);
}

describeRequiring('status page (headless Chromium)', {
  missing: existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`,
  needs: 'Debian chromium',
  hint: 'apt-get install chromium (.ci/run installs it)',
}, () => {
  let d: TestDaemon;
  let browser: Browser;
  let page: Page;
  let origin: string;
  /** A directory whose name is markup: the page must show it as text. */
  let markupDir: string;
  const requests: string[] = [];
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    markupDir = mkdtempSync(join(tmpdir(), 'tpws-<img src=x onerror=window.__pwned=1>-'));
    d = await startDaemon({ 'admin.port': 0, 'ingest.socket': join(markupDir, 'in.sock') });
    origin = `http://127.0.0.1:${d.daemon.address.admin!.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await browser?.close();
    await d?.stop();
    if (markupDir) rmSync(markupDir, { recursive: true, force: true });
  });

  it('renders the running daemon: title, headings, version, connections, a drawn chart', async () => {
    await page.goto(`${origin}/`);
    expect(await page.title()).toBe('tp-ws status');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'live', null, { timeout: 10_000 });
    expect(await page.textContent('h1')).toBe('tp-ws status');
    expect(await page.locator('h2').count()).toBeGreaterThanOrEqual(8);
    expect(await page.textContent('#version')).toBe(VERSION);
    expect(await value(page, 'connections')).toBe(0);
    expect(await value(page, 'users')).toBe(0);
    expect(await value(page, 'events-total')).toBe(0);
    expect(await page.textContent('#config-store')).toMatch(/^sqlite:/);
    // The chart is drawn: axes with labels and one line per source.
    const chart = page.locator('#events-chart');
    expect(await chart.getAttribute('role')).toBe('img');
    expect(await chart.locator('text').count()).toBeGreaterThanOrEqual(6);
    expect(await chart.locator('polyline').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-series')))).toEqual(SOURCES);
    expect(await page.locator('#deliveries-chart polyline').count()).toBe(1);
    expect(await page.locator('#connections-chart polyline').count()).toBe(1);
    // Readiness is listed check by check.
    await page.waitForSelector('#ready-checks li[data-ok="true"] >> text=store');
    expect(await page.textContent('#ready-state')).toMatch(/^(ready|not ready)$/);
  });

  it('shows data from the daemon as text, never as markup', async () => {
    const path = join(markupDir, 'in.sock');
    expect(await page.textContent('#config-ingest')).toBe(path);
    await page.waitForSelector('#ready-checks li >> text=ingest');
    expect(await page.textContent('#ready-checks')).toContain(path);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
  });

  it('moves its numbers as clients connect and events flow', async () => {
    const before = (await value(page, 'events-total'))!;
    for (const userId of [1, 2]) {
      const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, ttlSec: 3600 });
      clients.push((await TestClient.login(d.url(token))).client);
    }
    await shows(page, 'connections', '2', (v) => v === 2);
    await shows(page, 'users', '2', (v) => v === 2);

    for (let i = 0; i < 3; i++) d.daemon.publish({ event_type: 'hello', target_type: 'broadcast', payload: { i } });
    for (const c of clients) for (let i = 0; i < 3; i++) await c.nextEvent();
    await shows(page, 'events-total', `at least ${before + 3}`, (v) => v >= before + 3);
    await shows(page, 'total-api', 'at least 3', (v) => v >= 3);
    await shows(page, 'deliveries-total', 'at least 6', (v) => v >= 6);
    await shows(page, 'latency-count', 'at least 3', (v) => v >= 3);
    expect(await page.textContent('#latency-p50')).toMatch(/ms$/);
    // The live rates are computed from successive polls: a number once two polls have been seen.
    await shows(page, 'rate-api', 'a rate', (v) => v >= 0);
    expect(await page.locator('#events-chart polyline[data-series="api"]').getAttribute('data-points')).not.toBe('0');

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`status page screenshot: ${SCREENSHOT}`);
  });

  it('fits a narrow screen without sideways scrolling', async () => {
    await page.setViewportSize({ width: 360, height: 800 });
    await page.waitForFunction(() => document.documentElement.scrollWidth <= 360, null, { timeout: 5000 });
    await page.setViewportSize({ width: 1200, height: 900 });
  });

  it('asks nothing of any other origin and breaks none of its own rules', () => {
    expect(requests.length).toBeGreaterThan(1);
    expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    expect(new Set(requests.map((u) => new URL(u).pathname))).toEqual(new Set(['/', '/status.json']));
    expect(pageErrors).toEqual([]);
    expect(cspViolations).toEqual([]);
  });

  it('says "daemon unreachable" when the daemon stops, and keeps the last numbers, greyed out', async () => {
    await shows(page, 'connections', '2', (v) => v === 2);
    const total = await value(page, 'events-total');
    await d.stop();
    await page.waitForFunction(() => /daemon unreachable/.test(document.getElementById('state')?.textContent ?? ''), null, { timeout: 10_000 });
    expect(await page.evaluate(() => document.body.classList.contains('stale'))).toBe(true);
    expect(await value(page, 'events-total')).toBe(total);
    expect(await page.textContent('#connections')).not.toBe('—');
    const grey = await page.evaluate(() => getComputedStyle(document.getElementById('connections')!).color);
    const live = await page.evaluate(() => getComputedStyle(document.querySelector('h1')!).color);
    expect(grey).not.toBe(live);
  });
});
