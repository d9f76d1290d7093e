import type { StoredAuth, StoredChatgpt } from '../../../machines/account-types.js';
import type { Logger } from '../../log.js';
import type { PollOptions } from './device-code.js';

/** What the sign-in effects need; production builds it from `Config`, tests from loopback servers. */
export interface LoginDeps {
  fetch: typeof fetch;
  /** `CODEX_APP_SERVER_LOGIN_ISSUER` (no trailing slash). */
  issuer: string;
  /** Callback ports, tried in order (`Config.loginPorts`). */
  ports: readonly number[];
  /** Deadline of each issuer call. */
  timeoutMs: number;
  log: Logger;
  /**
   * The credential-store boundary: persists a new ChatGPT login and resolves
   * with what is stored now. The only effect tests may fake.
   */
  saveCredentials(auth: StoredChatgpt, signal: AbortSignal): Promise<StoredAuth>;
  /** Binds per callback port (default 10) and the delay between them (default 200 ms). */
  bindAttempts?: number;
  retryDelayMs?: number;
  /** Clock of `last_refresh` (epoch nanoseconds). */
  now?: () => bigint;
  devicePoll?: PollOptions;
}
