import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOGGED_OUT, ServerProcess, settle, useServers } from '../helpers/server-process.js';

/**
 * Regressions of issue 5: inputs that stopped the server, ids it could not
 * echo, secrets that reached stderr, and temp files that piled up.
 */
describe('hardening (issue 5)', () => {
  const { start, spawn } = useServers();

  describe('no input line stops the server', () => {
    const cancelVariants = [
      '{"method":"$/cancelRequest"}',
      '{"method":"$/cancelRequest","params":null}',
      '{"method":"$/cancelRequest","params":{}}',
      '{"method":"$/cancelRequest","params":[]}',
      '{"method":"$/cancelRequest","params":"x"}',
      '{"method":"$/cancelRequest","params":7}',
      '{"method":"$/cancelRequest","params":{"id":null}}',
      '{"method":"$/cancelRequest","params":{"id":1}}',
      '{"method":"$/progress"}',
      '{"method":"$/setTrace","params":{"value":"verbose"}}',
      '{"method":"$/logTrace"}',
    ];

    it('ignores every form of $/cancelRequest and other $/ notifications before initialize', async () => {
      const s = spawn();
      for (const line of cancelVariants) s.sendRaw(`${line}\n`);
      await s.initialize();
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      expect(s.child.exitCode).toBeNull();
    });

    it('ignores every form of $/cancelRequest after initialize, also for a request in flight', async () => {
      const s = await start();
      s.sendRaw('{"id":"pending","method":"account/read","params":{}}\n');
      for (const line of cancelVariants) s.sendRaw(`${line}\n`);
      s.sendRaw('{"method":"$/cancelRequest","params":{"id":"pending"}}\n');
      expect((await s.response('pending')).result).toEqual(LOGGED_OUT);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      await settle(s);
      expect(s.messages.filter((m) => m.id === 'pending')).toHaveLength(1);
    });

    it('keeps serving after a message nested 100,000 deep, answering it once, without a stack overflow', async () => {
      const s = await start();
      const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
      s.sendRaw(`{"id":"deep","method":"account/read","params":${deep}}\n`);
      s.sendRaw(`{"id":"deep-unknown","method":"no/such","params":${deep}}\n`);
      s.sendRaw(`{"method":"$/cancelRequest","params":${deep}}\n`);
      s.sendRaw(`{"id":0,"result":${deep}}\n`);
      expect((await s.response('deep')).error.code).toBe(-32600);
      expect((await s.response('deep-unknown')).error.message).toMatch(/unknown variant `no\/such`/);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      expect(s.stderr).not.toMatch(/Maximum call stack|unhandled/i);
    });
  });

  describe('64-bit integer ids', () => {
    const ids = ['9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808', '12345678901234567890'.slice(0, 19)];

    it.each(ids)('echoes the id %s digit for digit', async (id) => {
      const s = await start();
      s.sendRaw(`{"id":${id},"method":"account/read","params":{}}\n`);
      await s.waitFor(() => s.rawLines.some((l) => l.startsWith(`{"id":${id},`)));
      const line = s.rawLines.find((l) => l.startsWith(`{"id":${id},`))!;
      expect(line).toBe(`{"id":${id},"result":${JSON.stringify(LOGGED_OUT)}}`);
    });

    it('echoes a 64-bit id on errors too, and on requests before initialize', async () => {
      const s = spawn();
      s.sendRaw('{"id":9007199254740995,"method":"account/read","params":{}}\n');
      await s.waitFor(() => s.rawLines.length > 0);
      expect(s.rawLines[0]).toMatch(/^\{"id":9007199254740995,"error":\{"code":-32600,"message":"Not initialized"/);
    });

    it.each([
      ['beyond i64', '9223372036854775808'],
      ['below i64', '-9223372036854775809'],
      ['a fraction', '1.5'],
      ['an integral fraction', '1.0'],
      ['an exponent', '1e3'],
    ])('drops a request whose id is %s, as the reference does, logging why', async (_name, id) => {
      const s = await start();
      s.sendRaw(`{"id":${id},"method":"account/read","params":{}}\n`);
      await s.stderrMatching(/dropping input line \(\d+ chars\): id is not a string or a 64-bit integer/);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      expect(s.messages.filter((m) => m.id !== 1 && m.id !== 2)).toEqual([]);
    });
  });

  describe('nothing from an input line reaches stderr', () => {
    const fragment = 'QmZ7x9PkLw3RtY';

    it('logs only the length and a fixed reason for an API key line broken by a raw newline, at every level', async () => {
      for (const level of ['warn', 'debug']) {
        const s = await start({ env: { CODEX_ACCOUNT_SERVER_LOG: level } });
        s.sendRaw(`{"id":5,"method":"account/login/start","params":{"type":"apiKey","apiKey":"${fragment.slice(0, 7)}\n${fragment.slice(7)}"}}\n`);
        await s.stderrMatching(/dropping input line \(\d+ chars\): malformed JSON[\s\S]*dropping input line \(\d+ chars\): malformed JSON/);
        expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
        expect(s.stderr).not.toContain(fragment.slice(0, 7));
        expect(s.stderr).not.toContain(fragment.slice(7));
        s.kill();
      }
    });

    it('drops a stray message carrying a token without dumping it, even at debug level', async () => {
      const s = await start({ env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' } });
      s.sendRaw(`{"id":0,"error":null,"data":{"token":"${fragment}"}}\n`);
      s.sendRaw(`{"id":0,"result":{"accessToken":"${fragment}"}}\n`);
      s.sendRaw(`{"method":"account/unknown","params":{"apiKey":"${fragment}"}}\n`);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      await settle(s);
      expect(s.stderr).toMatch(/neither a request, a notification nor a response/);
      expect(s.stderr).not.toContain(fragment);
    });

    it('writes a few hundred bytes, not megabytes, for a 15 MB stray line at debug level', async () => {
      const s = await start({ env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' } });
      const before = s.stderr.length;
      s.sendRaw(`{"id":0,"error":null,"data":"${'x'.repeat(15_000_000)}"}\n`);
      expect((await s.request('account/read', {}, 'after')).result).toEqual(LOGGED_OUT);
      await settle(s);
      expect(s.stderr.length - before).toBeLessThan(2_000);
    });
  });

  describe('interrupted writes leave nothing behind', () => {
    const credentialFiles = (home: string) => readdirSync(home).filter((f) => f !== 'auth.lock' && f !== 'auth.json.lock' && f !== 'config.toml');

    it('removes temp files that killed writers left, at start-up and on the next login', async () => {
      const s0 = ServerProcess.start();
      const home = s0.home;
      s0.kill();
      const old = new Date(Date.now() - 60_000);
      for (const f of ['.auth.json.tmp', 'auth.json.1a2b3c4d', 'auth.json.5e6f7a8b']) {
        writeFileSync(join(home, f), '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-leftover"}');
        (await import('node:fs')).utimesSync(join(home, f), old, old);
      }
      const s = await start({ home });
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
      expect(credentialFiles(home)).toEqual(['auth.json']);
      expect(statSync(join(home, 'auth.json')).mode & 0o777).toBe(0o600);
    });

    it('leaves no copy of a credential on disk after logout', async () => {
      const s = await start();
      writeFileSync(join(s.home, '.auth.json.tmp'), 'sk-half');
      writeFileSync(join(s.home, 'auth.json.0a1b2c3d'), 'sk-half');
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
      await s.request('account/logout');
      expect(credentialFiles(s.home)).toEqual([]);
    });

    it('never leaves more than auth.json after being killed during logins, again and again', async () => {
      const home = ServerProcess.start().home;
      for (let i = 0; i < 12; i++) {
        const s = ServerProcess.start({ home });
        await s.initialize();
        s.send({ id: 'login', method: 'account/login/start', params: { type: 'apiKey', apiKey: `sk-${i}` } });
        // Kill at a different moment each round: before, during or after the write.
        await new Promise((r) => setTimeout(r, i % 4));
        s.kill();
        await s.exited;
        const files = credentialFiles(home);
        expect(files.filter((f) => f !== 'auth.json' && f !== '.auth.json.tmp')).toEqual([]);
        if (files.includes('auth.json')) expect(JSON.parse(readFileSync(join(home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toMatch(/^sk-\d+$/);
      }
      const s = await start({ home });
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-final' });
      expect(credentialFiles(home)).toEqual(['auth.json']);
    });
  });
});
