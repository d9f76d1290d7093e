import { execFileSync } from 'node:child_process';
import { linkSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { TraceLine } from '../../src/inspect/transition-trace.js';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { Issuer } from '../helpers/issuer.js';
import { leakedSecrets } from '../helpers/login.js';
import { ServerProcess, tempHome, type StartOptions, type Wire } from '../helpers/server-process.js';
import { keyOf, readTrace } from './coverage.js';

export const WORKSPACES = [
  { id: 'ws-1', name: 'Acme' },
  { id: 'ws-2', name: 'Other' },
];
export const USAGE_BODY = { plan_type: 'plus', rate_limit: { primary_window: { used_percent: 5, limit_window_seconds: 18000, reset_at: 1_780_000_000 } } };

export interface WorldStart extends StartOptions {
  /** Extra config.toml lines (after `chatgpt_base_url`). */
  configLines?: string;
  /** `initialize` params; `false` leaves the server uninitialized. */
  initialize?: Record<string, unknown> | false;
}

/**
 * One replay path's world: the issuer stand-in (HTTP), the ChatGPT backend
 * stand-in (HTTPS through SSL_CERT_FILE), and real server processes pointed
 * at both, each writing its transition trace to a file of its own.
 */
export class World {
  readonly servers: ServerProcess[] = [];
  readonly #traces = new Map<ServerProcess, string>();
  readonly #dir = mkdtempSync(join(tmpdir(), 'cas-replay-'));

  private constructor(
    readonly issuer: Issuer,
    readonly backend: FakeBackend,
    readonly certPath: string,
  ) {}

  static async start(tls: { key: string; cert: string; certPath: string }): Promise<World> {
    const issuer = await Issuer.start();
    const backend = await FakeBackend.start(tls);
    backend.on('/backend-api/wham/accounts/check', accountsCheck(WORKSPACES));
    return new World(issuer, backend, tls.certPath);
  }

  /** Starts a server with a trace (initialized unless `initialize: false`). */
  async start(options: WorldStart = {}): Promise<ServerProcess> {
    const { configLines = '', initialize = {}, env = {}, ...rest } = options;
    const trace = join(this.#dir, `trace-${this.servers.length}.jsonl`);
    const s = ServerProcess.start({
      ...rest,
      config: `chatgpt_base_url = "${this.backend.baseUrl}"\n${configLines}`,
      env: {
        CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0',
        CODEX_APP_SERVER_LOGIN_ISSUER: this.issuer.origin,
        CODEX_REFRESH_TOKEN_URL_OVERRIDE: this.issuer.refreshUrl,
        CODEX_REVOKE_TOKEN_URL_OVERRIDE: this.issuer.revokeUrl,
        CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '5000',
        CODEX_ACCOUNT_SERVER_LOG: 'debug',
        CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS: trace,
        SSL_CERT_FILE: this.certPath,
        ...env,
      },
    });
    this.servers.push(s);
    this.#traces.set(s, trace);
    if (initialize !== false) await s.initialize(initialize);
    return s;
  }

  trace(s: ServerProcess): TraceLine[] {
    return readTrace(this.#traces.get(s)!);
  }

  /** Waits until `s` has taken the transition `key` (as `keyOf` names it) `times` times in all. */
  async took(s: ServerProcess, key: string, { times = 1, timeoutMs = 8_000 } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = this.trace(s).filter((l) => keyOf(l) === key).length;
      if (n >= times) return;
      if (Date.now() > deadline) {
        const seen = this.trace(s).map((l) => `${l.machine}: ${keyOf(l)}`).join('\n');
        throw new Error(`never took ${key} (${times}×); trace:\n${seen}\nstderr:\n${s.stderr.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Every trace line of every server of this world. */
  allLines(): TraceLine[] {
    return this.servers.flatMap((s) => this.trace(s));
  }

  /** Stops everything; no issued secret may be on stderr or in a trace. */
  async stop(): Promise<void> {
    for (const s of this.servers) s.kill();
    await this.issuer.stop();
    await this.backend.stop();
    const texts = [...this.servers.map((s) => s.stderr), ...[...this.#traces.values()].map((p) => readText(p))];
    expect(leakedSecrets(this.issuer, texts), 'secrets on stderr or in a trace').toEqual([]);
    for (const p of this.#traces.values()) expect(readText(p)).not.toMatch(/sk-|eyJ|rt-/);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The result of a response; fails with the response when it is an error. */
export function result(m: Wire): any {
  if (!('result' in m)) throw new Error(`expected a result, got ${JSON.stringify(m)}`);
  return m.result;
}

/** The error of a response; fails with the response when it is a result. */
export function failure(m: Wire): { code: number; message: string; data?: any } {
  if (!m.error) throw new Error(`expected an error, got ${JSON.stringify(m)}`);
  return m.error;
}

/** Another process writes `auth.json` the way Codex does: a temp file renamed over it. */
export function otherProcessWrites(home: string, text: string): void {
  const temp = join(home, `other-writer-${process.pid}.json`);
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, join(home, 'auth.json'));
}

/**
 * `auth.json` as a FIFO: the server's load blocks in `open` until a writer
 * comes, which holds the credentials in `loading` for as long as a path
 * needs. A hard link outside CODEX_HOME keeps the FIFO reachable even after
 * another file is renamed over `auth.json`.
 */
export function heldAuthFile(home: string): { release(text: string): void } {
  const path = join(home, 'auth.json');
  execFileSync('mkfifo', ['-m', '600', path]);
  const keep = join(tempHome(), 'held-auth-fifo');
  linkSync(path, keep);
  return { release: (text) => writeFileSync(keep, text) };
}

export const apiKeyFile = (key: string) => JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: key }, null, 2);

export { storedLogin } from '../helpers/issuer.js';

/** A response promise plus the index the notifications it causes start after. */
export function send(s: ServerProcess, method: string, params?: unknown): Promise<Wire> {
  return s.request(method, params);
}

/** Notifications of `method` received so far (params only). */
export const notes = (s: ServerProcess, method: string) => s.notifications(method).map((n) => n.params);

/** A promise that resolves when `release()` is called: a stand-in's answer held open. */
export function gate<T>(): { wait: Promise<T>; release: (value: T) => void } {
  let release!: (value: T) => void;
  const wait = new Promise<T>((r) => (release = r));
  return { wait, release };
}
