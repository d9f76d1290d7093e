import { describe, expect, it } from 'vitest';
import type { Policy, StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import type { BackendCallInput } from '../../machines/session-machine.js';
import { externalLogin, NO_POLICY, startMachine, storedChatgpt, type Fakes, type Reply, type RequestInput } from './harness.js';

/**
 * The rest of the account surface in the real account chart
 * (SPEC-account-surface §12–§18): the auth gate, the backend calls the
 * session makes, the security-setup fallback and the gateway-OAuth answers.
 * The fake backend answers every call with the same body; what the chart
 * does with it is passed on as is.
 */

const BACKEND_BODY = { rateLimits: { limitId: 'codex' }, rateLimitsByLimitId: null };
const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const storedKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk-stored') };
const usage = (threadId: string | null = null): RequestInput => ({ type: 'usage.read', threadId });
const messages: RequestInput = { type: 'workspaceMessages.read' };
const consume: RequestInput = { type: 'resetCredit.consume', idempotencyKey: 'key-1', creditId: 'credit-1' };
const nudge: RequestInput = { type: 'addCreditsNudge.send', creditType: 'credits' };
const securitySetup: RequestInput = { type: 'securitySetup.read' };
const NO_NOTICE = { ok: true, value: { kind: 'backend', result: { notice: null } } };

async function started(fakes: Fakes = {}, policy: Policy = NO_POLICY) {
  const m = startMachine(policy, fakes);
  await m.settle();
  return m;
}

const failureOf = (reply: Reply) => (reply.ok ? null : reply.failure);

describe('the auth gate (§12.1)', () => {
  it('asks a logged-out host for an account in each method’s words, calling nothing', async () => {
    const m = await started();
    expect(failureOf(await m.request(usage()))).toEqual({
      kind: 'accountAuthRequired',
      message: 'codex account authentication required to read token usage',
    });
    expect(failureOf(await m.request(messages))?.message).toBe('codex account authentication required to read workspace messages');
    expect(failureOf(await m.request(consume))?.message).toBe('codex account authentication required for rate limit reset credits');
    expect(failureOf(await m.request(nudge))?.message).toBe('codex account authentication required to notify workspace owner');
    expect(m.calls.backend).toEqual([]);
    expect(m.emitted.filter((e) => e.type !== 'reply')).toEqual([]);
  });

  it('asks a host with an API key for ChatGPT auth, calling nothing', async () => {
    const m = await started({ stored: storedKey });
    expect(failureOf(await m.request(usage()))).toEqual({
      kind: 'chatgptAuthRequired',
      message: 'chatgpt authentication required to read token usage',
    });
    expect(failureOf(await m.request(nudge))?.message).toBe('chatgpt authentication required to notify workspace owner');
    expect(m.calls.backend).toEqual([]);
  });

  it('treats stored ChatGPT credentials hidden by a forced API login as logged out', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') }, FORCE_API);
    expect(failureOf(await m.request(messages))).toEqual({
      kind: 'accountAuthRequired',
      message: 'codex account authentication required to read workspace messages',
    });
  });

  it('answers a request sent while the credentials load once they are known', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey }, { hold: ['load'] });
    const reply = m.send(usage());
    await m.settle();
    m.release('load');
    expect(failureOf(await reply)?.kind).toBe('chatgptAuthRequired');
  });

  it('has the session make the call with managed credentials and passes the answer on', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    const reply = await m.request(consume);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'backend', result: BACKEND_BODY } });
    expect(m.calls.backend).toEqual([{ requestId: reply.requestId, accessToken: 'access-token-ws-1', retried: false }]);
    // None of these methods notifies (§12.2).
    expect(m.emitted.filter((e) => e.type !== 'reply')).toEqual([]);
  });

  it('asks the session for the call each method names', async () => {
    const inputs: BackendCallInput[] = [];
    const m = await started({ stored: storedChatgpt('ws-1'), onBackendCall: (input) => inputs.push(input) });
    const thread = '0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    await m.request(usage(thread));
    await m.request(messages);
    await m.request(consume);
    await m.request(nudge);
    expect(inputs.map((i) => i.call)).toEqual([
      { kind: 'usage', threadId: thread },
      { kind: 'workspaceMessages' },
      { kind: 'consume', idempotencyKey: 'key-1', creditId: 'credit-1' },
      { kind: 'nudge', creditType: 'credits' },
    ]);
  });

  it('calls the backend with host tokens even while their routing discovery fails', async () => {
    const m = await started({ workspaces: [] });
    await m.request(externalLogin('ws-2'));
    const reply = await m.request(usage());
    expect(reply).toMatchObject({ ok: true, value: { kind: 'backend', result: BACKEND_BODY } });
    expect(m.calls.backend.map((c) => c.accessToken)).toEqual(['access-ws-2']);
  });

  it('passes a backend failure on as the request’s failure', async () => {
    const m = await started({ stored: storedChatgpt('ws-1'), backendFails: 'failed to fetch workspace messages: 500' });
    expect(failureOf(await m.request(messages))).toEqual({ kind: 'backendFailed', message: 'failed to fetch workspace messages: 500' });
  });

  it('answers a call a logout abandons with a failure, once', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    m.hold('backend');
    const reply = m.send(usage());
    await m.settle();
    await m.request({ type: 'logout' });
    expect(failureOf(await reply)).toEqual({
      kind: 'backendFailed',
      message: 'the request was abandoned: the credentials changed (logout or a new login)',
    });
    m.release('backend');
    await m.settle();
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });
});

describe('account/securitySetup/read (§14)', () => {
  it('answers no notice without a call when logged out, with an API key or with host tokens', async () => {
    const loggedOut = await started();
    expect(await loggedOut.request(securitySetup)).toMatchObject(NO_NOTICE);
    const withKey = await started({ stored: storedKey });
    expect(await withKey.request(securitySetup)).toMatchObject(NO_NOTICE);
    const withHostTokens = await started();
    await withHostTokens.request(externalLogin('ws-1'));
    expect(await withHostTokens.request(securitySetup)).toMatchObject(NO_NOTICE);
    expect([loggedOut, withKey, withHostTokens].flatMap((m) => m.calls.backend)).toEqual([]);
  });

  it('answers no notice without a call when the managed login names no account', async () => {
    const noAccount: StoredChatgpt = { ...storedChatgpt('ws-1'), accountId: null };
    const m = await started({ stored: noAccount });
    expect(await m.request(securitySetup)).toMatchObject(NO_NOTICE);
    expect(m.calls.backend).toEqual([]);
  });

  it('answers no notice without a call when the managed login names no user', async () => {
    const base = storedChatgpt('ws-1');
    const m = await started({ stored: { ...base, claims: { ...base.claims, userId: null } } });
    expect(await m.request(securitySetup)).toMatchObject(NO_NOTICE);
    expect(m.calls.backend).toEqual([]);
  });

  it('asks the backend with the local account and user ids of a managed login', async () => {
    const inputs: BackendCallInput[] = [];
    const m = await started({ stored: storedChatgpt('ws-1'), onBackendCall: (input) => inputs.push(input) });
    const reply = await m.request(securitySetup);
    expect(inputs.map((i) => i.call)).toEqual([{ kind: 'securitySetup', accountId: 'ws-1', userId: 'user-1' }]);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'backend', result: BACKEND_BODY } });
  });

  it('answers no notice when the call fails', async () => {
    const m = await started({ stored: storedChatgpt('ws-1'), backendFails: 'failed to fetch security setup: 500' });
    expect(await m.request(securitySetup)).toMatchObject(NO_NOTICE);
    expect(m.calls.backend).toHaveLength(1);
  });

  it('answers no notice when a logout abandons the call', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    m.hold('backend');
    const reply = m.send(securitySetup);
    await m.settle();
    await m.request({ type: 'logout' });
    expect(await reply).toMatchObject(NO_NOTICE);
  });

  it('keeps nothing of an answered call: no waiter and no fallback accumulate', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    await m.request(securitySetup);
    await m.request(messages);
    const { backendWaiters, backendFallbacks } = m.actor.getSnapshot().context;
    expect({ backendWaiters, backendFallbacks }).toEqual({ backendWaiters: [], backendFallbacks: {} });
  });
});

describe('gateway OAuth (§18)', () => {
  it('reads the default OpenAI provider from config alone', async () => {
    const m = await started();
    expect(await m.request({ type: 'gatewayOAuth.read', modelProvider: null })).toMatchObject({
      ok: true,
      value: {
        kind: 'backend',
        result: { providerId: 'openai', providerName: 'OpenAI', required: false, supportsDeviceAuth: false, status: null, error: null },
      },
    });
    expect(m.calls.backend).toEqual([]);
  });

  it('refuses an unknown provider and a login for a provider without gateway OAuth', async () => {
    const m = await started();
    expect(failureOf(await m.request({ type: 'gatewayOAuth.read', modelProvider: 'nope' }))).toEqual({
      kind: 'modelProviderNotConfigured',
      modelProvider: 'nope',
    });
    expect(failureOf(await m.request({ type: 'gatewayOAuth.login', modelProvider: null, deviceAuth: false }))).toEqual({
      kind: 'gatewayOAuthNotUsed',
    });
  });

  it('answers a cancel with an empty object', async () => {
    const m = await started();
    expect(await m.request({ type: 'gatewayOAuth.cancel' })).toMatchObject({ ok: true, value: { kind: 'backend', result: {} } });
  });

  it('answers from the model providers of config.toml', async () => {
    const m = startMachine(NO_POLICY, {}, {
      modelProviders: { selected: 'local', configured: [{ id: 'local', name: 'Local models', gatewayOAuth: false }] },
    });
    await m.settle();
    expect(await m.request({ type: 'gatewayOAuth.read', modelProvider: null })).toMatchObject({
      ok: true,
      value: { kind: 'backend', result: { providerId: 'local', providerName: 'Local models', required: false } },
    });
  });
});
