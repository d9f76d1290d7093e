import { AsyncLocalStorage } from 'node:async_hooks';
import type { FileHandle } from 'node:fs/promises';
import { fsPromises, mkdir, stat } from './fs-async.js';
import { join, resolve } from 'node:path';
import { AuthError } from '../errors.js';

/**
 * Cross-process locks on `CODEX_HOME`, taken exactly as Codex takes them
 * (SPEC §8.1, issue 8): `flock(LOCK_EX)` on `auth.lock` for a whole credential
 * update, and `flock(LOCK_EX|LOCK_NB)`, retried briefly, on `auth.json.lock`
 * around the rename or unlink of `auth.json`. Both are BSD `flock` locks, so
 * they exclude Codex, other servers, and `flock(1)`; POSIX `fcntl` locks would
 * not (Linux keeps the two kinds apart). docs/locking.md says why `fs-ext`.
 *
 * Waiting never blocks the event loop or a libuv worker: every attempt is a
 * non-blocking `LOCK_NB` call, repeated with backoff until the lock is free,
 * the deadline passes, or the signal aborts. Callers in this process queue on
 * an in-process mutex first, so they are served in order and do not poll.
 * Neither lock is re-entrant: do not take `withAuthLock` inside itself.
 */

/** Codex's names and modes (SPEC §5): `auth.lock` 0644, `auth.json.lock` 0600. */
export const AUTH_LOCK = { name: 'auth.lock', mode: 0o644 } as const;
export const AUTH_JSON_LOCK = { name: 'auth.json.lock', mode: 0o600 } as const;

export interface AuthLockOptions {
  /** Gives up waiting (the error is `signal.reason`); a held lock is released when `fn` settles. */
  signal?: AbortSignal;
  /** How long to wait for the lock before failing with `storageFailed`. */
  timeoutMs?: number;
}

/** Default wait for `auth.lock`: Codex holds it across a token refresh, which is a network call. */
export const DEFAULT_AUTH_LOCK_TIMEOUT_MS = 30_000;
/** Default wait for `auth.json.lock`: it only ever guards a rename or an unlink. */
export const DEFAULT_AUTH_JSON_LOCK_TIMEOUT_MS = 1_000;

// Backoff between non-blocking attempts: short at first (a rename takes
// microseconds), capped so a long wait costs a few syscalls a second.
const FIRST_DELAY_MS = 2;
const MAX_DELAY_MS = 50;

type FsExt = Pick<typeof import('fs-ext'), 'flockSync'>;

let fsExt: FsExt | null | undefined;
/**
 * The native addon is loaded on the first lock, never at start-up (it is
 * `external` in the bundle). Where it cannot load (no build for this
 * platform, a copied `dist/` without `node_modules`), credentials are still
 * written, atomically, without the cross-process lock, and stderr says so
 * once: a server that cannot save at all would be worse.
 */
async function loadFsExt(): Promise<FsExt | null> {
  if (fsExt !== undefined) return fsExt;
  try {
    // A CommonJS addon: ESM sees its exports on `default`, the bundle's require() sees them directly.
    const mod = (await import('fs-ext')) as FsExt & { default?: FsExt };
    fsExt = mod.default ?? mod;
  } catch (error) {
    fsExt = null;
    process.stderr.write(
      `${new Date().toISOString()} WARN codex-account-server: flock(2) is unavailable (fs-ext did not load: ${(error as Error).name}); credential writes go on without Codex's cross-process lock\n`,
    );
  }
  return fsExt;
}

/**
 * Runs `fn` holding `flock(LOCK_EX)` on `$CODEX_HOME/auth.lock` (created 0644
 * if absent). Use it around a whole credential update: reload, decide, write.
 */
export async function withAuthLock<T>(home: string, fn: () => Promise<T>, options: AuthLockOptions = {}): Promise<T> {
  return withFlock(home, AUTH_LOCK, fn, options.signal, options.timeoutMs ?? DEFAULT_AUTH_LOCK_TIMEOUT_MS);
}

/**
 * The lock of a credential store's transactions (`createCredentialStore`):
 * `withAuthLock` on `home`, so a whole reload-decide-write (a token refresh
 * above all) excludes Codex and other servers. A `CODEX_HOME` that does not
 * exist yet holds no credentials to race for: the transaction runs without
 * creating it (the store's own write creates it, under the same lock, and
 * words any failure to).
 */
export function credentialTransactionLock(home: string): <T>(fn: () => Promise<T>, signal?: AbortSignal) => Promise<T> {
  return async (fn, signal) => {
    const exists = await stat(home).then((st) => st.isDirectory(), () => false);
    return exists ? withAuthLock(home, fn, signal ? { signal } : {}) : fn();
  };
}

/**
 * Runs `fn` holding `flock(LOCK_EX|LOCK_NB)` on `$CODEX_HOME/auth.json.lock`
 * (created 0600 if absent), retried for up to `timeoutMs` (1 s by default).
 * Use it around the rename or unlink of `auth.json` only.
 */
export async function withAuthJsonLock<T>(home: string, fn: () => Promise<T>, options: AuthLockOptions = {}): Promise<T> {
  return withFlock(home, AUTH_JSON_LOCK, fn, options.signal, options.timeoutMs ?? DEFAULT_AUTH_JSON_LOCK_TIMEOUT_MS);
}

/** The lock paths the current async call chain holds. */
const holding = new AsyncLocalStorage<ReadonlySet<string>>();

async function withFlock<T>(
  home: string,
  lock: { name: string; mode: number },
  fn: () => Promise<T>,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<T> {
  signal?.throwIfAborted();
  const path = resolve(join(home, lock.name));
  const outer = holding.getStore();
  if (outer?.has(path)) return fn();
  const deadline = Date.now() + timeoutMs;
  const release = await mutexFor(path).acquire(signal, deadline, path);
  try {
    const addon = await loadFsExt();
    if (addon === null) return await holding.run(new Set([...(outer ?? []), path]), fn);
    const { flockSync } = addon;
    await mkdir(home, { recursive: true, mode: 0o700 });
    // O_RDWR|O_CREAT as Codex opens it; Node adds O_CLOEXEC, so children never inherit the lock.
    const handle = await fsPromises().open(path, 'a+', lock.mode);
    try {
      await acquireFlock(handle, flockSync, signal, deadline, path);
      try {
        return await holding.run(new Set([...(outer ?? []), path]), fn);
      } finally {
        flockSync(handle.fd, 'un');
      }
    } finally {
      await handle.close();
    }
  } finally {
    release();
  }
}

async function acquireFlock(
  handle: FileHandle,
  flockSync: FsExt['flockSync'],
  signal: AbortSignal | undefined,
  deadline: number,
  path: string,
): Promise<void> {
  for (let delay = FIRST_DELAY_MS; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
    try {
      flockSync(handle.fd, 'exnb');
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') throw error;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut(path);
    await sleep(Math.min(delay, left), signal);
  }
}

const timedOut = (path: string) =>
  new AuthError('storageFailed', `timed out waiting for ${path}: another process is updating the credentials`);

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A FIFO mutex per lock path, so callers in this process take turns without
 * polling the file lock against each other. Waiting honours the signal and
 * deadline; a waiter that gives up passes its turn on.
 */
class Mutex {
  #tail: Promise<void> = Promise.resolve();

  async acquire(signal: AbortSignal | undefined, deadline: number, path: string): Promise<() => void> {
    const previous = this.#tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.#tail = previous.then(() => mine);
    try {
      await waitFor(previous, signal, deadline, path);
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }
}

function waitFor(promise: Promise<void>, signal: AbortSignal | undefined, deadline: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      reject(timedOut(path));
    }, Math.max(0, deadline - Date.now()));
    signal?.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      done();
      resolve();
    });
  });
}

const mutexes = new Map<string, Mutex>();
function mutexFor(path: string): Mutex {
  let mutex = mutexes.get(path);
  if (!mutex) mutexes.set(path, (mutex = new Mutex()));
  return mutex;
}
