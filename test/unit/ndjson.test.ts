import { PassThrough } from 'node:stream';
import type { Message } from 'vscode-jsonrpc/node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { classify, IdTable, NdjsonMessageReader, NdjsonMessageWriter } from '../../src/rpc/ndjson.js';

function reader() {
  const input = new PassThrough();
  const ids = new IdTable();
  const logs: string[] = [];
  const received: Array<Message & Record<string, any>> = [];
  let closed = false;
  const r = new NdjsonMessageReader(input, ids, createLogger('debug', (l) => logs.push(l)));
  r.onClose(() => (closed = true));
  r.listen((m) => received.push(m as Message & Record<string, any>));
  return { input, ids, logs, received, isClosed: () => closed };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('classify', () => {
  it.each([
    [{ id: 1, method: 'm' }, 'request'],
    [{ id: 'a', method: 'm', params: {} }, 'request'],
    [{ method: 'm' }, 'notification'],
    [{ id: 0, result: {} }, 'response'],
    [{ id: 0, error: { code: 1, message: 'x' } }, 'response'],
    [{ id: null, method: 'm' }, 'invalid'],
    [{ id: 1.5, method: 'm' }, 'invalid'],
    [{ id: { a: 1 }, method: 'm' }, 'invalid'],
    [{ id: 2 ** 60, method: 'm' }, 'invalid'],
    [{ method: 7 }, 'invalid'],
    [{}, 'invalid'],
    [[], 'invalid'],
    [null, 'invalid'],
    [42, 'invalid'],
  ])('classifies %j as %s', (value, kind) => {
    expect(classify(value).kind).toBe(kind);
  });
});

describe('NdjsonMessageReader', () => {
  it('reassembles a message split across chunks, and one split inside a UTF-8 character', async () => {
    const r = reader();
    const line = Buffer.from(`${JSON.stringify({ id: 'é', method: 'm', params: { s: 'héllo' } })}\n`);
    const cut = line.indexOf(0xc3) + 1; // in the middle of the two-byte é
    r.input.write(line.subarray(0, cut));
    r.input.write(line.subarray(cut));
    await tick();
    expect(r.received).toHaveLength(1);
    expect(r.received[0]?.params).toEqual({ s: 'héllo' });
    expect(r.ids.original(0)).toBe('é');
  });

  it('reads several messages from one chunk and accepts CRLF line ends', async () => {
    const r = reader();
    r.input.write('{"method":"a"}\r\n{"method":"b"}\n');
    await tick();
    expect(r.received.map((m) => m.method)).toEqual(['a', 'b']);
  });

  it('replaces request ids with sequence numbers and remembers the originals', async () => {
    const r = reader();
    r.input.write('{"id":"x","method":"a"}\n{"id":"x","method":"b"}\n');
    await tick();
    expect(r.received.map((m) => m.id)).toEqual([0, 1]);
    expect([r.ids.original(0), r.ids.original(1), r.ids.outstanding]).toEqual(['x', 'x', 2]);
  });

  it('passes responses through with their own ids', async () => {
    const r = reader();
    r.input.write('{"id":0,"result":{"ok":true}}\n');
    await tick();
    expect(r.received).toEqual([{ id: 0, result: { ok: true }, jsonrpc: '2.0' }]);
  });

  it('drops invalid lines with a log line that does not quote them', async () => {
    const r = reader();
    r.input.write('{"apiKey":"sk-secret", broken\n[1]\n{"method":"ok"}\n');
    await tick();
    expect(r.received).toHaveLength(1);
    expect(r.logs.join('')).toMatch(/dropping malformed JSON line/);
    expect(r.logs.join('')).toMatch(/batch arrays are not supported/);
    expect(r.logs.join('')).not.toContain('sk-secret');
  });

  it('handles a last line without a newline at end of input, then reports close', async () => {
    const r = reader();
    r.input.end('{"method":"last"}');
    await tick();
    expect(r.received).toHaveLength(1);
    expect(r.isClosed()).toBe(true);
  });
});

describe('NdjsonMessageWriter', () => {
  function writer() {
    const output = new PassThrough();
    const ids = new IdTable();
    const written: number[] = [];
    const w = new NdjsonMessageWriter(output, ids, () => 1234, (id) => written.push(id));
    const lines = () => (output.read()?.toString() ?? '').split('\n').filter(Boolean).map((l: string) => JSON.parse(l));
    return { w, ids, written, lines };
  }

  it('restores the client id on responses, drops "jsonrpc", and reports the write', async () => {
    const { w, ids, written, lines } = writer();
    const internal = ids.admit(-7);
    await w.write({ jsonrpc: '2.0', id: internal, result: { a: 1 } } as Message);
    expect(lines()).toEqual([{ id: -7, result: { a: 1 } }]);
    expect(written).toEqual([internal]);
    expect(ids.outstanding).toBe(0);
  });

  it('adds emittedAtMs to notifications but not to server requests', async () => {
    const { w, lines } = writer();
    await w.write({ jsonrpc: '2.0', method: 'account/updated', params: { authMode: null } } as Message);
    await w.write({ jsonrpc: '2.0', id: 0, method: 'account/chatgptAuthTokens/refresh', params: {} } as Message);
    expect(lines()).toEqual([
      { method: 'account/updated', params: { authMode: null }, emittedAtMs: 1234 },
      { id: 0, method: 'account/chatgptAuthTokens/refresh', params: {} },
    ]);
  });
});
