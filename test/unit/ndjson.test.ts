import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { parse as parseLossless } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { LineWriter, MAX_LINE_BYTES, parseLine, readLines, topLevelIdText } from '../../src/rpc/ndjson.js';

function reader() {
  const input = new PassThrough();
  const logs: string[] = [];
  const lines: string[] = [];
  const errors: Error[] = [];
  let closed = false;
  const dispose = readLines(
    input,
    { line: (l) => lines.push(l), end: () => (closed = true), error: (e) => errors.push(e) },
    createLogger('warn', (l) => logs.push(l)),
  );
  return { input, logs, lines, errors, dispose, isClosed: () => closed };
}

function writer() {
  const output = new PassThrough();
  const w = new LineWriter(output, () => 1234);
  const raw = () => {
    w.flush();
    return output.read()?.toString() ?? '';
  };
  const lines = () => raw().split('\n').filter(Boolean).map((l: string) => JSON.parse(l));
  return { w, output, raw, lines };
}

const tick = () => new Promise((r) => setImmediate(r));
const line = (value: unknown) => JSON.stringify(value);

describe('parseLine', () => {
  it.each([
    [{ id: 1, method: 'm' }, 'request'],
    [{ id: 'a', method: 'm', params: {} }, 'request'],
    [{ id: '', method: 'm' }, 'request'],
    [{ id: -7, method: 'm' }, 'request'],
    [{ id: 2 ** 53 - 1, method: 'm' }, 'request'],
    [{ method: 'm' }, 'notification'],
    [{ method: 'm', params: [] }, 'notification'],
    [{ method: '$/cancelRequest' }, 'notification'],
    [{ method: '$/cancelRequest', params: null }, 'notification'],
    [{ id: 0, result: {} }, 'response'],
    [{ id: 'x', result: null }, 'response'],
    [{ id: 0, error: { code: 1, message: 'x' } }, 'response'],
    [{ id: 0, error: null, data: { token: 'eyJ' } }, 'invalid'],
    [{ id: 0, result: 1, error: { code: 1, message: 'x' } }, 'invalid'],
    [{ id: null, method: 'm' }, 'invalid'],
    [{ id: 1.5, method: 'm' }, 'invalid'],
    [{ id: { a: 1 }, method: 'm' }, 'invalid'],
    [{ id: [1], method: 'm' }, 'invalid'],
    [{ id: true, method: 'm' }, 'invalid'],
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
    expect(parseLine(line(value)).kind).toBe(kind);
  });

  it('keeps a string id unchanged', () => {
    expect(parseLine('{"id":"43","method":"m"}')).toMatchObject({ kind: 'request', id: '43' });
  });

  it.each([
    ['9007199254740993', 9007199254740993n],
    ['-9007199254740993', -9007199254740993n],
    ['9223372036854775807', 9223372036854775807n],
    ['-9223372036854775808', -9223372036854775808n],
    ['9007199254740991', 9007199254740991],
    ['-0', 0],
  ])('reads the integer id %s exactly', (text, id) => {
    expect(parseLine(`{"id":${text},"method":"m"}`)).toMatchObject({ kind: 'request', id });
  });

  it.each(['9223372036854775808', '-9223372036854775809', '1.0', '1e3', '1E3', '1.5', '-0.0'])(
    'drops the id %s, which is no 64-bit integer literal',
    (text) => {
      expect(parseLine(`{"id":${text},"method":"m"}`)).toEqual({ kind: 'invalid', reason: 'id is not a string or a 64-bit integer' });
    },
  );

  it('reads the top-level id, not one nested in params', () => {
    expect(parseLine('{"params":{"id":1.5},"id":12345678901234567890,"method":"m"}').kind).toBe('invalid');
    expect(parseLine('{"params":{"id":1.5},"id":1234567890123456789,"method":"m"}')).toMatchObject({ id: 1234567890123456789n });
  });

  it('says why a batch array is invalid, and never quotes the line', () => {
    expect(parseLine('[{"method":"m"}]')).toEqual({ kind: 'invalid', reason: 'batch arrays are not supported' });
    expect(parseLine('{"apiKey":"sk-secret", broken')).toEqual({ kind: 'invalid', reason: 'malformed JSON' });
  });

  it('classifies a message nested 100,000 deep without overflowing the stack', () => {
    const deep = `{"id":7,"method":"m","params":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(['request', 'invalid']).toContain(parseLine(deep).kind);
  });
});

describe('topLevelIdText', () => {
  // lossless-json re-reads the whole line keeping number texts: the oracle for our top-level scan.
  const oracle = (line: string) => {
    const id = (parseLossless(line, null, (text: string) => `#${text}`) as Record<string, unknown>).id;
    return typeof id === 'string' && id.startsWith('#') ? id.slice(1) : undefined;
  };

  it('finds the same id text as a lossless parse of the whole line, for any object', () => {
    const idText = fc.oneof(
      fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
      fc.constantFrom('1.0', '1e3', '-0', '1E+2', '0.5e-3'),
    );
    const member = fc.tuple(fc.constantFrom('method', 'params', 'x', 'i\\u0065', 'id\\"', 'ids'), fc.json());
    fc.assert(
      fc.property(fc.uniqueArray(member, { maxLength: 4, selector: ([k]) => k }), idText, fc.nat(4), fc.constantFrom('', ' ', '\n\t '), (members, id, at, ws) => {
        const parts = members.map(([k, v]) => `"${k}"${ws}:${ws}${v}`);
        parts.splice(Math.min(at, parts.length), 0, `"id"${ws}:${ws}${id}`);
        const line = `${ws}{${ws}${parts.join(`${ws},${ws}`)}${ws}}${ws}`;
        expect(topLevelIdText(line)).toBe(oracle(line));
      }),
      { numRuns: 500 },
    );
  });

  it('reads an id written with an escaped key, and the last of duplicate ids, as JSON.parse does', () => {
    expect(topLevelIdText('{"\\u0069d":12,"method":"m"}')).toBe('12');
    expect(topLevelIdText('{"id":1,"id":99999999999999999999}')).toBe('99999999999999999999');
  });
});

describe('readLines', () => {
  it('reassembles a line split across chunks, and one split inside a UTF-8 character', async () => {
    const r = reader();
    const text = Buffer.from(`${line({ id: 'é', method: 'm', params: { s: 'héllo' } })}\n`);
    const cut = text.indexOf(0xc3) + 1; // in the middle of the two-byte é
    r.input.write(text.subarray(0, cut));
    r.input.write(text.subarray(cut));
    await tick();
    expect(r.lines.map((l) => JSON.parse(l))).toEqual([{ id: 'é', method: 'm', params: { s: 'héllo' } }]);
  });

  it('reads several lines from one chunk and strips CRLF line ends', async () => {
    const r = reader();
    r.input.write('{"method":"a"}\r\n{"method":"b"}\n');
    await tick();
    expect(r.lines).toEqual(['{"method":"a"}', '{"method":"b"}']);
  });

  it('drops a line longer than the 16 MiB cap, even across chunks, and reads the next line', async () => {
    const r = reader();
    const chunk = 'x'.repeat(1024 * 1024);
    r.input.write('{"id":1,"method":"huge","params":"');
    for (let i = 0; i < 17; i++) r.input.write(chunk);
    r.input.write('"}\n{"id":2,"method":"next"}\n');
    await tick();
    expect(r.lines).toEqual(['{"id":2,"method":"next"}']);
    expect(r.logs.join('')).toMatch(new RegExp(`dropping input line longer than ${MAX_LINE_BYTES} bytes`));
    expect(r.logs.join('')).not.toContain('xxxx');
  });

  it('reads a line exactly as long as the 16 MiB cap', async () => {
    const r = reader();
    const prefix = '{"method":"big","params":"';
    const suffix = '"}';
    r.input.write(`${prefix}${'y'.repeat(MAX_LINE_BYTES - prefix.length - suffix.length)}${suffix}\n`);
    await tick();
    expect(r.lines.map((l) => l.length)).toEqual([MAX_LINE_BYTES]);
    expect(r.logs).toEqual([]);
  });

  it('keeps reading when the line handler throws', async () => {
    const input = new PassThrough();
    const logs: string[] = [];
    const seen: string[] = [];
    readLines(
      input,
      {
        line: (l) => {
          seen.push(l);
          if (l === 'boom') throw new TypeError('handler bug with sk-secret-in-message');
        },
        end: () => {},
      },
      createLogger('warn', (l) => logs.push(l)),
    );
    input.write('boom\nnext\n');
    await tick();
    expect(seen).toEqual(['boom', 'next']);
    expect(logs.join('')).toMatch(/failed to handle an input line: TypeError/);
    expect(logs.join('')).not.toContain('sk-secret');
  });

  it('handles a last line without a newline at end of input, then reports the end', async () => {
    const r = reader();
    r.input.end('{"method":"last"}');
    await tick();
    expect(r.lines).toEqual(['{"method":"last"}']);
    expect(r.isClosed()).toBe(true);
  });

  it('reports the end of input with nothing pending', async () => {
    const r = reader();
    r.input.end();
    await tick();
    expect([r.lines, r.isClosed()]).toEqual([[], true]);
  });

  it('reports stream errors', async () => {
    const r = reader();
    r.input.destroy(new Error('boom'));
    await tick();
    expect(r.errors.map((e) => e.message)).toEqual(['boom']);
  });

  it('stops delivering once disposed', async () => {
    const r = reader();
    r.dispose();
    r.input.write('{"method":"late"}\n');
    await tick();
    expect(r.lines).toEqual([]);
  });
});

describe('LineWriter', () => {
  it('writes a response with the client id and no "jsonrpc" member', () => {
    const { w, lines } = writer();
    w.result(-7, { a: 1 });
    expect(lines()).toEqual([{ id: -7, result: { a: 1 } }]);
  });

  it('writes an error with code, message and data', () => {
    const { w, lines } = writer();
    const error = { code: -32600, message: 'Not initialized', data: { reason: 'not_initialized', recovery: 'initialize' } };
    w.error('', error);
    expect(lines()).toEqual([{ id: '', error }]);
  });

  it('echoes a 64-bit id digit for digit', () => {
    const { w, raw } = writer();
    w.result(9223372036854775807n, {});
    w.error(-9007199254740993n, { code: -32600, message: 'x' });
    expect(raw()).toBe(
      '{"id":9223372036854775807,"result":{}}\n{"id":-9007199254740993,"error":{"code":-32600,"message":"x"}}\n',
    );
  });

  it('adds emittedAtMs to notifications but not to server requests', () => {
    const { w, lines } = writer();
    w.notification('account/updated', { authMode: null });
    w.request(0, 'account/chatgptAuthTokens/refresh', {});
    expect(lines()).toEqual([
      { method: 'account/updated', params: { authMode: null }, emittedAtMs: 1234 },
      { method: 'account/chatgptAuthTokens/refresh', id: 0, params: {} },
    ]);
  });

  it('writes each message as one compact line, members in wire order', () => {
    const { w, raw } = writer();
    w.notification('account/updated', { authMode: 'apikey', planType: null });
    w.result(1, { type: 'apiKey' });
    expect(raw()).toBe(
      '{"method":"account/updated","params":{"authMode":"apikey","planType":null},"emittedAtMs":1234}\n{"id":1,"result":{"type":"apiKey"}}\n',
    );
  });

  it('writes the lines of one event-loop turn with one write', async () => {
    const { w, output } = writer();
    const writes: string[] = [];
    output.on('data', (c: Buffer) => writes.push(c.toString()));
    for (let i = 0; i < 100; i++) w.result(i, {});
    await tick();
    await tick();
    expect(writes).toHaveLength(1);
    expect(writes[0]!.split('\n').filter(Boolean)).toHaveLength(100);
  });
});
