import { existsSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptAuthFile, chatgptJwt } from '../helpers/jwt.js';
import { ServerProcess, tempHome, type Wire } from '../helpers/server-process.js';

/**
 * Model-based test (issue 10 item 2): random, interleaved sequences of
 * commands against the real server process, a small model of what a host
 * should see checked after every step. A failure shrinks to a readable
 * sequence and prints its seed (`MODEL_SEED` replays one).
 */

type Mode = 'loggedOut' | 'apikey' | 'chatgpt' | 'chatgptAuthTokens';

interface Model {
  mode: Mode;
  /** What auth.json holds (host tokens never touch it). */
  stored: 'none' | 'apikey' | 'chatgpt';
  key: string | null;
  hostToken: string | null;
}

interface Real {
  server: ServerProcess;
  home: string;
}

/** Sends requests without waiting, then waits for all their answers: the server sees them interleaved. */
async function pipelined(server: ServerProcess, requests: Array<[string, unknown]>): Promise<Wire[]> {
  const ids = requests.map(([method, params]) => {
    const id = `m${Math.random().toString(36).slice(2)}`;
    server.send(params === undefined ? { id, method } : { id, method, params });
    return id;
  });
  return Promise.all(ids.map((id) => server.response(id, 10_000)));
}

const activeMode = (m: Model): Mode => m.mode;

async function check(model: Model, real: Real): Promise<void> {
  const [read, status] = await pipelined(real.server, [
    ['account/read', {}],
    ['getAuthStatus', { includeToken: true }],
  ]);
  const mode = activeMode(model);
  expect(status!.result.authMethod).toBe(mode === 'loggedOut' ? null : mode);
  if (mode === 'apikey') expect(status!.result.authToken).toBe(model.key);
  if (mode === 'chatgptAuthTokens') expect(status!.result.authToken).toBe(model.hostToken);
  const account = read!.result.account;
  expect(account === null ? 'loggedOut' : account.type).toBe(
    mode === 'loggedOut' ? 'loggedOut' : mode === 'apikey' ? 'apiKey' : 'chatgpt',
  );
  const file = join(real.home, 'auth.json');
  expect(existsSync(file)).toBe(model.stored !== 'none');
}

class ApiKeyLogin implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const [reply] = await pipelined(real.server, [['account/login/start', { type: 'apiKey', apiKey: this.key }]]);
    if (model.mode === 'chatgptAuthTokens') {
      expect(reply!.error.data.reason).toBe('external_auth_active');
    } else {
      expect(reply!.result).toEqual({ type: 'apiKey' });
      Object.assign(model, { mode: 'apikey', stored: 'apikey', key: this.key });
    }
    await check(model, real);
  }
  toString = () => `apiKeyLogin(${JSON.stringify(this.key)})`;
}

class HostTokensLogin implements fc.AsyncCommand<Model, Real> {
  readonly token = chatgptJwt({ email: 'h@b.c', accountId: 'ws-1', planType: 'team', userId: 'user-h' });
  check = () => true;
  async run(model: Model, real: Real) {
    const [reply] = await pipelined(real.server, [
      ['account/login/start', { type: 'chatgptAuthTokens', accessToken: this.token, chatgptAccountId: 'ws-1' }],
    ]);
    expect(reply!.result).toEqual({ type: 'chatgptAuthTokens' });
    Object.assign(model, { mode: 'chatgptAuthTokens', hostToken: this.token });
    await check(model, real);
  }
  toString = () => 'hostTokensLogin';
}

class Logout implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const [reply] = await pipelined(real.server, [['account/logout', undefined]]);
    expect(reply!.result).toEqual({});
    Object.assign(model, { mode: 'loggedOut', stored: 'none', key: null, hostToken: null });
    await check(model, real);
  }
  toString = () => 'logout';
}

/** A read, a status and a cancel of an unknown login, all in flight together with a login. */
class Burst implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string) {}
  check = (model: Readonly<Model>) => model.mode !== 'chatgptAuthTokens';
  async run(model: Model, real: Real) {
    const replies = await pipelined(real.server, [
      ['account/read', {}],
      ['account/login/start', { type: 'apiKey', apiKey: this.key }],
      ['getAuthStatus', {}],
      ['account/login/cancel', { loginId: '00000000-0000-4000-8000-000000000000' }],
      ['account/read', {}],
    ]);
    expect(replies).toHaveLength(5);
    expect(replies[1]!.result).toEqual({ type: 'apiKey' });
    expect(replies[3]!.result).toEqual({ status: 'notFound' });
    Object.assign(model, { mode: 'apikey', stored: 'apikey', key: this.key });
    await check(model, real);
  }
  toString = () => `burst(${JSON.stringify(this.key)})`;
}

/** Another process (Codex) writes or removes auth.json behind the server's back. */
class OtherProcess implements fc.AsyncCommand<Model, Real> {
  constructor(readonly write: 'apikey' | 'chatgpt' | 'remove') {}
  check = () => true;
  async run(model: Model, real: Real) {
    const file = join(real.home, 'auth.json');
    if (this.write === 'remove') {
      if (existsSync(file)) unlinkSync(file);
      Object.assign(model, { stored: 'none', key: model.mode === 'chatgptAuthTokens' ? model.key : null });
      if (model.mode !== 'chatgptAuthTokens') model.mode = 'loggedOut';
    } else {
      const value = this.write === 'apikey' ? { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-other' } : chatgptAuthFile();
      writeFileSync(`${file}.other`, JSON.stringify(value, null, 2), { mode: 0o600 });
      renameSync(`${file}.other`, file);
      model.stored = this.write;
      if (model.mode !== 'chatgptAuthTokens') {
        model.mode = this.write === 'apikey' ? 'apikey' : 'chatgpt';
        model.key = this.write === 'apikey' ? 'sk-other' : null;
      }
    }
    // The server notices through its watch; give it the moment it takes.
    const deadline = Date.now() + 3_000;
    for (;;) {
      try {
        await check(model, real);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }
  toString = () => `otherProcess(${this.write})`;
}

describe('model-based: the server against a model of what a host should see', () => {
  let backend: FakeBackend;
  beforeAll(async () => {
    backend = await FakeBackend.start();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
  });
  afterAll(async () => backend.stop());

  it('agrees with the model after every step of random interleaved command sequences', async () => {
    const key = fc.stringMatching(/^sk-[a-z0-9]{1,8}$/);
    const commands = fc.commands(
      [
        key.map((k) => new ApiKeyLogin(k)),
        fc.constant(new HostTokensLogin()),
        fc.constant(new Logout()),
        key.map((k) => new Burst(k)),
        fc.constantFrom('apikey', 'chatgpt', 'remove').map((w) => new OtherProcess(w as 'apikey' | 'chatgpt' | 'remove')),
      ],
      { maxCommands: 8 },
    );
    const seed = Number(process.env.MODEL_SEED ?? Date.now() % 2 ** 31);
    console.log(`model-based test seed: ${seed} (replay with MODEL_SEED=${seed})`);
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const home = tempHome();
        const server = ServerProcess.start({ home, config: `chatgpt_base_url = "${backend.baseUrl}"\n` });
        try {
          await server.initialize();
          await fc.asyncModelRun(() => ({ model: { mode: 'loggedOut', stored: 'none', key: null, hostToken: null } as Model, real: { server, home } }), cmds);
          expect(server.badLines).toEqual([]);
        } finally {
          server.kill();
        }
      }),
      { numRuns: 12, seed, endOnFailure: true },
    );
  }, 120_000);
});
