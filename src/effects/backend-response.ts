import { AuthError } from '../errors.js';

/**
 * Reading ChatGPT-backend answers and wording their failures as the reference
 * does (SPEC §10, SPEC-account-surface §12.3). Shared by every backend method:
 * the caller passes its prefix (`failed to fetch codex rate limits`, …).
 */

/** Most of an error body we read; the rest is never downloaded. */
export const ERROR_BODY_READ_BYTES = 64 * 1024;
/** Most of a body we quote in an error text. */
export const QUOTED_BODY_CHARS = 1024;
/** Largest success body we parse; real answers are a few KB. */
export const SUCCESS_BODY_BYTES = 1024 * 1024;

/** Reason phrases of the `http` crate (the reference prints `StatusCode` with them). */
const REASONS: Record<number, string> = {
  100: 'Continue', 101: 'Switching Protocols', 102: 'Processing',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non Authoritative Information', 204: 'No Content',
  205: 'Reset Content', 206: 'Partial Content', 207: 'Multi-Status', 208: 'Already Reported', 226: 'IM Used',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  305: 'Use Proxy', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large',
  414: 'URI Too Long', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 417: 'Expectation Failed',
  418: "I'm a teapot", 421: 'Misdirected Request', 422: 'Unprocessable Entity', 423: 'Locked',
  424: 'Failed Dependency', 426: 'Upgrade Required', 428: 'Precondition Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates',
  507: 'Insufficient Storage', 508: 'Loop Detected', 510: 'Not Extended', 511: 'Network Authentication Required',
};

/** `401 Unauthorized`, as the `http` crate prints a status (never the server's own phrase). */
export function statusText(status: number): string {
  return `${status} ${REASONS[status] ?? '<unknown status code>'}`;
}

// What looks like a credential in a body: JWTs (also cut short by a truncation),
// OpenAI-style keys, bearer values, and string members whose name says secret
// (also when the body is cut off inside the value). Error codes such as
// `"code":"token_expired"` stay readable, unlike in log.ts, which also hides
// OAuth authorisation codes.
const JWT = /eyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*)*/g;
const API_KEY = /\bsk-[A-Za-z0-9_-]{2,}/g;
const BEARER = /\b(Bearer)\s+[^\s"',]+/gi;
const SECRET_MEMBER = /"([^"]*(?:token|secret|password|passwd|api_?key|apikey|authorization|cookie|session|credential)[^"]*)"\s*:\s*"(?:[^"\\]|\\.)*("|$)/gi;

/**
 * Makes a backend body safe to quote in an error text: anything token-like is
 * masked (plus the exact `secrets` given, e.g. the access token just sent),
 * then it is cut to `QUOTED_BODY_CHARS`.
 */
export function quoteBody(body: string, secrets: readonly string[] = [], truncated = false): string {
  let text = body;
  for (const secret of secrets) if (secret.length >= 4) text = text.split(secret).join('[redacted]');
  text = text
    .replace(SECRET_MEMBER, (_m, name: string, close: string) => `"${name}":"[redacted]${close}`)
    .replace(BEARER, '$1 [redacted]')
    .replace(JWT, '[redacted]')
    .replace(API_KEY, '[redacted]');
  if (text.length > QUOTED_BODY_CHARS) return `${text.slice(0, QUOTED_BODY_CHARS)}… (truncated)`;
  return truncated ? `${text}… (truncated)` : text;
}

/** Reads at most `maxBytes` of a body, then stops the download. */
export async function readCapped(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), truncated: false };
    const room = maxBytes - read;
    if (value.byteLength > room) {
      text += decoder.decode(value.subarray(0, room));
      await reader.cancel().catch(() => {});
      return { text, truncated: true };
    }
    read += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
}

export const contentType = (response: Response) => response.headers.get('content-type') ?? '';

/**
 * `<prefix>: GET <url> failed: 401 Unauthorized; content-type=<ct>; body=<body>`.
 * A 401 is `backendUnauthorized` (the caller's recovery may act on it).
 */
export async function unexpectedStatus(
  prefix: string,
  method: string,
  url: string,
  response: Response,
  secrets: readonly string[] = [],
): Promise<AuthError & { status: number }> {
  let body = '';
  let truncated = false;
  try {
    ({ text: body, truncated } = await readCapped(response, ERROR_BODY_READ_BYTES));
  } catch {
    // A body that breaks off is quoted as far as it came: the status says enough.
  }
  const message = `${prefix}: ${method} ${url} failed: ${statusText(response.status)}; content-type=${contentType(response)}; body=${quoteBody(body, secrets, truncated)}`;
  return withStatus(new AuthError(response.status === 401 ? 'backendUnauthorized' : 'backendFailed', message), response.status);
}

/** `<prefix>: Decode error for <url>: <why>; content-type=<ct>; body=<body>` (§12.3). */
export function decodeError(prefix: string, url: string, why: string, ct: string, body: string, secrets: readonly string[] = [], truncated = false): AuthError {
  return new AuthError('backendFailed', `${prefix}: Decode error for ${url}: ${why}; content-type=${ct}; body=${quoteBody(body, secrets, truncated)}`);
}

/** A network failure, worded as reqwest's `error sending request for url (…)`. */
export function sendFailed(prefix: string, url: string): AuthError {
  return new AuthError('backendFailed', `${prefix}: error sending request for url (${url})`);
}

/** Our deadline passed before the backend answered in full. */
export function timedOut(prefix: string, method: string, url: string, ms: number): AuthError {
  return new AuthError('backendTimeout', `${prefix}: ${method} ${url} timed out after ${formatMs(ms)}`);
}

const formatMs = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

function withStatus<E extends Error>(error: E, status: number): E & { status: number } {
  return Object.assign(error, { status });
}

/**
 * Parses JSON; on failure returns serde_json's wording for the cases the
 * reference was seen to print (SPEC-account-surface §12.3): an empty body,
 * a bad first character, a broken `null`/`true`/`false`.
 */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; why: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, why: jsonSyntaxMessage(text) ?? `invalid JSON (${(error as Error).message.split('\n')[0]})` };
  }
}

function jsonSyntaxMessage(text: string): string | null {
  let line = 1;
  let column = 0;
  let i = 0;
  for (; i < text.length && /[ \t\n\r]/.test(text[i]!); i++) {
    if (text[i] === '\n') {
      line++;
      column = 0;
    } else column++;
  }
  if (i === text.length) return `EOF while parsing a value at line ${line} column ${column}`;
  const first = text[i]!;
  const literal = first === 'n' ? 'null' : first === 't' ? 'true' : first === 'f' ? 'false' : null;
  if (literal) {
    for (let k = 1; k < literal.length; k++) {
      if (i + k >= text.length) return `EOF while parsing a value at line ${line} column ${column + k}`;
      if (text[i + k] !== literal[k]) return `expected ident at line ${line} column ${column + k + 1}`;
    }
    return null;
  }
  if (!/[{["\-0-9]/.test(first)) return `expected value at line ${line} column ${column + 1}`;
  return null;
}
