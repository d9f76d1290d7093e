import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { createFileStore, parseAuth, STALE_TEMP_MS, writeAtomically } from '../../src/effects/storage.js';
import { createLogger } from '../../src/log.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { tempHome } from '../helpers/server-process.js';

/**
 * Storage behaviour the mutation run (`npm run mutate`, issue 10 item 5)
 * showed no test pinned down: exact error texts, what is (not) quoted from
 * the file, leftovers at the edges of their age limit, descriptors closed.
 */

const NOW = new Date('2026-11-25T01:02:03.456Z');

/** `now: null` leaves the store on its own clock. */
function store(home = tempHome(), now: (() => Date) | null = () => NOW) {
  const lines: string[] = [];
  const log = createLogger('info', (line) => lines.push(line));
  const authPath = join(home, 'auth.json');
  return { home, authPath, lines, store: createFileStore({ authPath, log, ...(now ? { now } : {}) }) };
}

const corrupt = (text: string) => {
  try {
    parseAuth(text, '/h/auth.json');
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('parsed');
};

/** Open file descriptors of this process (Linux). */
const openFds = () => readdirSync('/proc/self/fd').length;

describe('auth.json parse errors', () => {
  it('gives the parser position of a file that is not JSON, never the parser text', () => {
    expect(corrupt('{"a":1}     x')).toBe('/h/auth.json is not valid JSON (at position 12); log in again to replace it');
  });

  it('gives no position and no file text when the parser names none', () => {
    expect(corrupt('sk-secret-garbage')).toBe('/h/auth.json is not valid JSON; log in again to replace it');
  });

  it('names the member of a wrong type without quoting the file', () => {
    const message = corrupt('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-kept","tokens":"sk-leak"}');
    expect(message).toBe('/h/auth.json has an unexpected layout (invalid type: string, expected struct TokenData); log in again to replace it');
  });

  it('says the whole file must be an object', () => {
    expect(corrupt('["sk-leak"]')).toBe('/h/auth.json has an unexpected layout (invalid type: sequence, expected struct AuthDotJson); log in again to replace it');
  });

  it('checks the members of oauth_provenance', () => {
    const idToken = chatgptJwt({ accountId: 'ws-1' });
    const tokens = { id_token: idToken, access_token: 'a', refresh_token: 'r', oauth_provenance: { issuer: 5, client_id: 'c' } };
    expect(corrupt(JSON.stringify({ auth_mode: 'chatgpt', tokens }))).toBe(
      '/h/auth.json has an unexpected layout (invalid type: integer `5`, expected a string); log in again to replace it',
    );
    expect(corrupt(JSON.stringify({ auth_mode: 'chatgpt', tokens: { ...tokens, oauth_provenance: 'x' } }))).toBe(
      '/h/auth.json has an unexpected layout (invalid type: string, expected struct OAuthProvenance); log in again to replace it',
    );
  });

  it('refuses auth_mode chatgpt without tokens as a mode it cannot use', () => {
    expect(corrupt('{"auth_mode":"chatgpt","tokens":null}')).toBe('/h/auth.json has auth_mode "chatgpt" that this server cannot use; log in again to replace it');
  });

  it('refuses tokens under an auth_mode it does not know instead of reading them as a ChatGPT login', () => {
    const tokens = { id_token: chatgptJwt({ accountId: 'ws-1' }), access_token: 'a', refresh_token: 'r' };
    expect(corrupt(JSON.stringify({ auth_mode: 'chatgptAuthTokens', tokens }))).toBe(
      '/h/auth.json has auth_mode "chatgptAuthTokens" that this server cannot use; log in again to replace it',
    );
  });

  it('says which token is not a JWT', () => {
    const text = JSON.stringify({ auth_mode: 'chatgpt', tokens: { id_token: 'sk-not-a-jwt', access_token: 'a', refresh_token: 'r' } });
    expect(corrupt(text)).toBe('/h/auth.json holds an id_token that is not a JWT; log in again to replace it');
    expect(() => parseAuth(text, '/h/auth.json')).toThrow(expect.objectContaining({ kind: 'authFileCorrupt' }));
  });
});

describe('auth.json store failures', () => {
  it('reports a directory in place of auth.json on load with the errno', async () => {
    const { store: s, authPath } = store();
    mkdirSync(authPath);
    await expect(s.load()).rejects.toThrow(new RegExp(`^failed to read ${authPath}: EISDIR: illegal operation on a directory, read$`));
  });

  it('reports a directory in place of auth.json on logout instead of claiming success', async () => {
    const { store: s, authPath } = store();
    mkdirSync(join(authPath, 'inside'), { recursive: true });
    const error = await s.clear().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'storageFailed', message: expect.stringMatching(new RegExp(`^failed to remove ${authPath}: E(ISDIR|PERM)`)) });
  });

  it('calls ChatGPT credentials "credentials" when a save fails', async () => {
    const parent = join(tempHome(), 'file');
    writeFileSync(parent, 'x');
    const { store: s } = store(join(parent, 'home'));
    const stored = {
      kind: 'chatgpt' as const,
      idToken: new Secret(chatgptJwt({ accountId: 'ws-1' })),
      accessToken: new Secret('at'),
      refreshToken: new Secret('rt'),
      accountId: 'ws-1',
      apiKey: null,
      oauthProvenance: null,
      loginOwnerId: null,
      claims: { email: null, userId: null, accountId: 'ws-1', planType: null },
      lastRefresh: null,
    };
    await expect(s.save(stored)).rejects.toThrow(/^failed to save credentials: E(NOTDIR|EXIST)/);
  });
});

describe('corrupt file backups', () => {
  it('numbers backups taken in the same millisecond -1, -2, …', async () => {
    const { store: s, home, authPath } = store();
    for (const text of ['first', 'second', 'third']) {
      writeFileSync(authPath, text);
      await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    }
    const base = 'auth.json.corrupt-2026-11-25T01-02-03-456Z';
    expect(readdirSync(home).filter((f) => f.includes('.corrupt-')).sort()).toEqual([base, `${base}-1`, `${base}-2`]);
    expect(readFileSync(join(home, `${base}-2`), 'utf8')).toBe('third');
  });

  it('names a backup by the real clock when none is injected, and says so at warn', async () => {
    const { store: s, home, authPath, lines } = store(tempHome(), null);
    writeFileSync(authPath, 'garbage');
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    const [backup] = readdirSync(home).filter((f) => f.includes('.corrupt-'));
    expect(backup).toMatch(/^auth\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
    expect(backup).not.toBe('auth.json.corrupt-2026-11-25T01-02-03-456Z');
    expect(lines.join('')).toContain(`WARN codex-account-server: moved unreadable ${authPath} aside to ${join(home, backup!)}`);
  });

  it('keeps backups of corrupt files at start-up (only logout removes them)', async () => {
    const { store: s, home } = store();
    writeFileSync(join(home, 'auth.json.corrupt-2020-01-01T00-00-00-000Z'), 'old');
    await s.load();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(home)).toEqual(['auth.json.corrupt-2020-01-01T00-00-00-000Z']);
  });
});

describe('leftover temp files', () => {
  const age = (path: string, ms: number) => {
    const at = new Date(NOW.getTime() - ms);
    utimesSync(path, at, at);
  };

  it('removes a temp file exactly as old as the limit at start-up, and logs it at info', async () => {
    const { store: s, home, lines } = store();
    age((writeFileSync(join(home, '.auth.json.tmp'), 'sk-left'), join(home, '.auth.json.tmp')), STALE_TEMP_MS);
    await s.load();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(home)).toEqual([]);
    expect(lines.join('')).toContain(`INFO codex-account-server: removed ${join(home, '.auth.json.tmp')}`);
  });

  it('spares a temp file a millisecond younger than the limit at start-up', async () => {
    const { store: s, home } = store();
    writeFileSync(join(home, '.auth.json.tmp'), 'sk-live');
    age(join(home, '.auth.json.tmp'), STALE_TEMP_MS - 1);
    await s.load();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(home)).toEqual(['.auth.json.tmp']);
  });

  it('cleans up at the first load only, not on every read', async () => {
    const { store: s, home } = store();
    await s.load();
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(home, 'auth.json.abcdef12'), 'sk-left');
    age(join(home, 'auth.json.abcdef12'), STALE_TEMP_MS * 2);
    await s.load();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(home)).toEqual(['auth.json.abcdef12']);
  });

  it('leaves files that only look like earlier temp names alone at logout', async () => {
    const { store: s, home } = store();
    for (const f of ['myauth.json.abcdef12', 'auth.json.abcdef12.keep', 'auth.json.abc', 'auth.json.ABCDEF12']) writeFileSync(join(home, f), 'mine');
    await s.clear();
    expect(readdirSync(home).sort()).toEqual(['auth.json.ABCDEF12', 'auth.json.abc', 'auth.json.abcdef12.keep', 'auth.json.lock', 'auth.lock', 'myauth.json.abcdef12']);
  });
});

describe('atomic writes', () => {
  it('closes every descriptor it opens (the temp file and the directory)', async () => {
    const home = tempHome();
    await writeAtomically(join(home, 'auth.json'), 'x', 0o600); // warm up lazy loads
    const before = openFds();
    for (let i = 0; i < 20; i++) await writeAtomically(join(home, 'auth.json'), `v${i}`, 0o600);
    expect(openFds()).toBe(before);
    expect(readFileSync(join(home, 'auth.json'), 'utf8')).toBe('v19');
  });

  it('removes its temp file and keeps the old file when the rename fails', async () => {
    const home = tempHome();
    writeFileSync(join(home, 'auth.json'), 'old');
    const failing = async () => {
      throw new Error('rename refused');
    };
    await expect(writeAtomically(join(home, 'auth.json'), 'new', 0o600, failing)).rejects.toThrow('rename refused');
    expect(readdirSync(home)).toEqual(['auth.json']);
    expect(readFileSync(join(home, 'auth.json'), 'utf8')).toBe('old');
  });
});

describe('store version', () => {
  it('is null without a file, then changes with every write and stays put without one', async () => {
    const { store: s } = store();
    expect(await s.version!()).toBeNull();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-1') });
    const first = await s.version!();
    expect(first).toMatch(/^\d+:\d+:[\d.]+$/);
    expect(await s.version!()).toBe(first);
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-22') });
    expect(await s.version!()).not.toBe(first);
    await s.clear();
    expect(await s.version!()).toBeNull();
  });
});
