import { access, fsPromises, mkdir, readdir, readFile, rename, stat, unlink } from './fs-async.js';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod/mini';
import type { StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { expecting, serdeMessage, str } from '../protocol/serde.js';
import { readClaims } from './jwt.js';
import { withAuthJsonLock, withAuthLock } from './lock.js';
import type { StoreBackend } from './store.js';

/** `auth.json` as Codex writes it (SPEC §5); unknown members are tolerated on read. */
export const AuthDotJsonSchema = z.looseObject({
  auth_mode: z.nullish(str()),
  OPENAI_API_KEY: z.nullish(str()),
  tokens: z.nullish(
    z.looseObject(
      {
        id_token: str(),
        access_token: str(),
        refresh_token: str(),
        oauth_provenance: z.nullish(z.looseObject({ issuer: str(), client_id: str() }, expecting('struct OAuthProvenance'))),
        login_owner_id: z.nullish(str()),
        account_id: z.nullish(str()),
      },
      expecting('struct TokenData'),
    ),
  ),
  last_refresh: z.nullish(str()),
}, expecting('struct AuthDotJson'));
export type AuthDotJson = z.infer<typeof AuthDotJsonSchema>;

/** The exact bytes Codex writes: 2-space JSON, no trailing newline. */
export function serializeAuth(auth: StoredAuth): string {
  return JSON.stringify(toAuthDotJson(auth), null, 2);
}

/** The `auth.json` object Codex writes, in its key order (also the keyring secret, SPEC §5.1). */
export function toAuthDotJson(auth: StoredAuth): AuthDotJson {
  if (auth.kind === 'apiKey') return { auth_mode: 'apikey', OPENAI_API_KEY: auth.apiKey.reveal() };
  return {
    auth_mode: 'chatgpt',
    OPENAI_API_KEY: auth.apiKey?.reveal() ?? null,
    tokens: {
      id_token: auth.idToken.reveal(),
      access_token: auth.accessToken.reveal(),
      refresh_token: auth.refreshToken.reveal(),
      // Key order of SPEC §5; absent optional members stay absent.
      ...(auth.oauthProvenance
        ? { oauth_provenance: { issuer: auth.oauthProvenance.issuer, client_id: auth.oauthProvenance.clientId } }
        : {}),
      ...(auth.loginOwnerId ? { login_owner_id: auth.loginOwnerId } : {}),
      account_id: auth.accountId,
    },
    last_refresh: auth.lastRefresh,
  };
}

/** Parses the text of `auth.json`; throws `authFileCorrupt` with a reason a person can act on. */
export function parseAuth(text: string, path: string): StoredAuth | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // Not the parser's message: it quotes the file, which may hold a key.
    const at = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new AuthError('authFileCorrupt', `${path} is not valid JSON${at ? ` (at position ${at})` : ''}; log in again to replace it`);
  }
  const parsed = AuthDotJsonSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    const why = serdeMessage(parsed.error, { quoteStrings: false });
    throw new AuthError('authFileCorrupt', `${path} has an unexpected layout (${why}); log in again to replace it`);
  }
  const file = parsed.data;
  const mode = file.auth_mode ?? (typeof file.OPENAI_API_KEY === 'string' ? 'apikey' : file.tokens ? 'chatgpt' : null);
  if (mode === null) return null;
  if (mode === 'apikey') {
    if (typeof file.OPENAI_API_KEY !== 'string') {
      throw new AuthError('authFileCorrupt', `${path} says auth_mode "apikey" but holds no OPENAI_API_KEY; log in again to replace it`);
    }
    return { kind: 'apiKey', apiKey: new Secret(file.OPENAI_API_KEY) };
  }
  if (mode === 'chatgpt' && file.tokens) {
    const claims = readClaims(file.tokens.id_token);
    if (claims === null) {
      throw new AuthError('authFileCorrupt', `${path} holds an id_token that is not a JWT; log in again to replace it`);
    }
    const stored: StoredChatgpt = {
      kind: 'chatgpt',
      idToken: new Secret(file.tokens.id_token),
      accessToken: new Secret(file.tokens.access_token),
      refreshToken: new Secret(file.tokens.refresh_token),
      accountId: file.tokens.account_id ?? claims.accountId,
      apiKey: typeof file.OPENAI_API_KEY === 'string' ? new Secret(file.OPENAI_API_KEY) : null,
      oauthProvenance: file.tokens.oauth_provenance
        ? { issuer: file.tokens.oauth_provenance.issuer, clientId: file.tokens.oauth_provenance.client_id }
        : null,
      loginOwnerId: file.tokens.login_owner_id ?? null,
      claims,
      lastRefresh: file.last_refresh ?? null,
    };
    return stored;
  }
  throw new AuthError('authFileCorrupt', `${path} has auth_mode ${JSON.stringify(mode)} that this server cannot use; log in again to replace it`);
}

const errnoText = (error: unknown) => {
  const e = error as NodeJS.ErrnoException;
  // Node's own messages already start with the code ("EISDIR: illegal operation …").
  if (e.code && !e.message?.startsWith(`${e.code}:`)) return `${e.code}: ${e.message}`;
  return String((error as Error)?.message ?? error);
};

const exists = (path: string) => access(path).then(() => true, () => false);

/** Temp files of earlier versions (write-file-atomic's `auth.json.<hash>`); they may hold a full credential. */
const LEGACY_TEMP = /^auth\.json\.[0-9a-f]{6,}$/;
/** A temp file this old cannot belong to a live writer (a write takes milliseconds). */
export const STALE_TEMP_MS = 10_000;

/**
 * Writes `path` atomically with one fixed temp name (`.auth.json.tmp` beside
 * it), created exclusively with the final mode, synced, then renamed over
 * the target. A writer killed half-way leaves at most that one file, which
 * the next write, a restart or a logout removes: nothing accumulates
 * (issue 5; write-file-atomic left a new `auth.json.<hash>` per interrupted
 * write). Callers serialise writes (one store per process, the auth lock
 * across processes). `renameUnder` wraps the rename alone (the store passes
 * Codex's `auth.json.lock`, SPEC §8.1).
 */
export async function writeAtomically(
  path: string,
  data: string,
  mode: number,
  renameUnder: (rename: () => Promise<void>) => Promise<void> = (fn) => fn(),
): Promise<void> {
  const temp = tempPathOf(path);
  const { open } = fsPromises();
  let handle;
  try {
    handle = await open(temp, 'wx', mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    await unlink(temp); // left by a killed writer
    handle = await open(temp, 'wx', mode);
  }
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await renameUnder(() => rename(temp, path));
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  // Make the rename itself durable; not every file system allows fsync on a directory.
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().finally(() => dir.close());
  } catch {
    /* best effort */
  }
}

export const tempPathOf = (path: string) => join(dirname(path), `.${basename(path)}.tmp`);

export interface FileStoreOptions {
  authPath: string;
  log: Logger;
  now?: () => Date;
  /** How long a write waits for `auth.lock` while another process updates the credentials. */
  lockTimeoutMs?: number;
}

/**
 * `auth.json` in `CODEX_HOME`: written atomically (`writeAtomically`) with
 * mode 0600. A corrupt file is never overwritten silently by a login: it is
 * moved aside to `auth.json.corrupt-<time>` and logged. Logout removes every
 * copy of a credential: the file, its backups and any temp file.
 * Every write or removal holds Codex's locks (SPEC §8.1, src/effects/lock.ts):
 * `auth.lock` for the whole update, `auth.json.lock` around each rename/unlink
 * of `auth.json`.
 */
export function createFileStore({ authPath, log, now = () => new Date(), lockTimeoutMs }: FileStoreOptions): StoreBackend {
  const home = dirname(authPath);
  const name = basename(authPath);
  const underAuthLock = (fn: () => Promise<void>) =>
    withAuthLock(home, fn, lockTimeoutMs === undefined ? {} : { timeoutMs: lockTimeoutMs });
  const underAuthJsonLock = (fn: () => Promise<void>) => withAuthJsonLock(home, fn);

  const setAsideIfCorrupt = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(authPath, 'utf8');
    } catch {
      return; // absent or unreadable: the write or unlink reports it
    }
    try {
      parseAuth(text, authPath);
    } catch {
      // Never clobber an earlier backup taken in the same millisecond.
      const base = `${authPath}.corrupt-${now().toISOString().replace(/[:.]/g, '-')}`;
      let backup = base;
      for (let n = 1; await exists(backup); n++) backup = `${base}-${n}`;
      await underAuthJsonLock(() => rename(authPath, backup));
      log.warn(`moved unreadable ${authPath} aside to ${backup}`);
    }
  };

  /**
   * Removes temp files that interrupted writes left (ours and earlier
   * versions'); with `everything`, also the backups of corrupt files.
   * `olderThanMs` spares a temp file a live writer in another process may own.
   */
  const removeLeftovers = async ({ everything, olderThanMs }: { everything: boolean; olderThanMs: number }) => {
    let entries: string[];
    try {
      entries = await readdir(home);
    } catch {
      return;
    }
    const temp = basename(tempPathOf(authPath));
    for (const entry of entries) {
      const isTemp = entry === temp || LEGACY_TEMP.test(entry);
      const isBackup = entry.startsWith(`${name}.corrupt-`);
      if (!isTemp && !(everything && isBackup)) continue;
      const path = join(home, entry);
      try {
        if (isTemp && olderThanMs > 0 && now().getTime() - (await stat(path)).mtimeMs < olderThanMs) continue;
        await unlink(path);
        log.info(`removed ${path}`);
      } catch {
        /* gone already, or not ours to remove */
      }
    }
  };

  let cleanedAtStart = false;

  return {
    async version() {
      try {
        const st = await stat(authPath);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return null;
      }
    },

    async load() {
      if (!cleanedAtStart) {
        cleanedAtStart = true;
        // Not awaited: nothing a request needs waits for it.
        void removeLeftovers({ everything: false, olderThanMs: STALE_TEMP_MS });
      }
      let text: string;
      try {
        text = await readFile(authPath, 'utf8');
      } catch (error) {
        // ENOTDIR: a path component is a file, so there is no auth.json either.
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw new AuthError('storageFailed', `failed to read ${authPath}: ${errnoText(error)}`);
      }
      return parseAuth(text, authPath);
    },

    async save(auth) {
      try {
        await mkdir(home, { recursive: true, mode: 0o700 });
        // The lock files (auth.lock 0644, auth.json.lock 0600) are created by taking them.
        await underAuthLock(async () => {
          await setAsideIfCorrupt();
          await writeAtomically(authPath, serializeAuth(auth), 0o600, underAuthJsonLock);
        });
      } catch (error) {
        const what = auth.kind === 'apiKey' ? 'api key' : 'credentials';
        throw new AuthError('storageFailed', `failed to save ${what}: ${errnoText(error)}`);
      }
      return auth;
    },

    async clear() {
      // No CODEX_HOME (or a file in its place): nothing to remove, and no reason to create it for its locks.
      if (!(await stat(home).then((st) => st.isDirectory(), () => false))) return;
      try {
        await underAuthLock(async () => {
          await underAuthJsonLock(async () => {
            try {
              await unlink(authPath);
            } catch (error) {
              const code = (error as NodeJS.ErrnoException).code;
              if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
            }
          });
          // Logout leaves no copy of a credential on disk (issue 5). Under auth.lock,
          // no other process's write (and so none of its temp files) is in flight.
          await removeLeftovers({ everything: true, olderThanMs: 0 });
        });
      } catch (error) {
        throw new AuthError('storageFailed', `failed to remove ${authPath}: ${errnoText(error)}`);
      }
    },
  };
}

/** `cli_auth_credentials_store = "ephemeral"`: credentials live and die with the process. */
export function createMemoryStore(): StoreBackend {
  let current: StoredAuth | null = null;
  return {
    load: async () => current,
    save: async (auth) => (current = auth),
    clear: async () => {
      current = null;
    },
  };
}
