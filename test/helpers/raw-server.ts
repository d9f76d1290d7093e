import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import { BIN } from './server-process.js';

/**
 * The built server as a child process, read at the byte level: stdout lines
 * are kept as raw text so 64-bit ids can be compared digit for digit, and
 * stdin takes arbitrary bytes (invalid UTF-8, huge lines) with backpressure.
 */
export class RawServer {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line, as written (without the `\n`). */
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process exited and its stdout and stderr were read to the end. */
  readonly closed: Promise<void>;
  #pending: Buffer[] = [];
  #parsed = 0;
  readonly #responses = new Map<string, Record<string, unknown>>();
  #wakers: Array<() => void> = [];

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        this.#pending.push(chunk.subarray(start, nl));
        this.lines.push(Buffer.concat(this.#pending).toString('utf8'));
        this.#pending = [];
        start = nl + 1;
      }
      if (start < chunk.length) this.#pending.push(chunk.subarray(start));
      this.#wake();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#wake();
    });
    // A write after the child died must fail the test through the assertions, not crash the runner.
    child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    this.closed = new Promise((resolve) => child.on('close', () => resolve()));
    void this.exited.then(() => this.#wake());
  }

  /** Spawns `bin/codex-account-server` with `CODEX_HOME=home` (and no `OPENAI_API_KEY`). */
  static start(home: string, env: Record<string, string> = {}): RawServer {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, CODEX_HOME: home, ...env };
    delete childEnv.OPENAI_API_KEY;
    return new RawServer(spawn(process.execPath, [BIN], { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Writes bytes, waiting for `drain` when the pipe is full. */
  async write(data: Buffer | string): Promise<void> {
    if (!this.running) return;
    if (this.child.stdin.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.child.stdin.off('drain', done);
        resolve();
      };
      this.child.stdin.once('drain', done);
      void this.exited.then(done);
    });
  }

  /** Resolves once `predicate` holds (checked after every stdout/stderr chunk), or rejects at the deadline or on exit. */
  async until(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (!this.running) throw new Error(`server exited while waiting for ${what}; stderr:\n${this.stderr.slice(-4000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#wakers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The response to the request with string id `id`, if it has arrived. */
  responseTo(id: string): Record<string, unknown> | undefined {
    for (; this.#parsed < this.lines.length; this.#parsed++) {
      const value = JSON.parse(this.lines[this.#parsed]!) as Record<string, unknown>;
      if (typeof value.id === 'string' && !('method' in value)) this.#responses.set(value.id, value);
    }
    return this.#responses.get(id);
  }

  /** Sends a request with a string id and waits for its response. */
  async request(id: string, method: string, params?: unknown, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    await this.write(`${JSON.stringify(params === undefined ? { id, method } : { id, method, params })}\n`);
    await this.until(() => this.responseTo(id) !== undefined, timeoutMs, `the response to ${method} (${id})`);
    return this.responseTo(id)!;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  #wake(): void {
    for (const wake of this.#wakers.splice(0)) wake();
  }
}

/**
 * A JSON-RPC id as a comparable key: `s:<string>` for strings, `n:<digits>`
 * for numbers, with the digits exactly as written on the wire.
 */
export type IdKey = string;

/** The key of an id as the client writes it. */
export function idKey(id: string | bigint): IdKey {
  return typeof id === 'string' ? `s:${id}` : `n:${id.toString()}`;
}

/** A stdout line parsed without losing number digits, plus its id key (if it has an id). */
export interface OutputMessage {
  raw: string;
  /** `undefined` when the line has no `id` member; `null` when the id is neither a string nor a number. */
  key: IdKey | null | undefined;
  /** The line parsed by `JSON.parse` (numbers as doubles), for comparing results. */
  value: Record<string, unknown>;
  isNotification: boolean;
}

/** Parses one stdout line; throws if it is not one JSON object. */
export function parseOutputLine(raw: string): OutputMessage {
  const lossless = parseLossless(raw) as Record<string, unknown>;
  const value = JSON.parse(raw) as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`stdout line is not a JSON object: ${raw.slice(0, 200)}`);
  let key: IdKey | null | undefined;
  if (!('id' in lossless)) key = undefined;
  else if (typeof lossless.id === 'string') key = `s:${lossless.id}`;
  else if (isLosslessNumber(lossless.id)) key = `n:${lossless.id.value}`;
  else key = null;
  return { raw, key, value, isNotification: typeof value.method === 'string' && !('id' in value) };
}
