import { PassThrough } from 'node:stream';
import type { Message } from 'vscode-jsonrpc/node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { classify, IdTable, MAX_LINE_BYTES, NdjsonMessageReader, NdjsonMessageWriter } from '../../src/rpc/ndjson.js';

type Received = Message & Record<string, any>;

function reader() {
  const input = new PassThrough();
  const ids = new IdTable();
  const logs: string[] = [];
  const received: Received[] = [];
  const errors: Error[] = [];
  let closed = false;
  const r = new NdjsonMessageReader(input, ids, createLogger('warn', (l) => logs.push(l)));
  r.onClose(() => (closed = true));
  r.onError((e) => errors.push(e));
  const listening = r.listen((m) => received.push(m as Received));
  return { input, ids, logs, received, errors, listening, isClosed: () => closed };
}

function writer() {
  const output = new PassThrough();
  const ids = new IdTable();
  const written: number[] = [];
  const w = new NdjsonMessageWriter(output, ids, () => 1234, (id) => written.push(id));
  const raw = () => output.read()?.toString() ?? '';
  const lines = () => raw().split('\n').filter(Boolean).map((l: string) => JSON.parse(l));
  return { w, ids, written, raw, lines };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('classify', () => {
  it.each([
    [{ id: 1, method: 'm' }, 'request'],
    [{ id: 'a', method: 'm', params: {} }, 'request'],
    [{ id: '', method: 'm' }, 'request'],
    [{ id: -7, method: 'm' }, 'request'],
    [{ id: 2 ** 53 - 1, method: 'm' }, 'request'],
    [{ method: 'm' }, 'notification'],
    [{ method: 'm', params: [] }, 'notification'],
    [{ id: 0, result: {} }, 'response'],
    [{ id: 'x', result: null }, 'response'],
    [{ id: 0, error: { code: 1, message: 'x' } }, 'response'],
    [{ id: null, method: 'm' }, 'invalid'],
    [{ id: 1.5, method: 'm' }, 'invalid'],
    [{ id: { a: 1 }, method: 'm' }, 'invalid'],
    [{ id: [1], method: 'm' }, 'invalid'],
    [{ id: true, method: 'm' }, 'invalid'],
    [{ id: 2 ** 60, method: 'm' }, 'invalid'],
    [{ method: 7 }, 'invalid'],
    [{ method: null, id: 1 }, 'invalid'],
    [{ id: 1 }, 'invalid'],
    [{ id: null, result: {} }, 'invalid'],
    [{}, 'invalid'],
    [[], 'invalid'],
    [[{ id: 1, method: 'm' }], 'invalid'],
    [null, 'invalid'],
    [42, 'invalid'],
    ['str', 'invalid'],
  ])('classifies %j as %s', (value, kind) => {
    expect(classify(value).kind).toBe(kind);
  });

  it('keeps the original id of a request, unchanged', () => {
    expect(classify({ id: '43', method: 'm' })).toMatchObject({ kind: 'request', id: '43' });
  });

  it('says why a batch array is invalid', () => {
    expect(classify([{ method: 'm' }])).toEqual({ kind: 'invalid', why: 'batch arrays are not supported' });
  });
});

describe('IdTable', () => {
  it('gives every admitted id, duplicates included, its own internal number', () => {
    const ids = new IdTable();
    const a = ids.admit('x');
    const b = ids.admit('x');
    expect(a).not.toBe(b);
    expect([ids.original(a), ids.original(b), ids.outstanding]).toEqual(['x', 'x', 2]);
  });

  it('forgets an id once released', () => {
    const ids = new IdTable();
    const a = ids.admit(5);
    expect(ids.release(a)).toBe(5);
    expect([ids.original(a), ids.release(a), ids.outstanding]).toEqual([undefined, undefined, 0]);
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

  it('sets "jsonrpc" to 2.0 whatever the client sent, and keeps unknown members', async () => {
    const r = reader();
    r.input.write('{"jsonrpc":"1.0","method":"a","extra":1}\n{"jsonrpc":2,"id":3,"method":"b"}\n{"method":"c"}\n');
    await tick();
    expect(r.received.map((m) => m.jsonrpc)).toEqual(['2.0', '2.0', '2.0']);
    expect(r.received[0]?.extra).toBe(1);
  });

  it('passes notifications through without an id', async () => {
    const r = reader();
    r.input.write('{"method":"initialized"}\n');
    await tick();
    expect(r.received).toEqual([{ method: 'initialized', jsonrpc: '2.0' }]);
    expect(r.ids.outstanding).toBe(0);
  });

  it('passes responses through with their own ids', async () => {
    const r = reader();
    r.input.write('{"id":0,"result":{"ok":true}}\n');
    await tick();
    expect(r.received).toEqual([{ id: 0, result: { ok: true }, jsonrpc: '2.0' }]);
    expect(r.ids.outstanding).toBe(0);
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

  it.each([
    ['a blank line', '\n', /dropping blank input line/],
    ['a whitespace-only line', '  \t\r\n', /dropping blank input line/],
    ['a null id', '{"id":null,"method":"m"}\n', /id is not a string or an integer/],
    ['a non-string method', '{"id":1,"method":2}\n', /method is not a string/],
    ['a scalar', '42\n', /not a JSON object/],
    ['an empty object', '{}\n', /neither a request, a notification nor a response/],
  ])('drops %s with a warning and admits no id', async (_name, text, log) => {
    const r = reader();
    r.input.write(`${text}{"method":"after"}\n`);
    await tick();
    expect(r.received.map((m) => m.method)).toEqual(['after']);
    expect(r.logs.join('')).toMatch(log);
    expect(r.ids.outstanding).toBe(0);
  });

  it('drops a line longer than the 16 MiB cap, even across chunks, and reads the next line', async () => {
    const r = reader();
    const chunk = 'x'.repeat(1024 * 1024);
    r.input.write('{"id":1,"method":"huge","params":"');
    for (let i = 0; i < 17; i++) r.input.write(chunk);
    r.input.write('"}\n{"id":2,"method":"next"}\n');
    await tick();
    expect(r.received.map((m) => m.method)).toEqual(['next']);
    expect(r.ids.original(r.received[0]!.id as number)).toBe(2);
    expect(r.logs.join('')).toMatch(new RegExp(`dropping input line longer than ${MAX_LINE_BYTES} bytes`));
  });

  it('reads a line exactly as long as the 16 MiB cap', async () => {
    const r = reader();
    const prefix = '{"method":"big","params":"';
    const suffix = '"}';
    r.input.write(`${prefix}${'y'.repeat(MAX_LINE_BYTES - prefix.length - suffix.length)}${suffix}\n`);
    await tick();
    expect(r.received.map((m) => m.method)).toEqual(['big']);
    expect(r.logs).toEqual([]);
  });

  it('handles a last line without a newline at end of input, then reports close', async () => {
    const r = reader();
    r.input.end('{"method":"last"}');
    await tick();
    expect(r.received).toHaveLength(1);
    expect(r.isClosed()).toBe(true);
  });

  it('reports close at end of input with nothing pending', async () => {
    const r = reader();
    r.input.end();
    await tick();
    expect([r.received, r.isClosed()]).toEqual([[], true]);
  });

  it('reports stream errors', async () => {
    const r = reader();
    r.input.destroy(new Error('boom'));
    await tick();
    expect(r.errors.map((e) => e.message)).toEqual(['boom']);
  });

  it('stops delivering once disposed', async () => {
    const r = reader();
    r.listening.dispose();
    r.input.write('{"method":"late"}\n');
    await tick();
    expect(r.received).toEqual([]);
  });
});

describe('NdjsonMessageWriter', () => {
  it('restores the client id on responses, drops "jsonrpc", and reports the write', async () => {
    const { w, ids, written, lines } = writer();
    const internal = ids.admit(-7);
    await w.write({ jsonrpc: '2.0', id: internal, result: { a: 1 } } as Message);
    expect(lines()).toEqual([{ id: -7, result: { a: 1 } }]);
    expect(written).toEqual([internal]);
    expect(ids.outstanding).toBe(0);
  });

  it('restores the client id on errors and keeps code, message and data', async () => {
    const { w, ids, lines } = writer();
    const internal = ids.admit('');
    const error = { code: -32600, message: 'Not initialized', data: { reason: 'not_initialized', recovery: 'initialize' } };
    await w.write({ jsonrpc: '2.0', id: internal, error } as Message);
    expect(lines()).toEqual([{ id: '', error }]);
  });

  it('answers two requests that shared a client id, each with that id', async () => {
    const { w, ids, lines } = writer();
    const first = ids.admit(9);
    const second = ids.admit(9);
    await w.write({ jsonrpc: '2.0', id: second, result: 'b' } as Message);
    await w.write({ jsonrpc: '2.0', id: first, result: 'a' } as Message);
    expect(lines()).toEqual([
      { id: 9, result: 'b' },
      { id: 9, result: 'a' },
    ]);
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

  it('writes each message as one compact line ending in a newline, members in wire order', async () => {
    const { w, ids, raw } = writer();
    await w.write({ jsonrpc: '2.0', method: 'account/updated', params: { authMode: 'apikey', planType: null } } as Message);
    await w.write({ jsonrpc: '2.0', id: ids.admit(1), result: { type: 'apiKey' } } as Message);
    expect(raw()).toBe(
      '{"method":"account/updated","params":{"authMode":"apikey","planType":null},"emittedAtMs":1234}\n{"id":1,"result":{"type":"apiKey"}}\n',
    );
  });
});
