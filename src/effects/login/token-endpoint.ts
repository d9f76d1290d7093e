import * as z from 'zod/mini';
import type { ExchangedTokens, Grant } from '../../../machines/login-attempt-types.js';
import { Secret } from '../../../machines/secret.js';
import { AuthError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { serdeMessage } from '../../protocol/serde.js';
import { readClaims } from '../jwt.js';
import { oauthErrorDetail, statusLine, transportDetail } from './http-errors.js';
import { OAUTH_CLIENT_ID } from './oauth.js';

export interface TokenEndpointDeps {
  fetch: typeof fetch;
  /** Deadline of each call. */
  timeoutMs: number;
  log: Logger;
}

const TokenResponseSchema = z.looseObject({ id_token: z.string(), access_token: z.string(), refresh_token: z.string() });
const ApiKeyResponseSchema = z.looseObject({ access_token: z.string() });

/** The caller's abort and the per-call deadline, whichever comes first. */
export function withDeadline(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  if (!signal) return timeout;
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([signal, timeout]);
  // Node 20.0–20.2 lack AbortSignal.any.
  const both = new AbortController();
  for (const s of [signal, timeout]) {
    if (s.aborted) both.abort(s.reason);
    else s.addEventListener('abort', () => both.abort(s.reason), { once: true });
  }
  return both.signal;
}

/**
 * `POST {issuer}/oauth/token` with a form body whose fields keep the given
 * order (SPEC §6.3/§6.4), and no `originator` or `User-Agent` header. Returns
 * the parsed JSON of a 2xx answer; throws `loginFailed` with a message that
 * never holds the form (code, verifier, id token).
 */
async function postForm(deps: TokenEndpointDeps, issuer: string, fields: Array<[string, string]>, signal?: AbortSignal): Promise<unknown> {
  const url = `${issuer}/oauth/token`;
  let response: Response;
  let text: string;
  try {
    response = await deps.fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
      signal: withDeadline(signal, deps.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    throw new AuthError('loginFailed', transportDetail(url, error));
  }
  if (!response.ok) {
    throw new AuthError('loginFailed', `token endpoint returned status ${statusLine(response.status)}: ${oauthErrorDetail(text)}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AuthError('loginFailed', 'error decoding response body: not JSON');
  }
}

/**
 * Redeems an authorization code (SPEC §6.3; device codes with their own
 * verifier and redirect URI, §7). The id token must be a decodable JWT: its
 * claims name the workspace and plan.
 */
export async function exchangeCode(deps: TokenEndpointDeps, issuer: string, grant: Grant, signal?: AbortSignal): Promise<ExchangedTokens> {
  const json = await postForm(
    deps,
    issuer,
    [
      ['grant_type', 'authorization_code'],
      ['client_id', OAUTH_CLIENT_ID],
      ['code', grant.code.reveal()],
      ['redirect_uri', grant.redirectUri],
      ['code_verifier', grant.verifier.reveal()],
    ],
    signal,
  );
  const parsed = TokenResponseSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) throw new AuthError('loginFailed', `error decoding response body: ${serdeMessage(parsed.error)}`);
  const claims = readClaims(parsed.data.id_token);
  if (claims === null) throw new AuthError('loginFailed', 'the token endpoint returned an id_token that is not a JWT');
  return {
    idToken: new Secret(parsed.data.id_token),
    accessToken: new Secret(parsed.data.access_token),
    refreshToken: new Secret(parsed.data.refresh_token),
    claims,
  };
}

/**
 * Trades the id token for an API key (SPEC §6.4). A failure rejects, after
 * saying why on stderr; the login-attempt chart goes on without a key (the
 * reference stores `OPENAI_API_KEY: null` then).
 */
export async function exchangeApiKey(deps: TokenEndpointDeps, issuer: string, idToken: Secret, signal?: AbortSignal): Promise<Secret> {
  try {
    const json = await postForm(
      deps,
      issuer,
      [
        ['grant_type', 'urn:ietf:params:oauth:grant-type:token-exchange'],
        ['client_id', OAUTH_CLIENT_ID],
        ['requested_token', 'openai-api-key'],
        ['subject_token', idToken.reveal()],
        ['subject_token_type', 'urn:ietf:params:oauth:token-type:id_token'],
      ],
      signal,
    );
    const parsed = ApiKeyResponseSchema.safeParse(json);
    if (!parsed.success) throw new AuthError('loginFailed', 'error decoding response body: missing field `access_token`');
    return new Secret(parsed.data.access_token);
  } catch (error) {
    if (!signal?.aborted) deps.log.warn(`API key exchange failed (${(error as Error).message}); the login goes on without an API key`);
    throw error;
  }
}
