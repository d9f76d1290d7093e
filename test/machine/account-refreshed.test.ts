import { describe, expect, it } from 'vitest';
import { externalLogin, NO_POLICY, rateLimits, startMachine, storedChatgpt, type Fakes } from './harness.js';

/**
 * What the account chart keeps of refreshed credentials (SPEC §8, §9.3), and
 * how stored ChatGPT credentials announce themselves when their first
 * discovery fails (SPEC §3.1).
 */

const read = { type: 'account.read', refreshToken: false } as const;

async function withHostTokens(fakes: Fakes, planType: string | null = 'team') {
  const m = startMachine(NO_POLICY, fakes);
  await m.settle();
  await m.request(externalLogin('ws-1', { planType }));
  m.emitted.length = 0;
  m.fakes.backendRejects = ['access-ws-1'];
  return m;
}

describe('host-refreshed tokens (SPEC §9.3)', () => {
  it('take the plan the host names, without an account/updated', async () => {
    const m = await withHostTokens({ hostRefresh: { accountId: 'ws-1', accessToken: 'access-2', planType: 'enterprise' } });
    await m.request(rateLimits);
    expect(await m.request(read)).toMatchObject({
      ok: true,
      value: { account: { authMode: 'chatgptAuthTokens', planType: 'enterprise', email: 'a@b.c', userId: 'user-1' } },
    });
    expect(m.emitted.filter((e) => e.type === 'account.updated')).toEqual([]);
  });

  it('take the token’s plan claim when the host names no plan', async () => {
    const m = await withHostTokens({ hostRefresh: { accountId: 'ws-1', accessToken: 'access-2', planType: null } });
    await m.request(rateLimits);
    // `claims()` of the harness: plan `plus`, replacing the `team` of the login.
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { planType: 'plus' } } });
  });

  it('read an unknown plan the host names as unknown', async () => {
    const m = await withHostTokens({ hostRefresh: { accountId: 'ws-1', accessToken: 'access-2', planType: 'platinum' } });
    await m.request(rateLimits);
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { planType: 'unknown' } } });
  });

  it('become the token getAuthStatus reports', async () => {
    const m = await withHostTokens({ hostRefresh: { accountId: 'ws-1', accessToken: 'access-2' } });
    await m.request(rateLimits);
    const status = await m.request({ type: 'authStatus.read', includeToken: true });
    expect(status.ok && status.value.kind === 'authStatus' && status.value.status.token?.reveal()).toBe('access-2');
  });
});

describe('a managed refresh (SPEC §8)', () => {
  it('makes the rotated access token the one getAuthStatus reports', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(read);
    await m.request({ type: 'account.read', refreshToken: true });
    const status = await m.request({ type: 'authStatus.read', includeToken: true });
    expect(status.ok && status.value.kind === 'authStatus' && status.value.status.token?.reveal()).toBe('access-token-ws-1-r1');
  });
});

describe('stored ChatGPT credentials whose first discovery fails (SPEC §3.1)', () => {
  it('answer the read with the failure and notify nothing yet', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1'), workspaces: [] });
    const reply = await m.request(read);
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'discoveryFailed', message: 'workspace routing discovery failed' } });
    expect(m.emitted.filter((e) => e.type === 'account.updated')).toEqual([]);
  });

  it('send their account/updated at the first discovery that succeeds, before that read’s reply', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1'), workspaces: [] });
    await m.request(read);
    m.fakes.workspaces = ['ws-1'];
    m.emitted.length = 0;
    const reply = await m.request(read);
    expect(m.emitted).toEqual([{ type: 'account.updated', authMode: 'chatgpt', planType: 'pro' }, reply]);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt' } } });
  });
});
