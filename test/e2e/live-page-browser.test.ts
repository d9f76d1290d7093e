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

/** Ids of the highlighted states in a machine's diagram. */
const highlighted = (page: Page, machine = 'account') =>
  page.$$eval(`[data-machine="${machine}"] .active`, (els) => els.map((e) => e.id).sort());

/** Waits until the page names `state` (its active leaves) as a machine's current state. */
const waitForState = (page: Page, state: string, machine = 'account') =>
  page.waitForFunction(
    ([expected, m]) => (globalThis as any).document.querySelector(`[data-machine="${m}"] .state-value`)?.textContent === expected,
    [state, machine] as const,
  );

const isShown = (page: Page, machine: string) =>
  page.$eval(`[data-machine="${machine}"]`, (el) => !(el as any).hidden && (el as any).getBoundingClientRect().height > 0);

const LOGGED_OUT = ['account:credentials', 'account:credentials.loggedOut', 'account:login', 'account:login.idle'];

const logRows = (page: Page) => page.$$eval('#log li', (els) => els.map((e) => e.textContent ?? ''));

describe('the live page in headless Chromium', { timeout: 60_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  let urls: InspectUrls;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
    // Browser sign-in needs only a free callback port until a code arrives; the issuer is never called here.
    server = ServerProcess.start({
      args: ['--inspect-ui'],
      env: { CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0', CODEX_APP_SERVER_LOGIN_ISSUER: 'http://127.0.0.1:9' },
    });
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
    await waitForState(page, 'credentials.loggedOut, login.idle');
    expect(await highlighted(page)).toEqual(LOGGED_OUT);
    expect(await isShown(page, 'loginAttempt')).toBe(false);
    const rowsBefore = (await logRows(page)).length;

    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-browser-test-key-0042' }, 'browser-login');
    await waitForState(page, 'credentials.apiKey, login.idle');
    expect(await highlighted(page)).toEqual(['account:credentials', 'account:credentials.apiKey', 'account:login', 'account:login.idle']);
    const rows = await logRows(page);
    expect(rows.length).toBeGreaterThan(rowsBefore);
    expect(rows.some((r) => r.includes('→ account/login/start  id browser-login'))).toBe(true);
    expect(rows.some((r) => /← account\/login\/start {2}id browser-login {2}\d+\.\d ms {2}ok/.test(r))).toBe(true);
    expect(rows.some((r) => r.includes('emits account.updated'))).toBe(true);
    expect(await page.textContent('[data-machine-context="account"] pre')).toContain('"apiKey": "[redacted]"');
    expect(await page.content()).not.toContain('sk-browser-test-key-0042');

    await server.request('account/logout', {});
    await waitForState(page, 'credentials.loggedOut, login.idle');
    expect(await highlighted(page)).toEqual(LOGGED_OUT);
    expect((await logRows(page)).some((r) => r.includes('→ account/logout'))).toBe(true);
  });

  it('shows the login-attempt child machine and its states while a browser sign-in waits, and hides it when cancelled', async () => {
    const start = await server.request('account/login/start', { type: 'chatgpt' });
    const { loginId, authUrl } = start.result;
    await waitForState(page, 'credentials.loggedOut, login.chatgptPending.waiting');
    expect(await highlighted(page)).toContain('account:login.chatgptPending.waiting');
    await waitForState(page, 'open.running.waiting', 'loginAttempt');
    expect(await isShown(page, 'loginAttempt')).toBe(true);
    expect(await highlighted(page, 'loginAttempt')).toEqual([
      'loginAttempt:open',
      'loginAttempt:open.running',
      'loginAttempt:open.running.waiting',
    ]);
    // The auth URL holds the login's `state` and PKCE challenge: neither reaches the page.
    const html = await page.content();
    expect(html).not.toContain(new URL(authUrl).searchParams.get('state'));
    expect(html).not.toContain(new URL(authUrl).searchParams.get('code_challenge'));

    mkdirSync(fileURLToPath(new URL('../../.vitest-temp/', import.meta.url)), { recursive: true });
    // docs/live-page.png is committed; refresh it on purpose with UPDATE_DOCS_SCREENSHOT=1.
    const path = process.env.UPDATE_DOCS_SCREENSHOT === '1' || !existsSync(DOCS_SCREENSHOT) ? DOCS_SCREENSHOT : TEMP_SCREENSHOT;
    const png = await page.screenshot({ path, fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    await server.request('account/login/cancel', { loginId });
    await waitForState(page, 'credentials.loggedOut, login.idle');
    await waitForState(page, '(not running)', 'loginAttempt');
    expect(await isShown(page, 'loginAttempt')).toBe(false);
    expect(await highlighted(page, 'loginAttempt')).toEqual([]);
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
