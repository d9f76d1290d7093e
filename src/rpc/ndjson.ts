import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log.js';

/**
 * Newline-delimited JSON framing (SPEC §1): one object per line in, one
 * object per line out, no `"jsonrpc"` member on output, `emittedAtMs` on
 * every notification.
 *
 * The reader never hands anything but a classified message to the layer
 * above, and never puts text from an input line into a log line: a dropped
 * line is logged with its length and a fixed reason only (issue 5).
 */

/**
 * A request id as the client wrote it: a string, or an integer in the i64
 * range. Integers beyond ±(2^53−1) are kept as `bigint` so they are echoed
 * digit for digit.
 */
export type JsonRpcId = string | number | bigint;

/** Lines longer than this (in UTF-16 code units, about bytes for JSON) are dropped, never buffered further. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const INTEGER_TEXT = /^-?(?:0|[1-9][0-9]*)$/;

export type Incoming =
  | { kind: 'request'; id: JsonRpcId; method: string; params: unknown }
  | { kind: 'notification'; method: string; params: unknown }
  | { kind: 'response'; id: JsonRpcId; result: unknown; error: undefined }
  | { kind: 'response'; id: JsonRpcId; result: undefined; error: { code: number; message: string; data?: unknown } };

/** Why a line was dropped: fixed texts, never parts of the line. */
export type DropReason =
  | 'blank line'
  | 'malformed JSON'
  | 'not a JSON object'
  | 'batch arrays are not supported'
  | 'method is not a string'
  | 'id is not a string or a 64-bit integer'
  | 'neither a request, a notification nor a response';

export type Parsed = Incoming | { kind: 'invalid'; reason: DropReason };

const WS = new Set([' ', '\t', '\n', '\r']);

function skipWhitespace(text: string, i: number): number {
  while (WS.has(text[i]!)) i++;
  return i;
}

/** `i` at an opening quote; returns the index after the closing one. */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') return i + 1;
  }
  return i;
}

/** Skips one JSON value starting at `i`, iteratively (any depth). */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    while (i < text.length) {
      const d = text[i];
      if (d === '"') {
        i = skipString(text, i);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  while (i < text.length && !WS.has(text[i]!) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']') i++;
  return i;
}

/**
 * The source text of the top-level `id` member of a line `JSON.parse`
 * accepted (the last one, as `JSON.parse` keeps the last duplicate).
 * A scan of the top level only: re-parsing the whole line losslessly
 * (lossless-json, which the tests use as the oracle for this function)
 * cost ~170 MB of transient memory for one 15 MB line.
 */
export function topLevelIdText(line: string): string | undefined {
  let i = skipWhitespace(line, 0);
  if (line[i] !== '{') return undefined;
  i++;
  let found: string | undefined;
  while (i < line.length) {
    i = skipWhitespace(line, i);
    if (line[i] !== '"') return found;
    const keyStart = i;
    i = skipString(line, i);
    const rawKey = line.slice(keyStart, i);
    const key = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    i = skipWhitespace(line, i) + 1; // the colon
    i = skipWhitespace(line, i);
    const valueStart = i;
    i = skipValue(line, i);
    if (key === 'id') found = line.slice(valueStart, i);
    i = skipWhitespace(line, i);
    if (line[i] === ',') i++;
  }
  return found;
}

/**
 * Reads a numeric id exactly. `JSON.parse` has already rounded it to a
 * double, so the id's own text is read; only integer literals in the i64
 * range are ids (serde's `i64`: `1.0`, `1e3` and 2^63 are not).
 */
function exactNumericId(line: string): JsonRpcId | null {
  const text = topLevelIdText(line);
  if (text === undefined || !INTEGER_TEXT.test(text)) return null;
  // Up to 15 digits is always a safe integer: no BigInt needed (the usual case, and per request).
  if (text.length <= 15) return Number(text) + 0;
  const big = BigInt(text);
  if (big < I64_MIN || big > I64_MAX) return null;
  const small = Number(text);
  return Number.isSafeInteger(small) ? small + 0 : big; // `+ 0` turns -0 into 0, as serde would
}

function isErrorObject(value: unknown): value is { code: number; message: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'number' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/** Parses and classifies one input line (without its line end). */
export function parseLine(line: string): Parsed {
  if (line.trim() === '') return { kind: 'invalid', reason: 'blank line' };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'invalid', reason: 'malformed JSON' };
  }
  if (typeof value !== 'object' || value === null) return { kind: 'invalid', reason: 'not a JSON object' };
  if (Array.isArray(value)) return { kind: 'invalid', reason: 'batch arrays are not supported' };
  const message = value as Record<string, unknown>;
  let id: JsonRpcId | null | undefined;
  if (Object.hasOwn(message, 'id')) {
    const raw = message.id;
    id = typeof raw === 'string' ? raw : typeof raw === 'number' ? exactNumericId(line) : null;
  }
  if (Object.hasOwn(message, 'method')) {
    if (typeof message.method !== 'string') return { kind: 'invalid', reason: 'method is not a string' };
    if (id === undefined) return { kind: 'notification', method: message.method, params: message.params };
    if (id === null) return { kind: 'invalid', reason: 'id is not a string or a 64-bit integer' };
    return { kind: 'request', id, method: message.method, params: message.params };
  }
  if (id !== undefined && id !== null) {
    const hasResult = Object.hasOwn(message, 'result');
    const hasError = Object.hasOwn(message, 'error');
    if (hasResult && !hasError) return { kind: 'response', id, result: message.result, error: undefined };
    if (hasError && !hasResult && isErrorObject(message.error)) {
      return { kind: 'response', id, result: undefined, error: message.error as { code: number; message: string } };
    }
  }
  return { kind: 'invalid', reason: 'neither a request, a notification nor a response' };
}

export interface LineReaderHandlers {
  /** Called once per complete line (line end removed). May throw: the reader logs it and goes on. */
  line(line: string): void;
  end(): void;
  error?(error: Error): void;
}

/**
 * Lines read elsewhere, handed on: the start-up stage (src/cli.ts) keeps
 * reading stdin and passes the server what it received before the server
 * existed, then every later line.
 */
export type LineSource = (handlers: LineReaderHandlers) => void;

/**
 * Splits a stream into lines. Memory is bounded: at most one partial line of
 * `MAX_LINE_BYTES` is buffered; a longer line is skipped up to its newline.
 */
export function readLines(stream: Readable, handlers: LineReaderHandlers, log: Logger): () => void {
  let parts: string[] = [];
  let buffered = 0;
  let discarding = false;
  const deliver = (line: string) => {
    try {
      handlers.line(line.endsWith('\r') ? line.slice(0, -1) : line);
    } catch (error) {
      // A bug while handling one line must never stop the reader (issue 5).
      log.error(() => `failed to handle an input line: ${describeThrown(error)}`);
    }
  };
  const onData = (chunk: string) => {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, nl);
      start = nl + 1;
      if (discarding) {
        discarding = false;
        continue;
      }
      if (buffered + piece.length > MAX_LINE_BYTES) {
        log.warn(() => `dropping input line longer than ${MAX_LINE_BYTES} bytes`);
      } else if (parts.length === 0) {
        deliver(piece);
      } else {
        parts.push(piece);
        const line = parts.join('');
        parts = [];
        buffered = 0;
        deliver(line);
        continue;
      }
      parts = [];
      buffered = 0;
    }
    if (discarding || start === chunk.length) return;
    const rest = chunk.slice(start);
    if (buffered + rest.length > MAX_LINE_BYTES) {
      log.warn(() => `dropping input line longer than ${MAX_LINE_BYTES} bytes`);
      parts = [];
      buffered = 0;
      discarding = true;
      return;
    }
    parts.push(rest);
    buffered += rest.length;
  };
  const onEnd = () => {
    if (!discarding && parts.length > 0) {
      const line = parts.join('');
      parts = [];
      if (line.trim() !== '') deliver(line);
    }
    handlers.end();
  };
  const onError = (error: Error) => handlers.error?.(error);
  stream.setEncoding('utf8');
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('error', onError);
  return () => {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onError);
  };
}

/** What an exception was, without its message's content beyond the first line (it may quote input). */
export function describeThrown(error: unknown): string {
  if (error instanceof Error) return `${error.name}${error.stack ? `\n${error.stack.split('\n').slice(1, 4).join('\n')}` : ''}`;
  return typeof error;
}

const idText = (id: JsonRpcId): string => (typeof id === 'bigint' ? id.toString() : JSON.stringify(id));

/**
 * Writes protocol lines. Lines produced in one event-loop turn go out in one
 * `write` (a profile showed one write(2) per response costing ~40 % of a
 * pipelined read); `flush()` writes at once (before exit).
 */
export class LineWriter {
  readonly #stream: Writable;
  readonly #now: () => number;
  readonly #onError: (error: unknown) => void;
  #pending: string[] = [];
  #scheduled = false;

  /** `onError`: a write that threw; its lines are lost (the host's pipe is broken), the server goes on. */
  constructor(stream: Writable, now: () => number, onError: (error: unknown) => void = () => {}) {
    this.#stream = stream;
    this.#now = now;
    this.#onError = onError;
  }

  result(id: JsonRpcId, result: unknown): void {
    this.#push(`{"id":${idText(id)},"result":${JSON.stringify(result ?? null)}}`);
  }

  /** A result already serialised (a memoised read). */
  resultJson(id: JsonRpcId, json: string): void {
    this.#push(`{"id":${idText(id)},"result":${json}}`);
  }

  error(id: JsonRpcId, error: { code: number; message: string; data?: unknown }): void {
    this.#push(`{"id":${idText(id)},"error":${JSON.stringify(error)}}`);
  }

  notification(method: string, params: unknown): void {
    this.#push(JSON.stringify({ method, params, emittedAtMs: this.#now() }));
  }

  /** A server→client request (SPEC §9.3): no `emittedAtMs`. */
  request(id: number, method: string, params: unknown): void {
    this.#push(JSON.stringify({ method, id, params }));
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('');
    this.#pending = [];
    try {
      this.#stream.write(text);
    } catch (error) {
      this.#onError(error);
    }
  }

  #push(line: string): void {
    this.#pending.push(`${line}\n`);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }
}
