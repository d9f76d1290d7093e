import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** A fresh URL token: 32 random bytes, base64url (as Jupyter's, printed on stderr only). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Constant-time token comparison (hashing first makes the lengths equal). */
export function tokenMatches(expected: string, given: string | null): boolean {
  return given !== null && timingSafeEqual(digest(expected), digest(given));
}

export type Refusal = { status: 403 | 404 | 405; why: string };

export interface GuardOptions {
  port: number;
  token: string;
  /** Paths this server serves; anything else is a 404. */
  paths: ReadonlySet<string>;
}

/**
 * The checks every request to the local inspect server passes, in order:
 * `Host` must name this loopback port (defeats DNS rebinding), `Origin`, when
 * sent, must be this server (defeats cross-site pages, including
 * EventSource/WebSocket from another site), only GET/HEAD, a known path, and
 * the token in `?token=` (defeats other local users and anything that cannot
 * read stderr).
 * Returns null when the request may be served.
 */
export function checkRequest(
  request: { method?: string | undefined; headers: IncomingHttpHeaders },
  url: URL,
  { port, token, paths }: GuardOptions,
): Refusal | null {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!hosts.includes(request.headers.host ?? '')) return { status: 403, why: 'foreign Host header' };
  const origin = request.headers.origin;
  if (origin !== undefined && !hosts.some((h) => origin === `http://${h}`)) return { status: 403, why: 'foreign Origin header' };
  if (request.method !== 'GET' && request.method !== 'HEAD') return { status: 405, why: `method ${request.method}` };
  if (!paths.has(url.pathname)) return { status: 404, why: 'unknown path' };
  if (!tokenMatches(token, url.searchParams.get('token'))) {
    return { status: 403, why: url.searchParams.has('token') ? 'wrong token' : 'missing token' };
  }
  return null;
}
