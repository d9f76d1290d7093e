import type { StoredAuth } from '../../machines/account-types.js';
import { serializeAuth } from './storage.js';

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
  /**
   * What is stored now, if another process changed it since this one last
   * read or wrote it (`null`: unchanged, or the backend cannot tell).
   */
  changedElsewhere(): Promise<StoredSnapshot | null>;
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
  /** The version this process last read or wrote: what "changed elsewhere" is measured against. */
  let known: string | null = null;
  /**
   * What that version holds, in auth.json's own form (`undefined`: not known),
   * so that another process rewriting the very same credentials (a copy, a
   * restore, a tool that rewrites the file) is no change at all.
   */
  let knownContent: string | null | undefined;
  const contentOf = (auth: StoredAuth | null) => (auth === null ? null : serializeAuth(auth));
  /**
   * The backend's version: `null` when nothing is stored, `undefined` when it
   * cannot be read (keyring unreachable), which is never an error of its own.
   */
  const versionNow = async (): Promise<string | null | undefined> => {
    try {
      return (await backend.version?.()) ?? null;
    } catch {
      return undefined;
    }
  };
  const read = async (): Promise<StoredSnapshot> => {
    const version = (await versionNow()) ?? null;
    let auth: StoredAuth | null;
    try {
      auth = await backend.load();
    } catch (error) {
      knownContent = undefined;
      throw error;
    }
    known = version;
    knownContent = contentOf(auth);
    return { auth, version };
  };
  const noteOwnWrite = async (auth: StoredAuth | null) => {
    known = (await versionNow()) ?? null;
    knownContent = contentOf(auth);
  };
  const tx: Transaction = {
    read,
    write: async (auth) => {
      const saved = await backend.save(auth);
      await noteOwnWrite(saved);
      return saved;
    },
    remove: async () => {
      await backend.clear();
      await noteOwnWrite(null);
    },
  };

  /** One at a time in this process: transactions and change checks queue behind each other. */
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const result = tail.then(run, run);
    tail = result.catch(() => undefined);
    return result;
  };

  const transact = <T>(fn: (tx: Transaction) => Promise<T>, signal?: AbortSignal): Promise<T> =>
    serial(async () => {
      const guarded = async () => {
        if (signal?.aborted) throw new StoreAbortedError();
        return fn(tx);
      };
      return lock ? lock(guarded, signal) : guarded();
    });

  return {
    read,
    transact,
    changedElsewhere: () =>
      serial(async () => {
        if (!backend.version) return null;
        const version = await versionNow();
        if (version === undefined || version === known) return null;
        const before = knownContent;
        const now = await read();
        return before !== undefined && contentOf(now.auth) === before ? null : now;
      }),
    save: (auth, signal) => transact((t) => t.write(auth), signal),
    clear: (signal) => transact((t) => t.remove(), signal),
  };
}
