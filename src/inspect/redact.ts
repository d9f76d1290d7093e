import { redact as redactText } from '../log.js';

/** What every secret turns into on its way out. */
export const REDACTED = '[redacted]';

/**
 * Keys whose values are secrets, compared lower-case without `_`/`-`: tokens,
 * keys, codes, PKCE verifiers and challenges, OAuth `state`, passwords and
 * headers that carry credentials. A match replaces any string or object value;
 * booleans, numbers and null stay (`includeToken: true` says nothing secret).
 */
const SECRET_KEY =
  /^(?:.*(?:token|tokens|secret|password|verifier|apikey|cookie|authorization|challenge)|code|authcode|authorizationcode|usercode|devicecode|deviceauthid|state|oauthstate|nonce|pkce|key|privatekey)$/;

/** Secret values shorter than this are not searched for inside other strings (too many false hits). */
const MIN_KNOWN_LENGTH = 6;
const MAX_KNOWN = 256;
const MAX_DEPTH = 12;
const MAX_ITEMS = 200;

/** True for `machines/secret.ts` `Secret` instances, recognised by shape so a second bundle's copy of the class counts too. */
function isSecret(value: object): value is { reveal(): string } {
  const v = value as { reveal?: unknown; toJSON?: unknown };
  return typeof v.reveal === 'function' && typeof v.toJSON === 'function' && (v.toJSON as () => unknown)() === REDACTED;
}

function isActorRef(value: object): value is { sessionId: string; id: string } {
  const v = value as { sessionId?: unknown; send?: unknown };
  return typeof v.sessionId === 'string' && typeof v.send === 'function';
}

const keyVerdicts = new Map<string, boolean>();

/** Whether values under `key` are secrets (cached: the same few keys come by all the time). */
export function isSecretKey(key: string): boolean {
  let verdict = keyVerdicts.get(key);
  if (verdict === undefined) {
    verdict = SECRET_KEY.test(key.toLowerCase().replace(/[-_]/g, ''));
    if (keyVerdicts.size < 4096) keyVerdicts.set(key, verdict);
  }
  return verdict;
}

/** Cheap pre-check: text without any of these cannot match log.ts's credential patterns. */
const MAYBE_CREDENTIAL = /eyJ|sk-|bearer|"/i;

export interface Redactor {
  /**
   * A JSON-safe deep copy of `value` with every secret replaced by
   * `[redacted]`: `Secret` instances, values under secret-bearing keys, any
   * string containing a secret value seen before, and text that looks like a
   * credential (JWTs, `sk-` keys, bearer headers; see `redact` in log.ts).
   * Objects with `toJSON` (XState snapshots) are walked as JSON would see them;
   * functions are dropped, actor refs become `{actor, id}`, cycles `[circular]`.
   */
  redact(value: unknown): unknown;
  /** Redacts one string. */
  text(value: string): string;
}

/**
 * The one redactor every inspection event, snapshot and page message passes.
 * It remembers (a bounded number of) secret values it met, by structure, so a
 * secret later copied into a plain string (an error text, an id) is masked too.
 */
export function createRedactor(): Redactor {
  const known = new Set<string>();

  const remember = (secret: string) => {
    if (secret.length < MIN_KNOWN_LENGTH || known.has(secret)) return;
    known.add(secret);
    if (known.size > MAX_KNOWN) known.delete(known.values().next().value!);
  };

  const text = (value: string): string => {
    let out = value;
    for (const secret of known) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return MAYBE_CREDENTIAL.test(out) ? redactText(out) : out;
  };

  /** Learns the secret strings under a secret key without copying anything. */
  const harvest = (value: unknown, depth: number): void => {
    if (typeof value === 'string') remember(value);
    else if (value !== null && typeof value === 'object' && depth < MAX_DEPTH) {
      if (isSecret(value)) remember(value.reveal());
      else for (const v of Object.values(value)) harvest(v, depth + 1);
    }
  };

  const walk = (value: unknown, depth: number, seen: Set<object>): unknown => {
    switch (typeof value) {
      case 'string':
        return text(value);
      case 'number':
      case 'boolean':
        return value;
      case 'bigint':
        return String(value);
      case 'undefined':
      case 'function':
      case 'symbol':
        return undefined;
    }
    if (value === null) return null;
    const object = value as object;
    if (isSecret(object)) {
      remember(object.reveal());
      return REDACTED;
    }
    if (seen.has(object)) return '[circular]';
    if (depth >= MAX_DEPTH) return '[…]';
    if (isActorRef(object)) return { actor: object.sessionId, id: text(object.id) };
    if (object instanceof Error) return { name: object.name, message: text(object.message) };
    if (object instanceof Map) return walk(Object.fromEntries(object), depth, seen);
    if (object instanceof Set) return walk([...object], depth, seen);
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const json = (toJSON as () => unknown).call(object);
      if (json !== object) return walk(json, depth, seen);
    }
    seen.add(object);
    try {
      if (Array.isArray(object)) {
        const items = object.slice(0, MAX_ITEMS).map((v) => walk(v, depth + 1, seen) ?? null);
        if (object.length > MAX_ITEMS) items.push(`[${object.length - MAX_ITEMS} more]`);
        return items;
      }
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(object)) {
        if (isSecretKey(key) && v !== null && (typeof v === 'string' || typeof v === 'object')) {
          harvest(v, depth + 1);
          out[key] = REDACTED;
          continue;
        }
        const copy = walk(v, depth + 1, seen);
        if (copy !== undefined) out[text(key)] = copy;
      }
      return out;
    } finally {
      seen.delete(object);
    }
  };

  return { redact: (value) => walk(value, 0, new Set()), text };
}
