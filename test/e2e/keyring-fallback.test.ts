import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CODEX_SERVICE, hangingBus, PrivateKeyring } from '../helpers/keyring.js';
import { LOGGED_OUT, tempHome, useServers, type ServerProcess, type StartOptions } from '../helpers/server-process.js';

const KEYRING = 'cli_auth_credentials_store = "keyring"\n';
const AUTO = 'cli_auth_credentials_store = "auto"\n';
const API_KEY_FILE = (key: string) => JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: key }, null, 2);

const codexUsername = (home: string) =>
  `cli|${createHash('sha256').update(realpathSync(home)).digest('hex').slice(0, 16)}`;

/** A D-Bus address where nothing listens: no session bus at all. */
function noBus(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'cas-nobus-'));
  return { DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'bus')}`, XDG_RUNTIME_DIR: dir };
}

/** Child pids of a process (Linux /proc), to see the keyring helper come and go. */
function childrenOf(pid: number): number[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cli_auth_credentials_store = "auto" with a working keyring (SPEC §5.1)', () => {
  let keyring: PrivateKeyring;
  beforeAll(async () => {
    keyring = await PrivateKeyring.start();
  });
  afterAll(async () => {
    await keyring?.stop();
  });
  const env = useServers();
  const start = (options: StartOptions = {}) => env.start({ config: AUTO, ...options, env: { ...keyring.env, ...options.env } });
  const itemsOf = (home: string) => keyring.search({ service: CODEX_SERVICE, username: codexUsername(home) });

  it('saves to the keyring and writes no auth.json', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-auto-ring' });
    expect((await itemsOf(s.home))[0]!.secret).toBe('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-auto-ring"}');
    // Codex's empty lock files appear in every store mode (SPEC §5.1); no credential file does.
    expect(readdirSync(s.home).filter((f) => !f.endsWith('.lock'))).toEqual(['config.toml']);
  });

  it('reads a leftover auth.json while the keyring holds nothing', async () => {
    const s = await start({ auth: API_KEY_FILE('sk-leftover') });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-leftover');
  });

  it('removes a leftover auth.json once a keyring save succeeds', async () => {
    const s = await start({ auth: API_KEY_FILE('sk-leftover') });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-moved' });
    expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
    expect((await itemsOf(s.home))[0]!.secret).toBe('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-moved"}');
  });

  it('prefers the keyring item over auth.json', async () => {
    const home = tempHome();
    const username = codexUsername(home);
    await keyring.store('x', { service: CODEX_SERVICE, username, target: 'default' }, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-ring"}');
    const s = await start({ home, auth: API_KEY_FILE('sk-file') });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-ring');
  });

  it('clears both the keyring item and auth.json at logout', async () => {
    const home = tempHome();
    await keyring.store('x', { service: CODEX_SERVICE, username: codexUsername(home), target: 'default' }, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-ring"}');
    const s = await start({ home, auth: API_KEY_FILE('sk-file') });
    expect((await s.request('account/logout')).result).toEqual({});
    expect(await itemsOf(home)).toEqual([]);
    expect(existsSync(join(home, 'auth.json'))).toBe(false);
  });
});

describe('no D-Bus session at all', () => {
  const env = useServers();

  it('fails a keyring login with the reference message and keyring_unavailable, storing nothing', async () => {
    const s = await env.start({ config: KEYRING, env: noBus() });
    const from = s.messages.length;
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-nowhere' });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable', recovery: 'check_keyring' } });
    expect(response.error.message).toMatch(
      /^failed to save api key: failed to write OAuth tokens to keyring: Platform secure storage failure: no secret service provider or dbus session found: /,
    );
    expect(JSON.stringify(response)).not.toContain('sk-nowhere');
    expect(s.messages.slice(from)).toEqual([response]);
    // Codex's empty lock files appear in every store mode (SPEC §5.1); no credential file does.
    expect(readdirSync(s.home).filter((f) => !f.endsWith('.lock'))).toEqual(['config.toml']);
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
  });

  it('answers reads with keyring_unavailable when the keyring cannot be loaded', async () => {
    const s = await env.start({ config: KEYRING, env: noBus() });
    const response = await s.request('account/read', {});
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable' } });
    expect(response.error.message).toMatch(/^failed to load CLI auth from keyring: /);
  });

  it('fails a keyring logout with the reference message', async () => {
    const s = await env.start({ config: KEYRING, env: noBus() });
    const response = await s.request('account/logout');
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable' } });
    expect(response.error.message).toMatch(/^logout failed: failed to delete auth from keyring: /);
  });

  it('falls back to auth.json under auto, with mode 0600 and a line on stderr', async () => {
    const home = tempHome();
    let s = await env.start({ home, config: AUTO, env: noBus() });
    expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-fallback' })).result).toEqual({ type: 'apiKey' });
    expect(readFileSync(join(home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-fallback'));
    expect(statSync(join(home, 'auth.json')).mode & 0o777).toBe(0o600);
    await s.stderrMatching(/cli_auth_credentials_store = "auto": writing to the keyring failed .*; using .*auth\.json/);
    expect(s.stderr).not.toContain('sk-fallback');
    await s.close();
    s = await env.start({ home, config: AUTO, env: noBus() });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-fallback');
  });

  // A deliberate difference from the reference, which fails and keeps the file (SPEC §5.1).
  it('logs out of a file fallback under auto, removing auth.json and warning about the keyring', async () => {
    const s = await env.start({ config: AUTO, env: noBus(), auth: API_KEY_FILE('sk-file') });
    expect((await s.request('account/logout')).result).toEqual({});
    expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    await s.stderrMatching(/could not reach the keyring/);
  });
});

describe('a session bus without a Secret Service', () => {
  let keyring: PrivateKeyring;
  beforeAll(async () => {
    keyring = await PrivateKeyring.start({ keyring: false });
  });
  afterAll(async () => {
    await keyring?.stop();
  });
  const env = useServers();

  it('fails a keyring login with keyring_unavailable', async () => {
    const s = await env.start({ config: KEYRING, env: keyring.env });
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable', recovery: 'check_keyring' } });
    expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
  });

  it('falls back to auth.json under auto', async () => {
    const s = await env.start({ config: AUTO, env: keyring.env });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-x'));
  });
});

describe('a locked collection', () => {
  let keyring: PrivateKeyring | undefined;
  afterEach(async () => {
    await keyring?.stop();
    keyring = undefined;
  });
  const env = useServers();
  const locked = async () => {
    keyring = await PrivateKeyring.start();
    return keyring;
  };

  it('fails a keyring login with keyring_locked and leaves the item alone', async () => {
    const k = await locked();
    const home = tempHome();
    const username = codexUsername(home);
    await k.store('x', { service: CODEX_SERVICE, username, target: 'default' }, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-kept"}');
    await k.lock();
    const s = await env.start({ home, config: KEYRING, env: k.env });
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_locked', recovery: 'unlock_keyring' } });
    expect(response.error.message).toMatch(/^failed to save api key: failed to write OAuth tokens to keyring: .*unlock/);
    expect(existsSync(join(home, 'auth.json'))).toBe(false);
  });

  it('answers reads of an item in it with keyring_locked', async () => {
    const k = await locked();
    const home = tempHome();
    await k.store('x', { service: CODEX_SERVICE, username: codexUsername(home), target: 'default' }, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-kept"}');
    await k.lock();
    const s = await env.start({ home, config: KEYRING, env: k.env });
    const response = await s.request('account/read', {});
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_locked' } });
    expect(response.error.message).toMatch(/^failed to load CLI auth from keyring: Couldn't access platform secure storage: /);
    expect(response.error.message).not.toContain('sk-kept');
  });

  it('falls back to auth.json under auto and says why on stderr', async () => {
    const k = await locked();
    await k.lock();
    const s = await env.start({ config: AUTO, env: k.env });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-locked' });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-locked'));
    await s.stderrMatching(/writing to the keyring failed .*unlock/);
  });
});

describe('a D-Bus that hangs', () => {
  let bus: Awaited<ReturnType<typeof hangingBus>> | undefined;
  afterEach(async () => {
    await bus?.close();
    bus = undefined;
  });
  const env = useServers();
  const start = async (config: string) => {
    bus = await hangingBus();
    return env.start({ config, env: { DBUS_SESSION_BUS_ADDRESS: bus.address, CODEX_ACCOUNT_SERVER_KEYRING_TIMEOUT_MS: '300' } });
  };

  it('answers a keyring login with keyring_unavailable at the configured deadline', async () => {
    const s = await start(KEYRING);
    const t0 = Date.now();
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-hang' });
    const elapsed = Date.now() - t0;
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable' } });
    expect(response.error.message).toContain('did not answer within 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('stops the stuck keyring helper and keeps serving', async () => {
    const s = await start(KEYRING);
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-hang' });
    await until(() => childrenOf(s.child.pid!).length === 0);
    expect((await s.request('getAuthStatus', {})).result.authMethod).toBeNull();
  });

  it('falls back to auth.json under auto once the deadline passes', async () => {
    const s = await start(AUTO);
    expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-hang' })).result).toEqual({ type: 'apiKey' });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-hang'));
  });
});

describe('a platform where the keyring module cannot load', () => {
  const env = useServers();
  // A copy of the built server with no node_modules beside it: `@napi-rs/keyring` cannot be found.
  let bin: string;
  beforeAll(() => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const copy = mkdtempSync(join(tmpdir(), 'cas-nomodule-'));
    cpSync(join(root, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
    bin = join(copy, 'bin', 'codex-account-server');
  });

  it('behaves like no keyring under keyring', async () => {
    const s = await env.start({ bin, config: KEYRING });
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'keyring_unavailable' } });
    expect(response.error.message).toContain('cannot be used on this platform');
  });

  it('falls back to auth.json under auto', async () => {
    const s = await env.start({ bin, config: AUTO });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-x'));
  });

  it('still starts and serves with the file store', async () => {
    const s: ServerProcess = await env.start({ bin });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-file' });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(API_KEY_FILE('sk-file'));
  });
});

describe('the keyring helper process', () => {
  let keyring: PrivateKeyring;
  beforeAll(async () => {
    keyring = await PrivateKeyring.start();
  });
  afterAll(async () => {
    await keyring?.stop();
  });
  const env = useServers();

  it('is never started with the file store', async () => {
    const s = await env.start({ env: keyring.env });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-file' });
    expect(childrenOf(s.child.pid!)).toEqual([]);
  });

  it('ends when the server exits', async () => {
    const s = await env.start({ config: KEYRING, env: keyring.env });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-x' });
    const helpers = childrenOf(s.child.pid!);
    expect(helpers).toHaveLength(1);
    expect((await s.close()).code).toBe(0);
    await until(() => !alive(helpers[0]!));
  });
});
