import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { createAutoStore, createKeyringStore, describeItem, keyringItemFor } from '../../src/effects/keyring-store.js';
import { createFileStore } from '../../src/effects/storage.js';
import { describeStore } from '../../src/effects/store-info.js';
import { AuthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { hangingBus } from '../helpers/keyring.js';
import { tempHome } from '../helpers/server-process.js';

const quiet = createLogger('error', () => {});
/** Built by the global setup (`npm run build`). */
const helperPath = fileURLToPath(new URL('../../dist/keyring-helper.cjs', import.meta.url));

describe('the keyring item of a CODEX_HOME (SPEC §5.1)', () => {
  it('is named cli| plus the first 16 hex digits of sha256 of the path', () => {
    // sha256("/home/user/.codex") = 59448a44901f7128…
    expect(keyringItemFor('/home/user/.codex')).toEqual({ service: 'Codex Auth', account: 'cli|59448a44901f7128', target: 'default' });
  });

  it('ignores a trailing slash', () => {
    expect(keyringItemFor('/home/user/.codex/').account).toBe('cli|59448a44901f7128');
  });

  it('hashes the real path, so a symlinked home shares the item', () => {
    const real = join(tempHome(), 'real');
    mkdirSync(real);
    const link = join(tempHome(), 'link');
    symlinkSync(real, link);
    expect(keyringItemFor(link)).toEqual(keyringItemFor(real));
  });

  it('is described with the attributes secret-tool takes', () => {
    expect(describeItem(keyringItemFor('/home/user/.codex'))).toBe('Secret Service item service="Codex Auth" username="cli|59448a44901f7128"');
  });
});

describe('describeStore', () => {
  it('says the configured store and where it keeps credentials', () => {
    expect(
      describeStore({ configured: 'file', backend: 'file', reason: 'configured', location: '/h/auth.json', problem: null }),
    ).toBe('file (cli_auth_credentials_store = "file"): /h/auth.json');
  });

  it('says why auto fell back, with the keyring problem', () => {
    expect(
      describeStore({ configured: 'auto', backend: 'file', reason: 'keyring_locked', location: '/h/auth.json', problem: 'unlock prompt was dismissed' }),
    ).toBe('file (cli_auth_credentials_store = "auto", fell back because the keyring is locked): /h/auth.json [unlock prompt was dismissed]');
  });
});

describe('the keyring store against a D-Bus that hangs', () => {
  let bus: Awaited<ReturnType<typeof hangingBus>> | undefined;
  afterEach(async () => {
    await bus?.close();
    bus = undefined;
  });

  const store = async (timeoutMs: number) => {
    bus = await hangingBus();
    return createKeyringStore({
      codexHome: tempHome(),
      log: quiet,
      timeoutMs,
      helperPath,
      env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus.address },
    });
  };

  it('keeps this event loop free while the keyring call hangs', async () => {
    const s = await store(400);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const failure = await s.load().catch((error: unknown) => error);
    clearInterval(timer);
    expect(failure).toBeInstanceOf(AuthError);
    expect((failure as AuthError).kind).toBe('keyringUnavailable');
    // ~40 possible; a blocked loop would tick at most once or twice.
    expect(ticks).toBeGreaterThan(15);
  });

  it('reports the problem in describe() and keeps the secret out of it', async () => {
    const s = await store(200);
    await s.save({ kind: 'apiKey', apiKey: new Secret('sk-describe-me') }).catch(() => {});
    const info = s.describe();
    expect(info).toMatchObject({ configured: 'keyring', backend: 'keyring', reason: 'configured' });
    expect(info.problem).toContain('did not answer within 200 ms');
    expect(JSON.stringify(info)).not.toContain('sk-describe-me');
  });

  it('serves the next call with a fresh helper after a deadline', async () => {
    const s = await store(200);
    const first = await s.load().catch((error: unknown) => error);
    const second = await s.load().catch((error: unknown) => error);
    expect([(first as AuthError).message, (second as AuthError).message]).toEqual([
      'failed to load CLI auth from keyring: Platform secure storage failure: the Secret Service did not answer within 200 ms',
      'failed to load CLI auth from keyring: Platform secure storage failure: the Secret Service did not answer within 200 ms',
    ]);
  });
});

describe('describe() of the auto store', () => {
  const autoStore = () => {
    const home = tempHome();
    const authPath = join(home, 'auth.json');
    const bus = `unix:path=${join(home, 'no-bus')}`;
    const keyring = createKeyringStore({ codexHome: home, log: quiet, timeoutMs: 5_000, helperPath, env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus } });
    return { authPath, store: createAutoStore({ keyring, file: createFileStore({ authPath, log: quiet }), authPath, log: quiet }) };
  };

  it('names the keyring before anything was tried', () => {
    const { store } = autoStore();
    expect(store.describe()).toMatchObject({ configured: 'auto', backend: 'keyring', reason: 'configured', problem: null });
    expect(store.describe().location).toMatch(/^Secret Service item service="Codex Auth" username="cli\|[0-9a-f]{16}"$/);
  });

  it('names auth.json and the reason after a fallback', async () => {
    const { store, authPath } = autoStore();
    await store.save({ kind: 'apiKey', apiKey: new Secret('sk-fell-back') });
    expect(existsSync(authPath)).toBe(true);
    const info = store.describe();
    expect(info).toMatchObject({ configured: 'auto', backend: 'file', reason: 'keyring_unavailable', location: authPath });
    expect(info.problem).toMatch(/no secret service provider or dbus session found/);
  });
});
