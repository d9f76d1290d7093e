import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { LOGGED_OUT, ServerProcess, settle, type Wire } from '../helpers/server-process.js';

/** This server's own methods, in the reference's order (SPEC §1 "Unknown method"). */
const METHOD_LIST =
  '`initialize`, `account/gatewayOAuth/read`, `account/gatewayOAuth/login`, `account/gatewayOAuth/cancel`, ' +
  '`account/login/start`, `account/login/cancel`, `account/login/complete`, `account/logout`, ' +
  '`account/securitySetup/read`, `account/rateLimits/read`, `account/rateLimitResetCredit/consume`, ' +
  '`account/usage/read`, `account/workspaceMessages/read`, `account/sendAddCreditsNudgeEmail`, ' +
  '`account/read`, `getAuthStatus`, `account/state/read`';
const unknownVariant = (method: string) => `Invalid request: unknown variant \`${method}\`, expected one of ${METHOD_LIST}`;
const INVALID_PARAMS_DATA = { reason: 'invalid_params', recovery: 'fix_request' };

/**
 * One initialized, logged-out server shared by a describe block whose tests
 * change no account state (validation tables); saves a spawn per case.
 */
function useSharedServer(): () => ServerProcess {
  let shared: ServerProcess | undefined;
  beforeAll(async () => {
    shared = ServerProcess.start();
    await shared.initialize();
  });
  afterAll(() => shared?.kill());
  return () => {
    if (!shared) throw new Error('shared server not started');
    return shared;
  };
}

describe('transport (SPEC §1)', () => {
  let server: ServerProcess | undefined;
  let backend: FakeBackend | undefined;
  afterEach(async () => {
    server?.kill();
    server = undefined;
    await backend?.stop();
    backend = undefined;
  });

  async function started(options: Parameters<typeof ServerProcess.start>[0] = {}): Promise<ServerProcess> {
    server = ServerProcess.start(options);
    await server.initialize();
    return server;
  }

  let probes = 0;

  /** Waits until stderr written after offset `from` matches `pattern`. */
  async function stderrSince(s: ServerProcess, from: number, pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 5_000;
    while (!pattern.test(s.stderr.slice(from))) {
      if (Date.now() > deadline) throw new Error(`stderr never matched ${pattern}; stderr:\n${s.stderr.slice(from)}`);
      await settle(s, 10);
    }
    return s.stderr.slice(from);
  }

  /** Sends `raw`, then a valid request, and returns what arrived after `raw` (the request's response alone, when `raw` was dropped). */
  async function afterRaw(s: ServerProcess, raw: string): Promise<{ arrived: Wire[]; response: Wire }> {
    const before = s.messages.length;
    s.sendRaw(raw);
    const response = await s.request('account/read', {}, `probe-${++probes}`);
    return { arrived: s.messages.slice(before), response };
  }

  describe('framing', () => {
    it('writes one JSON object per line and never a "jsonrpc" member, in results, errors and notifications', async () => {
      const s = await started();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
      await s.notification('account/updated');
      await s.request('nope', {});
      await s.request('account/login/cancel', { loginId: 'bad' });
      const kinds = s.messages.map((m) => ('method' in m ? 'notification' : 'error' in m ? 'error' : 'result'));
      expect(new Set(kinds)).toEqual(new Set(['notification', 'error', 'result']));
      for (const m of s.messages) expect(m).not.toHaveProperty('jsonrpc');
      expect(s.badLines).toEqual([]);
    });

    it('answers with exactly id and result, or id and error', async () => {
      const s = await started();
      const ok = await s.request('account/read', {});
      const failed = await s.request('account/login/cancel', { loginId: 'bad' });
      expect(Object.keys(ok).sort()).toEqual(['id', 'result']);
      expect(Object.keys(failed).sort()).toEqual(['error', 'id']);
      expect(Object.keys(failed.error).sort()).toEqual(['code', 'data', 'message']);
    });

    it('reads several requests from one write and one request split over several writes', async () => {
      const s = await started();
      s.sendRaw('{"id":"a","method":"account/read","params":{}}\n{"id":"b","method":"getAuthStatus","params":{}}\n{"id":"c","meth');
      await s.response('b');
      s.sendRaw('od":"account/read","par');
      s.sendRaw('ams":{}}\n');
      expect((await s.response('c')).result).toEqual(LOGGED_OUT);
      expect(s.messages.slice(1).map((m) => m.id)).toEqual(['a', 'b', 'c']);
    });

    it('decodes UTF-8 split across writes and echoes non-ASCII ids unchanged', async () => {
      const s = await started();
      const line = Buffer.from(`${JSON.stringify({ id: 'ré-✓', method: 'account/read', params: {} })}\n`);
      const cut = line.indexOf(0xe2) + 1; // inside the three-byte ✓
      s.child.stdin.write(line.subarray(0, cut));
      await settle(s, 20);
      s.child.stdin.write(line.subarray(cut));
      expect((await s.response('ré-✓')).result).toEqual(LOGGED_OUT);
    });

    it('accepts CRLF line ends', async () => {
      const s = await started();
      s.sendRaw('{"id":"crlf","method":"account/read","params":{}}\r\n');
      expect((await s.response('crlf')).result).toEqual(LOGGED_OUT);
    });
  });

  describe('ids', () => {
    const shared = useSharedServer();

    it.each([[''], ['43'], [-7], [0], [2 ** 53 - 1], ['ré ✓']])('echoes the id %j unchanged on a result', async (id) => {
      const s = shared();
      const response = await s.request('account/read', {}, id);
      expect(response.id).toStrictEqual(id);
      expect(response.result).toEqual(LOGGED_OUT);
    });

    it('echoes ids unchanged on errors too', async () => {
      server = ServerProcess.start();
      expect(await server.request('account/read', {}, '')).toMatchObject({ id: '', error: { message: 'Not initialized' } });
      expect(await server.request('nope', {}, -7)).toMatchObject({ id: -7, error: { code: -32600 } });
      expect(await server.request('initialize', {}, '43')).toMatchObject({ id: '43', error: { data: INVALID_PARAMS_DATA } });
    });

    it('answers each of two in-flight requests that share an id', async () => {
      const s = await started();
      s.sendRaw(`${JSON.stringify({ id: 9, method: 'account/read', params: {} })}\n${JSON.stringify({ id: 9, method: 'getAuthStatus', params: {} })}\n`);
      await s.waitFor(() => s.messages.filter((m) => m.id === 9).length === 2);
      const answers = s.messages.filter((m) => m.id === 9);
      expect(answers.map((m) => Object.keys(m.result).sort())).toEqual([
        ['account', 'requiresOpenaiAuth', 'userId', 'workspaceRouting'],
        ['authMethod', 'authToken', 'requiresOpenaiAuth'],
      ]);
    });

    it('answers a failing and a succeeding request that share an id, each once', async () => {
      const s = await started();
      s.sendRaw(`${JSON.stringify({ id: 'dup', method: 'nope' })}\n${JSON.stringify({ id: 'dup', method: 'account/read', params: {} })}\n`);
      await s.waitFor(() => s.messages.filter((m) => m.id === 'dup').length === 2);
      await settle(s, 50);
      const answers = s.messages.filter((m) => m.id === 'dup');
      expect(answers).toHaveLength(2);
      expect(answers.map((m) => ('error' in m ? 'error' : 'result')).sort()).toEqual(['error', 'result']);
    });
  });

  describe('invalid lines', () => {
    const shared = useSharedServer();

    it.each([
      ['a null id', '{"id":null,"method":"account/read","params":{}}'],
      ['a fractional id', '{"id":1.5,"method":"account/read","params":{}}'],
      ['an object id', '{"id":{"a":1},"method":"account/read","params":{}}'],
      ['an array id', '{"id":[1],"method":"account/read","params":{}}'],
      ['a boolean id', '{"id":true,"method":"account/read","params":{}}'],
      ['malformed JSON with a readable id', '{"id":5,"method":"account/read",'],
      ['a blank line', ''],
      ['a whitespace-only line', ' \t '],
      ['an empty array', '[]'],
      ['a number', '42'],
      ['a string', '"str"'],
      ['null', 'null'],
      ['an empty object', '{}'],
      ['a batch array', '[{"id":6,"method":"account/read","params":{}}]'],
      ['a non-string method', '{"id":7,"method":5}'],
      ['an id without method, result or error', '{"id":8,"params":{}}'],
    ])('drops %s with a stderr line and no reply, and keeps serving', async (_name, line) => {
      const s = shared();
      const stderrBefore = s.stderr.length;
      const { arrived, response } = await afterRaw(s, `${line}\n`);
      expect(arrived).toEqual([response]);
      expect(response.result).toEqual(LOGGED_OUT);
      expect(await stderrSince(s, stderrBefore, /dropping/)).toMatch(/dropping/);
    });

    it('never logs the content of a dropped line', async () => {
      const s = await started();
      s.sendRaw('{"apiKey":"sk-very-secret-value", oops}\n');
      await s.request('account/read', {});
      await s.stderrMatching(/dropping input line \(\d+ chars\): malformed JSON/);
      expect(s.stderr).not.toContain('sk-very-secret-value');
    });

    it('drops a line longer than 16 MiB, then serves the request on the next line of the same write', async () => {
      const s = await started();
      const huge = `{"id":"huge","method":"account/read","params":{"pad":"${'x'.repeat(17 * 1024 * 1024)}"}}\n`;
      s.sendRaw(`${huge}{"id":"next","method":"account/read","params":{}}\n`);
      expect((await s.response('next', 10_000)).result).toEqual(LOGGED_OUT);
      const { arrived, response } = await afterRaw(s, '');
      expect(arrived).toEqual([response]);
      expect(s.messages.some((m) => m.id === 'huge')).toBe(false);
      await s.stderrMatching(/longer than 16777216 bytes/);
    });

    it('serves a line just under the 16 MiB cap', async () => {
      const s = await started();
      s.send({ id: 'big', method: 'account/read', params: { pad: 'x'.repeat(15 * 1024 * 1024) } });
      expect((await s.response('big', 10_000)).result).toEqual(LOGGED_OUT);
    });
  });

  describe('lenient input', () => {
    const shared = useSharedServer();

    it.each([['2.0'], ['1.0'], [2], [undefined]])('ignores a "jsonrpc" value of %j on input', async (jsonrpc) => {
      const s = shared();
      const id = `jsonrpc-${String(jsonrpc)}`;
      s.send({ jsonrpc, id, method: 'account/read', params: {} });
      expect((await s.response(id)).result).toEqual(LOGGED_OUT);
    });

    it('ignores unknown top-level members and unknown params fields', async () => {
      const s = await started();
      s.send({ id: 1000, method: 'account/login/start', extra: true, result: 1, params: { type: 'apiKey', apiKey: 'sk-1', color: 'red' } });
      expect((await s.response(1000)).result).toEqual({ type: 'apiKey' });
    });

    it('ignores unknown fields in initialize params and capabilities', async () => {
      server = ServerProcess.start();
      const response = await server.request('initialize', {
        clientInfo: { name: 'n', version: 'v', extra: 1 },
        capabilities: { experimentalApi: true, future: 'x' },
        other: [],
      });
      expect(response.result.userAgent).toMatch(/^n\/0\.169\.0 /);
    });

    it('ignores unknown notifications and stray responses to requests it never sent', async () => {
      const s = await started();
      s.send({ method: 'something/else', params: { a: 1 } });
      s.send({ method: 'account/read', params: {} });
      s.send({ id: 77, result: { accessToken: 'x' } });
      s.send({ id: 'x', error: { code: 1, message: 'no' } });
      const { arrived, response } = await afterRaw(s, '');
      expect(arrived).toEqual([response]);
    });
  });

  describe('unknown methods', () => {
    const shared = useSharedServer();

    it.each([
      ['before initialize, with params', false, { x: 1 }],
      ['before initialize, without params', false, undefined],
      ['after initialize, with params', true, {}],
      ['after initialize, without params', true, undefined],
    ])('answers an unknown method %s with the list of implemented methods', async (_name, init, params) => {
      server = ServerProcess.start();
      if (init) await server.initialize();
      const response = await server.request('thread/start', params);
      expect(response.error).toEqual({
        code: -32600,
        message: unknownVariant('thread/start'),
        data: { reason: 'unknown_method', recovery: 'fix_request' },
      });
    });

    it.each([['server/diagnostics'], ['loginApiKey'], ['account/login'], ['Account/Read'], ['']])(
      'treats %j, which this server does not implement, as an unknown variant',
      async (method) => {
        expect((await shared().request(method, {})).error.message).toBe(unknownVariant(method));
      },
    );

    it('reports an unknown method before looking at its params', async () => {
      expect((await shared().request('thread/start', 'not an object')).error.message).toBe(unknownVariant('thread/start'));
    });
  });

  describe('invalid params', () => {
    const shared = useSharedServer();

    it.each([
      ['account/login/start', { type: 'apiKey' }, 'Invalid request: missing field `apiKey`'],
      ['account/login/start', { type: 'apiKey', apiKey: 123 }, 'Invalid request: invalid type: integer `123`, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: -4 }, 'Invalid request: invalid type: integer `-4`, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: null }, 'Invalid request: invalid type: null, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: 1.5 }, 'Invalid request: invalid type: floating point `1.5`, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: {} }, 'Invalid request: invalid type: map, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: [] }, 'Invalid request: invalid type: sequence, expected a string'],
      ['account/login/start', { type: 'apiKey', apiKey: true }, 'Invalid request: invalid type: boolean `true`, expected a string'],
      ['account/read', { refreshToken: 'yes' }, 'Invalid request: invalid type: string "yes", expected a boolean'],
      ['account/read', { refreshToken: 1 }, 'Invalid request: invalid type: integer `1`, expected a boolean'],
      ['account/read', 'x', 'Invalid request: invalid type: string "x", expected struct GetAccountParams'],
      ['getAuthStatus', { includeToken: 'no' }, 'Invalid request: invalid type: string "no", expected a boolean'],
      ['account/rateLimits/read', { supportsLunaReserve: 0 }, 'Invalid request: invalid type: integer `0`, expected a boolean'],
      ['account/login/start', {}, 'Invalid request: missing field `type`'],
      [
        'account/login/start',
        { type: 'amazonBedrock' },
        'Invalid request: unknown variant `amazonBedrock`, expected one of `apiKey`, `chatgpt`, `chatgptDeviceCode`, `chatgptAuthTokens`',
      ],
      ['account/login/start', { type: 'chatgpt', appBrand: 'x' }, 'Invalid request: unknown variant `x`, expected `codex` or `chatgpt`'],
      ['account/login/start', { type: 'chatgptAuthTokens', chatgptAccountId: 'ws-1' }, 'Invalid request: missing field `accessToken`'],
      ['account/login/cancel', {}, 'Invalid request: missing field `loginId`'],
      ['account/login/cancel', { loginId: 5 }, 'Invalid request: invalid type: integer `5`, expected a string'],
    ])('answers %s with params %j with the serde message', async (method, params, message) => {
      const response = await shared().request(method, params);
      expect(response.error).toEqual({ code: -32600, message, data: INVALID_PARAMS_DATA });
    });

    it('leaves the account untouched when login params are invalid', async () => {
      const s = await started();
      const from = s.messages.length;
      await s.request('account/login/start', { type: 'apiKey', apiKey: 1 });
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      expect(s.notifications().slice(from)).toEqual([]);
    });
  });

  describe('params presence', () => {
    it.each([['initialize'], ['account/read'], ['account/login/start'], ['account/login/cancel'], ['getAuthStatus']])(
      'requires params for %s, absent or null',
      async (method) => {
        server = ServerProcess.start();
        if (method !== 'initialize') await server.initialize();
        for (const params of [undefined, null]) {
          const response = await server.request(method, params);
          expect(response.error).toEqual({ code: -32600, message: 'Invalid request: missing field `params`', data: INVALID_PARAMS_DATA });
        }
      },
    );

    it('takes [] as empty params for account/read', async () => {
      const s = await started();
      expect((await s.request('account/read', [])).result).toEqual(LOGGED_OUT);
    });

    it('accepts account/logout with no params or with {}', async () => {
      const s = await started();
      expect((await s.request('account/logout')).result).toEqual({});
      expect((await s.request('account/logout', {})).result).toEqual({});
    });

    it('accepts account/rateLimits/read without params, going on to the account check', async () => {
      const s = await started();
      for (const params of [undefined, {}]) {
        expect((await s.request('account/rateLimits/read', params)).error).toEqual({
          code: -32600,
          message: 'codex account authentication required to read rate limits',
          data: { reason: 'auth_required', recovery: 'login' },
        });
      }
    });
  });

  describe('notifications', () => {
    it('puts emittedAtMs, the current unix time in ms, beside method and params on every notification', async () => {
      const s = await started();
      const t0 = Date.now();
      const from = s.messages.length;
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-1' });
      await s.notification('account/updated', from);
      await s.request('account/logout');
      await s.notification('account/updated', s.messages.length - 1);
      const notes = s.notifications();
      expect(notes.map((n) => n.method)).toEqual(['account/login/completed', 'account/updated', 'account/updated']);
      for (const note of notes) {
        expect(Object.keys(note)).toEqual(['method', 'params', 'emittedAtMs']);
        expect(Number.isInteger(note.emittedAtMs)).toBe(true);
        expect(note.emittedAtMs).toBeGreaterThanOrEqual(t0 - 5);
        expect(note.emittedAtMs).toBeLessThanOrEqual(Date.now() + 5);
      }
    });
  });

  describe('errors', () => {
    it('gives every error a data member with a reason and a recovery', async () => {
      server = ServerProcess.start();
      const errors = [
        await server.request('account/read', {}),
        await server.request('nope'),
        await server.request('initialize', {}),
      ];
      await server.initialize();
      errors.push(
        await server.request('initialize', { clientInfo: { name: 'a', version: 'b' } }),
        await server.request('account/login/cancel', { loginId: 'not-a-uuid' }),
        await server.request('account/rateLimits/read', {}),
        await server.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: 'nope', chatgptAccountId: 'ws-1' }),
      );
      expect(errors.map((r) => r.error.code)).toEqual([-32600, -32600, -32600, -32600, -32600, -32600, -32603]);
      for (const { error } of errors) {
        expect(Object.keys(error.data).sort()).toEqual(['reason', 'recovery']);
        expect(error.data.reason).toMatch(/^[a-z_]+$/);
        expect(error.data.recovery).toMatch(/^[a-z_]+$/);
      }
    });
  });

  describe('stdin EOF', () => {
    it('exits with code 0 promptly when stdin closes', async () => {
      const s = await started();
      const t0 = Date.now();
      expect(await s.close()).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(1500);
    });

    it('exits with code 0 when stdin closes before initialize', async () => {
      server = ServerProcess.start();
      expect(await server.close()).toEqual({ code: 0, signal: null });
      expect(server.messages).toEqual([]);
    });

    it('answers requests already received before exiting on EOF', async () => {
      server = ServerProcess.start();
      server.sendRaw(
        `${JSON.stringify({ id: 1, method: 'initialize', params: { clientInfo: { name: 'h', version: '1' } } })}\n` +
          `${JSON.stringify({ id: 2, method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-eof' } })}\n`,
      );
      const { code } = await server.close();
      expect(code).toBe(0);
      expect(server.messages.map((m) => m.id ?? m.method)).toEqual([1, 2, 'account/login/completed', 'account/updated']);
    });

    it('exits with code 0 promptly while a login is still waiting on the network', async () => {
      backend = await FakeBackend.start();
      backend.on('/backend-api/wham/accounts/check', () => new Promise(() => {}));
      const s = await started({ config: `chatgpt_base_url = "${backend.baseUrl}"\n` });
      const login = await s.request('account/login/start', {
        type: 'chatgptAuthTokens',
        accessToken: chatgptJwt({ accountId: 'ws-1' }),
        chatgptAccountId: 'ws-1',
      });
      expect(login.result).toEqual({ type: 'chatgptAuthTokens' });
      while (backend.requestsTo('/backend-api/wham/accounts/check').length === 0) await settle(s, 10);
      const t0 = Date.now();
      expect(await s.close()).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(s.notifications('account/login/completed')).toEqual([]);
    });
  });

  describe('ordering (unconfirmed in SPEC §1)', () => {
    it('answers reads at once while a login still waits on the network, its notifications following when it ends', async () => {
      backend = await FakeBackend.start();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      backend.on('/backend-api/wham/accounts/check', async () => {
        await gate;
        return accountsCheck([{ id: 'ws-1', name: 'Acme' }]);
      });
      const s = await started({ config: `chatgpt_base_url = "${backend.baseUrl}"\n` });
      const from = s.messages.length;
      s.send({
        id: 'login',
        method: 'account/login/start',
        params: { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1', planType: 'plus' }), chatgptAccountId: 'ws-1' },
      });
      await s.response('login');
      expect((await s.request('getAuthStatus', {}, 'status')).result.authMethod).toBe('chatgptAuthTokens');
      expect((await s.request('nope', {}, 'unknown')).error.code).toBe(-32600);
      await settle(s, 100);
      expect(s.messages.slice(from).map((m) => m.id ?? m.method)).toEqual(['login', 'status', 'unknown']);
      release();
      await s.notification('account/updated', from);
      expect(s.messages.slice(from).map((m) => m.id ?? m.method)).toEqual([
        'login',
        'status',
        'unknown',
        'account/login/completed',
        'account/updated',
      ]);
    });
  });
});
