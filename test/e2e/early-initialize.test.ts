import { describe, expect, it } from 'vitest';
import { LOGGED_OUT, settle, useServers, type ServerProcess, type Wire } from '../helpers/server-process.js';

// The start-up stage (src/cli.ts) answers a plain first `initialize` before the
// server bundle is loaded; lines written together with it wait for the server.
// Everything here is written in ONE write, so those lines are read while the
// server does not exist yet (test/e2e/startup.test.ts shows the answer precedes
// the server bundle).

const API_KEY_AUTH = { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-early-test' };
const CLIENT = { name: 'early-host', title: null, version: '2.0.0' };
const INIT = { clientInfo: CLIENT, capabilities: { experimentalApi: true } };
const NOT_INITIALIZED = { code: -32600, message: 'Not initialized', data: { reason: 'not_initialized', recovery: 'initialize' } };
const ALREADY_INITIALIZED = { code: -32600, message: 'Already initialized', data: { reason: 'already_initialized', recovery: 'none' } };
const API_KEY_ACCOUNT = { account: { type: 'apiKey' }, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };

/** Writes all `messages` (objects, or raw lines) at once. */
function writeTogether(server: ServerProcess, messages: Array<object | string>): void {
  server.sendRaw(messages.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n') + '\n');
}

/** Responses only (messages with an id and no method), in arrival order. */
const responses = (server: ServerProcess): Wire[] => server.messages.filter((m) => 'id' in m && !('method' in m));

describe('initialize answered at start-up, with requests written right behind it', () => {
  const env = useServers();

  it('answers initialize, account/read, getAuthStatus and account/logout written together, each once and in order', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: INIT },
      { id: 2, method: 'account/read', params: {} },
      { id: 3, method: 'getAuthStatus', params: {} },
      { id: 4, method: 'account/logout' },
    ]);
    await server.response(4);
    await server.notification('account/updated');
    await settle(server);
    expect(responses(server).map((m) => m.id)).toEqual([1, 2, 3, 4]);
    const [init, read, status, logout] = responses(server);
    expect(init!.result).toMatchObject({ codexHome: server.home, platformFamily: 'unix' });
    expect(read!.result).toEqual(API_KEY_ACCOUNT);
    expect(status!.result).toEqual({ authMethod: 'apikey', authToken: null, requiresOpenaiAuth: true });
    expect(logout!.result).toEqual({});
    expect((await server.request('account/read', {}, 'after')).result).toEqual(LOGGED_OUT);
  });

  it('gives the same initialize answer as when the server handles initialize itself', async () => {
    const early = env.spawn();
    const first = await early.request('initialize', INIT);
    // An unknown method first makes the server load before initialize is read.
    const late = env.spawn({ home: early.home });
    writeTogether(late, [{ id: 'x', method: 'no/such/method' }, { id: 1, method: 'initialize', params: INIT }]);
    expect((await late.response('x')).error.code).toBe(-32600);
    expect((await late.response(1)).result).toEqual(first.result);
  });

  it('sends configWarning between the initialize answer and the answers to requests written with it', async () => {
    const server = env.spawn({ config: 'forced_login_method = "password"\n' });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: INIT },
      { id: 2, method: 'account/read', params: {} },
    ]);
    await server.response(2);
    await settle(server);
    expect(server.messages.map((m) => m.id ?? m.method)).toEqual([1, 'configWarning', 2]);
  });

  it('refuses a second initialize written together with the first, and serves what follows it', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: INIT },
      { id: 2, method: 'initialize', params: INIT },
      { id: 3, method: 'account/read', params: {} },
    ]);
    await server.response(3);
    await settle(server);
    expect(responses(server).map((m) => m.id)).toEqual([1, 2, 3]);
    expect(responses(server)[1]!.error).toEqual(ALREADY_INITIALIZED);
    expect(responses(server)[2]!.result).toEqual(API_KEY_ACCOUNT);
  });

  it('keeps the opted-out notifications of an initialize answered at start-up', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: { clientInfo: CLIENT, capabilities: { optOutNotificationMethods: ['account/updated'] } } },
      { id: 2, method: 'account/logout' },
    ]);
    await server.response(2);
    await settle(server);
    expect(server.messages.map((m) => m.id ?? m.method)).toEqual([1, 2]);
  });

  it('sends account/state/changed when the initialize answered at start-up asked for state notifications', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: { clientInfo: CLIENT, capabilities: { experimentalApi: true, stateNotifications: true } } },
      { id: 2, method: 'account/logout' },
    ]);
    const changed = await server.waitFor((m) => m.method === 'account/state/changed' && m.params.value.credentials === 'loggedOut');
    expect(changed.params.authMode).toBeNull();
  });

  it('words the error of a bad first initialize and serves a valid one written after it', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: { clientInfo: { name: 'x' } } },
      { id: 2, method: 'initialize', params: INIT },
      { id: 3, method: 'account/read', params: {} },
    ]);
    await server.response(3);
    expect(responses(server).map((m) => m.id)).toEqual([1, 2, 3]);
    expect(responses(server)[0]!.error).toEqual({
      code: -32600,
      message: 'Invalid request: missing field `version`',
      data: { reason: 'invalid_params', recovery: 'fix_request' },
    });
    expect(responses(server)[1]!.result.userAgent).toMatch(/^early-host\/0\.169\.0 /);
  });

  it('refuses an initialize with an out-of-range refresh timeout as the schema words it', async () => {
    const server = env.spawn();
    writeTogether(server, [
      { id: 1, method: 'initialize', params: { clientInfo: CLIENT, capabilities: { chatgptAuthTokensRefreshTimeoutMs: 0 } } },
      { id: 2, method: 'initialize', params: INIT },
    ]);
    expect((await server.response(1)).error.message).toBe('Invalid request: invalid value: integer `0`, expected milliseconds from 1 to 600000');
    expect((await server.response(2)).result.codexHome).toBe(server.home);
  });

  it('answers a request written before initialize with Not initialized, then initializes', async () => {
    const server = env.spawn();
    writeTogether(server, [
      { id: 1, method: 'account/read', params: {} },
      { id: 2, method: 'initialize', params: INIT },
      { id: 3, method: 'account/read', params: {} },
    ]);
    await server.response(3);
    expect(responses(server).map((m) => m.id)).toEqual([1, 2, 3]);
    expect(responses(server)[0]!.error).toEqual(NOT_INITIALIZED);
    expect(responses(server)[2]!.result).toEqual(LOGGED_OUT);
  });

  it('echoes a 64-bit initialize id digit for digit', async () => {
    const server = env.spawn();
    writeTogether(server, [`{"id":9223372036854775807,"method":"initialize","params":${JSON.stringify(INIT)}}`]);
    await server.waitFor((m) => 'result' in m);
    expect(server.rawLines[0]).toMatch(/^\{"id":9223372036854775807,"result":\{"userAgent":/);
  });

  it('exits with 0 when stdin closes right behind initialize and a request', async () => {
    const server = env.spawn({ auth: API_KEY_AUTH });
    writeTogether(server, [
      { id: 1, method: 'initialize', params: INIT },
      { id: 2, method: 'account/read', params: {} },
    ]);
    const { code } = await server.close();
    expect(code).toBe(0);
    expect(responses(server).map((m) => m.id)).toEqual([1, 2]);
    expect(responses(server)[1]!.result).toEqual(API_KEY_ACCOUNT);
  });
});
