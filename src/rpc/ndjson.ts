import type { Readable, Writable } from 'node:stream';
import { AbstractMessageReader, AbstractMessageWriter, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc/node';
import type { Logger } from '../log.js';

/**
 * Newline-delimited JSON framing for vscode-jsonrpc (SPEC §1): one object per
 * line, no `"jsonrpc"` member on output, `emittedAtMs` on every notification.
 *
 * Request ids are swapped for internal sequence numbers on the way in and
 * restored on the way out, so ids are echoed exactly as given and duplicate
 * in-flight ids are each answered (vscode-jsonrpc keys its queue by id).
 */

export type JsonRpcId = string | number;

/** Lines longer than this are dropped instead of buffered without bound. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export class IdTable {
  #next = 0;
  readonly #original = new Map<number, JsonRpcId>();

  /** Registers an incoming request id; returns the internal id. */
  admit(id: JsonRpcId): number {
    const internal = this.#next++;
    this.#original.set(internal, id);
    return internal;
  }

  /** Returns (and forgets) the id the client used. */
  release(internal: number): JsonRpcId | undefined {
    const id = this.#original.get(internal);
    this.#original.delete(internal);
    return id;
  }

  /** The id the client used for an internal id still in flight. */
  original(internal: number): JsonRpcId | undefined {
    return this.#original.get(internal);
  }

  /** Requests received and not yet answered. */
  get outstanding(): number {
    return this.#original.size;
  }
}

type Classified =
  | { kind: 'request'; id: JsonRpcId; message: Record<string, unknown> }
  | { kind: 'notification'; message: Record<string, unknown> }
  | { kind: 'response'; message: Record<string, unknown> }
  | { kind: 'invalid'; why: string };

const isId = (id: unknown): id is JsonRpcId =>
  typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id));

/** Decides what a parsed line is; anything else is dropped without a reply (SPEC §1). */
export function classify(value: unknown): Classified {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', why: Array.isArray(value) ? 'batch arrays are not supported' : 'not a JSON object' };
  }
  const message = value as Record<string, unknown>;
  if ('method' in message) {
    if (typeof message.method !== 'string') return { kind: 'invalid', why: 'method is not a string' };
    if (!('id' in message)) return { kind: 'notification', message };
    if (!isId(message.id)) return { kind: 'invalid', why: 'id is not a string or an integer' };
    return { kind: 'request', id: message.id, message };
  }
  if (isId(message.id) && ('result' in message || 'error' in message)) return { kind: 'response', message };
  return { kind: 'invalid', why: 'neither a request, a notification nor a response' };
}

export class NdjsonMessageReader extends AbstractMessageReader {
  readonly #stream: Readable;
  readonly #ids: IdTable;
  readonly #log: Logger;

  constructor(stream: Readable, ids: IdTable, log: Logger) {
    super();
    this.#stream = stream;
    this.#ids = ids;
    this.#log = log;
  }

  listen(callback: DataCallback): Disposable {
    let buffer = '';
    let discarding = false;
    const onData = (chunk: string) => {
      let start = 0;
      for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
        const piece = chunk.slice(start, nl);
        start = nl + 1;
        if (discarding) {
          discarding = false;
          buffer = '';
          continue;
        }
        const line = buffer + piece;
        buffer = '';
        this.#handleLine(line, callback);
      }
      if (discarding) return;
      buffer += chunk.slice(start);
      if (buffer.length > MAX_LINE_BYTES) {
        this.#log.warn(`dropping input line longer than ${MAX_LINE_BYTES} bytes`);
        buffer = '';
        discarding = true;
      }
    };
    const onEnd = () => {
      if (buffer.trim() !== '' && !discarding) this.#handleLine(buffer, callback);
      buffer = '';
      this.fireClose();
    };
    const onError = (error: Error) => this.fireError(error);
    this.#stream.setEncoding('utf8');
    this.#stream.on('data', onData);
    this.#stream.on('end', onEnd);
    this.#stream.on('error', onError);
    return {
      dispose: () => {
        this.#stream.off('data', onData);
        this.#stream.off('end', onEnd);
        this.#stream.off('error', onError);
      },
    };
  }

  #handleLine(raw: string, callback: DataCallback): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      this.#log.warn('dropping blank input line');
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      // Never echo the line: it may carry a secret.
      this.#log.warn(`dropping malformed JSON line (${line.length} chars): ${(error as Error).message.split('\n')[0]}`);
      return;
    }
    const classified = classify(value);
    switch (classified.kind) {
      case 'invalid':
        this.#log.warn(`dropping invalid message: ${classified.why}`);
        return;
      case 'request':
        callback({ ...classified.message, jsonrpc: '2.0', id: this.#ids.admit(classified.id) } as Message);
        return;
      default:
        callback({ ...classified.message, jsonrpc: '2.0' } as Message);
    }
  }
}

export class NdjsonMessageWriter extends AbstractMessageWriter {
  readonly #stream: Writable;
  readonly #ids: IdTable;
  readonly #now: () => number;
  readonly #onResponseWritten: (internalId: number) => void;

  constructor(stream: Writable, ids: IdTable, now: () => number, onResponseWritten: (internalId: number) => void) {
    super();
    this.#stream = stream;
    this.#ids = ids;
    this.#now = now;
    this.#onResponseWritten = onResponseWritten;
  }

  async write(message: Message): Promise<void> {
    const { jsonrpc: _ignored, ...rest } = message as Message & Record<string, unknown>;
    if ('method' in rest && !('id' in rest)) {
      this.#emit({ method: rest.method, params: rest.params, emittedAtMs: this.#now() });
      return;
    }
    if ('method' in rest) {
      this.#emit(rest);
      return;
    }
    const internal = rest.id as number;
    const id = this.#ids.release(internal);
    this.#emit('error' in rest ? { id, error: rest.error } : { id, result: rest.result });
    this.#onResponseWritten(internal);
  }

  #emit(value: unknown): void {
    this.#stream.write(`${JSON.stringify(value)}\n`);
  }

  end(): void {}
}
