import type { CredentialsStore } from '../config.js';
import type { StoreBackend as CredentialStore } from './store.js';

/** Where credentials are read from and written to right now. */
export type StoreBackend = 'file' | 'keyring' | 'memory';

/**
 * Why that backend: `configured` (what `cli_auth_credentials_store` asks for),
 * or, for `auto`, why `auth.json` is used instead of the keyring.
 */
export type StoreReason = 'configured' | 'keyring_unavailable' | 'keyring_locked' | 'keyring_empty';

/**
 * Which credential store is in use and why, so a host can tell a user where
 * their credentials live (issue 11, item 5). Holds no secret.
 */
export interface StoreInfo {
  /** `cli_auth_credentials_store` from config.toml (default `file`). */
  configured: CredentialsStore;
  backend: StoreBackend;
  reason: StoreReason;
  /** `auth.json`'s path, the keyring item's attributes, or `memory`. */
  location: string;
  /** The last keyring failure, worded for a person (`null` when the last call worked). */
  problem: string | null;
}

/** A store that can say what it is; the state API reads `describe()`. */
export interface DescribedStore extends CredentialStore {
  describe(): StoreInfo;
}

/** Gives a store with a fixed answer (file, ephemeral) its `describe()`. */
export function describedStore(store: CredentialStore, info: StoreInfo): DescribedStore {
  const frozen = Object.freeze({ ...info });
  return {
    load: () => store.load(),
    save: (auth) => store.save(auth),
    clear: () => store.clear(),
    ...(store.version ? { version: () => store.version!() } : {}),
    describe: () => frozen,
  };
}

/** One line for people: `keyring (configured): Secret Service item …`. */
export function describeStore(info: StoreInfo): string {
  const why =
    info.reason === 'configured'
      ? `cli_auth_credentials_store = "${info.configured}"`
      : info.reason === 'keyring_empty'
        ? `cli_auth_credentials_store = "${info.configured}", the keyring holds nothing`
        : `cli_auth_credentials_store = "${info.configured}", fell back because the keyring is ${info.reason === 'keyring_locked' ? 'locked' : 'unavailable'}`;
  return `${info.backend} (${why}): ${info.location}${info.problem ? ` [${info.problem}]` : ''}`;
}
