import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { Secret } from '../../machines/secret.js';
import { createFileStore } from '../../src/effects/storage.js';
import { Issuer, callbackUrlFrom, followAuthUrl } from '../helpers/issuer.js';
import { authUrlOf, userCodeOf, captureLog, leakedSecrets, loginDeps, recordingStore, startAttempt } from '../helpers/login.js';

// The real login-attempt machine with the real effects against a real issuer
// stand-in; only the credential store is a recording fake. Callback ports are
// OS-assigned here (test/login/ports.test.ts covers 1455/1457).

let issuer: Issuer;
let attempts: Array<ReturnType<typeof startAttempt>>;
beforeEach(async () => {
  issuer = await Issuer.start();
  attempts = [];
});
afterEach(async () => {
  for (const a of attempts) a.stop();
  await issuer.stop();
});

function begin(...args: Parameters<typeof startAttempt>) {
  const attempt = startAttempt(...args);
  attempts.push(attempt);
  return attempt;
}

const callbackPort = (authUrl: string) => Number(new URL(new URL(authUrl).searchParams.get('redirect_uri')!).port);

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

describe('browser login attempt', () => {
  it('reports ready once with an authorize URL naming the client as originator', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const ready = await attempt.ready();
    const url = new URL(authUrlOf(ready));
    expect(`${url.origin}${url.pathname}`).toBe(`${issuer.origin}/oauth/authorize`);
    expect(url.searchParams.get('originator')).toBe('my-app');
    expect(url.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth\/callback$/);
    expect(url.searchParams.has('allowed_workspace_id')).toBe(false);
    expect(attempt.reports.filter((r) => r.type === 'loginAttempt.ready')).toHaveLength(1);
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
  });

  it('signs in when a browser follows the authorize URL: code, API key, saved, success page, port closed', async () => {
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps);
    const authUrl = authUrlOf(await attempt.ready());
    const steps = await followAuthUrl(authUrl);
    expect(steps.map((s) => s.status)).toEqual([302, 302, 200]);
    expect(steps[2]!.body).toContain('<title>Sign into Codex</title>');
    const output = await attempt.finished();
    expect(output).toMatchObject({ status: 'succeeded', loginId: attempt.input.loginId });
    expect(store.saved).toHaveLength(1);
    expect(store.saved[0]).toMatchObject({
      kind: 'chatgpt',
      accountId: 'ws-1',
      claims: { email: 'a@b.c', planType: 'plus', userId: 'user-1', accountId: 'ws-1' },
      oauthProvenance: { issuer: issuer.origin, clientId: 'app_EMoamEEZ73f0CkXaXp7hrann' },
    });
    expect(store.saved[0]!.apiKey?.reveal()).toMatch(/^sk-proj-/);
    expect(await portIsFree(callbackPort(authUrl))).toBe(true);
  });

  it('writes auth.json as Codex does when the store is the real file store', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cas-login-'));
    const { log } = captureLog();
    const files = createFileStore({ authPath: join(home, 'auth.json'), log });
    const { deps } = loginDeps(issuer, { saveCredentials: (auth) => files.save(auth) });
    const attempt = begin(deps);
    await followAuthUrl(authUrlOf(await attempt.ready()));
    await attempt.finished();
    const text = readFileSync(join(home, 'auth.json'), 'utf8');
    const file = JSON.parse(text);
    expect(Object.keys(file.tokens)).toEqual(['id_token', 'access_token', 'refresh_token', 'oauth_provenance', 'login_owner_id', 'account_id']);
    expect(file.last_refresh).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(text).toBe(JSON.stringify(file, null, 2));
    expect(statSync(join(home, 'auth.json')).mode & 0o777).toBe(0o600);
  });

  it('sends allowed_workspace_id and accepts a login to an allowed workspace', async () => {
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { policy: { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-0', 'ws-1'] } });
    const authUrl = authUrlOf(await attempt.ready());
    expect(new URL(authUrl).searchParams.get('allowed_workspace_id')).toBe('ws-0,ws-1');
    await followAuthUrl(authUrl);
    expect((await attempt.finished()).status).toBe('succeeded');
    expect(store.saved).toHaveLength(1);
  });

  it('fails a login to a workspace outside forced_chatgpt_workspace_id and saves nothing', async () => {
    issuer.user = { ...issuer.user, accountId: 'ws-2' };
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { policy: { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1', 'ws-3'] } });
    const steps = await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(steps.at(-1)!.body).toContain('Login is restricted to workspace id(s) ws-1, ws-3.');
    expect(await attempt.finished()).toMatchObject({ status: 'failed', error: 'Login server error: Login is restricted to workspace id(s) ws-1, ws-3.' });
    expect(store.saved).toEqual([]);
    expect(issuer.requestsTo('/oauth/token')).toHaveLength(1); // no API key exchange either
  });

  it('fails a forced-workspace login whose id token names no workspace', async () => {
    issuer.user = { ...issuer.user, accountId: null };
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { policy: { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] } });
    await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(await attempt.finished()).toMatchObject({
      error: 'Login server error: Login is restricted to a specific workspace, but the token did not include an chatgpt_account_id claim.',
    });
    expect(store.saved).toEqual([]);
  });

  it('keeps waiting after a callback with the wrong state, then signs in', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const authUrl = authUrlOf(await attempt.ready());
    const forged = new URL(await callbackUrlFrom(authUrl));
    forged.searchParams.set('state', 'forged-state');
    const answer = await fetch(forged);
    expect([answer.status, await answer.text()]).toEqual([400, 'State mismatch']);
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
    await followAuthUrl(authUrl);
    expect((await attempt.finished()).status).toBe('succeeded');
  });

  it('fails with the issuer error when the user declines', async () => {
    issuer.authorize = { error: 'access_denied', description: 'The user declined' };
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps);
    const steps = await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(steps.at(-1)!.body).toContain('Sign-in failed: The user declined');
    expect(await attempt.finished()).toMatchObject({ status: 'failed', error: 'Login server error: Sign-in failed: The user declined' });
    expect(store.saved).toEqual([]);
    expect(issuer.requestsTo('/oauth/token')).toEqual([]);
  });

  it('redeems a replayed callback only once and still signs in', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const callback = await callbackUrlFrom(authUrlOf(await attempt.ready()));
    const first = fetch(callback, { redirect: 'manual' });
    await expect.poll(() => issuer.requestsTo('/oauth/token').length).toBeGreaterThan(0);
    const replay = await fetch(callback, { redirect: 'manual' });
    expect(replay.status).toBe(409);
    const answer = await first;
    expect(answer.status).toBe(302);
    await fetch(new URL(answer.headers.get('location')!));
    expect((await attempt.finished()).status).toBe('succeeded');
    const exchanges = issuer.requestsTo('/oauth/token').filter((r) => r.body.startsWith('grant_type=authorization_code'));
    expect(exchanges).toHaveLength(1);
  });

  it.each([
    ['notJson', 'Login server error: Token exchange failed: error decoding response body: not JSON'],
    ['missingRefreshToken', 'Login server error: Token exchange failed: error decoding response body: missing field `refresh_token`'],
    ['idTokenNotJwt', 'Login server error: Token exchange failed: the token endpoint returned an id_token that is not a JWT'],
    ['serverError', 'Login server error: Token exchange failed: token endpoint returned status 500 Internal Server Error: the issuer is having a bad day'],
  ] as const)('fails on a %s token answer, shows it in the browser and saves nothing', async (mode, error) => {
    issuer.tokenMode = mode;
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps);
    const steps = await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(steps.at(-1)!.status).toBe(200);
    expect(steps.at(-1)!.body).toContain('Sign-in could not be completed');
    expect(await attempt.finished()).toEqual({ loginId: attempt.input.loginId, status: 'failed', error });
    expect(store.saved).toEqual([]);
  });

  it('fails at the configured deadline of a slow issuer', async () => {
    issuer.tokenDelayMs = 3_000;
    const { deps } = loginDeps(issuer, { timeoutMs: 300 });
    const attempt = begin(deps);
    await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(await attempt.finished()).toMatchObject({
      error: `Login server error: Token exchange failed: error sending request for url (${issuer.origin}/oauth/token): operation timed out`,
    });
  });

  it('fails when the issuer is down', async () => {
    issuer.tokenMode = 'down';
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    await followAuthUrl(authUrlOf(await attempt.ready()));
    expect((await attempt.finished() as { error: string }).error).toMatch(
      /^Login server error: Token exchange failed: error sending request for url \(.*\/oauth\/token\): /,
    );
  });

  it('signs in without an API key when the API key exchange is refused', async () => {
    issuer.apiKeyMode = 'fail';
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps);
    await followAuthUrl(authUrlOf(await attempt.ready()));
    expect((await attempt.finished()).status).toBe('succeeded');
    expect(store.saved[0]!.apiKey).toBeNull();
  });

  it('fails with the reference text when the credentials cannot be saved', async () => {
    const failing = recordingStore(true);
    const { deps } = loginDeps(issuer, { saveCredentials: failing.save });
    const attempt = begin(deps);
    const steps = await followAuthUrl(authUrlOf(await attempt.ready()));
    expect(steps.at(-1)!.body).toContain('credentials could not be saved locally');
    expect(await attempt.finished()).toMatchObject({ error: 'Login server error: Sign-in completed but credentials could not be saved locally.' });
  });

  it('ends on GET /cancel with Login server error: Login cancelled', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const port = callbackPort(authUrlOf(await attempt.ready()));
    expect(await (await fetch(`http://127.0.0.1:${port}/cancel`)).text()).toBe('Login cancelled');
    expect(await attempt.finished()).toMatchObject({ status: 'failed', error: 'Login server error: Login cancelled' });
    expect(await portIsFree(port)).toBe(true);
  });

  it('times out at its deadline (SimulatedClock) and closes the port', async () => {
    const clock = new SimulatedClock();
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps, { deadlineMs: 60_000 }, clock);
    const port = callbackPort(authUrlOf(await attempt.ready()));
    clock.increment(59_999);
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
    clock.increment(1);
    expect(await attempt.finished()).toMatchObject({ status: 'failed', error: 'Login timed out' });
    expect(await portIsFree(port)).toBe(true);
  });

  it('answers a callback that arrives after the deadline with nothing: the port is closed', async () => {
    const clock = new SimulatedClock();
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps, { deadlineMs: 1_000 }, clock);
    const authUrl = authUrlOf(await attempt.ready());
    clock.increment(1_000);
    await attempt.finished();
    const steps = await followAuthUrl(authUrl);
    expect(steps.map((s) => s.status)).toEqual([302, 0]);
  });

  it('ends as succeeded when the browser never fetches /success, after the grace period', async () => {
    const clock = new SimulatedClock();
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, {}, clock);
    const callback = await callbackUrlFrom(authUrlOf(await attempt.ready()));
    expect((await fetch(callback, { redirect: 'manual' })).status).toBe(302);
    expect(attempt.state()).toEqual({ open: 'confirming' });
    clock.increment(10_000);
    expect((await attempt.finished()).status).toBe('succeeded');
    expect(store.saved).toHaveLength(1);
  });

  it('leaks no code, token, verifier, state or key into logs, reports, output or snapshots', async () => {
    const { deps, logs } = loginDeps(issuer);
    const attempt = begin(deps);
    const authUrl = authUrlOf(await attempt.ready());
    const forged = new URL(await callbackUrlFrom(authUrl));
    forged.searchParams.set('state', 'forged-state-value');
    await fetch(forged);
    await followAuthUrl(authUrl);
    const snapshot = attempt.snapshotJson();
    const output = await attempt.finished();
    const texts = [...logs, snapshot, JSON.stringify(output), JSON.stringify(attempt.reports)];
    expect(issuer.secrets.size).toBeGreaterThan(5);
    expect(leakedSecrets(issuer, texts)).toEqual([]);
  });
});

describe('pasted redirect URL (account/login/complete)', () => {
  it('completes the login from a pasted URL and answers the paste after saving', async () => {
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps);
    const pasted = await callbackUrlFrom(authUrlOf(await attempt.ready()));
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(pasted), requestId: 'r1' });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({ ok: true });
    expect((await attempt.finished()).status).toBe('succeeded');
    expect(store.saved).toHaveLength(1);
  });

  it('refuses a URL of another login as state_mismatch and keeps waiting', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const authUrl = authUrlOf(await attempt.ready());
    const other = new URL(await callbackUrlFrom(authUrl));
    other.searchParams.set('state', 'state-of-another-login');
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(other.toString()), requestId: 'r1' });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({ ok: false, failure: { kind: 'redirectStateMismatch', message: 'State mismatch' } });
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
    await followAuthUrl(authUrl);
    expect((await attempt.finished()).status).toBe('succeeded');
  });

  it.each([
    ['not a url', 'invalidRedirectUrl'],
    ['http://127.0.0.1:1455/success?id_token=x', 'invalidRedirectUrl'],
  ])('refuses %j and keeps waiting', async (text, kind) => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    await attempt.ready();
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(text), requestId: 'r1' });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({ ok: false, failure: { kind } });
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
  });

  it('fails the login on a pasted issuer error and answers the paste with the same text', async () => {
    issuer.authorize = { error: 'access_denied' };
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const pasted = await callbackUrlFrom(authUrlOf(await attempt.ready()));
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(pasted), requestId: 'r1' });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({
      ok: false,
      failure: { kind: 'loginFailed', message: 'Login server error: Sign-in failed: access_denied' },
    });
    expect(await attempt.finished()).toMatchObject({ error: 'Login server error: Sign-in failed: access_denied' });
  });

  it('answers a second paste while the first is being redeemed as not waiting', async () => {
    issuer.tokenDelayMs = 300;
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps);
    const pasted = await callbackUrlFrom(authUrlOf(await attempt.ready()));
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(pasted), requestId: 'r1' });
    await expect.poll(() => attempt.state()).toEqual({ open: { running: 'exchanging' } });
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret(pasted), requestId: 'r2' });
    expect(await attempt.pasteAnswer('r2')).toMatchObject({ ok: false, failure: { kind: 'loginNotWaiting' } });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({ ok: true });
  });
});

describe('device-code login attempt', () => {
  it('reports the verification URL and user code, polls while pending, and signs in once approved', async () => {
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { flow: 'device' });
    const ready = await attempt.ready();
    expect(ready).toMatchObject({ type: 'loginAttempt.ready', details: { flow: 'device', verificationUrl: `${issuer.origin}/codex/device` } });
    const userCode = userCodeOf(ready);
    await expect.poll(() => issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(3);
    expect(attempt.state()).toEqual({ open: { running: 'waiting' } });
    issuer.approveDevice(userCode);
    expect(await attempt.finished()).toMatchObject({ status: 'succeeded' });
    expect(store.saved[0]).toMatchObject({ accountId: 'ws-1', apiKey: null });
    const exchange = new URLSearchParams(issuer.requestsTo('/oauth/token')[0]!.body);
    expect(exchange.get('redirect_uri')).toBe(`${issuer.origin}/deviceauth/callback`);
  });

  it('fails when the device code expires', async () => {
    issuer.deviceExpiresInMs = 200;
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { flow: 'device' });
    await attempt.ready();
    expect(await attempt.finished()).toMatchObject({ status: 'failed', error: 'device code expired' });
    expect(store.saved).toEqual([]);
  });

  it('fails a disallowed workspace with the reference message, without the browser prefix', async () => {
    issuer.user = { ...issuer.user, accountId: 'ws-9' };
    const { deps, store } = loginDeps(issuer);
    const attempt = begin(deps, { flow: 'device', policy: { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] } });
    const ready = await attempt.ready();
    issuer.approveDevice(userCodeOf(ready));
    expect(await attempt.finished()).toMatchObject({ error: 'Login is restricted to workspace id(s) ws-1.' });
    expect(store.saved).toEqual([]);
  });

  it('does not start when the issuer has no device login', async () => {
    issuer.deviceMode = 'disabled';
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps, { flow: 'device' });
    expect(await attempt.ready()).toMatchObject({ type: 'loginAttempt.startFailed', failure: { kind: 'deviceCodeDisabled' } });
    expect(await attempt.finished()).toMatchObject({ status: 'notStarted', failure: { kind: 'deviceCodeDisabled' } });
  });

  it('refuses a pasted URL: only browser logins take one', async () => {
    const { deps } = loginDeps(issuer);
    const attempt = begin(deps, { flow: 'device' });
    await attempt.ready();
    attempt.send({ type: 'attempt.paste', redirectUrl: new Secret('http://127.0.0.1:1455/auth/callback?code=a&state=b'), requestId: 'r1' });
    expect(await attempt.pasteAnswer('r1')).toMatchObject({ ok: false, failure: { kind: 'pasteNotSupported' } });
  });
});

describe('effects nobody provided', () => {
  it('end the attempt as not started instead of hanging', async () => {
    const { createActor, setup } = await import('xstate');
    const { loginAttemptMachine } = await import('../../machines/login-attempt-machine.js');
    const seen: unknown[] = [];
    let output: unknown = null;
    const parent = setup({ actors: { attempt: loginAttemptMachine } }).createMachine({
      invoke: {
        src: 'attempt',
        input: { loginId: 'x', flow: 'browser', policy: { forcedLoginMethod: null, forcedWorkspaceIds: null }, client: null, deadlineMs: 1_000 },
        onDone: { actions: ({ event }) => (output = event.output) },
      },
      on: { '*': { actions: ({ event }) => seen.push(event) } },
    });
    createActor(parent).start();
    expect(output).toMatchObject({ status: 'notStarted', failure: { kind: 'notImplemented' } });
    expect(seen).toMatchObject([{ type: 'loginAttempt.startFailed' }]);
  });
});
