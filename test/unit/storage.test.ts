import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { createFileStore, createMemoryStore, parseAuth, serializeAuth, STALE_TEMP_MS } from '../../src/effects/storage.js';
import { AuthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { holdWithFlock } from '../helpers/flock.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { tempHome } from '../helpers/server-process.js';

const quiet = createLogger('error', () => {});

function store(home = tempHome()) {
  const authPath = join(home, 'auth.json');
  return { home, authPath, store: createFileStore({ authPath, log: quiet, now: () => new Date('2026-11-25T01:02:03.456Z') }) };
}

describe('auth.json storage', () => {
  it('round-trips an API key through save and load', async () => {
    const { store: s } = store();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-rt') });
    const loaded = await s.load();
    expect(loaded?.kind === 'apiKey' && loaded.apiKey.reveal()).toBe('sk-rt');
  });

  it('loads nothing when the file is absent, and clearing an absent file is fine', async () => {
    const { store: s } = store();
    expect(await s.load()).toBeNull();
    await expect(s.clear()).resolves.toBeUndefined();
  });

  it('writes with mode 0600 and leaves only the file and its locks', async () => {
    const { store: s, home, authPath } = store();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    expect(statSync(authPath).mode & 0o777).toBe(0o600);
    expect(readdirSync(home).sort()).toEqual(['auth.json', 'auth.json.lock', 'auth.lock']);
  });

  it('moves a corrupt file aside, named by time, before writing', async () => {
    const { store: s, home, authPath } = store();
    writeFileSync(authPath, 'garbage');
    await expect(s.load()).rejects.toMatchObject({ kind: 'authFileCorrupt' });
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-new') });
    expect(readFileSync(join(home, 'auth.json.corrupt-2026-11-25T01-02-03-456Z'), 'utf8')).toBe('garbage');
    expect(JSON.parse(readFileSync(authPath, 'utf8')).OPENAI_API_KEY).toBe('sk-new');
  });

  it('reports an unreadable path as storageFailed', async () => {
    const { store: s, authPath } = store();
    mkdirSync(authPath);
    await expect(s.load()).rejects.toMatchObject({ kind: 'storageFailed' });
  });

  it('parses stored ChatGPT tokens with their claims and keeps the exchanged key', () => {
    const idToken = chatgptJwt({ email: 'a@b.c', accountId: 'ws-1', planType: 'team', userId: 'u' });
    const text = JSON.stringify({
      auth_mode: 'chatgpt',
      OPENAI_API_KEY: 'sk-x',
      tokens: { id_token: idToken, access_token: 'at', refresh_token: 'rt', account_id: 'ws-1', extra: 1 },
      last_refresh: '2026-11-25T00:00:00.000000000Z',
    });
    const auth = parseAuth(text, 'auth.json');
    expect(auth).toMatchObject({ kind: 'chatgpt', accountId: 'ws-1', claims: { email: 'a@b.c', planType: 'team', userId: 'u' } });
    expect(auth?.kind === 'chatgpt' && auth.apiKey?.reveal()).toBe('sk-x');
  });

  it('refuses stored ChatGPT tokens whose id token is not a JWT', () => {
    const text = JSON.stringify({ auth_mode: 'chatgpt', tokens: { id_token: 'x', access_token: 'a', refresh_token: 'r' } });
    expect(() => parseAuth(text, 'auth.json')).toThrow(AuthError);
  });

  it('serialises the API key layout exactly', () => {
    expect(serializeAuth({ kind: 'apiKey', apiKey: new Secret('sk-new') })).toBe(
      '{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-new"\n}',
    );
  });

  it('creates a missing CODEX_HOME on save', async () => {
    const { store: s, authPath } = store(join(tempHome(), 'a', 'b'));
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    expect(readFileSync(authPath, 'utf8')).toBe(serializeAuth({ kind: 'apiKey', apiKey: new Secret('sk') }));
  });

  it('creates empty lock files with modes 0600 and 0644 on save, and none on load', async () => {
    const { store: s, home } = store();
    writeFileSync(join(home, 'auth.json'), '{"OPENAI_API_KEY":"sk"}');
    await s.load();
    expect(readdirSync(home)).toEqual(['auth.json']);
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    for (const [name, mode] of [['auth.json.lock', 0o600], ['auth.lock', 0o644]] as const) {
      expect(statSync(join(home, name)).mode & 0o777).toBe(mode);
      expect(statSync(join(home, name)).size).toBe(0);
    }
  });

  it('turns an existing 0644 auth.json into 0600 on save', async () => {
    const { store: s, authPath } = store();
    writeFileSync(authPath, '{}', { mode: 0o644 });
    chmodSync(authPath, 0o644);
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    expect(statSync(authPath).mode & 0o777).toBe(0o600);
  });

  it('deletes auth.json on clear and keeps the lock files', async () => {
    const { store: s, home } = store();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    await s.clear();
    expect(readdirSync(home).sort()).toEqual(['auth.json.lock', 'auth.lock']);
    expect(await s.load()).toBeNull();
  });

  it('deletes a corrupt file and its earlier backups on clear: logout leaves no copy of a credential', async () => {
    const { store: s, home } = store();
    writeFileSync(join(home, 'auth.json'), '{"OPENAI_API_KEY":"sk-old"');
    writeFileSync(join(home, 'auth.json.corrupt-2026-01-01T00-00-00-000Z'), '{"OPENAI_API_KEY":"sk-older"');
    await s.clear();
    // Only Codex's empty lock files stay: removing takes the locks as Codex's logout does (SPEC §8.1).
    expect(readdirSync(home).sort()).toEqual(['auth.json.lock', 'auth.lock']);
  });

  it('leaves only auth.json and the lock files after a write, with no temp file', async () => {
    const { store: s, home } = store();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-1') });
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-2') });
    expect(readdirSync(home).sort()).toEqual(['auth.json', 'auth.json.lock', 'auth.lock']);
  });

  it('replaces a temp file a killed writer left, instead of failing or adding another', async () => {
    const { store: s, home, authPath } = store();
    writeFileSync(join(home, '.auth.json.tmp'), '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-half');
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-new') });
    expect(readdirSync(home).sort()).toEqual(['auth.json', 'auth.json.lock', 'auth.lock']);
    expect(JSON.parse(readFileSync(authPath, 'utf8')).OPENAI_API_KEY).toBe('sk-new');
  });

  it('removes stale temp files of this and earlier versions on the first load, sparing fresh ones', async () => {
    const { store: s, home } = store();
    const old = new Date(Date.parse('2026-11-25T01:02:03.456Z') - STALE_TEMP_MS - 1000);
    for (const f of ['.auth.json.tmp', 'auth.json.1a2b3c4d', 'auth.json.9f8e7d6c']) {
      writeFileSync(join(home, f), 'sk-leftover');
      utimesSync(join(home, f), old, old);
    }
    writeFileSync(join(home, 'auth.json.0123abcd'), 'fresh'); // mtime now: clock says 2026-11-25, file is newer
    utimesSync(join(home, 'auth.json.0123abcd'), new Date('2026-11-25T01:02:00Z'), new Date('2026-11-25T01:02:00Z'));
    await s.load();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(home).sort()).toEqual(['auth.json.0123abcd']);
  });

  it('removes every temp file at logout, whatever its age', async () => {
    const { store: s, home } = store();
    writeFileSync(join(home, '.auth.json.tmp'), 'sk-leftover');
    writeFileSync(join(home, 'auth.json.1a2b3c4d'), 'sk-leftover');
    await s.clear();
    expect(readdirSync(home).sort()).toEqual(['auth.json.lock', 'auth.lock']);
  });

  it('never overwrites an earlier backup of a corrupt file', async () => {
    const { store: s, home, authPath } = store();
    writeFileSync(authPath, 'first');
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    writeFileSync(authPath, 'second');
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    const backups = readdirSync(home).filter((f) => f.startsWith('auth.json.corrupt-')).sort();
    expect(backups.map((f) => readFileSync(join(home, f), 'utf8'))).toEqual(['first', 'second']);
  });

  it('leaves a valid file in place when overwriting it', async () => {
    const { store: s, home, authPath } = store();
    writeFileSync(authPath, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-old"}');
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-new') });
    expect(readdirSync(home).sort()).toEqual(['auth.json', 'auth.json.lock', 'auth.lock']);
  });

  it('loads nothing when a parent of CODEX_HOME is a regular file', async () => {
    const parent = join(tempHome(), 'file');
    writeFileSync(parent, 'x');
    const { store: s } = store(join(parent, 'home'));
    expect(await s.load()).toBeNull();
  });

  it('fails a save under a regular file with storageFailed and a readable message', async () => {
    const parent = join(tempHome(), 'file');
    writeFileSync(parent, 'x');
    const { store: s } = store(join(parent, 'home'));
    const error = await s.save({ kind: 'apiKey', apiKey: new Secret('sk-hidden') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ kind: 'storageFailed', message: expect.stringMatching(/^failed to save api key: E(NOTDIR|EXIST)/) });
    expect((error as Error).message).not.toContain('sk-hidden');
  });

  it.each([
    ['a legacy file without auth_mode', '{"OPENAI_API_KEY":"sk","tokens":null,"last_refresh":null}', 'apiKey'],
    ['all members null', '{"OPENAI_API_KEY":null,"tokens":null,"last_refresh":null}', null],
    ['an empty object', '{}', null],
    ['unknown members beside a key', '{"auth_mode":"apikey","OPENAI_API_KEY":"sk","future":true}', 'apiKey'],
  ])('parses %s', (_name, text, kind) => {
    expect(parseAuth(text, 'auth.json')?.kind ?? null).toBe(kind);
  });

  it.each([
    ['invalid JSON', '{', /is not valid JSON/],
    ['a wrong member type', '{"OPENAI_API_KEY": 42}', /has an unexpected layout/],
    ['an apikey mode without key', '{"auth_mode":"apikey"}', /holds no OPENAI_API_KEY/],
    ['an unknown mode', '{"auth_mode":"bedrock"}', /cannot use/],
    ['tokens missing the refresh token', '{"auth_mode":"chatgpt","tokens":{"id_token":"a","access_token":"b"}}', /unexpected layout/],
  ])('refuses %s as authFileCorrupt naming the path', (_name, text, message) => {
    let thrown: unknown;
    try {
      parseAuth(text, '/h/auth.json');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ kind: 'authFileCorrupt', message: expect.stringMatching(message) });
    expect((thrown as Error).message).toContain('/h/auth.json');
  });

  it('takes the account id from the id token when tokens.account_id is absent', () => {
    const idToken = chatgptJwt({ accountId: 'ws-claim' });
    const text = JSON.stringify({ tokens: { id_token: idToken, access_token: 'at', refresh_token: 'rt' } });
    expect(parseAuth(text, 'auth.json')).toMatchObject({ kind: 'chatgpt', accountId: 'ws-claim', apiKey: null });
  });

  it('rewrites a stored ChatGPT file byte for byte in the SPEC §5 layout', () => {
    const text = JSON.stringify(
      {
        auth_mode: 'chatgpt',
        OPENAI_API_KEY: 'sk-exchanged',
        tokens: {
          id_token: chatgptJwt({ email: 'a@b.c', accountId: 'ws-1' }),
          access_token: chatgptJwt({ accountId: 'ws-1' }),
          refresh_token: 'rt-1',
          oauth_provenance: { issuer: 'https://auth.openai.com', client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' },
          login_owner_id: 'x'.repeat(43),
          account_id: 'ws-1',
        },
        last_refresh: '2026-11-25T00:24:43.123456789Z',
      },
      null,
      2,
    );
    expect(serializeAuth(parseAuth(text, 'auth.json')!)).toBe(text);
  });

  it('writes the stored ChatGPT layout through save', async () => {
    const { store: s, authPath } = store();
    const text = JSON.stringify(
      {
        auth_mode: 'chatgpt',
        OPENAI_API_KEY: null,
        tokens: { id_token: chatgptJwt({ accountId: 'ws-1' }), access_token: 'at', refresh_token: 'rt', account_id: 'ws-1' },
        last_refresh: null,
      },
      null,
      2,
    );
    await s.save(parseAuth(text, authPath)!);
    expect(readFileSync(authPath, 'utf8')).toBe(text);
    expect((await s.load())?.kind).toBe('chatgpt');
  });

  it('keeps ephemeral credentials in memory only', async () => {
    const s = createMemoryStore();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-m') });
    expect((await s.load())?.kind).toBe('apiKey');
    await s.clear();
    expect(await s.load()).toBeNull();
  });

  it('gives each memory store its own credentials', async () => {
    const a = createMemoryStore();
    const b = createMemoryStore();
    await a.save({ kind: 'apiKey', apiKey: new Secret('sk-a') });
    expect(await b.load()).toBeNull();
  });

  it('waits for auth.lock held by flock(1) before writing, then writes over what the holder left', async () => {
    const { store: s, home, authPath } = store();
    const codex = await holdWithFlock(join(home, 'auth.lock'), `printf '{"OPENAI_API_KEY":"sk-codex"}' > '${authPath}'`);
    try {
      const saved = s.save({ kind: 'apiKey', apiKey: new Secret('sk-ours') });
      await sleep(100);
      expect(existsSync(authPath)).toBe(false);
      await codex.release();
      await saved;
      expect(JSON.parse(readFileSync(authPath, 'utf8')).OPENAI_API_KEY).toBe('sk-ours');
    } finally {
      await codex.release();
    }
  });

  it('fails a write with storageFailed when auth.lock stays held past the lock deadline', async () => {
    const home = tempHome();
    const authPath = join(home, 'auth.json');
    const s = createFileStore({ authPath, log: quiet, lockTimeoutMs: 80 });
    const codex = await holdWithFlock(join(home, 'auth.lock'));
    try {
      await expect(s.save({ kind: 'apiKey', apiKey: new Secret('sk-x') })).rejects.toMatchObject({
        kind: 'storageFailed',
        message: expect.stringMatching(/^failed to save api key: timed out waiting for .*auth\.lock/),
      });
      expect(existsSync(authPath)).toBe(false);
    } finally {
      await codex.release();
    }
  });

  it('holds auth.json.lock around the rename on save, with the temp file already written', async () => {
    const { store: s, home, authPath } = store();
    const other = await holdWithFlock(join(home, 'auth.json.lock'));
    try {
      const saved = s.save({ kind: 'apiKey', apiKey: new Secret('sk-renamed') });
      await sleep(100);
      expect(existsSync(authPath)).toBe(false);
      expect(existsSync(join(home, '.auth.json.tmp'))).toBe(true);
      await other.release();
      await saved;
      expect(JSON.parse(readFileSync(authPath, 'utf8')).OPENAI_API_KEY).toBe('sk-renamed');
      expect(existsSync(join(home, '.auth.json.tmp'))).toBe(false);
    } finally {
      await other.release();
    }
  });

  it('holds auth.json.lock around the unlink on clear', async () => {
    const { store: s, home, authPath } = store();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk') });
    const other = await holdWithFlock(join(home, 'auth.json.lock'));
    try {
      const cleared = s.clear();
      await sleep(100);
      expect(existsSync(authPath)).toBe(true);
      await other.release();
      await cleared;
      expect(existsSync(authPath)).toBe(false);
    } finally {
      await other.release();
    }
  });

  it('does not create a missing CODEX_HOME just to clear nothing', async () => {
    const home = join(tempHome(), 'absent');
    await createFileStore({ authPath: join(home, 'auth.json'), log: quiet }).clear();
    expect(existsSync(home)).toBe(false);
  });
});
