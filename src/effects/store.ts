import type { StoredAuth } from '../../machines/account-types.js';

/**
 * Where credentials live (`auth.json`, memory, later the OS keyring): the raw
 * operations of one backend. Throws `AuthError` (`authFileCorrupt`,
 * `storageFailed`).
 */
export interface StoreBackend {
  /** `null` when nothing is stored. */
  load(): Promise<StoredAuth | null>;
  save(auth: StoredAuth): Promise<StoredAuth>;
  clear(): Promise<void>;
  /** A cheap token that changes whenever another process rewrites the credentials (`null`: unknown). */
  version?(): Promise<string | null>;
}

/** Runs `fn` holding the cross-process credential lock (Codex's `flock` on `auth.lock`). */
export type CrossProcessLock = <T>(fn: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

export interface StoredSnapshot {
  auth: StoredAuth | null;
  version: string | null;
}

/** What a transaction may do while it holds the store. */
export interface Transaction {
  read(): Promise<StoredSnapshot>;
  write(auth: StoredAuth): Promise<StoredAuth>;
  remove(): Promise<void>;
}

/** The credential store the machine's effects use. */
export interface CredentialStore {
  read(): Promise<StoredSnapshot>;
  /**
   * Runs `fn` with the store to itself: one transaction at a time in this
   * process, and (with a lock) across processes. A transaction whose
   * `signal` fired before it got its turn does nothing: a stopped effect
   * never writes (a late save cannot bring credentials back after a logout).
   */
  transact<T>(fn: (tx: Transaction) => Promise<T>, signal?: AbortSignal): Promise<T>;
  save(auth: StoredAuth, signal?: AbortSignal): Promise<StoredAuth>;
  clear(signal?: AbortSignal): Promise<void>;
}

export class StoreAbortedError extends Error {
  constructor() {
    super('the credential update was abandoned');
    this.name = 'StoreAbortedError';
  }
}

/** Wraps a backend with the in-process mutex, the optional cross-process lock and `AbortSignal`s. */
export function createCredentialStore(backend: StoreBackend, lock?: CrossProcessLock): CredentialStore {
  let tail: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<StoredSnapshot> => ({
    auth: await backend.load(),
    version: (await backend.version?.()) ?? null,
  });
  const tx: Transaction = { read, write: (auth) => backend.save(auth), remove: () => backend.clear() };

  const transact = <T>(fn: (tx: Transaction) => Promise<T>, signal?: AbortSignal): Promise<T> => {
    const run = async () => {
      const guarded = async () => {
        if (signal?.aborted) throw new StoreAbortedError();
        return fn(tx);
      };
      return lock ? lock(guarded, signal) : guarded();
    };
    const result = tail.then(run, run);
    tail = result.catch(() => undefined);
    return result;
  };

  return {
    read,
    transact,
    save: (auth, signal) => transact((t) => t.write(auth), signal),
    clear: (signal) => transact((t) => t.remove(), signal),
  };
}
