import { createRequire } from 'node:module';
import { realpathSync } from 'node:fs';
import type { StoredAuth } from '../../machines/account-types.js';
import { AuthError } from '../errors.js';
import { redact, type Logger } from '../log.js';
import { createKeyringClient, KeyringFailure, type KeyringClient } from './keyring-client.js';
import type { KeyringItemId } from './keyring-protocol.js';
import type { DescribedStore, StoreInfo } from './store-info.js';
import { parseAuth, toAuthDotJson } from './storage.js';
import type { StoreBackend as CredentialStore } from './store.js';

/** The Secret Service `service` attribute Codex uses (SPEC §5.1). */
export const KEYRING_SERVICE = 'Codex Auth';
/** The `target` attribute keyring-rs gives Codex's entry. */
export const KEYRING_TARGET = 'default';

/**
 * The keyring item of a `CODEX_HOME`, as Codex names it (SPEC §5.1): username
 * `cli|` + the first 16 hex digits of sha256 of the home's real path.
 */
export function keyringItemFor(codexHome: string): KeyringItemId {
  let path = codexHome;
  try {
    path = realpathSync(codexHome);
  } catch {
    // Not created yet: Codex hashes the path as given then too.
  }
  path = path.length > 1 ? path.replace(/\/+$/, '') : path;
  // node:crypto is required here, not at start-up: the file store never needs it.
  const { createHash } = createRequire(__filename)('node:crypto') as typeof import('node:crypto');
  const hash = createHash('sha256').update(path).digest('hex').slice(0, 16);
  return { service: KEYRING_SERVICE, account: `cli|${hash}`, target: KEYRING_TARGET };
}

/** How a person finds the item: the attributes `secret-tool` takes. */
export function describeItem(item: KeyringItemId): string {
  return `Secret Service item service="${item.service}" username="${item.account}"`;
}

/** Runs a keyring write; the cross-process `flock` (`withAuthLock`) plugs in here. */
export type WriteLock = <T>(write: () => Promise<T>) => Promise<T>;

export interface KeyringStoreOptions {
  /** `CODEX_HOME`; its real path names the item. */
  codexHome: string;
  log: Logger;
  /** Deadline of each keyring call (`CODEX_ACCOUNT_SERVER_KEYRING_TIMEOUT_MS`). */
  timeoutMs: number;
  /** dist/keyring-helper.cjs; the child process that loads the native module. */
  helperPath: string;
  /** Environment for the helper (D-Bus address); the server's own by default. */
  env?: NodeJS.ProcessEnv;
  /** Wraps every write and delete; the identity until the `flock` helper lands. */
  withWriteLock?: WriteLock;
}

const LOCKED = /locked|unlock prompt|prompt (was )?dismissed/i;

/** The library's words for a failure, in the reference's wording where it has one (SPEC §5.1). */
function failureText(failure: KeyringFailure): string {
  switch (failure.stage) {
    case 'load':
      return `Platform secure storage failure: the keyring module cannot be used on this platform: ${failure.message}`;
    case 'connect':
      return `Platform secure storage failure: no secret service provider or dbus session found: ${failure.message.replace(/^Platform failure: /, '')}`;
    case 'timeout':
      return `Platform secure storage failure: ${failure.message}`;
    case 'call':
      return failure.message
        .replace(/^Platform failure: /, 'Platform secure storage failure: ')
        .replace(/^Couldn't access platform storage: /, "Couldn't access platform secure storage: ");
  }
}

/** Masks secrets in a text that reaches the wire or a log: known values first, then anything secret-shaped. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return redact(out).slice(0, 600);
}

/** Secret values inside a serialized `auth.json`, to mask in error texts. */
function secretsOf(auth: StoredAuth): string[] {
  return auth.kind === 'apiKey'
    ? [auth.apiKey.reveal()]
    : [auth.idToken.reveal(), auth.accessToken.reveal(), auth.refreshToken.reveal(), ...(auth.apiKey ? [auth.apiKey.reveal()] : [])];
}

/** An `AuthError` for a keyring failure: `keyringLocked` or `keyringUnavailable`. */
function keyringError(prefix: string, error: unknown, secrets: readonly string[] = []): AuthError {
  if (error instanceof AuthError) return error;
  const failure = error instanceof KeyringFailure ? error : new KeyringFailure('call', String((error as Error)?.message ?? error));
  const text = scrub(failureText(failure), secrets);
  const kind = failure.stage === 'call' && LOCKED.test(failure.message) ? 'keyringLocked' : 'keyringUnavailable';
  return new AuthError(kind, `${prefix}${text}`);
}

/** Whether an error means "no usable keyring" (so `auto` falls back), not bad data in it. */
export function isKeyringUnusable(error: unknown): error is AuthError {
  return error instanceof AuthError && (error.kind === 'keyringUnavailable' || error.kind === 'keyringLocked');
}

/**
 * Parses a keyring secret like `auth.json`. Error texts name the item, never
 * its contents: JSON.parse and layout errors can quote what they choke on.
 */
function parseItem(text: string, item: KeyringItemId): StoredAuth {
  const where = `the keyring ${describeItem(item)}`;
  try {
    JSON.parse(text);
  } catch {
    throw new AuthError('authFileCorrupt', `${where} does not hold JSON${corruptHint(item)}`);
  }
  let stored: StoredAuth | null;
  try {
    stored = parseAuth(text, where);
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    // Serde-style layout texts quote string values (`invalid type: string "…"`): drop them.
    const reason = error.message.replace(/string "(?:[^"\\]|\\.)*"/g, 'a string').replace(/; log in again to replace it$/, '');
    throw new AuthError(error.kind, scrub(`${reason}${corruptHint(item)}`, [text]));
  }
  // An empty file means "logged out"; an item nobody can use is someone's data: keep it.
  if (stored === null) throw new AuthError('authFileCorrupt', `${where} holds no credentials${corruptHint(item)}`);
  return stored;
}

/** Saving refuses an unreadable item (never overwritten silently); logging out removes it. */
const corruptHint = (item: KeyringItemId) =>
  `; it was left as it is: log out (account/logout) or run \`secret-tool clear service "${item.service}" username "${item.account}"\`, then log in again`;

/**
 * `cli_auth_credentials_store = "keyring"`: the Secret Service item Codex
 * uses for this `CODEX_HOME` (SPEC §5.1), and nothing else. `auth.json` is
 * neither read nor written. The secret is `auth.json`'s object as compact
 * JSON, updated in place, so this server and Codex share one sign-in.
 * An item that is not Codex's layout is never overwritten: saving fails until
 * a logout removes it.
 */
export function createKeyringStore(options: KeyringStoreOptions): DescribedStore {
  const { codexHome, log, withWriteLock = (write) => write() } = options;
  const client: KeyringClient = createKeyringClient(options);
  let problem: string | null = null;
  const note = <T>(work: Promise<T>): Promise<T> =>
    work.then(
      (value) => {
        problem = null;
        return value;
      },
      (error: unknown) => {
        if (isKeyringUnusable(error)) problem = error.message;
        throw error;
      },
    );

  /** The current item, parsed; throws `authFileCorrupt` for one we cannot use. */
  const read = async (item: KeyringItemId, prefix: string): Promise<StoredAuth | null> => {
    let found: { secret: string | null; notUtf8: boolean };
    try {
      found = await client.get(item);
    } catch (error) {
      throw keyringError(prefix, error);
    }
    if (found.notUtf8) throw new AuthError('authFileCorrupt', `the keyring ${describeItem(item)} does not hold UTF-8 text${corruptHint(item)}`);
    return found.secret === null ? null : parseItem(found.secret, item);
  };

  /** The one place a keyring item is written. */
  const write = async (item: KeyringItemId, auth: StoredAuth): Promise<void> => {
    const prefix = `failed to save ${auth.kind === 'apiKey' ? 'api key' : 'credentials'}: failed to write OAuth tokens to keyring: `;
    try {
      await read(item, prefix);
    } catch (error) {
      if (error instanceof AuthError && error.kind === 'authFileCorrupt') throw new AuthError('authFileCorrupt', `${prefix}${error.message}`);
      throw error;
    }
    // Compact JSON of the auth.json object: what Codex stores (SPEC §5.1).
    const secret = JSON.stringify(toAuthDotJson(auth));
    let result: { notUtf8: boolean };
    try {
      result = await client.set(item, secret);
    } catch (error) {
      throw keyringError(prefix, error, secretsOf(auth));
    }
    // Replaced by another process with bytes that are not text between our look-up and write.
    if (result.notUtf8) throw new AuthError('authFileCorrupt', `${prefix}the keyring ${describeItem(item)} does not hold UTF-8 text${corruptHint(item)}`);
  };

  /** The one place a keyring item is deleted. */
  const remove = async (item: KeyringItemId): Promise<void> => {
    const prefix = 'logout failed: failed to delete auth from keyring: ';
    try {
      await read(item, prefix);
    } catch (error) {
      if (!(error instanceof AuthError) || error.kind !== 'authFileCorrupt') throw error;
      // Logging out is the way out of an unreadable item (see `write`).
      log.warn(`logout removes the unreadable keyring ${describeItem(item)}`);
    }
    try {
      await client.delete(item);
    } catch (error) {
      throw keyringError(prefix, error);
    }
  };

  return {
    /** A digest of the item's secret: changes whenever any process rewrites or deletes the item. */
    async version() {
      const found = await client.get(keyringItemFor(codexHome));
      if (found.secret === null) return found.notUtf8 ? 'not-utf8' : 'absent';
      const { createHash } = createRequire(__filename)('node:crypto') as typeof import('node:crypto');
      return createHash('sha256').update(found.secret).digest('hex');
    },
    load: () => note(read(keyringItemFor(codexHome), 'failed to load CLI auth from keyring: ')),
    save: (auth) =>
      note(
        withWriteLock(async () => {
          await write(keyringItemFor(codexHome), auth);
          return auth;
        }),
      ),
    clear: () => note(withWriteLock(() => remove(keyringItemFor(codexHome)))),
    describe: (): StoreInfo => ({
      configured: 'keyring',
      backend: 'keyring',
      reason: 'configured',
      location: describeItem(keyringItemFor(codexHome)),
      problem,
    }),
  };
}

export interface AutoStoreOptions {
  keyring: DescribedStore;
  /** The `auth.json` store the keyring falls back to. */
  file: CredentialStore;
  authPath: string;
  log: Logger;
}

/**
 * `cli_auth_credentials_store = "auto"`: the keyring first; when it cannot be
 * used, `auth.json` exactly as the `file` store (SPEC §5.1), with a stderr
 * line. An empty keyring falls through to a leftover `auth.json`, and a
 * successful keyring save removes it.
 *
 * Logout, unlike the reference, succeeds when the keyring cannot be reached:
 * it removes `auth.json` and logs that the keyring could not be cleared. The
 * reference's failure leaves the file in place and makes a file-backed
 * sign-in impossible to leave while the keyring is down or locked.
 */
export function createAutoStore({ keyring, file, authPath, log }: AutoStoreOptions): DescribedStore {
  let info: StoreInfo = { ...keyring.describe(), configured: 'auto' };
  const keyringInUse = () => {
    info = { ...keyring.describe(), configured: 'auto' };
  };
  const fileInUse = (reason: StoreInfo['reason'], problem: string | null) => {
    info = { configured: 'auto', backend: 'file', reason, location: authPath, problem };
  };
  const fallBack = (error: AuthError, what: string) => {
    log.warn(`cli_auth_credentials_store = "auto": ${what} the keyring failed (${error.message}); using ${authPath}`);
    fileInUse(error.kind === 'keyringLocked' ? 'keyring_locked' : 'keyring_unavailable', error.message);
  };

  return {
    /** Both places `auto` reads from: a change in either is a change. */
    async version() {
      const ring = await keyring.version!().catch(() => 'unavailable');
      return `${ring}|${(await file.version?.()) ?? 'unknown'}`;
    },
    async load() {
      try {
        const stored = await keyring.load();
        if (stored !== null) {
          keyringInUse();
          return stored;
        }
      } catch (error) {
        if (!isKeyringUnusable(error)) throw error;
        fallBack(error, 'reading from');
        return file.load();
      }
      const stored = await file.load();
      if (stored === null) keyringInUse();
      else fileInUse('keyring_empty', null);
      return stored;
    },

    async save(auth) {
      try {
        await keyring.save(auth);
      } catch (error) {
        if (!isKeyringUnusable(error)) throw error;
        fallBack(error, 'writing to');
        return file.save(auth);
      }
      keyringInUse();
      try {
        await file.clear();
      } catch (error) {
        log.warn(`saved to the keyring but could not remove the fallback ${authPath}: ${(error as Error).message}`);
      }
      return auth;
    },

    async clear() {
      try {
        await keyring.clear();
        keyringInUse();
      } catch (error) {
        if (!isKeyringUnusable(error)) throw error;
        log.warn(
          `logout removes ${authPath} but could not reach the keyring (${error.message}); ` +
            'credentials kept there come back once it is reachable: log out again then',
        );
        fileInUse(error.kind === 'keyringLocked' ? 'keyring_locked' : 'keyring_unavailable', error.message);
      }
      await file.clear();
    },

    describe: () => info,
  };
}
