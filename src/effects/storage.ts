import { access, close, mkdir, open, readFile, rename, unlink } from './fs-async.js';
import { dirname } from 'node:path';
import * as z from 'zod/mini';
import type { StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { expecting, serdeMessage, str } from '../protocol/serde.js';
import { readClaims } from './jwt.js';

/** Where credentials live: `auth.json`, or memory for `ephemeral`. */
export interface CredentialStore {
  /** `null` when nothing is stored. Throws `AuthError` (`authFileCorrupt`, `storageFailed`). */
  load(): Promise<StoredAuth | null>;
  save(auth: StoredAuth): Promise<StoredAuth>;
  clear(): Promise<void>;
}

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
  if (auth.kind === 'apiKey') {
    return JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: auth.apiKey.reveal() }, null, 2);
  }
  return JSON.stringify(
    {
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
    },
    null,
    2,
  );
}

/** Parses the text of `auth.json`; throws `authFileCorrupt` with a reason a person can act on. */
export function parseAuth(text: string, path: string): StoredAuth | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AuthError('authFileCorrupt', `${path} is not valid JSON (${(error as Error).message}); log in again to replace it`);
  }
  const parsed = AuthDotJsonSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    throw new AuthError('authFileCorrupt', `${path} has an unexpected layout (${serdeMessage(parsed.error)}); log in again to replace it`);
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
  return e.code ? `${e.code}: ${e.message}` : String((error as Error)?.message ?? error);
};

const exists = (path: string) => access(path).then(() => true, () => false);

/** Empty lock files Codex keeps beside auth.json (SPEC §5); created on first write. */
async function touch(path: string, mode: number): Promise<void> {
  await close(await open(path, 'a', mode));
}

export interface FileStoreOptions {
  authPath: string;
  log: Logger;
  now?: () => Date;
}

/**
 * `auth.json` in `CODEX_HOME`: written atomically (temp file + fsync + rename
 * by write-file-atomic) with mode 0600. A corrupt file is never overwritten or
 * deleted silently: it is moved aside to `auth.json.corrupt-<time>` and logged.
 */
export function createFileStore({ authPath, log, now = () => new Date() }: FileStoreOptions): CredentialStore {
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
      await rename(authPath, backup);
      log.warn(`moved unreadable ${authPath} aside to ${backup}`);
    }
  };

  return {
    async load() {
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
        await mkdir(dirname(authPath), { recursive: true, mode: 0o700 });
        await setAsideIfCorrupt();
        await touch(`${authPath}.lock`, 0o600);
        await touch(`${dirname(authPath)}/auth.lock`, 0o644);
        // Loaded on first write: its start-up cost (signal-exit hooks) is not worth paying on every spawn.
        const { default: writeFileAtomic } = await import('write-file-atomic');
        await writeFileAtomic(authPath, serializeAuth(auth), { mode: 0o600 });
      } catch (error) {
        const what = auth.kind === 'apiKey' ? 'api key' : 'credentials';
        throw new AuthError('storageFailed', `failed to save ${what}: ${errnoText(error)}`);
      }
      return auth;
    },

    async clear() {
      try {
        await setAsideIfCorrupt();
        await unlink(authPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new AuthError('storageFailed', `failed to remove ${authPath}: ${errnoText(error)}`);
      }
    },
  };
}

/** `cli_auth_credentials_store = "ephemeral"`: credentials live and die with the process. */
export function createMemoryStore(): CredentialStore {
  let current: StoredAuth | null = null;
  return {
    load: async () => current,
    save: async (auth) => (current = auth),
    clear: async () => {
      current = null;
    },
  };
}

/**
 * `keyring`: no OS keyring backend yet. Nothing is read from it, and saving
 * fails with a clear error rather than falling back to a file silently.
 */
export function createUnavailableKeyringStore(): CredentialStore {
  return {
    load: async () => null,
    save: async () => {
      throw new AuthError(
        'storageFailed',
        'OS keyring storage is not supported by codex-account-server yet; set cli_auth_credentials_store = "file" or "ephemeral" in config.toml',
      );
    },
    clear: async () => {},
  };
}
