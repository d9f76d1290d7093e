import { timingSafeEqual } from 'node:crypto';

/**
 * What a callback query (or a pasted redirect URL) means for a login waiting
 * with `expectedState` (SPEC §6.1). The state is checked first, whatever else
 * the query holds; an issuer `error=` only counts with the right state.
 */
export type CallbackCheck =
  | { kind: 'code'; code: string }
  | { kind: 'stateMismatch' }
  | { kind: 'issuerError'; detail: string }
  | { kind: 'missingCode' };

/** A pasted URL can also be no sign-in redirect at all. */
export type PastedRedirectCheck = CallbackCheck | { kind: 'invalidUrl'; detail: string };

export const CALLBACK_PATH = '/auth/callback';

/** Constant-time string comparison: the state is a secret a local page could probe for. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The user-facing text of an issuer error (the reference's wording). */
export function issuerErrorDetail(code: string, description: string | null): string {
  if (code === 'access_denied' && description?.toLowerCase().includes('missing_codex_entitlement')) {
    return 'Codex is not enabled for your workspace. Contact your workspace administrator to request access to Codex.';
  }
  if (description !== null && description.trim() !== '') return `Sign-in failed: ${description}`;
  return `Sign-in failed: ${code}`;
}

/** The checks the callback server applies to `GET /auth/callback?…`. */
export function checkCallbackQuery(query: URLSearchParams, expectedState: string): CallbackCheck {
  const state = query.get('state');
  if (state === null || !sameSecret(state, expectedState)) return { kind: 'stateMismatch' };
  const error = query.get('error');
  if (error !== null && error !== '') return { kind: 'issuerError', detail: issuerErrorDetail(error, query.get('error_description')) };
  const code = query.get('code');
  if (code === null || code === '') return { kind: 'missingCode' };
  return { kind: 'code', code };
}

/**
 * The checks for a redirect URL the user pasted (`account/login/complete`):
 * an absolute URL whose path is `/auth/callback`, then exactly the callback's
 * checks. Host and port are not compared: the browser may have shown
 * `localhost` or a forwarded port, and the state already binds the URL to
 * this login.
 */
export function checkPastedRedirectUrl(text: string, expectedState: string): PastedRedirectCheck {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return { kind: 'invalidUrl', detail: 'invalid redirect URL: not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { kind: 'invalidUrl', detail: `invalid redirect URL: expected http(s), got ${url.protocol.replace(/:$/, '')}` };
  }
  if (url.pathname !== CALLBACK_PATH) {
    return {
      kind: 'invalidUrl',
      detail: `invalid redirect URL: expected the sign-in redirect ending in ${CALLBACK_PATH}?code=…&state=…, got path ${url.pathname}`,
    };
  }
  return checkCallbackQuery(url.searchParams, expectedState);
}
