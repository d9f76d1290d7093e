import {
  AbstractMessageBuffer,
  ConnectionStrategy,
  createMessageConnection as createConnection,
  Disposable,
  NullLogger,
  RAL,
  type ConnectionOptions,
  type Logger,
  type MessageConnection,
  type MessageReader,
  type MessageWriter,
} from 'vscode-jsonrpc';

/**
 * `vscode-jsonrpc/node` as this server uses it: the library's common API with a
 * Node runtime layer installed, without the socket, pipe, IPC and stream
 * transports of its Node entry point. That entry point loads `crypto`, `net`,
 * `os` and `path` when the bundle starts, milliseconds that `initialize` waits
 * for; the build (scripts/build.mjs) resolves `vscode-jsonrpc/node` here.
 *
 * The runtime layer below is vscode-jsonrpc's own `lib/node/ril.js`, except that
 * `crypto` is reached only when a UUID is asked for (never, in this server).
 */
export * from 'vscode-jsonrpc';

class MessageBuffer extends AbstractMessageBuffer {
  static readonly empty = Buffer.allocUnsafe(0);

  protected emptyBuffer(): Uint8Array {
    return MessageBuffer.empty;
  }

  protected fromString(value: string, encoding: RAL.MessageBufferEncoding): Uint8Array {
    return Buffer.from(value, encoding);
  }

  protected toString(value: Uint8Array, encoding: RAL.MessageBufferEncoding): string {
    return value instanceof Buffer ? value.toString(encoding) : new TextDecoder(encoding).decode(value);
  }

  protected asNative(buffer: Uint8Array, length?: number): Uint8Array {
    if (length === undefined) return buffer instanceof Buffer ? buffer : Buffer.from(buffer);
    return buffer instanceof Buffer ? buffer.subarray(0, length) : Buffer.from(buffer.subarray(0, length));
  }

  protected allocNative(length: number): Uint8Array {
    return Buffer.allocUnsafe(length);
  }
}

type NodeStream = NodeJS.EventEmitter & { write?: (...args: any[]) => boolean; end?: () => void };

const listen = (stream: NodeStream, event: string, listener: (...args: any[]) => void) => {
  stream.on(event, listener);
  return Disposable.create(() => stream.off(event, listener));
};

function readable(stream: NodeStream): RAL.ReadableStream {
  return {
    onClose: (l) => listen(stream, 'close', l),
    onError: (l) => listen(stream, 'error', l),
    onEnd: (l) => listen(stream, 'end', l),
    onData: (l) => listen(stream, 'data', l),
  };
}

function writable(stream: NodeStream): RAL.WritableStream {
  return {
    onClose: (l) => listen(stream, 'close', l),
    onError: (l) => listen(stream, 'error', l),
    onEnd: (l) => listen(stream, 'end', l),
    write: (data: Uint8Array | string, encoding?: RAL.MessageBufferEncoding) =>
      new Promise<void>((resolve, reject) => {
        const callback = (error?: Error | null) => (error === undefined || error === null ? resolve() : reject(error));
        if (typeof data === 'string') stream.write!(data, encoding, callback);
        else stream.write!(data, callback);
      }),
    end: () => stream.end!(),
  };
}

const runtime: RAL = Object.freeze({
  crypto: Object.freeze({ randomUUID: () => globalThis.crypto.randomUUID() }),
  messageBuffer: Object.freeze({ create: (encoding: RAL.MessageBufferEncoding) => new MessageBuffer(encoding) }),
  applicationJson: Object.freeze({
    encoder: Object.freeze({
      name: 'application/json',
      encode: (message: unknown, options: { charset: RAL.MessageBufferEncoding }) => {
        try {
          return Promise.resolve(Buffer.from(JSON.stringify(message, undefined, 0), options.charset));
        } catch (error) {
          return Promise.reject(error);
        }
      },
    }),
    decoder: Object.freeze({
      name: 'application/json',
      decode: (buffer: Uint8Array, options: { charset: RAL.MessageBufferEncoding }) => {
        try {
          const text = buffer instanceof Buffer ? buffer.toString(options.charset) : new TextDecoder(options.charset).decode(buffer);
          return Promise.resolve(JSON.parse(text));
        } catch (error) {
          return Promise.reject(error);
        }
      },
    }),
  }),
  stream: Object.freeze({ asReadableStream: readable, asWritableStream: writable }),
  console,
  timer: Object.freeze({
    setTimeout(callback: (...args: any[]) => void, ms: number, ...args: any[]) {
      const handle = setTimeout(callback, ms, ...args);
      return { dispose: () => clearTimeout(handle) };
    },
    setImmediate(callback: (...args: any[]) => void, ...args: any[]) {
      const handle = setImmediate(callback, ...args);
      return { dispose: () => clearImmediate(handle) };
    },
    setInterval(callback: (...args: any[]) => void, ms: number, ...args: any[]) {
      const handle = setInterval(callback, ms, ...args);
      return { dispose: () => clearInterval(handle) };
    },
  }),
} as RAL);

RAL.install(runtime);

/** As `vscode-jsonrpc/node`'s, for a reader and writer (this server frames its own ndjson). */
export function createMessageConnection(
  reader: MessageReader,
  writer: MessageWriter,
  logger: Logger = NullLogger,
  options?: ConnectionStrategy | ConnectionOptions,
): MessageConnection {
  return createConnection(reader, writer, logger, ConnectionStrategy.is(options) ? { connectionStrategy: options } : options);
}
