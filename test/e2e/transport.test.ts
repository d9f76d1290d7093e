import { afterEach, describe, expect, it } from 'vitest';
import { ServerProcess, settle } from '../helpers/server-process.js';

const METHOD_LIST =
  '`initialize`, `account/login/start`, `account/login/cancel`, `account/logout`, `account/rateLimits/read`, `account/read`, `getAuthStatus`';

describe('transport (SPEC §1)', () => {
  let server: ServerProcess;
  afterEach(() => server?.kill());

  async function started(): Promise<ServerProcess> {
    server = ServerProcess.start();
    await server.initialize();
    return server;
  }

  it('never emits a "jsonrpc" member', async () => {
    const s = await started();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    await s.notification('account/updated');
    await s.request('nope', {});
    expect(s.messages.length).toBeGreaterThanOrEqual(5);
    for (const m of s.messages) expect(m).not.toHaveProperty('jsonrpc');
    expect(s.badLines).toEqual([]);
  });

  it('echoes string and integer ids exactly as given', async () => {
    const s = await started();
    for (const id of ['', '43', -7, 2 ** 53 - 1, 0]) {
      const response = await s.request('account/read', {}, id);
      expect(response.id).toStrictEqual(id);
      expect(response.result).toBeDefined();
    }
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

  it.each([
    ['a null id', '{"id":null,"method":"account/read","params":{}}'],
    ['a fractional id', '{"id":1.5,"method":"account/read","params":{}}'],
    ['an object id', '{"id":{"a":1},"method":"account/read","params":{}}'],
    ['malformed JSON', '{"id":5,"method":"account/read",'],
    ['a blank line', ''],
    ['an empty array', '[]'],
    ['a number', '42'],
    ['a string', '"str"'],
    ['null', 'null'],
    ['an empty object', '{}'],
    ['a batch array', '[{"id":6,"method":"account/read","params":{}}]'],
    ['a non-string method', '{"id":7,"method":5}'],
  ])('drops %s with a stderr line and no reply, and keeps serving', async (_name, line) => {
    const s = await started();
    const before = s.messages.length;
    const stderrBefore = s.stderr.length;
    s.sendRaw(`${line}\n`);
    const response = await s.request('account/read', {}, 'after');
    expect(s.messages.slice(before)).toEqual([response]);
    if (line !== '') {
      await s.stderrMatching(/dropping/);
      expect(s.stderr.slice(stderrBefore)).toMatch(/dropping/);
    }
  });

  it('never logs the content of a dropped line', async () => {
    const s = await started();
    s.sendRaw('{"apiKey":"sk-very-secret-value", oops}\n');
    await s.request('account/read', {});
    await s.stderrMatching(/dropping malformed JSON line/);
    expect(s.stderr).not.toContain('sk-very-secret-value');
  });

  it('ignores any "jsonrpc" value on input', async () => {
    const s = await started();
    for (const [i, jsonrpc] of ['2.0', '1.0', 2, undefined].entries()) {
      s.send({ jsonrpc, id: `j${i}`, method: 'account/read', params: {} });
      expect((await s.response(`j${i}`)).result).toMatchObject({ account: null });
    }
  });

  it('ignores unknown top-level members and unknown params fields', async () => {
    const s = await started();
    s.send({ id: 1000, method: 'account/login/start', extra: true, params: { type: 'apiKey', apiKey: 'sk-1', color: 'red' } });
    expect((await s.response(1000)).result).toEqual({ type: 'apiKey' });
  });

  it('answers an unknown method with the list of implemented methods, before initialize too', async () => {
    server = ServerProcess.start();
    const before = await server.request('thread/start', { x: 1 });
    expect(before.error).toEqual({
      code: -32600,
      message: `Invalid request: unknown variant \`thread/start\`, expected one of ${METHOD_LIST}`,
      data: { reason: 'unknown_method', recovery: 'fix_request' },
    });
    await server.initialize();
    const after = await server.request('account/login');
    expect(after.error.message).toBe(`Invalid request: unknown variant \`account/login\`, expected one of ${METHOD_LIST}`);
  });

  it.each([
    ['account/login/start', { type: 'apiKey' }, 'Invalid request: missing field `apiKey`'],
    ['account/login/start', { type: 'apiKey', apiKey: 123 }, 'Invalid request: invalid type: integer `123`, expected a string'],
    ['account/login/start', { type: 'apiKey', apiKey: null }, 'Invalid request: invalid type: null, expected a string'],
    ['account/login/start', { type: 'apiKey', apiKey: 1.5 }, 'Invalid request: invalid type: floating point `1.5`, expected a string'],
    ['account/login/start', { type: 'apiKey', apiKey: {} }, 'Invalid request: invalid type: map, expected a string'],
    ['account/login/start', { type: 'apiKey', apiKey: [] }, 'Invalid request: invalid type: sequence, expected a string'],
    ['account/login/start', { type: 'apiKey', apiKey: true }, 'Invalid request: invalid type: boolean `true`, expected a string'],
    ['account/read', { refreshToken: 'yes' }, 'Invalid request: invalid type: string "yes", expected a boolean'],
    ['account/login/start', {}, 'Invalid request: missing field `type`'],
    [
      'account/login/start',
      { type: 'amazonBedrock' },
      'Invalid request: unknown variant `amazonBedrock`, expected one of `apiKey`, `chatgpt`, `chatgptDeviceCode`, `chatgptAuthTokens`',
    ],
    ['account/login/start', { type: 'chatgpt', appBrand: 'x' }, 'Invalid request: unknown variant `x`, expected `codex` or `chatgpt`'],
    ['account/login/cancel', {}, 'Invalid request: missing field `loginId`'],
  ])('answers %s with bad params %j with the serde message', async (method, params, message) => {
    const s = await started();
    const response = await s.request(method, params);
    expect(response.error).toEqual({ code: -32600, message, data: { reason: 'invalid_params', recovery: 'fix_request' } });
  });

  it.each(['initialize', 'account/read', 'account/login/start', 'account/login/cancel', 'getAuthStatus'])(
    'requires params for %s (absent or null)',
    async (method) => {
      server = ServerProcess.start();
      if (method !== 'initialize') await server.initialize();
      for (const params of [undefined, null]) {
        const response = await server.request(method, params === null ? null : undefined);
        expect(response.error).toMatchObject({ code: -32600, message: 'Invalid request: missing field `params`' });
      }
    },
  );

  it('takes [] as empty params for account/read', async () => {
    const s = await started();
    expect((await s.request('account/read', [])).result).toMatchObject({ account: null });
  });

  it('accepts account/logout with no params or with {}', async () => {
    const s = await started();
    expect((await s.request('account/logout')).result).toEqual({});
    expect((await s.request('account/logout', {})).result).toEqual({});
  });

  it('puts emittedAtMs beside method and params on every notification', async () => {
    const s = await started();
    const t0 = Date.now();
    await s.request('account/logout');
    const note = await s.notification('account/updated');
    expect(Object.keys(note)).toEqual(['method', 'params', 'emittedAtMs']);
    expect(note.emittedAtMs).toBeGreaterThanOrEqual(t0 - 5);
    expect(note.emittedAtMs).toBeLessThanOrEqual(Date.now() + 5);
  });

  it('ignores unknown notifications and stray responses', async () => {
    const s = await started();
    const before = s.messages.length;
    s.send({ method: 'something/else', params: { a: 1 } });
    s.send({ id: 77, result: { accessToken: 'x' } });
    s.send({ id: 78, error: { code: 1, message: 'no' } });
    const response = await s.request('account/read', {});
    expect(s.messages.slice(before)).toEqual([response]);
  });

  it('exits with code 0 promptly when stdin closes', async () => {
    const s = await started();
    const t0 = Date.now();
    expect(await s.close()).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(2000);
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

  it('drops a line longer than 16 MiB and keeps serving', async () => {
    const s = await started();
    const huge = `{"id":1,"method":"account/read","params":{"pad":"${'x'.repeat(17 * 1024 * 1024)}"}}\n`;
    s.sendRaw(huge);
    const response = await s.request('account/read', {}, 'after-huge');
    expect(response.result).toMatchObject({ account: null });
    expect(s.messages.filter((m) => m.id === 1)).toHaveLength(1); // only initialize's
    await s.stderrMatching(/longer than/);
  });

  it('writes nothing for a notification sent before initialize', async () => {
    server = ServerProcess.start();
    server.send({ method: 'initialized' });
    await settle(server);
    await server.initialize();
    expect(server.messages).toHaveLength(1);
  });
});
