import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterEach } from 'vitest';

export const BIN = fileURLToPath(new URL('../../bin/codex-account-server', import.meta.url));

/** A message the server wrote on stdout (one JSON object per line). */
export type Wire = Record<string, unknown> & { id?: unknown; method?: string; params?: any; result?: any; error?: any };

export interface StartOptions {
  /** Existing CODEX_HOME; a fresh temp directory by default. */
  home?: string;
  /** config.toml contents to write before start. */
  config?: string;
  /** auth.json contents (string written as is, object as Codex would write it). */
  auth?: string | object;
  /** Extra environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  args?: string[];
  /** Another copy of bin/codex-account-server to run (default: this checkout's). */
  bin?: string;
}

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'cas-test-'));
}

/**
 * The real server as a child process, spoken to over stdio. Every stdout line
 * must be one JSON object; anything else fails the test that reads it.
 */
export class ServerProcess {
  readonly home: string;
  readonly child: ChildProcessWithoutNullStreams;
  /** Every message received, in order. */
  readonly messages: Wire[] = [];
  /** Raw stdout lines that were not JSON objects (should stay empty). */
  readonly badLines: string[] = [];
  /** Every stdout line as written (for ids that JSON.parse would round). */
  readonly rawLines: string[] = [];
  stderr = '';
  #buffer = '';
  #nextId = 1;
  #waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(home: string, child: ChildProcessWithoutNullStreams) {
    this.home = home;
    this.child = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) !== -1) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        this.rawLines.push(line);
        try {
          const value = JSON.parse(line);
          if (typeof value === 'object' && value !== null && !Array.isArray(value)) this.messages.push(value);
          else this.badLines.push(line);
        } catch {
          this.badLines.push(line);
        }
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static start(options: StartOptions = {}): ServerProcess {
    const home = options.home ?? tempHome();
    if (options.config !== undefined) writeFileSync(join(home, 'config.toml'), options.config);
    if (options.auth !== undefined) {
      const text = typeof options.auth === 'string' ? options.auth : JSON.stringify(options.auth, null, 2);
      writeFileSync(join(home, 'auth.json'), text, { mode: 0o600 });
    }
    const env: NodeJS.ProcessEnv = { ...process.env, CODEX_HOME: home };
    delete env.OPENAI_API_KEY;
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const child = spawn(process.execPath, [options.bin ?? BIN, ...(options.args ?? [])], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new ServerProcess(home, child);
  }

  sendRaw(text: string): void {
    this.child.stdin.write(text);
  }

  send(message: object): void {
    this.sendRaw(`${JSON.stringify(message)}\n`);
  }

  /** Waits until a message satisfies `predicate` (searching from index `from`). */
  async waitFor(predicate: (m: Wire) => boolean, { from = 0, timeoutMs = 5_000 } = {}): Promise<Wire> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`server exited before the awaited message; stderr:\n${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far:\n${this.messages.map((m) => JSON.stringify(m)).join('\n')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until stderr matches `pattern` (stderr and stdout arrive on separate pipes). */
  async stderrMatching(pattern: RegExp, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stderr)) {
      if (Date.now() > deadline) throw new Error(`stderr never matched ${pattern}; stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.stderr;
  }

  /** The response to `id` (a message with that id and no method). */
  response(id: unknown, timeoutMs?: number): Promise<Wire> {
    return this.waitFor((m) => !('method' in m) && isDeepStrictEqual(m.id, id), { timeoutMs });
  }

  /** Sends a request with a fresh integer id (or the given one) and returns its response. */
  async request(method: string, params?: unknown, id: unknown = this.#nextId++): Promise<Wire> {
    this.send(params === undefined ? { id, method } : { id, method, params });
    return this.response(id);
  }

  /** `initialize` with sensible defaults; fails the test unless it succeeds. */
  async initialize(params: Record<string, unknown> = {}): Promise<Wire> {
    const response = await this.request('initialize', {
      clientInfo: { name: 'test-host', title: null, version: '1.0.0' },
      capabilities: { experimentalApi: true, requestAttestation: false },
      ...params,
    });
    if (!response.result) throw new Error(`initialize failed: ${JSON.stringify(response)}`);
    return response;
  }

  /** Notifications received so far, optionally of one method. */
  notifications(method?: string): Wire[] {
    return this.messages.filter((m) => typeof m.method === 'string' && !('id' in m) && (method === undefined || m.method === method));
  }

  /** Waits for the next notification of `method` after message index `from`. */
  notification(method: string, from = 0, timeoutMs?: number): Promise<Wire> {
    return this.waitFor((m) => m.method === method && !('id' in m), { from, timeoutMs });
  }

  /** Closes stdin and waits for the process to exit. */
  async close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Starts a server for the duration of `fn`, killing it in `finally`. */
export async function withServer<T>(options: StartOptions, fn: (server: ServerProcess) => Promise<T>): Promise<T> {
  const server = ServerProcess.start(options);
  try {
    return await fn(server);
  } finally {
    server.kill();
  }
}

/** Waits a little for anything the server might still write (to prove it wrote nothing). */
export async function settle(server: ServerProcess, ms = 150): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  void server;
}

/**
 * Per-test server and backend, cleaned up after each test:
 * `const env = useServers(); … const s = await env.start({ config });`
 */
export function useServers() {
  let server: ServerProcess | undefined;
  let backend: import('./backend.js').FakeBackend | undefined;
  afterEach(async () => {
    server?.kill();
    await backend?.stop();
    server = undefined;
    backend = undefined;
  });
  return {
    /** Starts a server and initializes it (default capabilities: experimentalApi on). */
    async start(options: StartOptions = {}, initialize: Record<string, unknown> = {}): Promise<ServerProcess> {
      server?.kill();
      server = ServerProcess.start(options);
      await server.initialize(initialize);
      return server;
    },
    /** Starts a server without initializing it. */
    spawn(options: StartOptions = {}): ServerProcess {
      server?.kill();
      server = ServerProcess.start(options);
      return server;
    },
    async backend(): Promise<import('./backend.js').FakeBackend> {
      const { FakeBackend } = await import('./backend.js');
      backend = await FakeBackend.start();
      return backend;
    },
  };
}

/** `account/read` result when nobody is logged in (SPEC §3.1). */
export const LOGGED_OUT = { account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };

/** `getAuthStatus` result when nobody is logged in, or the token was not asked for while logged out (SPEC §3.6). */
export const NO_AUTH_STATUS = { authMethod: null, authToken: null, requiresOpenaiAuth: true };
