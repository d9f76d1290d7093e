import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOGGED_OUT, settle, tempHome, useServers } from '../helpers/server-process.js';

/** Writes auth.json the way Codex does: a temp file renamed over it. */
function writeAsCodex(home: string, value: object): void {
  const temp = join(home, '.auth-codex-test');
  writeFileSync(temp, JSON.stringify(value, null, 2), { mode: 0o600 });
  renameSync(temp, join(home, 'auth.json'));
}

describe('noticing other processes (issue 8)', () => {
  const { start } = useServers();

  it('serves an API key another process stored, and says so with account/updated', async () => {
    const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-first' } });
    expect((await s.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
    const from = s.messages.length;
    unlinkSync(join(s.home, 'auth.json'));
    expect((await s.notification('account/updated', from)).params).toEqual({ authMode: null, planType: null });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    const again = s.messages.length;
    writeAsCodex(s.home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-from-codex' });
    expect((await s.notification('account/updated', again)).params).toEqual({ authMode: 'apikey', planType: null });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-from-codex');
  });

  it('does not report its own writes back to the host as changes', async () => {
    const s = await start();
    const from = s.messages.length;
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-own' });
    await settle(s, 300);
    expect(s.notifications('account/updated').slice(0).filter((m) => s.messages.indexOf(m) >= from)).toHaveLength(1);
  });

  it('serves a replaced key without a notification when the mode and plan stay the same', async () => {
    const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-first' } });
    await s.request('account/read', {});
    writeAsCodex(s.home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-second' });
    const deadline = Date.now() + 3_000;
    let token = '';
    while (Date.now() < deadline && token !== 'sk-second') {
      token = (await s.request('getAuthStatus', { includeToken: true })).result.authToken;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(token).toBe('sk-second');
    expect(s.notifications('account/updated')).toHaveLength(0);
  });

  it('takes a rewrite of the very same credentials for no change (the ChatGPT session is not restarted)', async () => {
    const trace = join(tempHome(), 'trace.jsonl');
    const auth = { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-same' };
    const s = await start({ auth, env: { CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS: trace, CODEX_ACCOUNT_SERVER_LOG: 'debug' } });
    await s.request('account/read', {});
    // Other bytes (another layout), the same credentials: the store compares what they hold.
    const temp = join(s.home, '.auth-codex-test');
    writeFileSync(temp, JSON.stringify(auth), { mode: 0o600 });
    renameSync(temp, join(s.home, 'auth.json'));
    await s.stderrMatching(/watch: auth\.json unchanged/);
    writeAsCodex(s.home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-other' });
    await s.stderrMatching(/watch: auth\.json changed elsewhere/);
    const reloads = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('"on":"credentials.reloaded"'));
    expect(reloads).toHaveLength(1);
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-other');
  });
});
