import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { accountMachine } from '../../machines/account-machine.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import { sessionMachine } from '../../machines/session-machine.js';
import type { TraceLine } from '../../src/inspect/transition-trace.js';
import { holdWithFlock } from '../helpers/flock.js';
import { hostToken } from '../helpers/surface.js';
import { tempHome, type ServerProcess } from '../helpers/server-process.js';
import { selfSigned } from '../helpers/tls.js';
import { coverage, formatCoverage, transitionsOf } from './coverage.js';
import { EXCLUDED } from './exclusions.js';
import {
  apiKeyFile,
  failure,
  gate,
  heldAuthFile,
  notes,
  otherProcessWrites,
  result,
  send,
  storedLogin,
  USAGE_BODY,
  World,
} from './world.js';

// Every transition of every machine, replayed against the real server
// process in hand-written scenarios (docs/proof.md); generated.test.ts
// replays paths generated from the definitions. Each path below is a sequence of real-world
// actions (requests on stdin, answers of the issuer and backend stand-ins,
// the host answering or not, another process writing auth.json, a FIFO or a
// flock holding storage, short configured deadlines) with the responses and
// notifications each step must produce. The server writes every transition
// it takes to its trace (CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS); coverage is
// what the traces show against what the definitions declare.

const MACHINES = [accountMachine, sessionMachine, loginAttemptMachine];

const CONCURRENCY = 3;
const lines: TraceLine[] = [];
let tls: ReturnType<typeof selfSigned>;

type Path = (w: World) => Promise<void>;

/** The real-world paths; each runs in a world (stand-ins and servers) of its own. */
const PATHS: Record<string, Path> = {};

beforeAll(() => {
  tls = selfSigned();
});

async function run(name: string, path: Path): Promise<void> {
  const w = await World.start(tls);
  try {
    await path(w);
  } catch (error) {
    throw new Error(`path "${name}": ${(error as Error).message}`, { cause: error });
  } finally {
    lines.push(...w.allLines());
    await w.stop();
  }
}

// ---------------------------------------------------------------- helpers

const GATED = [
  ['account/usage/read', { threadId: null }],
  ['account/workspaceMessages/read', {}],
  ['account/rateLimitResetCredit/consume', { idempotencyKey: 'k', creditId: null }],
  ['account/sendAddCreditsNudgeEmail', { creditType: 'credits' }],
] as const;

const loginChatgpt = async (s: ServerProcess, type: 'chatgpt' | 'chatgptDeviceCode' = 'chatgpt') => result(await send(s, 'account/login/start', { type }));

/** The issuer approves the sign-in: the callback URL the browser is sent to. */
async function approve(authUrl: string): Promise<string> {
  const res = await fetch(authUrl, { redirect: 'manual' });
  expect(res.status).toBe(302);
  return res.headers.get('location')!;
}

const completed = (s: ServerProcess, from = 0) => s.notification('account/login/completed', from);

// ---------------------------------------------------------------- paths

PATHS['requests wait while the credentials load, and another process writes meanwhile'] = async (w) => {
  const home = tempHome();
  const held = heldAuthFile(home);
  const s = await w.start({ home });
  await w.took(s, 'account on client.identify #1');
  const auth = send(s, 'getAuthStatus', { includeToken: true });
  const read = send(s, 'account/read', { refreshToken: false });
  const limits = send(s, 'account/rateLimits/read');
  const gated = GATED.map(([m, p]) => send(s, m, p));
  const security = send(s, 'account/securitySetup/read');
  const apiKey = send(s, 'account/login/start', { type: 'apiKey', apiKey: 'sk-held' });
  const host = send(s, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: hostToken('held'), chatgptAccountId: 'ws-1' });
  const logout = send(s, 'account/logout');
  const browser = send(s, 'account/login/start', { type: 'chatgpt' });
  for (const e of ['authStatus.read', 'account.read', 'rateLimits.read', 'usage.read', 'workspaceMessages.read', 'resetCredit.consume', 'addCreditsNudge.send', 'securitySetup.read']) {
    await w.took(s, `account on ${e} #0`);
  }
  await w.took(s, 'account.credentials on login.apiKey #0');
  await w.took(s, 'account.credentials on login.externalTokens #4');
  await w.took(s, 'account.credentials on logout #0');
  await w.took(s, 'account.login on login.chatgpt #2');
  // Another process writes while we load: unreadable, then readable; the load in flight wins.
  otherProcessWrites(home, '{ not json');
  await w.took(s, 'account.credentials on credentials.unreadable #0');
  otherProcessWrites(home, apiKeyFile('sk-other'));
  await w.took(s, 'account.credentials on credentials.reloaded #0');
  expect(s.messages).toEqual([expect.objectContaining({ id: 1 })]);
  held.release(apiKeyFile('sk-fifo'));

  expect(result(await auth)).toEqual({ authMethod: 'apikey', authToken: 'sk-fifo', requiresOpenaiAuth: true });
  expect(result(await read).account).toEqual({ type: 'apiKey' });
  expect(failure(await limits).message).toMatch(/chatgpt/i);
  for (const g of gated) expect(failure(await g).code).toBe(-32600);
  expect(result(await security)).toEqual({ notice: null });
  expect(result(await apiKey)).toEqual({ type: 'apiKey' });
  expect(result(await host)).toEqual({ type: 'chatgptAuthTokens' });
  expect(result(await logout)).toEqual({});
  const started = result(await browser);
  expect(started).toMatchObject({ type: 'chatgpt', loginId: expect.any(String), authUrl: expect.stringContaining(w.issuer.origin) });
  expect(result(await send(s, 'account/login/cancel', { loginId: started.loginId }))).toEqual({ status: 'canceled' });
  await s.waitFor((m) => m.method === 'account/login/completed' && m.params.loginId === started.loginId);
  // The host login was overtaken by the logout before its discovery ran: it did not complete.
  expect(s.notifications().map((n) => [n.method, n.params])).toEqual([
    ['account/login/completed', { loginId: null, success: true, error: null, onboardingEntrypoint: null }],
    ['account/updated', { authMode: 'apikey', planType: null }],
    ['account/login/completed', { loginId: null, success: false, error: 'Login was not completed', onboardingEntrypoint: null }],
    ['account/updated', { authMode: null, planType: null }],
    ['account/login/completed', { loginId: started.loginId, success: false, error: 'Login server error: Login was not completed', onboardingEntrypoint: null }],
  ]);
  await w.took(s, 'account.login on login.cancel #0');
};

PATHS['a read waiting for a corrupt auth.json gets its storage issue'] = async (w) => {
  const home = tempHome();
  const held = heldAuthFile(home);
  const s = await w.start({ home });
  const read = send(s, 'account/read', { refreshToken: false });
  await w.took(s, 'account on account.read #0');
  held.release('{ corrupt');
  const error = failure(await read);
  expect(error.message).toMatch(/not valid JSON/);
  await w.took(s, 'account on account.read #1');
  await w.took(s, 'account.credentials.loading on xstate.error.actor.load #0');
};

PATHS['logged out: refusals, an API key, other processes, logout'] = async (w) => {
  const home = tempHome();
  const s = await w.start({ home });
  expect(failure(await send(s, 'account/rateLimits/read')).message).toMatch(/auth/i);
  for (const [m, p] of GATED) expect(failure(await send(s, m, p)).code).toBe(-32600);
  expect(result(await send(s, 'account/securitySetup/read'))).toEqual({ notice: null });
  expect(result(await send(s, 'account/gatewayOAuth/read', { modelProvider: null }))).toBeTypeOf('object');
  expect(failure(await send(s, 'account/gatewayOAuth/login', { modelProvider: null, deviceAuth: null })).data.reason).toBe('gateway_oauth_not_used');
  expect(result(await send(s, 'account/gatewayOAuth/cancel'))).toEqual({});
  await w.took(s, 'account on gatewayOAuth.cancel #0');
  const unknown = '00000000-0000-4000-8000-000000000009';
  expect(result(await send(s, 'account/login/cancel', { loginId: unknown }))).toEqual({ status: 'notFound' });
  expect(failure(await send(s, 'account/login/complete', { loginId: unknown, redirectUrl: 'http://127.0.0.1:1/auth/callback?code=c&state=s' })).message).toMatch(/no pending login/);
  expect(failure(await send(s, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: 'not-a-jwt', chatgptAccountId: 'ws-1' })).code).toBe(-32603);

  // A pending browser login is ended by an API key login.
  const started = await loginChatgpt(s);
  const n = s.messages.length;
  expect(result(await send(s, 'account/login/start', { type: 'apiKey', apiKey: 'sk-one' }))).toEqual({ type: 'apiKey' });
  expect((await completed(s, n)).params).toMatchObject({ loginId: started.loginId, success: false });
  await w.took(s, 'account.login on attempt.abandon #0');
  expect(failure(await send(s, 'account/rateLimits/read')).message).toMatch(/chatgpt/i);
  for (const [m, p] of GATED) expect(failure(await send(s, m, p)).code).toBe(-32600);

  // Another process: corrupt, then a key; the server follows and says so.
  let m = s.messages.length;
  otherProcessWrites(home, '{ corrupt');
  expect((await s.notification('account/updated', m)).params).toEqual({ authMode: null, planType: null });
  await w.took(s, 'account.credentials on credentials.unreadable #2');
  m = s.messages.length;
  otherProcessWrites(home, apiKeyFile('sk-two'));
  expect((await s.notification('account/updated', m)).params).toEqual({ authMode: 'apikey', planType: null });
  await w.took(s, 'account.credentials on credentials.reloaded #2');
  expect(result(await send(s, 'getAuthStatus', { includeToken: true })).authToken).toBe('sk-two');
  m = s.messages.length;
  expect(result(await send(s, 'account/logout'))).toEqual({});
  expect((await s.notification('account/updated', m)).params).toEqual({ authMode: null, planType: null });
  await w.took(s, 'account.credentials.clearing on xstate.done.actor.clear #0');
};

PATHS['forced login methods and workspaces refuse what they forbid'] = async (w) => {
  const chatgptOnly = await w.start({ configLines: 'forced_login_method = "chatgpt"\n', auth: JSON.parse(apiKeyFile('sk-hidden')) });
  expect(result(await send(chatgptOnly, 'account/read', { refreshToken: false })).account).toBeNull();
  expect(failure(await send(chatgptOnly, 'account/login/start', { type: 'apiKey', apiKey: 'sk-x' })).code).toBe(-32600);
  await w.took(chatgptOnly, 'account.credentials on login.apiKey #2');

  const apiOnly = await w.start({ configLines: 'forced_login_method = "api"\n' });
  expect(failure(await send(apiOnly, 'account/login/start', { type: 'chatgpt' })).code).toBe(-32600);
  expect(failure(await send(apiOnly, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: hostToken('a'), chatgptAccountId: 'ws-1' })).code).toBe(-32600);
  await w.took(apiOnly, 'account.login on login.chatgpt #1');
  await w.took(apiOnly, 'account.credentials on login.externalTokens #1');

  const noExperimental = await w.start({ initialize: { capabilities: { experimentalApi: false } } });
  expect(failure(await send(noExperimental, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: hostToken('b'), chatgptAccountId: 'ws-1' })).code).toBe(-32600);
  await w.took(noExperimental, 'account.credentials on login.externalTokens #0');

  const ws1 = await w.start({ configLines: 'forced_chatgpt_workspace_id = "ws-1"\n' });
  expect(failure(await send(ws1, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: hostToken('c'), chatgptAccountId: 'ws-2' })).code).toBe(-32600);
  await w.took(ws1, 'account.credentials on login.externalTokens #2');
  // The issuer signs the user into ws-2: the attempt refuses it before saving.
  w.issuer.user = { ...w.issuer.user, accountId: 'ws-2' };
  const started = await loginChatgpt(ws1);
  const callback = await approve(started.authUrl);
  const page = await fetch(callback, { redirect: 'manual' });
  expect(await page.text()).toMatch(/workspace/i);
  expect((await completed(ws1)).params).toMatchObject({ loginId: started.loginId, success: false, error: expect.stringMatching(/workspace/i) });
  await w.took(ws1, 'loginAttempt.open.running.exchanging on xstate.done.actor.exchangeCode #0');
  await w.took(ws1, 'loginAttempt.open.reporting on channel.finished #0');
  // Host tokens for ws-1; the host's refresh answers ws-2, which is refused (the old tokens stay).
  w.issuer.user = { ...w.issuer.user, accountId: 'ws-1' };
  result(await send(ws1, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: hostToken('d'), chatgptAccountId: 'ws-1' }));
  await completed(ws1, ws1.messages.length - 1);
  w.backend.on('/backend-api/wham/usage', { status: 401, json: { error: 'token_expired' } });
  const limits = send(ws1, 'account/rateLimits/read');
  const ask = await ws1.waitFor((x) => x.method === 'account/chatgptAuthTokens/refresh' && 'id' in x);
  ws1.send({ id: ask.id, result: { accessToken: hostToken('e'), chatgptAccountId: 'ws-2', chatgptPlanType: null } });
  expect(failure(await limits).message).toMatch(/workspace/i);
  await w.took(ws1, 'session.refreshing.external on xstate.done.actor.hostRefresh #1');
};

PATHS['host tokens: discovery, 401 recovery by the host, its refusal and its silence'] = async (w) => {
  const home = tempHome();
  const s = await w.start({ home, env: { CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS: '1000' } });
  const first = hostToken('first');
  expect(result(await send(s, 'account/login/start', { type: 'chatgptAuthTokens', accessToken: first, chatgptAccountId: 'ws-1' }))).toEqual({ type: 'chatgptAuthTokens' });
  expect((await completed(s)).params).toEqual({ loginId: null, success: true, error: null, onboardingEntrypoint: null });
  await w.took(s, 'session.starting on always #0');
  expect(failure(await send(s, 'account/login/start', { type: 'apiKey', apiKey: 'sk-no' })).code).toBe(-32600);
  expect(failure(await send(s, 'account/login/start', { type: 'chatgpt' })).code).toBe(-32600);

  let good = hostToken('second');
  const second = good;
  w.backend.on('/backend-api/wham/usage', (r) => (r.headers.authorization === `Bearer ${good}` ? { json: USAGE_BODY } : { status: 401, json: { error: 'token_expired' } }));
  w.backend.on('/backend-api/wham/rate-limit-reset-credits', { json: { credits: [] } });
  let limits = send(s, 'account/rateLimits/read');
  let ask = await s.waitFor((x) => x.method === 'account/chatgptAuthTokens/refresh' && 'id' in x);
  s.send({ id: ask.id, result: { accessToken: good, chatgptAccountId: 'ws-1', chatgptPlanType: null } });
  expect(result(await limits).rateLimits).toMatchObject({ primary: { usedPercent: 5 } });
  await w.took(s, 'session.refreshing.external on xstate.done.actor.hostRefresh #0');
  await w.took(s, 'session.ready on always #0');

  // The host refuses.
  good = hostToken('third');
  let from = s.messages.length;
  limits = send(s, 'account/rateLimits/read');
  ask = await s.waitFor((x) => x.method === 'account/chatgptAuthTokens/refresh' && 'id' in x, { from });
  s.send({ id: ask.id, error: { code: -32000, message: 'no tokens' } });
  expect(failure(await limits).message).toMatch(/refresh/i);
  await w.took(s, 'session.refreshing.external on xstate.error.actor.hostRefresh #0');

  // The host stays silent past the deadline.
  from = s.messages.length;
  limits = send(s, 'account/rateLimits/read');
  await s.waitFor((x) => x.method === 'account/chatgptAuthTokens/refresh' && 'id' in x, { from });
  expect(failure(await limits).message).toMatch(/timed out/);
  await w.took(s, 'session.refreshing.external on xstate.after.hostRefreshTimeout.session.refreshing.external #0');

  // A 401 the host answers with the very tokens the server has: the call is retried with them,
  // and discovery does not run again (SPEC §9.2: not for identical answers).
  let hiccup = true;
  w.backend.on('/backend-api/wham/usage', () => {
    if (!hiccup) return { json: USAGE_BODY };
    hiccup = false;
    return { status: 401, json: { error: 'token_expired' } };
  });
  const discoveries = w.backend.requestsTo('/backend-api/wham/accounts/check').length;
  from = s.messages.length;
  limits = send(s, 'account/rateLimits/read');
  ask = await s.waitFor((x) => x.method === 'account/chatgptAuthTokens/refresh' && 'id' in x, { from });
  s.send({ id: ask.id, result: { accessToken: second, chatgptAccountId: 'ws-1', chatgptPlanType: null } });
  expect(result(await limits).rateLimits).toMatchObject({ primary: { usedPercent: 5 } });
  expect(w.backend.requestsTo('/backend-api/wham/usage').at(-1)!.headers.authorization).toBe(`Bearer ${second}`);
  await w.took(s, 'session.refreshed on always #1');
  expect(w.backend.requestsTo('/backend-api/wham/accounts/check')).toHaveLength(discoveries);

  // Another process writes a corrupt file, then signs in with a key: host tokens stay in charge,
  // and their session (and what it has in flight) is left alone.
  otherProcessWrites(home, '{ corrupt');
  await w.took(s, 'account.credentials on credentials.unreadable #1');
  otherProcessWrites(home, apiKeyFile('sk-elsewhere'));
  await w.took(s, 'account.credentials on credentials.reloaded #1');
  expect(result(await send(s, 'getAuthStatus', { includeToken: false })).authMethod).toBe('chatgptAuthTokens');
  await w.took(s, 'account.credentials.route on always #0');
};

PATHS['stored ChatGPT credentials: discovery, forced refreshes joining, 401s, refresh failure'] = async (w) => {
  const held = gate<void>();
  let discoveries = 0;
  w.backend.on('/backend-api/wham/accounts/check', async () => {
    discoveries++;
    if (discoveries === 1) await held.wait;
    return { json: { accounts: [{ id: 'ws-1', name: 'Acme', structure: 'workspace', plan_type: 'team', is_deactivated: false, can_access_with_session: true, workspace_backend_origin: 'https://chatgpt.com', account_routing_override: 'NO_CONSTRAINT' }], account_ordering: ['ws-1'], default_account_id: 'ws-1' } };
  });
  const s = await w.start({ auth: await storedLogin(w.issuer), initialize: false });
  await w.took(s, 'session.starting on always #1');
  await s.initialize();
  await w.took(s, 'account on client.identify #0');
  const read = send(s, 'account/read', { refreshToken: false });
  await w.took(s, 'session.ready on session.discover #0');
  w.issuer.refreshDelayMs = 1_000;
  const forced = send(s, 'account/read', { refreshToken: true });
  await w.took(s, 'session.discovering on session.refresh #0');
  held.release();
  await w.took(s, 'session.discovering on xstate.done.actor.discover #0');
  const joining = send(s, 'account/read', { refreshToken: true });
  for (const r of [read, forced, joining]) expect(result(await r).account).toMatchObject({ type: 'chatgpt', email: 'a@b.c' });
  await w.took(s, 'session.refreshing on session.refresh #0');
  await w.took(s, 'session.refreshing.managed on xstate.done.actor.refreshTokens #0');
  expect(notes(s, 'account/updated')).toEqual([{ authMode: 'chatgpt', planType: 'pro' }]);

  expect(result(await send(s, 'account/securitySetup/read'))).toEqual({ notice: null });
  await w.took(s, 'account on securitySetup.read #1');
  for (const [m, p] of GATED) await send(s, m, p);
  await w.took(s, 'account on addCreditsNudge.send #3');

  // Discovery answers 401 after a refresh: the read fails (discovery reports every non-OK answer as discoveryFailed).
  w.issuer.refreshDelayMs = 0;
  w.backend.on('/backend-api/wham/accounts/check', { status: 401, json: { error: 'token_expired' } });
  expect(failure(await send(s, 'account/read', { refreshToken: true })).data.reason).toBe('routing_discovery_failed');
  await w.took(s, 'session.discovering on xstate.error.actor.discover #1');

  // The issuer is down: the forced refresh fails, the credentials stay.
  w.issuer.refreshMode = 'serverError';
  expect(failure(await send(s, 'account/read', { refreshToken: true })).code).toBe(-32603);
  await w.took(s, 'session.refreshing.managed on xstate.error.actor.refreshTokens #0');
  expect(result(await send(s, 'getAuthStatus', { includeToken: false })).authMethod).toBe('chatgpt');
};

PATHS['a logout held by another process gates backend requests, then fails on a locked auth.json'] = async (w) => {
  const home = tempHome();
  const s = await w.start({ home, auth: await storedLogin(w.issuer) });
  await w.took(s, 'account.credentials.route on always #2');
  const lock = await holdWithFlock(join(home, 'auth.lock'));
  const logout = send(s, 'account/logout');
  await w.took(s, 'account.credentials on logout #1');
  expect(failure(await send(s, 'account/rateLimits/read')).message).toMatch(/auth/i);
  for (const [m, p] of GATED) expect(failure(await send(s, m, p)).code).toBe(-32600);
  await lock.release();
  expect(result(await logout)).toEqual({});
  for (const e of ['rateLimits.read', 'usage.read', 'workspaceMessages.read', 'resetCredit.consume', 'addCreditsNudge.send']) await w.took(s, `account on ${e} #4`);

  // auth.json.lock held past its 1 s wait: saving and removing fail.
  const jsonLock = await holdWithFlock(join(home, 'auth.json.lock'));
  expect(failure(await send(s, 'account/login/start', { type: 'apiKey', apiKey: 'sk-locked' })).message).toMatch(/failed to save/);
  await w.took(s, 'account.credentials.saving on xstate.error.actor.saveApiKey #0');
  await jsonLock.release();
  result(await send(s, 'account/login/start', { type: 'apiKey', apiKey: 'sk-saved' }));
  const again = await holdWithFlock(join(home, 'auth.json.lock'));
  expect(failure(await send(s, 'account/logout')).message).toMatch(/failed to remove/);
  await w.took(s, 'account.credentials.clearing on xstate.error.actor.clear #0');
  await again.release();
};

PATHS['browser login: callback, code, API key, saved, then the port is taken over'] = async (w) => {
  const s = await w.start();
  const started = await loginChatgpt(s);
  await w.took(s, 'account.login.chatgptPending.starting on loginAttempt.ready #0');
  const callback = await approve(started.authUrl);
  const held = fetch(callback, { redirect: 'manual' });
  const redirect = await held;
  expect(redirect.status).toBe(302);
  await w.took(s, 'loginAttempt.open.running.saving on xstate.done.actor.saveLogin #0');
  // Another login server wants the port before the browser came to /success.
  const cancel = await fetch(`${new URL(callback).origin}/cancel`);
  expect(cancel.status).toBe(200);
  expect((await completed(s)).params).toEqual({ loginId: started.loginId, success: true, error: null, onboardingEntrypoint: null });
  await w.took(s, 'loginAttempt.open.confirming on channel.cancelled #0');
  await w.took(s, 'account.credentials on credentials.changed #0');
  await w.took(s, 'loginAttempt.open.running.exchangingApiKey on xstate.done.actor.exchangeApiKey #0');
  expect(notes(s, 'account/updated')).toEqual([{ authMode: 'chatgpt', planType: 'plus' }]);
};

PATHS['browser login: a paste while exchanging, no API key, /success'] = async (w) => {
  const s = await w.start();
  const started = await loginChatgpt(s);
  w.issuer.tokenDelayMs = 1_000;
  // The API key exchange fails: the login goes on without a key.
  w.issuer.apiKeyMode = 'fail';
  const callback = await approve(started.authUrl);
  const held = fetch(callback, { redirect: 'manual' });
  await w.took(s, 'loginAttempt.open.running.waiting on channel.code #0');
  expect(failure(await send(s, 'account/login/complete', { loginId: started.loginId, redirectUrl: callback })).message).toMatch(/not waiting/);
  await w.took(s, 'loginAttempt.open on attempt.paste #1');
  const redirect = await held;
  const success = await fetch(redirect.headers.get('location')!);
  expect(success.status).toBe(200);
  expect((await completed(s)).params).toMatchObject({ loginId: started.loginId, success: true });
  await w.took(s, 'loginAttempt.open.running.exchangingApiKey on xstate.error.actor.exchangeApiKey #0');
  await w.took(s, 'loginAttempt.open.confirming on channel.finished #0');
};

PATHS['browser login: the browser never comes back for /success'] = async (w) => {
  const s = await w.start();
  const started = await loginChatgpt(s);
  const redirect = await fetch(await approve(started.authUrl), { redirect: 'manual' });
  expect(redirect.status).toBe(302);
  // Saved; the attempt waits for /success (10 s) before it reports the login done.
  await w.took(s, 'loginAttempt.open.running.saving on xstate.done.actor.saveLogin #0');
  expect(s.notifications('account/login/completed')).toEqual([]);
  await w.took(s, 'loginAttempt.open.confirming on xstate.after.successPageGrace.loginAttempt.open.confirming #0', { timeoutMs: 15_000 });
  expect((await completed(s)).params).toMatchObject({ loginId: started.loginId, success: true });
};

PATHS['browser login failures: bad paste, takeover, issuer error, token endpoint down, deadline'] = async (w) => {
  const s = await w.start();
  // A pasted URL that is no redirect is refused; the login keeps waiting; another server takes the port.
  let started = await loginChatgpt(s);
  expect(failure(await send(s, 'account/login/complete', { loginId: started.loginId, redirectUrl: 'not a url' })).code).toBe(-32600);
  await w.took(s, 'loginAttempt.open.running.waiting on channel.pasteRejected #0');
  await w.took(s, 'account.login.chatgptPending on loginAttempt.pasteAnswered #0');
  let from = s.messages.length;
  const approved = await approve(started.authUrl);
  await fetch(`${new URL(approved).origin}/cancel`);
  expect((await completed(s, from)).params).toMatchObject({ loginId: started.loginId, success: false });
  await w.took(s, 'loginAttempt.open.running on channel.cancelled #0');

  // The user denies at the issuer.
  w.issuer.authorize = { error: 'access_denied', description: 'no' };
  started = await loginChatgpt(s);
  from = s.messages.length;
  await fetch(await approve(started.authUrl));
  expect((await completed(s, from)).params).toMatchObject({ loginId: started.loginId, success: false });
  await w.took(s, 'loginAttempt.open.running on channel.failed #0');

  // The token endpoint fails; the code came by paste (so the browser flow's paste path runs too).
  w.issuer.authorize = 'approve';
  w.issuer.tokenMode = 'serverError';
  started = await loginChatgpt(s);
  from = s.messages.length;
  const pasted = await approve(started.authUrl);
  expect(failure(await send(s, 'account/login/complete', { loginId: started.loginId, redirectUrl: pasted })).message).toMatch(/token|500|exchange/i);
  await w.took(s, 'loginAttempt.open.running.waiting on attempt.paste #1');
  await w.took(s, 'loginAttempt.open.running.exchanging on xstate.error.actor.exchangeCode #0');

  // A new login supersedes a pending one.
  const first = await loginChatgpt(s);
  from = s.messages.length;
  const second = await loginChatgpt(s);
  expect((await completed(s, from)).params).toMatchObject({ loginId: first.loginId, success: false });
  expect(second.loginId).not.toBe(first.loginId);
};

PATHS['a login nobody finishes ends at its deadline'] = async (w) => {
  const s = await w.start({ env: { CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS: '600' } });
  const started = await loginChatgpt(s);
  expect((await completed(s)).params).toMatchObject({ loginId: started.loginId, success: false, error: expect.stringMatching(/timed out/i) });
  await w.took(s, 'loginAttempt.open.running on xstate.after.loginDeadline.loginAttempt.open.running #0');
};

PATHS['device login: pastes refused, approval, saved'] = async (w) => {
  const s = await w.start();
  const started = await loginChatgpt(s, 'chatgptDeviceCode');
  const paste = { loginId: started.loginId, redirectUrl: 'http://127.0.0.1:1/auth/callback?code=c&state=s' };
  expect(failure(await send(s, 'account/login/complete', paste)).code).toBeLessThan(0);
  await w.took(s, 'loginAttempt.open.running.waiting on attempt.paste #0');
  w.issuer.tokenDelayMs = 1_000;
  w.issuer.approveDevice(started.userCode);
  await w.took(s, 'loginAttempt.open.running.waiting on channel.code #0');
  expect(failure(await send(s, 'account/login/complete', paste)).code).toBeLessThan(0);
  await w.took(s, 'loginAttempt.open on attempt.paste #0');
  expect((await completed(s)).params).toMatchObject({ loginId: started.loginId, success: true });
  await w.took(s, 'loginAttempt.open.running.exchanging on xstate.done.actor.exchangeCode #2');
};

PATHS['device login: no user code; a save that cannot write'] = async (w) => {
  w.issuer.deviceMode = 'serverError';
  const s = await w.start();
  expect(failure(await send(s, 'account/login/start', { type: 'chatgptDeviceCode' })).code).toBe(-32603);
  await w.took(s, 'loginAttempt.open.starting on channel.startFailed #0');
  await w.took(s, 'account.login.chatgptPending.starting on loginAttempt.startFailed #0');

  // auth.json is a directory: loading, saving a login, saving a key and removing all fail.
  w.issuer.deviceMode = 'normal';
  const home = tempHome();
  mkdirSync(join(home, 'auth.json'));
  writeFileSync(join(home, 'auth.json', 'x'), '');
  const d = await w.start({ home });
  expect(failure(await send(d, 'account/read', { refreshToken: false })).code).toBe(-32603);
  const started = await loginChatgpt(d, 'chatgptDeviceCode');
  w.issuer.approveDevice(started.userCode);
  expect((await completed(d)).params).toMatchObject({ loginId: started.loginId, success: false });
  await w.took(d, 'loginAttempt.open.running.saving on xstate.error.actor.saveLogin #0');
  expect(failure(await send(d, 'account/login/start', { type: 'apiKey', apiKey: 'sk-nowhere' })).message).toMatch(/failed to save/);
  expect(failure(await send(d, 'account/logout')).message).toMatch(/failed to remove/);
};

// ---------------------------------------------------------------- the test

describe('every transition replayed against the real server', () => {
  it('should take every transition of every machine on some path, checking each step', { timeout: 90_000 }, async () => {
    const startedAt = Date.now();
    const queue = Object.entries(PATHS);
    const errors: Error[] = [];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await run(...next).catch((e: Error) => errors.push(e));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const rows = coverage(MACHINES, lines, EXCLUDED);
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    console.log(
      `\nTransition coverage by ${Object.keys(PATHS).length} paths against the real server (${seconds} s, ${CONCURRENCY} at a time):\n` +
        `${formatCoverage(rows, EXCLUDED)}\n`,
    );
    expect(errors.map((e) => e.message)).toEqual([]);

    // Exclusions name transitions that exist and that no path took.
    const all = MACHINES.flatMap(transitionsOf).map((t) => `${t.machine}: ${t.key}`);
    const taken = new Set(lines.map((l) => `${l.machine}: ${l.source} on ${l.on === '' ? 'always' : l.on} #${l.index}`));
    for (const key of Object.keys(EXCLUDED)) {
      expect(all, 'an excluded transition the machines no longer declare').toContain(key);
      expect(taken.has(key), `${key} is excluded but was taken: remove the exclusion`).toBe(false);
    }
    for (const row of rows) {
      expect(row.missing, `${row.machine}: transitions no path takes`).toEqual([]);
      expect(row.unseenStates, `${row.machine}: states no path enters`).toEqual([]);
    }
  });
});
