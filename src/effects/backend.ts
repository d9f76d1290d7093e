import type { ClientIdentity } from '../../machines/account-types.js';
import type { Secret } from '../../machines/secret.js';
import type { Logger } from '../log.js';
import { backendUrl } from './backend-url.js';

/** What every call to the ChatGPT backend or the issuer needs. */
export interface HttpDeps {
  fetch: typeof fetch;
  chatgptBaseUrl: string;
  /** Deadline for each call. */
  timeoutMs: number;
  log: Logger;
  /** Used until `initialize` names the client. */
  defaultUserAgent: string;
}

/** The credentials a backend call is made with. */
export interface BackendCredentials {
  accessToken: Secret;
  accountId: string | null;
}

/** The caller's signal combined with the configured deadline. */
export function deadline(deps: Pick<HttpDeps, 'timeoutMs'>, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(deps.timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/**
 * The one authorised request path to the ChatGPT backend (SPEC §9.2, §10):
 * `Authorization: Bearer`, `ChatGPT-Account-Id`, `User-Agent`, no
 * `originator`; the deadline and the caller's signal. `path` (`accounts/check`,
 * `usage`, …) is placed under `chatgpt_base_url` by the `wham/` vs `api/codex/`
 * rule (`backendUrl`, SPEC §12).
 */
export function backendRequest(
  deps: HttpDeps,
  credentials: BackendCredentials,
  client: ClientIdentity | null,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  return deps.fetch(backendUrl(deps.chatgptBaseUrl, path), {
    method: init.method ?? 'GET',
    headers: {
      Authorization: `Bearer ${credentials.accessToken.reveal()}`,
      ...(credentials.accountId ? { 'ChatGPT-Account-Id': credentials.accountId } : {}),
      'User-Agent': client?.userAgent ?? deps.defaultUserAgent,
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: init.body }),
    signal: deadline(deps, init.signal),
  });
}

/** Headers of calls to the issuer's refresh and revoke endpoints (SPEC §8): `originator` and `User-Agent`. */
export function issuerHeaders(deps: Pick<HttpDeps, 'defaultUserAgent'>, client: ClientIdentity | null): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    originator: client?.originator ?? 'codex_cli_rs',
    'User-Agent': client?.userAgent ?? deps.defaultUserAgent,
  };
}
