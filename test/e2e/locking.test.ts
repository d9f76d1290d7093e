import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { holdWithFlock, type HeldLock } from '../helpers/flock.js';
import { settle, tempHome, useServers } from '../helpers/server-process.js';

describe('Codex locks in the running server (SPEC §8.1)', () => {
  const env = useServers();
  let codex: HeldLock | undefined;
  afterEach(async () => {
    await codex?.release();
    codex = undefined;
  });

  it('holds an API-key login until flock(1) lets go of auth.lock, then writes', async () => {
    const home = tempHome();
    const s = await env.start({ home });
    codex = await holdWithFlock(join(home, 'auth.lock'));
    const from = s.messages.length;
    s.send({ id: 'login', method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-after-codex' } });
    await settle(s, 300);
    expect(s.messages.slice(from).filter((m) => m.id === 'login')).toEqual([]);
    await codex.release();
    expect((await s.response('login')).result).toEqual({ type: 'apiKey' });
    expect(JSON.parse(readFileSync(join(home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toBe('sk-after-codex');
  });

  it('leaves auth.lock 0644 and auth.json.lock 0600 after its first write', async () => {
    const s = await env.start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' });
    expect(statSync(join(s.home, 'auth.lock')).mode & 0o777).toBe(0o644);
    expect(statSync(join(s.home, 'auth.json.lock')).mode & 0o777).toBe(0o600);
  });
});
