import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { createFileStore, createMemoryStore, parseAuth, serializeAuth } from '../../src/effects/storage.js';
import { AuthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
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

  it('keeps ephemeral credentials in memory only', async () => {
    const s = createMemoryStore();
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-m') });
    expect((await s.load())?.kind).toBe('apiKey');
    await s.clear();
    expect(await s.load()).toBeNull();
  });
});
