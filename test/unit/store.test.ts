import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StoredAuth } from '../../machines/account-types.js';
import { createFileStore } from '../../src/effects/storage.js';
import { createCredentialStore, type StoreBackend } from '../../src/effects/store.js';
import { createLogger } from '../../src/log.js';
import { tempHome } from '../helpers/server-process.js';

const quiet = createLogger('error', () => {});

/** Another process writes `auth.json`: a temp file renamed over it. */
function writeElsewhere(home: string, value: object, space?: number): void {
  const temp = join(home, '.other-writer');
  writeFileSync(temp, JSON.stringify(value, null, space), { mode: 0o600 });
  renameSync(temp, join(home, 'auth.json'));
}

function fileStore() {
  const home = tempHome();
  const backend = createFileStore({ authPath: join(home, 'auth.json'), log: quiet });
  return { home, backend };
}

describe('noticing what other processes store (createCredentialStore)', () => {
  it('takes a rewrite of the same credentials for no change, and a new key for one', async () => {
    const { home, backend } = fileStore();
    writeElsewhere(home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-one' });
    const store = createCredentialStore(backend);
    expect((await store.read()).auth).toMatchObject({ kind: 'apiKey' });
    // Other bytes (another layout), the same credentials.
    writeElsewhere(home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-one' }, 2);
    expect(await store.changedElsewhere()).toBeNull();
    writeElsewhere(home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-two' });
    const changed = await store.changedElsewhere();
    expect((changed?.auth as Extract<StoredAuth, { kind: 'apiKey' }>).apiKey.reveal()).toBe('sk-two');
  });

  it('checks for changes only after a read under way has finished', async () => {
    const { home, backend } = fileStore();
    writeElsewhere(home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-one' });
    // The load is slow (a big file, a slow disk): another process rewrites the same credentials meanwhile.
    let finishLoad: (() => void) | null = null;
    let loads = 0;
    const slow: StoreBackend = {
      ...backend,
      load: async () => {
        const auth = await backend.load();
        if (loads++ === 0) await new Promise<void>((resolve) => (finishLoad = resolve));
        return auth;
      },
    };
    const store = createCredentialStore(slow);
    const reading = store.read();
    while (!finishLoad) await new Promise((r) => setTimeout(r, 5));
    writeElsewhere(home, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-one' }, 2);
    const check = store.changedElsewhere();
    // The check has had time to look, had it not waited for the read.
    await new Promise((r) => setTimeout(r, 30));
    (finishLoad as () => void)();
    expect((await reading).auth).toMatchObject({ kind: 'apiKey' });
    expect(await check).toBeNull();
  });
});
