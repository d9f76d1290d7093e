import { existsSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptAuthFile, chatgptJwt } from '../helpers/jwt.js';
import { ServerProcess, tempHome, type Wire } from '../helpers/server-process.js';

/**
 * Model-based test (issue 10 item 2): random, interleaved sequences of
 * commands against the real server process — logins (API key, host tokens,
 * browser), logout, reads, cancel, rate limits, the host's answer to a token
 * refresh, a config change (the host restarts the server) and another process
 * writing auth.json — with a small model of what a host should see (the
 * mode, what auth.json holds, the pending login, the policy) checked after
 * every step. A failure shrinks to a readable sequence and prints its seed
 * (`MODEL_SEED` replays one).
 */

type Mode = 'loggedOut' | 'apikey' | 'chatgpt' | 'chatgptAuthTokens';
type Forced = null | 'api' | 'chatgpt';

interface Model {
  mode: Mode;
  /** What auth.json holds (host tokens never touch it). */
  stored: 'none' | 'apikey' | 'chatgpt';
  key: string | null;
  hostToken: string | null;
  /** The backend answers 401 for the host's token (its refresh failed): the next call asks the host again. */
  hostTokenExpired: boolean;
  /** The pending browser login's id. */
  pending: string | null;
  /** `forced_login_method` in config.toml (read when the server starts). */
  forced: Forced;
}

interface Real {
  server: ServerProcess;
  home: string;
  backend: FakeBackend;
}

const USAGE = '/backend-api/wham/usage';
const USAGE_BODY = { plan_type: 'team', rate_limit: { primary_window: { used_percent: 7, limit_window_seconds: 18000, reset_at: 1_780_000_000 } } };
/** Access tokens the backend answers 401 for (a host token the host must refresh). */
const expired = new Set<string>();
const UNKNOWN_LOGIN = '00000000-0000-4000-8000-000000000000';
const NOT_COMPLETED = 'Login server error: Login was not completed';

/** The mode stored credentials give under a policy: the other kind is hidden (SPEC §3.1). */
function visibleMode(stored: Model['stored'], forced: Forced): Mode {
  if (stored === 'apikey') return forced === 'chatgpt' ? 'loggedOut' : 'apikey';
  if (stored === 'chatgpt') return forced === 'api' ? 'loggedOut' : 'chatgpt';
  return 'loggedOut';
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

/** Waits for `account/login/completed` of a cancelled browser login, sent after message `from`. */
async function cancelled(server: ServerProcess, loginId: string, from: number, error: string): Promise<void> {
  const done = await server.waitFor((m) => m.method === 'account/login/completed' && m.params.loginId === loginId, { from });
  expect(done.params).toEqual({ loginId, success: false, error, onboardingEntrypoint: null });
}

async function check(model: Model, real: Real): Promise<void> {
  const [read, status, state] = await pipelined(real.server, [
    ['account/read', {}],
    ['getAuthStatus', { includeToken: true }],
    ['account/state/read', {}],
  ]);
  const mode = model.mode;
  expect(status!.result.authMethod).toBe(mode === 'loggedOut' ? null : mode);
  if (mode === 'apikey') expect(status!.result.authToken).toBe(model.key);
  if (mode === 'chatgptAuthTokens') expect(status!.result.authToken).toBe(model.hostToken);
  const account = read!.result.account;
  expect(account === null ? 'loggedOut' : account.type).toBe(mode === 'loggedOut' ? 'loggedOut' : mode === 'apikey' ? 'apiKey' : 'chatgpt');
  expect(state!.result.pendingLogin?.loginId ?? null).toBe(model.pending);
  expect(state!.result.policy.forcedLoginMethod).toBe(model.forced);
  expect(existsSync(join(real.home, 'auth.json'))).toBe(model.stored !== 'none');
}

/** A hidden stored credential stays in the file; what logins replace depends on what is visible. */
class ApiKeyLogin implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const from = real.server.messages.length;
    const [reply] = await pipelined(real.server, [['account/login/start', { type: 'apiKey', apiKey: this.key }]]);
    if (model.mode === 'chatgptAuthTokens') {
      expect(reply!.error.data.reason).toBe('external_auth_active');
    } else if (model.forced === 'chatgpt') {
      expect(reply!.error.message).toBe('API key login is disabled. Use ChatGPT login instead.');
    } else {
      expect(reply!.result).toEqual({ type: 'apiKey' });
      if (model.pending) await cancelled(real.server, model.pending, from, NOT_COMPLETED);
      Object.assign(model, { mode: 'apikey', stored: 'apikey', key: this.key, pending: null });
    }
    await check(model, real);
  }
  toString = () => `apiKeyLogin(${JSON.stringify(this.key)})`;
}

/** Host tokens, new ones each time (a token the backend was told to expire stays expired). */
const hostToken = () => chatgptJwt({ email: 'h@b.c', accountId: 'ws-1', planType: 'team', userId: `user-${Math.random().toString(36).slice(2, 10)}` });

class HostTokensLogin implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const token = hostToken();
    const from = real.server.messages.length;
    const [reply] = await pipelined(real.server, [
      ['account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1' }],
    ]);
    if (model.forced === 'api') {
      expect(reply!.error.message).toBe('External ChatGPT auth is disabled. Use API key login instead.');
    } else {
      expect(reply!.result).toEqual({ type: 'chatgptAuthTokens' });
      if (model.pending) await cancelled(real.server, model.pending, from, NOT_COMPLETED);
      Object.assign(model, { mode: 'chatgptAuthTokens', hostToken: token, hostTokenExpired: false, pending: null });
    }
    await check(model, real);
  }
  toString = () => 'hostTokensLogin';
}

/** A browser sign-in started (and left pending): it supersedes a pending one. */
class BrowserLogin implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const from = real.server.messages.length;
    const [reply] = await pipelined(real.server, [['account/login/start', { type: 'chatgpt' }]]);
    if (model.mode === 'chatgptAuthTokens') {
      expect(reply!.error.data.reason).toBe('external_auth_active');
    } else if (model.forced === 'api') {
      expect(reply!.error.message).toBe('ChatGPT login is disabled. Use API key login instead.');
    } else {
      expect(reply!.result).toMatchObject({ type: 'chatgpt', loginId: expect.any(String), authUrl: expect.stringContaining('code_challenge=') });
      if (model.pending) await cancelled(real.server, model.pending, from, 'Login server error: Login cancelled');
      model.pending = reply!.result.loginId;
    }
    await check(model, real);
  }
  toString = () => 'browserLogin';
}

class CancelLogin implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const from = real.server.messages.length;
    const [reply] = await pipelined(real.server, [['account/login/cancel', { loginId: model.pending ?? UNKNOWN_LOGIN }]]);
    if (model.pending) {
      expect(reply!.result).toEqual({ status: 'canceled' });
      await cancelled(real.server, model.pending, from, NOT_COMPLETED);
      model.pending = null;
    } else {
      expect(reply!.result).toEqual({ status: 'notFound' });
    }
    await check(model, real);
  }
  toString = () => 'cancelLogin';
}

class Logout implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const from = real.server.messages.length;
    const [reply] = await pipelined(real.server, [['account/logout', undefined]]);
    expect(reply!.result).toEqual({});
    if (model.pending) await cancelled(real.server, model.pending, from, NOT_COMPLETED);
    Object.assign(model, { mode: 'loggedOut', stored: 'none', key: null, hostToken: null, hostTokenExpired: false, pending: null });
    await check(model, real);
  }
  toString = () => 'logout';
}

/** A read, a status and a cancel of an unknown login, all in flight together with a login. */
class Burst implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string) {}
  check = (model: Readonly<Model>) => model.mode !== 'chatgptAuthTokens' && model.forced !== 'chatgpt';
  async run(model: Model, real: Real) {
    const replies = await pipelined(real.server, [
      ['account/read', {}],
      ['account/login/start', { type: 'apiKey', apiKey: this.key }],
      ['getAuthStatus', {}],
      ['account/login/cancel', { loginId: UNKNOWN_LOGIN }],
      ['account/read', {}],
    ]);
    expect(replies).toHaveLength(5);
    expect(replies[1]!.result).toEqual({ type: 'apiKey' });
    expect(replies[3]!.result).toEqual({ status: 'notFound' });
    Object.assign(model, { mode: 'apikey', stored: 'apikey', key: this.key, pending: null });
    await check(model, real);
  }
  toString = () => `burst(${JSON.stringify(this.key)})`;
}

/** `account/rateLimits/read`: refused without ChatGPT credentials (SPEC §10), else from the backend. */
class RateLimits implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    if (model.mode === 'chatgptAuthTokens' && model.hostTokenExpired) {
      // The 401 asks the host again; this host still cannot refresh.
      const from = real.server.messages.length;
      real.server.send({ id: 'limits-expired', method: 'account/rateLimits/read', params: {} });
      const ask = await real.server.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m, { from });
      real.server.send({ id: ask.id, error: { code: -32000, message: 'the host could not refresh' } });
      expect((await real.server.response('limits-expired')).error).toMatchObject({ code: expect.any(Number) });
      await check(model, real);
      return;
    }
    const [reply] = await pipelined(real.server, [['account/rateLimits/read', {}]]);
    if (model.mode === 'loggedOut') {
      expect(reply!.error).toMatchObject({ code: -32600, message: 'codex account authentication required to read rate limits' });
    } else if (model.mode === 'apikey') {
      expect(reply!.error).toMatchObject({ code: -32600, message: 'chatgpt authentication required to read rate limits' });
    } else {
      expect(reply!.result.rateLimits).toMatchObject({ limitId: 'codex', planType: 'team', primary: { usedPercent: 7, windowDurationMins: 300 } });
    }
    await check(model, real);
  }
  toString = () => 'rateLimits';
}

/**
 * The host's tokens expire: a rate-limit read gets a 401, the server asks the
 * host (`account/chatgptAuthTokens/refresh`), and the host answers with new
 * tokens (the read is retried with them) or an error (the read fails, the old
 * tokens stay).
 */
class HostRefresh implements fc.AsyncCommand<Model, Real> {
  constructor(readonly answer: 'tokens' | 'error') {}
  check = (model: Readonly<Model>) => model.mode === 'chatgptAuthTokens';
  async run(model: Model, real: Real) {
    expired.add(model.hostToken!);
    const from = real.server.messages.length;
    const id = `limits-${Math.random().toString(36).slice(2)}`;
    real.server.send({ id, method: 'account/rateLimits/read', params: {} });
    const ask = await real.server.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m, { from });
    expect(ask.params).toEqual({ reason: 'unauthorized', previousAccountId: 'ws-1' });
    if (this.answer === 'tokens') {
      const fresh = hostToken();
      real.server.send({ id: ask.id, result: { accessToken: fresh, chatgptAccountId: 'ws-1', chatgptPlanType: 'team' } });
      expect((await real.server.response(id)).result.rateLimits.planType).toBe('team');
      const calls = real.backend.requestsTo(USAGE);
      expect(calls.at(-1)!.headers.authorization).toBe(`Bearer ${fresh}`);
      Object.assign(model, { hostToken: fresh, hostTokenExpired: false });
    } else {
      real.server.send({ id: ask.id, error: { code: -32000, message: 'the host could not refresh' } });
      expect((await real.server.response(id)).error).toMatchObject({ code: expect.any(Number), message: expect.any(String) });
      model.hostTokenExpired = true;
    }
    await check(model, real);
  }
  toString = () => `hostRefresh(${this.answer})`;
}

/** The user edits config.toml and the host starts a new server: host tokens and a pending login are gone. */
class ConfigChange implements fc.AsyncCommand<Model, Real> {
  constructor(readonly forced: Forced) {}
  check = () => true;
  async run(model: Model, real: Real) {
    real.server.kill();
    await real.server.exited;
    real.server = startServer(real.home, real.backend, this.forced);
    await real.server.initialize();
    Object.assign(model, { forced: this.forced, hostToken: null, hostTokenExpired: false, pending: null, mode: visibleMode(model.stored, this.forced) });
    await check(model, real);
  }
  toString = () => `configChange(forced_login_method=${this.forced ?? 'unset'})`;
}

/** Another process (Codex) writes or removes auth.json behind the server's back. */
class OtherProcess implements fc.AsyncCommand<Model, Real> {
  constructor(readonly write: 'apikey' | 'chatgpt' | 'remove') {}
  check = () => true;
  async run(model: Model, real: Real) {
    const file = join(real.home, 'auth.json');
    if (this.write === 'remove') {
      if (existsSync(file)) unlinkSync(file);
      model.stored = 'none';
    } else {
      const value = this.write === 'apikey' ? { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-other' } : chatgptAuthFile({ planType: 'team' });
      writeFileSync(`${file}.other`, JSON.stringify(value, null, 2), { mode: 0o600 });
      renameSync(`${file}.other`, file);
      model.stored = this.write;
    }
    model.key = this.write === 'apikey' ? 'sk-other' : null;
    if (model.mode !== 'chatgptAuthTokens') model.mode = visibleMode(model.stored, model.forced);
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

function startServer(home: string, backend: FakeBackend, forced: Forced): ServerProcess {
  const config = `chatgpt_base_url = "${backend.baseUrl}"\n${forced ? `forced_login_method = "${forced}"\n` : ''}`;
  return ServerProcess.start({
    home,
    config,
    env: {
      CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0', // any free port: runs never contend for 1455
      CODEX_REVOKE_TOKEN_URL_OVERRIDE: `${backend.origin}/oauth/revoke`,
      CODEX_REFRESH_TOKEN_URL_OVERRIDE: `${backend.origin}/oauth/token`,
      CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '3000',
    },
  });
}

describe('model-based: the server against a model of what a host should see', () => {
  let backend: FakeBackend;
  beforeAll(async () => {
    backend = await FakeBackend.start();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    backend.on(USAGE, (req) => {
      const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      return expired.has(token) ? { status: 401, json: { detail: 'token expired' } } : { json: USAGE_BODY };
    });
    backend.on('/oauth/revoke', { json: {} });
  });
  afterAll(async () => backend.stop());

  it('agrees with the model after every step of random interleaved command sequences', async () => {
    const key = fc.stringMatching(/^sk-[a-z0-9]{1,8}$/);
    const commands = fc.commands(
      [
        key.map((k) => new ApiKeyLogin(k)),
        fc.constant(new HostTokensLogin()),
        fc.constant(new BrowserLogin()),
        fc.constant(new CancelLogin()),
        fc.constant(new Logout()),
        key.map((k) => new Burst(k)),
        fc.constant(new RateLimits()),
        fc.constantFrom('tokens', 'error').map((a) => new HostRefresh(a as 'tokens' | 'error')),
        fc.constantFrom(null, 'api', 'chatgpt').map((f) => new ConfigChange(f as Forced)),
        fc.constantFrom('apikey', 'chatgpt', 'remove').map((w) => new OtherProcess(w as 'apikey' | 'chatgpt' | 'remove')),
      ],
      { maxCommands: 10 },
    );
    const seed = Number(process.env.MODEL_SEED ?? Date.now() % 2 ** 31);
    console.log(`model-based test seed: ${seed} (replay with MODEL_SEED=${seed})`);
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const home = tempHome();
        const real: Real = { server: startServer(home, backend, null), home, backend };
        try {
          await real.server.initialize();
          await fc.asyncModelRun(
            () => ({ model: { mode: 'loggedOut', stored: 'none', key: null, hostToken: null, hostTokenExpired: false, pending: null, forced: null } as Model, real }),
            cmds,
          );
          expect(real.server.badLines).toEqual([]);
        } finally {
          real.server.kill();
        }
      }),
      { numRuns: 15, seed },
    );
  }, 150_000);
});
