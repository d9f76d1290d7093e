import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptAuthFile, chatgptJwt } from '../helpers/jwt.js';
import { ServerProcess } from '../helpers/server-process.js';

const USAGE = '/backend-api/wham/usage';
const USAGE_BODY = { plan_type: 'plus', rate_limit: { primary_window: { used_percent: 5, limit_window_seconds: 18000, reset_at: 1_780_000_000 } } };

/**
 * The session's backend calls end through `xstate.done.actor.call-<id>`
 * events; these tests failed (the request hung) while the session listened
 * for `xstate.done.actor.call-*`, a wildcard XState never matches.
 */
describe('account/rateLimits/read with host tokens', () => {
  let backend: FakeBackend | undefined;
  let server: ServerProcess | undefined;
  afterEach(async () => {
    server?.kill();
    await backend?.stop();
  });

  async function loggedInWithHostTokens(usage: () => { status?: number; json?: unknown }) {
    backend = await FakeBackend.start();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme', origin: backend.origin }]));
    backend.on(USAGE, usage);
    server = ServerProcess.start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n`, env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' } });
    await server.initialize();
    const accessToken = chatgptJwt({ accountId: 'ws-1', planType: 'plus', email: 'a@b.c' });
    await server.request('account/login/start', { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: 'ws-1' });
    await server.waitFor((m) => m.method === 'account/updated' && m.params.authMode === 'chatgptAuthTokens');
    return { s: server, b: backend };
  }

  it('answers from the usage endpoint', async () => {
    const { s } = await loggedInWithHostTokens(() => ({ json: USAGE_BODY }));
    const response = await s.request('account/rateLimits/read', {});
    expect(response.result.rateLimits).toMatchObject({ limitId: 'codex', planType: 'plus', primary: { usedPercent: 5, windowDurationMins: 300 } });
  });

  it('asks the host for new tokens after a 401, shows the refresh in account/state/read meanwhile, and retries once', async () => {
    let calls = 0;
    const { s, b } = await loggedInWithHostTokens(() => (++calls === 1 ? { status: 401, json: { detail: 'expired' } } : { json: USAGE_BODY }));
    s.send({ id: 'limits', method: 'account/rateLimits/read', params: {} });
    const ask = await s.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh');
    expect(ask.params).toEqual({ reason: 'unauthorized', previousAccountId: 'ws-1' });
    const during = (await s.request('account/state/read', {})).result;
    expect(during).toMatchObject({ refreshing: true, machines: { session: { refreshing: 'external' } } });
    const fresh = chatgptJwt({ accountId: 'ws-1', planType: 'plus', email: 'a@b.c', userId: 'u-2' });
    s.send({ id: ask.id, result: { accessToken: fresh, chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' } });
    expect((await s.response('limits')).result.rateLimits.planType).toBe('plus');
    const usage = b.requestsTo(USAGE);
    expect(usage).toHaveLength(2);
    expect(usage[1]!.headers.authorization).toBe(`Bearer ${fresh}`);
    expect((await s.request('account/state/read', {})).result.refreshing).toBe(false);
  });

  it('keeps a call in flight when another process writes auth.json while host tokens are active (found by the model test)', async () => {
    let calls = 0;
    const { s } = await loggedInWithHostTokens(() => (++calls === 1 ? { status: 401, json: { detail: 'expired' } } : { json: USAGE_BODY }));
    // Codex signs in elsewhere: the stored credentials change, the host's tokens stay the active ones.
    const file = join(s.home, 'auth.json');
    writeFileSync(`${file}.codex`, JSON.stringify(chatgptAuthFile()), { mode: 0o600 });
    renameSync(`${file}.codex`, file);
    s.send({ id: 'limits', method: 'account/rateLimits/read', params: {} });
    const ask = await s.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh');
    await s.stderrMatching(/auth\.json changed elsewhere/);
    const fresh = chatgptJwt({ accountId: 'ws-1', planType: 'plus', email: 'a@b.c', userId: 'u-3' });
    s.send({ id: ask.id, result: { accessToken: fresh, chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' } });
    expect((await s.response('limits')).result.rateLimits.planType).toBe('plus');
    expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({ authMethod: 'chatgptAuthTokens', authToken: fresh, requiresOpenaiAuth: true });
  });
});
