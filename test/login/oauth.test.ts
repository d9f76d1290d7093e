import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { buildChatgptRecord, formatLastRefresh } from '../../src/effects/login/auth-record.js';
import { oauthErrorDetail } from '../../src/effects/login/http-errors.js';
import { buildAuthorizeUrl, callbackUri, challengeFor, createPkce, createState } from '../../src/effects/login/oauth.js';
import { checkCallbackQuery, checkPastedRedirectUrl, issuerErrorDetail } from '../../src/effects/login/redirect.js';
import { classifyRefreshFailure, refreshErrorCode } from '../../src/effects/login/refresh.js';
import { serializeAuth } from '../../src/effects/storage.js';
import { toResponseError } from '../../src/rpc/errors.js';

const BASE64URL = /^[A-Za-z0-9_-]+$/;

describe('PKCE and state (SPEC §6.2)', () => {
  it('makes an 86-character base64url verifier from 64 random bytes', () => {
    const { verifier } = createPkce();
    expect(verifier).toMatch(BASE64URL);
    expect(verifier).toHaveLength(86);
    expect(Buffer.from(verifier, 'base64url')).toHaveLength(64);
  });

  it('makes the challenge the base64url SHA-256 of the verifier (S256, 43 characters)', () => {
    const { verifier, challenge } = createPkce();
    expect(challenge).toBe(createHash('sha256').update(verifier, 'ascii').digest().toString('base64url'));
    expect(challenge).toHaveLength(43);
    expect(challengeFor(verifier)).toBe(challenge);
  });

  it('matches the RFC 7636 appendix B example', () => {
    expect(challengeFor('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes a fresh 43-character state from 32 random bytes on every call', () => {
    const states = new Set(Array.from({ length: 50 }, createState));
    expect(states.size).toBe(50);
    for (const state of states) {
      expect(state).toMatch(BASE64URL);
      expect(Buffer.from(state, 'base64url')).toHaveLength(32);
    }
  });
});

describe('authorize URL (SPEC §6.2)', () => {
  const base = {
    issuer: 'https://auth.openai.com',
    redirectUri: callbackUri(1455),
    challenge: 'C'.repeat(43),
    state: 'S'.repeat(43),
    originator: 'my-app',
  };

  it('lists the parameters in the reference order, form-encoded with + for spaces', () => {
    expect(buildAuthorizeUrl({ ...base, allowedWorkspaceIds: null })).toBe(
      'https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann' +
        '&redirect_uri=http%3A%2F%2F127.0.0.1%3A1455%2Fauth%2Fcallback' +
        `&code_challenge=${'C'.repeat(43)}&code_challenge_method=S256&state=${'S'.repeat(43)}` +
        '&scope=openid+profile+email+offline_access+api.connectors.read+api.connectors.invoke' +
        '&id_token_add_organizations=true&codex_cli_simplified_flow=true&originator=my-app',
    );
  });

  it('adds allowed_workspace_id last, comma-separated, under a forced workspace', () => {
    const url = buildAuthorizeUrl({ ...base, allowedWorkspaceIds: ['ws-1', 'ws-3'] });
    expect(url.endsWith('&originator=my-app&allowed_workspace_id=ws-1%2Cws-3')).toBe(true);
    expect([...new URL(url).searchParams.keys()].at(-1)).toBe('allowed_workspace_id');
  });

  it('encodes an originator with spaces and symbols', () => {
    const url = new URL(buildAuthorizeUrl({ ...base, originator: 'My App & Co', allowedWorkspaceIds: null }));
    expect(url.searchParams.get('originator')).toBe('My App & Co');
    expect(url.search).toContain('originator=My+App+%26+Co');
  });
});

describe('callback and pasted redirect checks', () => {
  const state = 'right-state-'.padEnd(43, 'x');
  const q = (s: string) => new URLSearchParams(s);

  it('refuses a wrong or missing state before anything else, even with error=', () => {
    expect(checkCallbackQuery(q('code=c&state=wrong'), state)).toEqual({ kind: 'stateMismatch' });
    expect(checkCallbackQuery(q('code=c'), state)).toEqual({ kind: 'stateMismatch' });
    expect(checkCallbackQuery(q('error=access_denied&state=wrong'), state)).toEqual({ kind: 'stateMismatch' });
  });

  it('reads an issuer error with the right state in the reference wording', () => {
    expect(checkCallbackQuery(q(`error=access_denied&state=${state}`), state)).toEqual({ kind: 'issuerError', detail: 'Sign-in failed: access_denied' });
    expect(checkCallbackQuery(q(`error=access_denied&error_description=Nope&state=${state}`), state)).toEqual({
      kind: 'issuerError',
      detail: 'Sign-in failed: Nope',
    });
    expect(issuerErrorDetail('access_denied', 'missing_codex_entitlement')).toMatch(/^Codex is not enabled for your workspace/);
  });

  it('wants a non-empty code with the right state', () => {
    expect(checkCallbackQuery(q(`state=${state}`), state)).toEqual({ kind: 'missingCode' });
    expect(checkCallbackQuery(q(`code=&state=${state}`), state)).toEqual({ kind: 'missingCode' });
    expect(checkCallbackQuery(q(`code=abc&state=${state}`), state)).toEqual({ kind: 'code', code: 'abc' });
  });

  it('accepts a pasted redirect URL on any host, with surrounding blanks', () => {
    expect(checkPastedRedirectUrl(`  http://localhost:1455/auth/callback?code=abc&state=${state}\n`, state)).toEqual({ kind: 'code', code: 'abc' });
  });

  it('refuses pasted text that is not the sign-in redirect as invalid_redirect_url', () => {
    expect(checkPastedRedirectUrl('abc', state)).toMatchObject({ kind: 'invalidUrl', detail: 'invalid redirect URL: not an absolute URL' });
    expect(checkPastedRedirectUrl(`ftp://x/auth/callback?code=a&state=${state}`, state)).toMatchObject({ kind: 'invalidUrl' });
    expect(checkPastedRedirectUrl(`http://127.0.0.1:1455/success?state=${state}`, state)).toMatchObject({
      kind: 'invalidUrl',
      detail: expect.stringContaining('got path /success'),
    });
  });

  it('applies the callback checks to a pasted URL', () => {
    expect(checkPastedRedirectUrl('http://127.0.0.1:1455/auth/callback?code=a&state=other', state)).toEqual({ kind: 'stateMismatch' });
    expect(checkPastedRedirectUrl(`http://127.0.0.1:1455/auth/callback?error=access_denied&state=${state}`, state)).toMatchObject({
      kind: 'issuerError',
    });
  });
});

describe('auth.json record of a ChatGPT login (SPEC §5)', () => {
  it('writes last_refresh in UTC with 9 fractional digits (30 characters)', () => {
    const text = formatLastRefresh(1_795_566_283_123_456_789n);
    expect(text).toBe('2026-11-25T00:24:43.123456789Z');
    expect(text).toHaveLength(30);
    expect(formatLastRefresh(1_795_566_283_000_000_001n)).toBe('2026-11-25T00:24:43.000000001Z');
  });

  it('serializes with oauth_provenance and a 43-character login_owner_id in the reference key order', () => {
    const record = buildChatgptRecord(
      {
        idToken: new Secret('id.jwt.x'),
        accessToken: new Secret('access.jwt.x'),
        refreshToken: new Secret('rt-1'),
        claims: { email: 'a@b.c', userId: 'user-1', accountId: 'ws-1', planType: 'plus' },
      },
      new Secret('sk-exchanged'),
      { issuer: 'https://auth.openai.com', now: () => 1_795_566_283_123_456_789n },
    );
    const file = JSON.parse(serializeAuth(record));
    expect(Object.keys(file)).toEqual(['auth_mode', 'OPENAI_API_KEY', 'tokens', 'last_refresh']);
    expect(Object.keys(file.tokens)).toEqual(['id_token', 'access_token', 'refresh_token', 'oauth_provenance', 'login_owner_id', 'account_id']);
    expect(file.tokens.oauth_provenance).toEqual({ issuer: 'https://auth.openai.com', client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' });
    expect(file.tokens.login_owner_id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(file).toMatchObject({ auth_mode: 'chatgpt', OPENAI_API_KEY: 'sk-exchanged', last_refresh: '2026-11-25T00:24:43.123456789Z' });
    expect(file.tokens.account_id).toBe('ws-1');
  });

  it('draws a new login_owner_id for every login', () => {
    const tokens = { idToken: new Secret('a'), accessToken: new Secret('b'), refreshToken: new Secret('c'), claims: { email: null, userId: null, accountId: null, planType: null } };
    const ids = new Set(Array.from({ length: 20 }, () => buildChatgptRecord(tokens, null, { issuer: 'x' }).loginOwnerId));
    expect(ids.size).toBe(20);
  });
});

describe('error bodies', () => {
  it('reads error_description, error.message, then the error code', () => {
    expect(oauthErrorDetail('{"error":"invalid_grant","error_description":"code used"}')).toBe('code used');
    expect(oauthErrorDetail('{"error":{"message":"bad","code":"x"}}')).toBe('bad');
    expect(oauthErrorDetail('{"error":"invalid_grant"}')).toBe('invalid_grant');
    expect(oauthErrorDetail('{"error":{"code":"x"}}')).toBe('x');
    expect(oauthErrorDetail('')).toBe('unknown error');
  });

  it('describes a body that is not JSON by its size only', () => {
    expect(oauthErrorDetail('<html>token=secret</html>')).toBe('non-JSON body (25 bytes)');
  });

  it('finds the refresh error code in each of the three body shapes (SPEC §8.1)', () => {
    expect(refreshErrorCode('{"error":{"code":"refresh_token_reused"}}')).toBe('refresh_token_reused');
    expect(refreshErrorCode('{"error":"refresh_token_expired"}')).toBe('refresh_token_expired');
    expect(refreshErrorCode('{"code":"refresh_token_invalidated"}')).toBe('refresh_token_invalidated');
    expect(refreshErrorCode('nope')).toBeNull();
  });

  it.each([
    [401, '{"error":{"code":"refresh_token_expired"}}', 'refresh_token_expired', 'because your refresh token has expired'],
    [401, '{"error":"refresh_token_reused"}', 'refresh_token_reused', 'because your refresh token was already used'],
    [401, '{"code":"refresh_token_invalidated"}', 'refresh_token_invalidated', 'because your refresh token was revoked'],
    [401, '{"error":"invalid_grant"}', 'refresh_token_rejected', 'could not be refreshed. Please log out'],
    [401, 'not json', 'refresh_token_rejected', 'could not be refreshed. Please log out'],
  ])('classifies a %i %s as %s with the reference text', (status, body, reason, text) => {
    const wire = toResponseError(classifyRefreshFailure(status, body).toFailure());
    expect(wire.data).toEqual({ reason, recovery: 'relogin' });
    expect(wire.message).toContain(text);
    expect(wire.message).toMatch(/Please log out and sign in again\.$/);
  });

  it.each([400, 403, 429, 500, 502])('treats a %i as transient (refresh_failed, retry)', (status) => {
    const wire = toResponseError(classifyRefreshFailure(status, '{"error":{"code":"refresh_token_reused"}}').toFailure());
    expect(wire.data).toEqual({ reason: 'refresh_failed', recovery: 'retry' });
    expect(wire.message).toMatch(new RegExp(`^Failed to refresh token: ${status} `));
  });
});
