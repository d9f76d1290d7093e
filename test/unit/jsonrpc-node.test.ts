import { describe, expect, it } from 'vitest';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  RAL,
  ResponseError,
  createMessageConnection,
  type DataCallback,
  type Disposable,
  type Message,
} from '../../src/rpc/jsonrpc-node.js';

/** Messages in, messages out, no framing: the connection and the runtime layer are what is tested. */
class ArrayReader extends AbstractMessageReader {
  callback: DataCallback | undefined;
  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    return { dispose: () => (this.callback = undefined) };
  }
}

class ArrayWriter extends AbstractMessageWriter {
  readonly written: Message[] = [];
  readonly #waiters: Array<() => void> = [];
  async write(message: Message): Promise<void> {
    this.written.push(message);
    for (const wake of this.#waiters.splice(0)) wake();
  }
  end(): void {}
  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

describe('the bundled vscode-jsonrpc runtime (src/rpc/jsonrpc-node.ts)', () => {
  it('answers a request and a thrown ResponseError through createMessageConnection', async () => {
    const reader = new ArrayReader();
    const writer = new ArrayWriter();
    const connection = createMessageConnection(reader, writer);
    connection.onRequest('echo', (params: unknown) => params);
    connection.onRequest('fail', () => {
      throw new ResponseError(-32600, 'no', { reason: 'test' });
    });
    connection.listen();

    reader.callback!({ jsonrpc: '2.0', id: 1, method: 'echo', params: { a: 1 } } as Message);
    await writer.next();
    reader.callback!({ jsonrpc: '2.0', id: 2, method: 'fail', params: {} } as Message);
    await writer.next();

    expect(writer.written).toEqual([
      { jsonrpc: '2.0', id: 1, result: { a: 1 } },
      { jsonrpc: '2.0', id: 2, error: { code: -32600, message: 'no', data: { reason: 'test' } } },
    ]);
    connection.dispose();
  });

  it('installs a runtime whose timers, JSON codec and UUIDs work', async () => {
    const ral = RAL();
    await new Promise<void>((resolve) => ral.timer.setImmediate(resolve));
    await new Promise<void>((resolve) => ral.timer.setTimeout(resolve, 1));
    const message = { jsonrpc: '2.0', id: 7, result: [1, 'x'] } as Message;
    const encoded = await ral.applicationJson.encoder.encode(message, { charset: 'utf-8' });
    expect(await ral.applicationJson.decoder.decode(encoded, { charset: 'utf-8' })).toEqual(message);
    expect(ral.crypto.randomUUID()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
