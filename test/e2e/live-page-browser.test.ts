import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectUrls, type InspectUrls } from '../helpers/inspect.js';
import { ServerProcess } from '../helpers/server-process.js';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // A name that resolves to 127.0.0.1, as a DNS-rebinding page's would.
  '--host-resolver-rules=MAP rebind.test 127.0.0.1',
];
const DOCS_SCREENSHOT = fileURLToPath(new URL('../../docs/live-page.png', import.meta.url));
const TEMP_SCREENSHOT = fileURLToPath(new URL('../../.vitest-temp/live-page.png', import.meta.url));

/** Ids of the highlighted states in the account diagram. */
const highlighted = (page: Page) =>
  page.$$eval('[data-machine="account"] .active', (els) => els.map((e) => e.id).sort());

/** Waits until the page names `state` as the account machine's current state. */
const waitForState = (page: Page, state: string) =>
  page.waitForFunction(
    (expected) => (globalThis as any).document.querySelector('[data-machine="account"] .state-value')?.textContent === expected,
    state,
  );

const logRows = (page: Page) => page.$$eval('#log li', (els) => els.map((e) => e.textContent ?? ''));

describe('the live page in headless Chromium', { timeout: 60_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  let urls: InspectUrls;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
    server = ServerProcess.start({ args: ['--inspect-ui'] });
    await server.initialize();
    urls = await inspectUrls(server);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(urls.live!);
    // A function, not a string: the page's CSP forbids eval.
    await page.waitForFunction(() => (globalThis as any).document.getElementById('status')?.textContent === 'live');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill();
  });

  it('highlights the current state and logs events as logins happen over stdio', async () => {
    await waitForState(page, 'loggedOut');
    expect(await highlighted(page)).toEqual(['account:loggedOut']);
    const rowsBefore = (await logRows(page)).length;

    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-browser-test-key-0042' }, 'browser-login');
    await waitForState(page, 'apiKey');
    expect(await highlighted(page)).toEqual(['account:apiKey']);
    const rows = await logRows(page);
    expect(rows.length).toBeGreaterThan(rowsBefore);
    expect(rows.some((r) => r.includes('→ account/login/start  id browser-login'))).toBe(true);
    expect(rows.some((r) => /← account\/login\/start {2}id browser-login {2}\d+\.\d ms {2}ok/.test(r))).toBe(true);
    expect(rows.some((r) => r.includes('emits account.updated'))).toBe(true);
    expect(await page.textContent('[data-machine-context="account"] pre')).toContain('"apiKey": "[redacted]"');
    expect(await page.content()).not.toContain('sk-browser-test-key-0042');

    mkdirSync(fileURLToPath(new URL('../../.vitest-temp/', import.meta.url)), { recursive: true });
    // docs/live-page.png is committed; refresh it on purpose with UPDATE_DOCS_SCREENSHOT=1.
    const path = process.env.UPDATE_DOCS_SCREENSHOT === '1' || !existsSync(DOCS_SCREENSHOT) ? DOCS_SCREENSHOT : TEMP_SCREENSHOT;
    const png = await page.screenshot({ path, fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    await server.request('account/logout', {});
    await waitForState(page, 'loggedOut');
    expect(await highlighted(page)).toEqual(['account:loggedOut']);
    expect((await logRows(page)).some((r) => r.includes('→ account/logout'))).toBe(true);
  });

  it('refuses the page without the token', async () => {
    const other = await browser.newPage();
    try {
      const response = await other.goto(`http://127.0.0.1:${urls.port}/`);
      expect(response?.status()).toBe(403);
    } finally {
      await other.close();
    }
  });

  it('refuses a DNS-rebinding name in Host even with the token', async () => {
    const other = await browser.newPage();
    try {
      const response = await other.goto(`http://rebind.test:${urls.port}/?token=${urls.token}`);
      expect(response?.status()).toBe(403);
      await server.stderrMatching(/refused GET \/: foreign Host header/);
    } finally {
      await other.close();
    }
  });

  it('refuses a foreign page that opens the feed, even with the token', async () => {
    // Another site on another port: its EventSource carries its own Origin.
    const foreign: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>foreign</title>');
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    const other = await browser.newPage();
    try {
      await other.goto(`http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`);
      const opened = await other.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const source = new EventSource(url);
            source.onmessage = () => resolve('got data');
            source.onerror = () => {
              source.close();
              resolve('error');
            };
          }),
        `http://127.0.0.1:${urls.port}/events?token=${urls.token}`,
      );
      expect(opened).toBe('error');
      await server.stderrMatching(/refused GET \/events: foreign Origin header/);
    } finally {
      await other.close();
      await new Promise<void>((resolve) => foreign.close(() => resolve()));
    }
  });
});
