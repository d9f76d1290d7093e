import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import type { Grant } from '../../../machines/login-attempt-types.js';
import { Secret } from '../../../machines/secret.js';
import { AuthError } from '../../errors.js';
import { serdeMessage } from '../../protocol/serde.js';
import { statusLine, transportDetail } from './http-errors.js';
import { OAUTH_CLIENT_ID } from './oauth.js';
import { withDeadline, type TokenEndpointDeps } from './token-endpoint.js';

/** The reference gives up polling after 15 minutes whatever the issuer says. */
export const DEVICE_MAX_WAIT_MS = 15 * 60_000;

export interface DeviceCode {
  verificationUrl: string;
  userCode: string;
  deviceAuthId: Secret;
  intervalMs: number;
  /** From `expires_at`, when the issuer sent a parsable time. */
  expiresAtMs: number | null;
}

// `interval` is seconds as a string ("5"); a number is taken too.
const IntervalSchema = z.union([z.string(), z.number()]);
const UserCodeSchema = z.looseObject({
  device_auth_id: z.string(),
  user_code: z.optional(z.string()),
  usercode: z.optional(z.string()),
  interval: z.optional(IntervalSchema),
  expires_at: z.optional(z.nullable(z.union([z.string(), z.number()]))),
});
const AuthorizedSchema = z.looseObject({
  authorization_code: z.string(),
  code_challenge: z.optional(z.string()),
  code_verifier: z.string(),
});

async function postJson(deps: TokenEndpointDeps, url: string, body: unknown, signal?: AbortSignal) {
  try {
    const response = await deps.fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: withDeadline(signal, deps.timeoutMs),
    });
    return { response, text: await response.text() };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new Error(transportDetail(url, error));
  }
}

function parseExpiry(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const ms = typeof value === 'number' ? value * 1000 : Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Step 1 of SPEC §7: `POST {issuer}/api/accounts/deviceauth/usercode`. A 404
 * means the issuer has no device login (`deviceCodeDisabled`); any other
 * failure is `deviceCodeFailed` (`failed to request device code: …`).
 */
export async function requestDeviceCode(deps: TokenEndpointDeps, issuer: string, signal?: AbortSignal): Promise<DeviceCode> {
  const url = `${issuer}/api/accounts/deviceauth/usercode`;
  const fail = (detail: string) => new AuthError('deviceCodeFailed', `failed to request device code: ${detail}`);
  let reply;
  try {
    reply = await postJson(deps, url, { client_id: OAUTH_CLIENT_ID }, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw fail((error as Error).message);
  }
  if (reply.response.status === 404) throw new AuthError('deviceCodeDisabled');
  if (!reply.response.ok) throw fail(`device code request failed with status ${statusLine(reply.response.status)}`);
  let json: unknown;
  try {
    json = JSON.parse(reply.text);
  } catch {
    throw fail('error decoding response body: not JSON');
  }
  const parsed = UserCodeSchema.safeParse(json, { reportInput: true });
  const userCode = parsed.success ? (parsed.data.user_code ?? parsed.data.usercode) : undefined;
  if (!parsed.success || userCode === undefined) {
    throw fail(`error decoding response body: ${parsed.success ? 'missing field `user_code`' : serdeMessage(parsed.error)}`);
  }
  const seconds = Number(String(parsed.data.interval ?? '5').trim());
  if (!Number.isFinite(seconds) || seconds < 0) throw fail('error decoding response body: invalid interval');
  return {
    verificationUrl: `${issuer}/codex/device`,
    userCode,
    deviceAuthId: new Secret(parsed.data.device_auth_id),
    intervalMs: seconds * 1000,
    expiresAtMs: parseExpiry(parsed.data.expires_at),
  };
}

export interface PollOptions {
  now?: () => number;
  maxWaitMs?: number;
}

/**
 * Steps 3–4 of SPEC §7: polls `deviceauth/token` right away, then every
 * `interval`, while it answers 403 (or 404: pending, as the reference reads
 * it). Resolves with the code to redeem (its verifier comes from the issuer,
 * the redirect URI is `{issuer}/deviceauth/callback`). Ends with
 * `device code expired` at `expires_at`, `device auth timed out after 15 minutes`
 * at the reference's cap, or `device auth failed with status …`.
 */
export async function pollDeviceCode(
  deps: TokenEndpointDeps,
  issuer: string,
  device: DeviceCode,
  signal?: AbortSignal,
  options: PollOptions = {},
): Promise<Grant> {
  const now = options.now ?? Date.now;
  const start = now();
  const cap = start + (options.maxWaitMs ?? DEVICE_MAX_WAIT_MS);
  const stopAt = device.expiresAtMs !== null && device.expiresAtMs < cap ? device.expiresAtMs : cap;
  const url = `${issuer}/api/accounts/deviceauth/token`;
  const body = () => ({ device_auth_id: device.deviceAuthId.reveal(), user_code: device.userCode });
  for (;;) {
    const { response, text } = await postJson(deps, url, body(), signal);
    if (response.ok) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error('device auth failed: error decoding response body: not JSON');
      }
      const parsed = AuthorizedSchema.safeParse(json, { reportInput: true });
      if (!parsed.success) throw new Error(`device auth failed: error decoding response body: ${serdeMessage(parsed.error)}`);
      return {
        code: new Secret(parsed.data.authorization_code),
        verifier: new Secret(parsed.data.code_verifier),
        redirectUri: `${issuer}/deviceauth/callback`,
      };
    }
    if (response.status !== 403 && response.status !== 404) {
      throw new Error(`device auth failed with status ${statusLine(response.status)}`);
    }
    const left = stopAt - now();
    if (left <= 0) throw new Error(stopAt === cap ? 'device auth timed out after 15 minutes' : 'device code expired');
    await sleep(Math.min(device.intervalMs, left), undefined, { signal });
  }
}
