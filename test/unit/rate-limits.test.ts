import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backendUrl } from '../../src/effects/backend-url.js';
import { createFetch } from '../../src/effects/http.js';
import { mapRateLimits, readRateLimits, type BackendGet, type ReadRateLimitsOptions } from '../../src/effects/rate-limits.js';
import { createLogger } from '../../src/log.js';
import { FakeBackend, type Reply } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { selfSigned } from '../helpers/tls.js';

const quiet = createLogger('error', () => {});
const ACCESS_TOKEN = chatgptJwt({ accountId: 'ws-1' });
const USAGE = '/backend-api/wham/usage';
const RESET_CREDITS = '/backend-api/wham/rate-limit-reset-credits';

/** A usage answer with every field the mapping reads. */
const FULL_USAGE = {
  plan_type: 'team',
  rate_limit: {
    allowed: true,
    limit_reached: false,
    primary_window: { used_percent: 42, limit_window_seconds: 18000, reset_after_seconds: 600, reset_at: 1_780_000_000 },
    secondary_window: { used_percent: 7, limit_window_seconds: 604800, reset_after_seconds: 9000, reset_at: 1_780_500_000 },
  },
  credits: { has_credits: true, unlimited: false, balance: '12.50' },
  additional_rate_limits: [
    {
      limit_name: 'GPT-5 Codex Spark',
      metered_feature: 'codex_spark',
      rate_limit: { primary_window: { used_percent: 3, limit_window_seconds: 90, reset_at: 1_780_000_100 }, secondary_window: null },
    },
  ],
  rate_limit_reached_type: { kind: 'workspace_member_credits_depleted' },
  rate_limit_reset_credits: { available_count: 9 },
};

const RESET_DETAILS = {
  available_count: 2,
  credits: [
    {
      id: 'cr-1', reset_type: 'codex_rate_limits', status: 'available',
      granted_at: '2026-11-01T00:00:00Z', expires_at: '2026-12-01T00:00:00Z', title: 'Full reset', description: 'Weekly + 5 hr',
    },
    { id: 'cr-2', reset_type: 'something_new', status: 'paused', granted_at: '2026-10-01T12:00:00.5+02:00' },
  ],
};

const window = (usedPercent: number, windowDurationMins: number | null, resetsAt: number) => ({ usedPercent, windowDurationMins, resetsAt });
const nulls = { normalModelSlug: null, individualLimit: null, spendControlReached: null };

let tls: ReturnType<typeof selfSigned>;
let backend: FakeBackend;
let fetchWithCa: typeof fetch;
beforeAll(async () => {
  tls = selfSigned();
  fetchWithCa = createFetch({ SSL_CERT_FILE: tls.certPath }, quiet);
});
afterEach(async () => backend?.stop());

/**
 * The lead's authorised GET, as the backend path will do it: URL by the
 * §12.2 rule, the three headers, the caller's signal. `calls` records the
 * order in which the module issued its requests.
 */
function authorisedGet(calls: string[] = []): BackendGet {
  return (path, extra, signal) => {
    calls.push(path);
    return fetchWithCa(backendUrl(backend.baseUrl, path), {
      headers: { Authorization: `Bearer ${ACCESS_TOKEN}`, 'ChatGPT-Account-Id': 'ws-1', 'User-Agent': 'ide/1.0 (test)', ...extra },
      signal,
    });
  };
}

async function start(routes: Record<string, Reply | ((r: unknown) => Promise<Reply>)>): Promise<void> {
  backend = await FakeBackend.start(tls);
  for (const [path, reply] of Object.entries(routes)) backend.on(path, reply as Reply);
}

const options = (extra: Partial<ReadRateLimitsOptions> = {}): ReadRateLimitsOptions => ({
  chatgptBaseUrl: backend.baseUrl,
  timeoutMs: 5_000,
  secrets: [ACCESS_TOKEN],
  log: quiet,
  ...extra,
});

const never = () => new Promise<Reply>(() => {});

describe('readRateLimits (SPEC §10) against an HTTPS backend', () => {
  it('maps a full usage answer and the reset-credit details to the wire result', async () => {
    await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: { json: RESET_DETAILS } });
    const codex = {
      limitId: 'codex', limitName: null, ...nulls,
      primary: window(42, 300, 1_780_000_000),
      secondary: window(7, 10080, 1_780_500_000),
      credits: { hasCredits: true, unlimited: false, balance: '12.50' },
      planType: 'team',
      rateLimitReachedType: 'workspace_member_credits_depleted',
    };
    expect(await readRateLimits(authorisedGet(), {}, options())).toEqual({
      ordinaryUsageAllowed: null,
      rateLimits: codex,
      rateLimitsByLimitId: {
        codex,
        codex_spark: {
          limitId: 'codex_spark', limitName: 'GPT-5 Codex Spark', ...nulls,
          primary: window(3, 2, 1_780_000_100), secondary: null, credits: null, planType: 'team', rateLimitReachedType: null,
        },
      },
      rateLimitResetCredits: {
        availableCount: 2,
        credits: [
          {
            id: 'cr-1', resetType: 'codexRateLimits', status: 'available', grantedAt: 1_793_491_200, expiresAt: 1_796_083_200,
            title: 'Full reset', description: 'Weekly + 5 hr',
          },
          { id: 'cr-2', resetType: 'unknown', status: 'unknown', grantedAt: 1_790_848_800, expiresAt: null, title: null, description: null },
        ],
      },
      accountId: null,
      rateLimitUpsell: null,
    });
  });

  it('asks for the reset credits first, then the usage, with the authorised headers and nothing else', async () => {
    await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: { json: RESET_DETAILS } });
    const calls: string[] = [];
    await readRateLimits(authorisedGet(calls), undefined, options());
    expect(calls).toEqual(['rate-limit-reset-credits', 'usage']);
    for (const path of [USAGE, RESET_CREDITS]) {
      const [request] = backend.requestsTo(path);
      expect(request).toMatchObject({ method: 'GET', headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'chatgpt-account-id': 'ws-1', 'user-agent': 'ide/1.0 (test)' } });
      expect(request!.headers).not.toHaveProperty('originator');
      expect(request!.headers).not.toHaveProperty('x-openai-codex-luna-reserve');
    }
  });

  it('adds x-openai-codex-luna-reserve: 1 to the usage call only when supportsLunaReserve', async () => {
    await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: { json: RESET_DETAILS } });
    await readRateLimits(authorisedGet(), { supportsLunaReserve: true }, options());
    expect(backend.requestsTo(USAGE)[0]!.headers['x-openai-codex-luna-reserve']).toBe('1');
    expect(backend.requestsTo(RESET_CREDITS)[0]!.headers).not.toHaveProperty('x-openai-codex-luna-reserve');
  });

  it('skips the reset-credit call with excludeResetCreditDetails and keeps the count from the usage answer', async () => {
    await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: { json: RESET_DETAILS } });
    const result = await readRateLimits(authorisedGet(), { excludeResetCreditDetails: true }, options());
    expect(backend.requestsTo(RESET_CREDITS)).toHaveLength(0);
    expect(result.rateLimitResetCredits).toEqual({ availableCount: 9, credits: null });
  });

  it('maps a minimal usage answer and answers rateLimitResetCredits null on a 404', async () => {
    await start({ [USAGE]: { json: { plan_type: 'plus' } } });
    expect(await readRateLimits(authorisedGet(), {}, options())).toEqual({
      ordinaryUsageAllowed: null,
      rateLimits: { limitId: 'codex', limitName: null, ...nulls, primary: null, secondary: null, credits: null, planType: 'plus', rateLimitReachedType: null },
      rateLimitsByLimitId: {
        codex: { limitId: 'codex', limitName: null, ...nulls, primary: null, secondary: null, credits: null, planType: 'plus', rateLimitReachedType: null },
      },
      rateLimitResetCredits: null,
      accountId: null,
      rateLimitUpsell: null,
    });
    expect(backend.requestsTo(RESET_CREDITS)).toHaveLength(1);
  });

  it('falls back to the usage count when the reset-credit details fail (401, 5xx, bad body or bad timestamp)', async () => {
    for (const details of [
      { status: 401, json: { error: 'nope' } },
      { status: 503, text: 'busy' },
      { text: 'not json' },
      { json: { available_count: 1, credits: [{ id: 'x', reset_type: 'codex_rate_limits', status: 'available', granted_at: 'yesterday' }] } },
    ] satisfies Reply[]) {
      await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: details });
      expect((await readRateLimits(authorisedGet(), {}, options())).rateLimitResetCredits).toEqual({ availableCount: 9, credits: null });
      await backend.stop();
    }
  });

  it('falls back when the reset-credit details miss their own deadline, without holding up the answer', async () => {
    await start({ [USAGE]: { json: FULL_USAGE }, [RESET_CREDITS]: never });
    const started = Date.now();
    const result = await readRateLimits(authorisedGet(), {}, options({ resetCreditsTimeoutMs: 150 }));
    expect(result.rateLimitResetCredits).toEqual({ availableCount: 9, credits: null });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('fails a 401 with the reference text and backendUnauthorized', async () => {
    await start({ [USAGE]: { status: 401, json: { error: { message: 'Your session expired', code: 'token_expired' } } }, [RESET_CREDITS]: { json: RESET_DETAILS } });
    const url = `${backend.baseUrl}wham/usage`;
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toMatchObject({
      kind: 'backendUnauthorized',
      status: 401,
      message: `failed to fetch codex rate limits: GET ${url} failed: 401 Unauthorized; content-type=application/json; body={"error":{"message":"Your session expired","code":"token_expired"}}`,
    });
  });

  it('fails a 5xx with the reference text and backendFailed', async () => {
    await start({ [USAGE]: { status: 502, text: 'upstream broke', headers: { 'content-type': 'text/plain' } } });
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toMatchObject({
      kind: 'backendFailed',
      message: `failed to fetch codex rate limits: GET ${backend.baseUrl}wham/usage failed: 502 Bad Gateway; content-type=text/plain; body=upstream broke`,
    });
  });

  it('never quotes a token from an error body', async () => {
    const body = {
      error: `Bearer ${ACCESS_TOKEN} was rejected`,
      echo: ACCESS_TOKEN,
      refresh_token: 'rt-secret-1',
      session: { accessToken: 'opaque-access-xyz', api_key: 'sk-proj-abcdef' },
    };
    await start({ [USAGE]: { status: 401, json: body } });
    const error = (await readRateLimits(authorisedGet(), {}, options()).catch((e: Error) => e)) as Error;
    for (const secret of [ACCESS_TOKEN, 'rt-secret-1', 'opaque-access-xyz', 'sk-proj-abcdef', ACCESS_TOKEN.split('.')[1]!]) {
      expect(error.message).not.toContain(secret);
    }
    expect(error.message).toContain('[redacted]');
  });

  it('fails a non-JSON success body with a decode error in serde wording', async () => {
    await start({ [USAGE]: { text: 'not json', headers: { 'content-type': 'text/plain' } } });
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toMatchObject({
      kind: 'backendFailed',
      message: `failed to fetch codex rate limits: Decode error for ${backend.baseUrl}wham/usage: expected ident at line 1 column 2; content-type=text/plain; body=not json`,
    });
  });

  it('fails an empty success body with serde wording too', async () => {
    await start({ [USAGE]: { status: 200, text: '' } });
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toThrow(
      `Decode error for ${backend.baseUrl}wham/usage: EOF while parsing a value at line 1 column 0; content-type=; body=`,
    );
  });

  it('fails a success body of the wrong shape naming the missing field', async () => {
    await start({ [USAGE]: { json: {} } });
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toThrow(
      `Decode error for ${backend.baseUrl}wham/usage: missing field \`plan_type\`; content-type=application/json; body={}`,
    );
  });

  it('refuses a huge success body without buffering it, and keeps the error text short', async () => {
    await start({ [USAGE]: { text: `{"plan_type":"${'x'.repeat(5_000_000)}"}`, headers: { 'content-type': 'application/json' } } });
    const error = (await readRateLimits(authorisedGet(), {}, options()).catch((e: Error) => e)) as Error;
    expect(error.message).toMatch(/^failed to fetch codex rate limits: Decode error for .*: body larger than 1048576 bytes; content-type=application\/json; body=\{"plan_type":"x+… \(truncated\)$/);
    expect(error.message.length).toBeLessThan(1_300);
  });

  it('caps a huge error body in the error text', async () => {
    await start({ [USAGE]: { status: 500, text: 'e'.repeat(3_000_000) } });
    const error = (await readRateLimits(authorisedGet(), {}, options()).catch((e: Error) => e)) as Error;
    expect(error.message).toMatch(/500 Internal Server Error; content-type=; body=e{1024}… \(truncated\)$/);
  });

  it('fails a usage call that misses its deadline with backendTimeout', async () => {
    await start({ [USAGE]: never, [RESET_CREDITS]: { json: RESET_DETAILS } });
    const started = Date.now();
    await expect(readRateLimits(authorisedGet(), {}, options({ timeoutMs: 200 }))).rejects.toMatchObject({
      kind: 'backendTimeout',
      message: `failed to fetch codex rate limits: GET ${backend.baseUrl}wham/usage timed out after 200ms`,
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('does not wait for slow reset-credit details once the usage call has failed', async () => {
    await start({ [USAGE]: { status: 500, text: 'down' }, [RESET_CREDITS]: never });
    const started = Date.now();
    await expect(readRateLimits(authorisedGet(), {}, options({ resetCreditsTimeoutMs: 10_000 }))).rejects.toMatchObject({ kind: 'backendFailed' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('rethrows the reason when the caller aborts', async () => {
    await start({ [USAGE]: never, [RESET_CREDITS]: never });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('request cancelled')), 50);
    await expect(readRateLimits(authorisedGet(), {}, options({ signal: abort.signal }))).rejects.toThrow('request cancelled');
  });

  it('words a dropped connection as reqwest does', async () => {
    await start({ [USAGE]: { hangUp: true } });
    await expect(readRateLimits(authorisedGet(), {}, options())).rejects.toMatchObject({
      kind: 'backendFailed',
      message: `failed to fetch codex rate limits: error sending request for url (${backend.baseUrl}wham/usage)`,
    });
  });
});

describe('mapRateLimits', () => {
  const usage = { plan_type: 'pro', rate_limit: { primary_window: { used_percent: 1.5, limit_window_seconds: 61, reset_at: 5 } } };

  it('rounds window lengths up to whole minutes and leaves a zero-length window without one', () => {
    expect(mapRateLimits(usage, null).rateLimits.primary).toEqual(window(1.5, 2, 5));
    const zero = { plan_type: 'pro', rate_limit: { primary_window: { used_percent: 0, limit_window_seconds: 0, reset_at: 5 } } };
    expect(mapRateLimits(zero, null).rateLimits.primary).toEqual(window(0, null, 5));
  });

  it('reads a plan it does not know as unknown, and education as edu', () => {
    expect(mapRateLimits({ plan_type: 'quorum' }, null).rateLimits.planType).toBe('unknown');
    expect(mapRateLimits({ plan_type: 'education' }, null).rateLimits.planType).toBe('edu');
  });

  it('passes ordinaryUsageAllowed on only when the answer is about the active account and user', () => {
    const about = { plan_type: 'pro', account_id: 'ws-1', user_id: 'u-1', ordinary_usage_allowed: true };
    expect(mapRateLimits(about, null, { accountId: 'ws-1', userId: 'u-1' })).toMatchObject({ ordinaryUsageAllowed: true, accountId: 'ws-1' });
    expect(mapRateLimits(about, null, { accountId: 'ws-2', userId: 'u-1' }).ordinaryUsageAllowed).toBeNull();
    expect(mapRateLimits(about, null).ordinaryUsageAllowed).toBeNull();
  });
});
