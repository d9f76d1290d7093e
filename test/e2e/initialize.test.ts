import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ServerProcess, settle, tempHome } from '../helpers/server-process.js';

const CLIENT = { name: 'my-app', title: null, version: '1.0.0' };

describe('initialize (SPEC §2)', () => {
  let server: ServerProcess;
  afterEach(() => server?.kill());

  it('answers with the user agent, the absolute CODEX_HOME and the platform', async () => {
    server = ServerProcess.start({ env: { TERM: 'xterm', TERM_PROGRAM: undefined, TERM_PROGRAM_VERSION: undefined } });
    const response = await server.request('initialize', { clientInfo: CLIENT, capabilities: { experimentalApi: true, requestAttestation: false } });
    expect(Object.keys(response.result)).toEqual(['userAgent', 'codexHome', 'platformFamily', 'platformOs']);
    expect(response.result.userAgent).toMatch(/^my-app\/0\.169\.0 \(.+ \S+; (x86_64|aarch64|arm64)\) xterm \(my-app; 1\.0\.0\)$/);
    expect(response.result.codexHome).toBe(server.home);
    expect(response.result).toMatchObject({ platformFamily: 'unix', platformOs: 'linux' });
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

  it('names the terminal from TERM_PROGRAM and its version when set', async () => {
    server = ServerProcess.start({ env: { TERM: 'xterm', TERM_PROGRAM: 'vscode', TERM_PROGRAM_VERSION: '1.95.0' } });
    const response = await server.request('initialize', { clientInfo: CLIENT });
    expect(response.result.userAgent).toMatch(/\) vscode\/1\.95\.0 \(my-app; 1\.0\.0\)$/);
  });

  it('accepts a missing title and missing capabilities', async () => {
    server = ServerProcess.start();
    const response = await server.request('initialize', { clientInfo: { name: 'n', version: 'v' } });
    expect(response.result.userAgent).toMatch(/^n\/0\.169\.0 /);
  });

  it.each([
    [{}, 'Invalid request: missing field `clientInfo`'],
    [{ clientInfo: { name: 'x' } }, 'Invalid request: missing field `version`'],
    [{ clientInfo: 'x' }, 'Invalid request: invalid type: string "x", expected struct ClientInfo'],
    [{ clientInfo: CLIENT, capabilities: { experimentalApi: 'yes' } }, 'Invalid request: invalid type: string "yes", expected a boolean'],
  ])('rejects bad params %j, and a later valid initialize still works', async (params, message) => {
    server = ServerProcess.start();
    expect((await server.request('initialize', params)).error).toMatchObject({ code: -32600, message });
    await server.initialize();
  });

  it('answers known methods before initialize with Not initialized', async () => {
    server = ServerProcess.start();
    for (const [method, params] of [
      ['account/read', {}],
      ['account/logout', undefined],
      ['getAuthStatus', {}],
      ['account/login/start', { type: 'apiKey', apiKey: 'sk' }],
    ] as const) {
      const response = await server.request(method, params);
      expect(response.error).toEqual({ code: -32600, message: 'Not initialized', data: { reason: 'not_initialized', recovery: 'initialize' } });
    }
  });

  it('validates params before checking initialization', async () => {
    server = ServerProcess.start();
    const response = await server.request('account/login/start', { type: 'apiKey' });
    expect(response.error.message).toBe('Invalid request: missing field `apiKey`');
  });

  it('refuses a second initialize', async () => {
    server = ServerProcess.start();
    await server.initialize();
    const response = await server.request('initialize', { clientInfo: CLIENT });
    expect(response.error).toEqual({ code: -32600, message: 'Already initialized', data: { reason: 'already_initialized', recovery: 'none' } });
  });

  it('serves requests without the initialized notification, and accepts it when sent', async () => {
    server = ServerProcess.start();
    await server.initialize();
    expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
    server.send({ method: 'initialized' });
    expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
  });

  it('ignores notifications sent before initialize', async () => {
    server = ServerProcess.start();
    server.send({ method: 'initialized' });
    server.send({ method: 'account/logout' });
    await settle(server);
    expect(server.messages).toEqual([]);
    await server.initialize();
  });

  it('suppresses exactly the notifications named in optOutNotificationMethods', async () => {
    server = ServerProcess.start();
    await server.initialize({ capabilities: { optOutNotificationMethods: ['account/login/completed'] } });
    const from = server.messages.length;
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-1' });
    await server.notification('account/updated', from);
    expect(server.messages.slice(from).map((m) => m.method ?? m.id)).toEqual([2, 'account/updated']);
  });

  it('sends completed then updated after the apiKey response when nothing is opted out', async () => {
    server = ServerProcess.start();
    await server.initialize();
    const from = server.messages.length;
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-1' });
    await server.notification('account/updated', from);
    expect(server.messages.slice(from).map((m) => m.method ?? m.id)).toEqual([2, 'account/login/completed', 'account/updated']);
  });
});
