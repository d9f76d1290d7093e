import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, ServerProcess, settle, tempHome } from '../helpers/server-process.js';

const CLIENT = { name: 'my-app', title: null, version: '1.0.0' };
const NOT_INITIALIZED = { code: -32600, message: 'Not initialized', data: { reason: 'not_initialized', recovery: 'initialize' } };
const ALREADY_INITIALIZED = { code: -32600, message: 'Already initialized', data: { reason: 'already_initialized', recovery: 'none' } };
const INVALID_PARAMS_DATA = { reason: 'invalid_params', recovery: 'fix_request' };
const NO_TERMINAL_PROGRAM = { TERM: 'xterm', TERM_PROGRAM: undefined, TERM_PROGRAM_VERSION: undefined };

/** `uname -m` spelling of this machine's architecture, as the user agent names it. */
const ARCH = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? (process.platform === 'darwin' ? 'arm64' : 'aarch64') : process.arch;
const PLATFORM_OS = process.platform === 'darwin' ? 'macos' : process.platform === 'win32' ? 'windows' : 'linux';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A numeric VERSION_ID in /etc/os-release, which the user agent pads to three parts. */
function numericOsVersion(): string | null {
  if (!existsSync('/etc/os-release')) return null;
  const m = /^VERSION_ID="?([\d.]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  return m?.[1] ?? null;
}

describe('initialize (SPEC §2)', () => {
  let server: ServerProcess | undefined;
  afterEach(() => {
    server?.kill();
    server = undefined;
  });

  describe('result', () => {
    it('answers with exactly userAgent, codexHome, platformFamily and platformOs', async () => {
      server = ServerProcess.start({ env: NO_TERMINAL_PROGRAM });
      const response = await server.request('initialize', { clientInfo: CLIENT, capabilities: { experimentalApi: true, requestAttestation: false } });
      expect(Object.keys(response.result)).toEqual(['userAgent', 'codexHome', 'platformFamily', 'platformOs']);
      expect(response.result).toMatchObject({ codexHome: server.home, platformFamily: 'unix', platformOs: PLATFORM_OS });
    });

    it('formats the user agent as name/0.169.0 (os version; arch) TERM (name; version)', async () => {
      server = ServerProcess.start({ env: NO_TERMINAL_PROGRAM });
      const { result } = await server.initialize();
      expect(result.userAgent).toMatch(new RegExp(`^test-host/0\\.169\\.0 \\(\\S.* \\S+; ${escape(ARCH)}\\) xterm \\(test-host; 1\\.0\\.0\\)$`));
    });

    it('pads a numeric OS version to three parts in the user agent', async () => {
      const version = numericOsVersion();
      server = ServerProcess.start({ env: NO_TERMINAL_PROGRAM });
      const { result } = await server.initialize();
      const osVersion = /^test-host\/0\.169\.0 \([^;]* (\S+); /.exec(result.userAgent)?.[1];
      if (version === null) {
        expect(osVersion).toBeTruthy();
      } else {
        const padded = [...version.split('.').map(Number), 0, 0].slice(0, 3).join('.');
        expect(osVersion).toBe(padded);
      }
    });

    it('names the terminal from TERM_PROGRAM and its version, ahead of TERM', async () => {
      server = ServerProcess.start({ env: { TERM: 'xterm', TERM_PROGRAM: 'vscode', TERM_PROGRAM_VERSION: '1.95.0' } });
      const response = await server.request('initialize', { clientInfo: CLIENT });
      expect(response.result.userAgent).toMatch(/\) vscode\/1\.95\.0 \(my-app; 1\.0\.0\)$/);
    });

    it('names the terminal from TERM_PROGRAM alone when it has no version', async () => {
      server = ServerProcess.start({ env: { TERM: 'xterm', TERM_PROGRAM: 'iTerm.app', TERM_PROGRAM_VERSION: undefined } });
      const response = await server.request('initialize', { clientInfo: CLIENT });
      expect(response.result.userAgent).toMatch(/\) iTerm\.app \(my-app; 1\.0\.0\)$/);
    });

    it('reports a relative CODEX_HOME as an absolute path', async () => {
      const home = tempHome();
      server = ServerProcess.start({ home, env: { CODEX_HOME: relative(process.cwd(), home) } });
      const response = await server.request('initialize', { clientInfo: CLIENT });
      expect(response.result.codexHome).toBe(home);
    });

    it('defaults codexHome to ~/.codex when CODEX_HOME is unset', async () => {
      const home = tempHome();
      server = ServerProcess.start({ env: { CODEX_HOME: undefined, HOME: home } });
      const response = await server.request('initialize', { clientInfo: CLIENT });
      expect(response.result.codexHome).toBe(join(home, '.codex'));
    });

    it('accepts app-server as first argument, standing in for codex app-server', async () => {
      server = ServerProcess.start({ args: ['app-server'] });
      expect((await server.request('initialize', { clientInfo: CLIENT })).result.platformFamily).toBe('unix');
    });

    it('prints usage for --help and exits without serving', () => {
      const out = execFileSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
      expect(out).toMatch(/^Usage: codex-account-server \[app-server\]/);
    });
  });

  describe('params', () => {
    it.each([
      ['a missing title and missing capabilities', { clientInfo: { name: 'n', version: 'v' } }],
      ['a null title and null capabilities', { clientInfo: { name: 'n', title: null, version: 'v' }, capabilities: null }],
      ['a string title and empty capabilities', { clientInfo: { name: 'n', title: 'N', version: 'v' }, capabilities: {} }],
    ])('accepts %s', async (_name, params) => {
      server = ServerProcess.start();
      const response = await server.request('initialize', params);
      expect(response.result.userAgent).toMatch(/^n\/0\.169\.0 .* \(n; v\)$/);
    });

    it.each([
      [{}, 'Invalid request: missing field `clientInfo`'],
      [{ clientInfo: { name: 'x' } }, 'Invalid request: missing field `version`'],
      [{ clientInfo: { version: '1' } }, 'Invalid request: missing field `name`'],
      [{ clientInfo: { name: 'x', version: 1 } }, 'Invalid request: invalid type: integer `1`, expected a string'],
      [{ clientInfo: 'x' }, 'Invalid request: invalid type: string "x", expected struct ClientInfo'],
      [{ clientInfo: CLIENT, capabilities: { experimentalApi: 'yes' } }, 'Invalid request: invalid type: string "yes", expected a boolean'],
      [{ clientInfo: CLIENT, capabilities: { optOutNotificationMethods: 'x' } }, 'Invalid request: invalid type: string "x", expected a sequence'],
      [{ clientInfo: CLIENT, capabilities: { optOutNotificationMethods: [5] } }, 'Invalid request: invalid type: integer `5`, expected a string'],
      [null, 'Invalid request: missing field `params`'],
    ])('rejects params %j, and a later valid initialize still works', async (params, message) => {
      server = ServerProcess.start();
      expect((await server.request('initialize', params)).error).toEqual({ code: -32600, message, data: INVALID_PARAMS_DATA });
      await server.initialize();
      expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
    });
  });

  describe('before initialize', () => {
    it.each([
      ['account/read', {}],
      ['account/logout', undefined],
      ['getAuthStatus', {}],
      ['account/login/start', { type: 'apiKey', apiKey: 'sk' }],
      ['account/login/cancel', { loginId: '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a' }],
      ['account/rateLimits/read', {}],
    ])('answers %s with Not initialized', async (method, params) => {
      server = ServerProcess.start();
      expect((await server.request(method, params)).error).toEqual(NOT_INITIALIZED);
    });

    it('has no side effects for a request refused as Not initialized', async () => {
      server = ServerProcess.start();
      await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-early' });
      await settle(server);
      expect(server.notifications()).toEqual([]);
      expect(existsSync(join(server.home, 'auth.json'))).toBe(false);
      await server.initialize();
      expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
    });

    it('answers an unknown method with the unknown-variant error, not Not initialized', async () => {
      server = ServerProcess.start();
      expect((await server.request('thread/start', {})).error).toMatchObject({
        code: -32600,
        message: expect.stringMatching(/^Invalid request: unknown variant `thread\/start`, expected one of `initialize`, /),
      });
    });

    it('validates params before checking initialization', async () => {
      server = ServerProcess.start();
      expect((await server.request('account/login/start', { type: 'apiKey' })).error).toEqual({
        code: -32600,
        message: 'Invalid request: missing field `apiKey`',
        data: INVALID_PARAMS_DATA,
      });
      expect((await server.request('account/read')).error.message).toBe('Invalid request: missing field `params`');
    });

    it('ignores notifications sent before initialize', async () => {
      server = ServerProcess.start();
      server.send({ method: 'initialized' });
      server.send({ method: 'account/logout' });
      server.send({ method: 'whatever', params: {} });
      await settle(server);
      expect(server.messages).toEqual([]);
      await server.initialize();
      expect(server.messages).toHaveLength(1);
    });

    it('is not initialized by an early initialized notification', async () => {
      server = ServerProcess.start();
      server.send({ method: 'initialized' });
      expect((await server.request('account/read', {})).error).toEqual(NOT_INITIALIZED);
    });

    it('is not initialized by an initialize sent as a notification', async () => {
      server = ServerProcess.start();
      server.send({ method: 'initialize', params: { clientInfo: CLIENT } });
      expect((await server.request('account/read', {})).error).toEqual(NOT_INITIALIZED);
      await server.initialize();
    });
  });

  describe('after initialize', () => {
    it('refuses a second initialize', async () => {
      server = ServerProcess.start();
      await server.initialize();
      expect((await server.request('initialize', { clientInfo: CLIENT })).error).toEqual(ALREADY_INITIALIZED);
    });

    it('validates the params of a second initialize before refusing it', async () => {
      server = ServerProcess.start();
      await server.initialize();
      expect((await server.request('initialize', {})).error.message).toBe('Invalid request: missing field `clientInfo`');
    });

    it('keeps the first session capabilities after a refused second initialize', async () => {
      server = ServerProcess.start();
      await server.initialize({ capabilities: { optOutNotificationMethods: ['account/updated'] } });
      expect((await server.request('initialize', { clientInfo: CLIENT, capabilities: {} })).error).toEqual(ALREADY_INITIALIZED);
      const from = server.messages.length;
      await server.request('account/logout', undefined, 'logout');
      await settle(server);
      expect(server.messages.slice(from).map((m) => m.id ?? m.method)).toEqual(['logout']);
    });

    it('serves requests without the initialized notification, and accepts it when sent', async () => {
      server = ServerProcess.start();
      await server.initialize();
      expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
      server.send({ method: 'initialized' });
      expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
    });

    it('treats absent capabilities as experimentalApi off', async () => {
      server = ServerProcess.start();
      await server.request('initialize', { clientInfo: CLIENT });
      const response = await server.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: 'x', chatgptAccountId: 'ws-1' });
      expect(response.error.message).toBe('account/login/start.chatgptAuthTokens requires experimentalApi capability');
    });
  });

  describe('optOutNotificationMethods', () => {
    async function apiKeyLogin(optOut?: string[]): Promise<Array<unknown>> {
      server = ServerProcess.start();
      await server.initialize(optOut ? { capabilities: { optOutNotificationMethods: optOut } } : {});
      const from = server.messages.length;
      await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-1' }, 'login');
      if (!optOut?.includes('account/updated')) await server.notification('account/updated', from);
      else await server.notification('account/login/completed', from);
      await settle(server, 50);
      return server.messages.slice(from).map((m) => m.id ?? m.method);
    }

    it('sends the apiKey response, then completed, then updated when nothing is opted out', async () => {
      expect(await apiKeyLogin()).toEqual(['login', 'account/login/completed', 'account/updated']);
    });

    it('suppresses account/login/completed alone when it is opted out', async () => {
      expect(await apiKeyLogin(['account/login/completed'])).toEqual(['login', 'account/updated']);
    });

    it('suppresses account/updated alone when it is opted out', async () => {
      expect(await apiKeyLogin(['account/updated'])).toEqual(['login', 'account/login/completed']);
    });

    it('suppresses nothing for names that only resemble notification methods', async () => {
      expect(await apiKeyLogin(['account/Updated', 'account/', 'account/login', 'account/updated '])).toEqual([
        'login',
        'account/login/completed',
        'account/updated',
      ]);
    });

    it('suppresses nothing for an empty list', async () => {
      expect(await apiKeyLogin([])).toEqual(['login', 'account/login/completed', 'account/updated']);
    });

    it('suppresses the account/updated that follows a logout', async () => {
      server = ServerProcess.start();
      await server.initialize({ capabilities: { optOutNotificationMethods: ['account/updated'] } });
      const from = server.messages.length;
      await server.request('account/logout', undefined, 'logout');
      await settle(server);
      expect(server.messages.slice(from).map((m) => m.id ?? m.method)).toEqual(['logout']);
    });
  });
});
