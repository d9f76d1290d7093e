import { createHash, randomBytes } from 'node:crypto';

import { OAUTH_CLIENT_ID } from './client-id.js';

export { OAUTH_CLIENT_ID };
export const DEFAULT_ISSUER = 'https://auth.openai.com';
export const OAUTH_SCOPE = 'openid profile email offline_access api.connectors.read api.connectors.invoke';

/** `bytes` random bytes, base64url without padding. */
export function randomBase64Url(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** base64url SHA-256 of the verifier: the S256 challenge (43 characters). */
export function challengeFor(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export interface Pkce {
  verifier: string;
  challenge: string;
}

/** PKCE pair of SPEC §6.2: a 64-byte verifier (86 characters) and its S256 challenge. */
export function createPkce(): Pkce {
  const verifier = randomBase64Url(64);
  return { verifier, challenge: challengeFor(verifier) };
}

/** A fresh OAuth `state` per login: 32 random bytes (43 characters). */
export function createState(): string {
  return randomBase64Url(32);
}

export interface AuthorizeUrlOptions {
  issuer: string;
  redirectUri: string;
  challenge: string;
  state: string;
  /** `clientInfo.name` of the host. */
  originator: string;
  /** `forced_chatgpt_workspace_id`; `null` when not configured. */
  allowedWorkspaceIds: readonly string[] | null;
}

/**
 * `{issuer}/oauth/authorize?…` with the parameters in the reference's order
 * (SPEC §6.2), form-encoded by `URLSearchParams` (spaces as `+`). A list of
 * forced workspaces is sent comma-separated (the encoding is unconfirmed).
 */
export function buildAuthorizeUrl(o: AuthorizeUrlOptions): string {
  const params = new URLSearchParams([
    ['response_type', 'code'],
    ['client_id', OAUTH_CLIENT_ID],
    ['redirect_uri', o.redirectUri],
    ['code_challenge', o.challenge],
    ['code_challenge_method', 'S256'],
    ['state', o.state],
    ['scope', OAUTH_SCOPE],
    ['id_token_add_organizations', 'true'],
    ['codex_cli_simplified_flow', 'true'],
    ['originator', o.originator],
  ]);
  if (o.allowedWorkspaceIds !== null && o.allowedWorkspaceIds.length > 0) {
    params.append('allowed_workspace_id', o.allowedWorkspaceIds.join(','));
  }
  return `${o.issuer}/oauth/authorize?${params}`;
}

/** `http://127.0.0.1:<port>/auth/callback`: where the issuer sends the browser back. */
export function callbackUri(port: number): string {
  return `http://127.0.0.1:${port}/auth/callback`;
}
