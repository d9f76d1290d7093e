import type * as z from 'zod/mini';
import type { Logger } from '../log.js';
import type { JsonRpcId, LineWriter } from './ndjson.js';

/**
 * The typed port for server→client requests (SPEC §9.3): ids are integers
 * counting from 0 on the connection; each request has a result schema and a
 * deadline, and honours an `AbortSignal`. A late, duplicate or unknown
 * answer is ignored (and logged at debug), never an error.
 */

export interface HostRequest<S extends z.ZodMiniType> {
  method: string;
  params: unknown;
  result: S;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Why a host request failed; the caller words it (SPEC §9.3 table). */
export class HostRequestError extends Error {
  constructor(
    readonly why: 'timeout' | 'error' | 'invalidResult' | 'aborted' | 'closed',
    /** The JSON-RPC error code the host answered with (`why: 'error'`). */
    readonly code?: number,
  ) {
    super(`host request ${why}${code === undefined ? '' : ` (code ${code})`}`);
    this.name = 'HostRequestError';
  }
}

export interface HostPort {
  request<S extends z.ZodMiniType>(request: HostRequest<S>): Promise<z.infer<S>>;
}

interface Outstanding {
  settle(outcome: { result: unknown } | { error: { code: number } }): void;
  fail(error: HostRequestError): void;
}

export class HostConnection implements HostPort {
  readonly #writer: LineWriter;
  readonly #log: Logger;
  readonly #outstanding = new Map<number, Outstanding>();
  #next = 0;
  #closed = false;

  constructor(writer: LineWriter, log: Logger) {
    this.#writer = writer;
    this.#log = log;
  }

  request<S extends z.ZodMiniType>({ method, params, result, timeoutMs, signal }: HostRequest<S>): Promise<z.infer<S>> {
    if (this.#closed) return Promise.reject(new HostRequestError('closed'));
    if (signal?.aborted) return Promise.reject(new HostRequestError('aborted'));
    const id = this.#next++;
    return new Promise<z.infer<S>>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#outstanding.delete(id);
      };
      const timer = setTimeout(() => {
        done();
        reject(new HostRequestError('timeout'));
      }, timeoutMs);
      const onAbort = () => {
        done();
        reject(new HostRequestError('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#outstanding.set(id, {
        settle: (outcome) => {
          done();
          if ('error' in outcome) return reject(new HostRequestError('error', outcome.error.code));
          const parsed = result.safeParse(outcome.result);
          if (parsed.success) resolve(parsed.data);
          else reject(new HostRequestError('invalidResult'));
        },
        fail: (error) => {
          done();
          reject(error);
        },
      });
      this.#writer.request(id, method, params);
    });
  }

  /** A response line from the host; `false` when it answers nothing we asked (stray, late, twice). */
  handleResponse(id: JsonRpcId, outcome: { result: unknown } | { error: { code: number } }): boolean {
    const entry = typeof id === 'number' ? this.#outstanding.get(id) : undefined;
    if (!entry) {
      this.#log.debug(() => `ignoring a response to ${typeof id === 'string' ? 'a string id' : String(id)}: no such request outstanding`);
      return false;
    }
    entry.settle(outcome);
    return true;
  }

  /** Input ended: nobody will answer; fail what is outstanding. */
  close(): void {
    this.#closed = true;
    for (const [id, entry] of [...this.#outstanding]) {
      this.#outstanding.delete(id);
      entry.fail(new HostRequestError('closed'));
    }
  }

  get outstanding(): number {
    return this.#outstanding.size;
  }
}
