import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { accountMachine } from '../../machines/account-machine.js';
import type { StoredAuth } from '../../machines/account-types.js';
import { createLogger } from '../../src/log.js';
import { startServer, type ServerOptions } from '../../src/rpc/server.js';
import type { PlatformInfo } from '../../src/user-agent.js';

/**
 * The adapter over in-memory streams (no child process): here each layer we
 * own is made to throw in turn, and the server must answer every request
 * exactly once and keep reading (issue 5).
 */

type Line = Record<string, any>;

const PLATFORM: PlatformInfo = { family: 'unix', os: 'linux', osLabel: 'Debian 12.0.0', arch: 'x86_64' };

function harness(overrides: Partial<ServerOptions> = {}, output: Writable = new PassThrough()) {
  const input = new PassThrough();
  const logs: string[] = [];
  const received: Line[] = [];
  if (output instanceof PassThrough) {
    let buffer = '';
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        received.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
      }
    });
  }
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise<StoredAuth | null, void>(async () => null),
      saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(async ({ input: i }) => i.auth),
      clearCredentials: fromPromise<void, unknown>(async () => {}),
    } as never,
  });
  const server = startServer({
    input,
    output,
    machine,
    machineInput: { policy: { forcedLoginMethod: null, forcedWorkspaceIds: null } },
    codexHome: '/tmp/home',
    platform: () => PLATFORM,
    env: {},
    configWarning: null,
    log: createLogger('debug', (l) => logs.push(l)),
    ...overrides,
  });
  const send = (value: unknown) => input.write(`${JSON.stringify(value)}\n`);
  const answer = async (id: unknown, timeoutMs = 2_000): Promise<Line> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = received.find((m) => m.id === id && !('method' in m));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no answer to ${String(id)}; got ${JSON.stringify(received)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const init = { clientInfo: { name: 'host', version: '1' }, capabilities: { experimentalApi: true } };
  return { input, output, logs, received, server, send, answer, init };
}

const LOGGED_OUT = { account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };
const settle = () => new Promise((r) => setTimeout(r, 30));

describe('adapter: every layer may throw, the server answers and goes on', () => {
  it('answers initialize with an internal error when reading the platform throws, then serves the next initialize', async () => {
    let calls = 0;
    const h = harness({
      platform: () => {
        if (calls++ === 0) throw new Error('uname failed sk-secret-here');
        return PLATFORM;
      },
    });
    h.send({ id: 1, method: 'initialize', params: h.init });
    expect((await h.answer(1)).error).toMatchObject({ code: -32603, data: { reason: 'internal' } });
    h.send({ id: 2, method: 'initialize', params: h.init });
    expect((await h.answer(2)).result.platformOs).toBe('linux');
    expect(h.logs.join('')).not.toContain('sk-secret-here');
  });

  it('answers with an internal error when an effect throws synchronously, and keeps serving', async () => {
    const h = harness({
      machine: accountMachine.provide({
        actors: {
          loadCredentials: fromPromise<StoredAuth | null, void>(async () => null),
          saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(() => {
            throw new TypeError('bug in the store');
          }),
        } as never,
      }),
    });
    h.send({ id: 1, method: 'initialize', params: h.init });
    await h.answer(1);
    h.send({ id: 2, method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-x' } });
    expect((await h.answer(2)).error.code).toBe(-32603);
    h.send({ id: 3, method: 'account/read', params: {} });
    expect((await h.answer(3)).result).toEqual(LOGGED_OUT);
  });

  it('answers what the machine owed and restarts it when one of its actions throws', async () => {
    let throwOnce = true;
    const h = harness({
      machine: accountMachine.provide({
        actors: {
          loadCredentials: fromPromise<StoredAuth | null, void>(async () => null),
        } as never,
        actions: {
          identifyClient: () => {
            if (throwOnce) {
              throwOnce = false;
              throw new RangeError('bug in an action');
            }
          },
        } as never,
      }),
    });
    h.send({ id: 1, method: 'initialize', params: h.init });
    await h.answer(1);
    h.send({ id: 2, method: 'account/read', params: {} });
    expect((await h.answer(2)).result).toEqual(LOGGED_OUT);
    expect(h.logs.join('')).toMatch(/account actor failed, restarting it: RangeError/);
  });

  it('keeps serving when the inspection callback throws on every event', async () => {
    const h = harness({
      inspect: () => {
        throw new Error('inspector bug');
      },
    });
    h.send({ id: 1, method: 'initialize', params: h.init });
    await h.answer(1);
    h.send({ id: 2, method: 'account/read', params: {} });
    expect((await h.answer(2)).result).toEqual(LOGGED_OUT);
    expect(h.logs.join('')).toMatch(/inspection callback failed/);
  });

  it('keeps serving when every log line fails to be written', async () => {
    const h = harness({
      log: createLogger('debug', () => {
        throw new Error('stderr is gone');
      }),
    });
    h.send({ id: 1, method: 'initialize', params: h.init });
    h.input.write('not json\n');
    h.send({ id: 2, method: 'account/read', params: {} });
    expect((await h.answer(2)).result).toEqual(LOGGED_OUT);
  });

  it('keeps reading when writing to stdout throws, and answers later requests once it works again', async () => {
    let broken = true;
    const lines: string[] = [];
    const output = new Writable({
      write(chunk, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const realWrite = output.write.bind(output);
    output.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (broken) throw new Error('EPIPE-ish');
      return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof output.write;
    const h = harness({}, output);
    h.send({ id: 1, method: 'initialize', params: h.init });
    await settle();
    broken = false;
    h.send({ id: 2, method: 'account/read', params: {} });
    await settle();
    expect(lines.map((l) => JSON.parse(l)).find((m) => m.id === 2)?.result).toEqual(LOGGED_OUT);
  });

  it('answers each of many interleaved requests exactly once', async () => {
    const h = harness();
    h.send({ id: 0, method: 'initialize', params: h.init });
    const methods = [
      ['account/read', {}],
      ['getAuthStatus', {}],
      ['account/login/start', { type: 'apiKey', apiKey: 'sk-1' }],
      ['account/login/cancel', { loginId: 'nope' }],
      ['account/logout', undefined],
      ['no/such', {}],
      ['account/read', 'bad'],
    ] as const;
    for (let i = 1; i <= 70; i++) {
      const [method, params] = methods[i % methods.length]!;
      h.send(params === undefined ? { id: i, method } : { id: i, method, params });
      if (i % 10 === 0) h.input.write('{"method":"$/cancelRequest"}\n{broken\n');
    }
    await h.answer(70);
    await settle();
    const answered = h.received.filter((m) => !('method' in m)).map((m) => m.id);
    expect(answered.sort((a, b) => a - b)).toEqual(Array.from({ length: 71 }, (_, i) => i));
  });
});

describe('adapter: pure reads answered from a memo of the snapshot', () => {
  it('answers reads in one write with what the state is when each is read, not what an earlier read saw', async () => {
    const h = harness();
    h.send({ id: 0, method: 'initialize', params: h.init });
    await h.answer(0);
    // One write: two reads, a login, then the same two reads (now after the change).
    h.input.write(
      [
        { id: 1, method: 'account/read', params: { refreshToken: false } },
        { id: 2, method: 'getAuthStatus', params: { includeToken: true } },
        { id: 3, method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-memo' } },
      ]
        .map((m) => JSON.stringify(m))
        .join('\n') + '\n',
    );
    await h.answer(3);
    h.send({ id: 4, method: 'account/read', params: { refreshToken: false } });
    h.send({ id: 5, method: 'getAuthStatus', params: { includeToken: true } });
    h.send({ id: 6, method: 'getAuthStatus', params: { includeToken: false } });
    expect((await h.answer(1)).result).toEqual(LOGGED_OUT);
    expect((await h.answer(2)).result).toEqual({ authMethod: null, authToken: null, requiresOpenaiAuth: true });
    expect((await h.answer(4)).result).toEqual({ ...LOGGED_OUT, account: { type: 'apiKey' } });
    expect((await h.answer(5)).result).toEqual({ authMethod: 'apikey', authToken: 'sk-memo', requiresOpenaiAuth: true });
    // The flag is part of the memo's key: no token leaks into the answer that did not ask for one.
    expect((await h.answer(6)).result).toEqual({ authMethod: 'apikey', authToken: null, requiresOpenaiAuth: true });
  });

  it('rejects the same wrong params every time they are sent (only successful parses are remembered)', async () => {
    const h = harness();
    h.send({ id: 0, method: 'initialize', params: h.init });
    for (const id of [1, 2, 3]) h.send({ id, method: 'account/read', params: { refreshToken: null } });
    h.send({ id: 4, method: 'account/read', params: { refreshToken: false } });
    for (const id of [1, 2, 3]) {
      expect((await h.answer(id)).error).toMatchObject({ code: -32600, message: 'Invalid request: invalid type: null, expected a boolean' });
    }
    expect((await h.answer(4)).result).toEqual(LOGGED_OUT);
  });
});
