import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { METHODS, unknownMethodMessage, type MethodName } from '../../src/protocol/methods.js';
import { parseLoginId } from '../../src/protocol/schemas.js';
import { idKey, type IdKey } from '../helpers/raw-server.js';
import { anyJsonArb, fieldSlots, SECRET_PLACEHOLDER, validBases, wrongParamsArb } from './schema-mutations.js';

/**
 * Generators of hostile (and some valid) input lines for one server process,
 * each with what the server must answer. A line's `reply` says that exactly
 * one response with that id must come back (and, when given, what it says);
 * a line without `reply` must get none, except that an ambiguous numeric id
 * (`1.0`, `1e3`) may get at most one on one of its `maybe` keys.
 */

/** Checks one response; returns what is wrong, or `null`. */
export type Check = (response: Record<string, unknown>) => string | null;

export interface Line {
  bytes: Buffer;
  /** Which generator made it (reported on failure). */
  kind: string;
  reply: { key: IdKey; check?: Check } | null;
  maybe?: IdKey[];
  /** Secrets written into this line: none may reach stderr. */
  secrets: string[];
}

export const I64_MAX = 2n ** 63n - 1n;
export const I64_MIN = -(2n ** 63n);

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** An `sk-…` key with 40 random characters: long enough that any 12-character piece of it is unique. */
export const secretArb = fc
  .string({ unit: fc.constantFrom(...ALNUM), minLength: 40, maxLength: 40 })
  .map((s) => `sk-${s}`);

/** Strings the way a fuzzer sees them: printable, any code unit (lone surrogates too), and edge cases. */
const fuzzStringArb = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }).map((units) => String.fromCharCode(...units)),
  fc.constantFrom('', ' ', '43', '-7', '1e3', 'null', '\u0000', '\u2028', '"', '\\', '9223372036854775808', '__proto__', 'constructor'),
);

// ---------------------------------------------------------------- ids

interface IdText {
  text: string;
  key: IdKey;
}

const intId = (n: bigint): IdText => ({ text: n.toString(), key: idKey(n) });
const strId = (s: string): IdText => ({ text: JSON.stringify(s), key: idKey(s) });

/** Ids the server must echo exactly: strings, and every integer in the i64 range. */
export const readableIdArb: fc.Arbitrary<IdText> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: I64_MIN, max: I64_MAX }).map(intId) },
  { weight: 2, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000_000 }).map((n) => intId(BigInt(n))) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(I64_MAX, I64_MIN, I64_MAX - 1n, 2n ** 53n + 1n, 2n ** 53n, 2n ** 53n - 1n, -(2n ** 53n) - 1n, -(2n ** 53n) + 1n, 2n ** 62n, 0n, -7n)
      .map(intId),
  },
  { weight: 4, arbitrary: fuzzStringArb.map(strId) },
);

/** Ids no request may be answered with: `null`, fractions, containers, booleans, integers outside i64. */
export const unreadableIdArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('null', '1.5', '-0.5', '0.1', '{}', '{"a":1}', '[1]', '[]', 'true', 'false', '1e400', '-1e-7', '3.14e2'),
  fc.constantFrom(I64_MAX + 1n, I64_MIN - 1n, 2n ** 64n, -(2n ** 64n), 10n ** 30n).map(String),
  fc.bigInt({ min: I64_MAX + 1n, max: 2n ** 80n }).map((n) => (n % 2n === 0n ? n : -n).toString()),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)).map((d) => JSON.stringify(d)),
);

/**
 * Integer values written as JSON numbers with a fraction or an exponent
 * (`1.0`, `1e3`, `-0`): how they are answered is the README's to say, so the
 * server may answer each at most once, with the id as written or as its integer.
 */
const ambiguousIdArb: fc.Arbitrary<{ text: string; keys: IdKey[] }> = fc.oneof(
  fc.integer({ min: 7_000_000, max: 7_999_999 }).map((n) => ({ text: `${n}.0`, keys: [`n:${n}.0`, `n:${n}`] })),
  fc.integer({ min: 7_000, max: 7_999 }).map((n) => ({ text: `${n}e3`, keys: [`n:${n}e3`, `n:${n * 1000}`] })),
  fc.integer({ min: 7_000, max: 7_999 }).map((n) => ({ text: `${n}E+3`, keys: [`n:${n}E+3`, `n:${n * 1000}`] })),
  fc.constant({ text: '-0', keys: ['n:-0', 'n:0'] as string[] }),
);

// ---------------------------------------------------------------- building lines

/** `{"id":<raw id>,…}` with the id first or last; `body` must be a JSON object text. */
function withId(body: string, idText: string, first: boolean): string {
  const inner = body.slice(1, -1);
  if (inner === '') return `{"id":${idText}}`;
  return first ? `{"id":${idText},${inner}}` : `{${inner},"id":${idText}}`;
}

function requestBody(method: string, params: unknown, absent: boolean, top: Record<string, unknown> = {}): string {
  return JSON.stringify(absent ? { ...top, method } : { ...top, method, params });
}

const line = (text: string, ending = '\n'): Buffer => Buffer.from(text + ending, 'utf8');

// ---------------------------------------------------------------- expected answers

const result =
  (expected: unknown): Check =>
  (r) =>
    'error' in r ? `expected a result, got error ${JSON.stringify(r.error)}` : isDeepStrictEqual(r.result, expected) ? null : `result ${JSON.stringify(r.result)?.slice(0, 300)} ≠ ${JSON.stringify(expected)}`;

const error =
  (code: number, message: (m: string) => boolean, describe: string): Check =>
  (r) => {
    const e = r.error as { code?: unknown; message?: unknown } | undefined;
    if (!e) return `expected an error (${describe}), got result ${JSON.stringify(r.result)?.slice(0, 300)}`;
    if (e.code !== code || typeof e.message !== 'string' || !message(e.message)) {
      return `expected error ${code} ${describe}, got ${JSON.stringify(e).slice(0, 300)}`;
    }
    return null;
  };

const exactly = (text: string) => (m: string) => m === text;
const invalidRequest = error(-32600, (m) => m.startsWith('Invalid request: '), '"Invalid request: …"');
const notInitialized = error(-32600, exactly('Not initialized'), '"Not initialized"');

export type Phase = 'beforeInitialize' | 'afterInitialize';

export interface FuzzContext {
  /** The API key stored in auth.json before the run. */
  storedKey: string;
}

/** The lines one phase of the run draws from, by kind and weight. */
export function lineArb(phase: Phase, ctx: FuzzContext): fc.Arbitrary<Line> {
  const before = phase === 'beforeInitialize';
  const API_KEY_ACCOUNT = { account: { type: 'apiKey' }, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };
  const RATE_LIMITS_NEED_CHATGPT = error(-32600, exactly('chatgpt authentication required to read rate limits'), 'chatgpt auth required');
  const slots = fieldSlots(SECRET_PLACEHOLDER);
  const methods = Object.keys(METHODS) as MethodName[];

  /** Extra members that change nothing: unknown fields, `__proto__`, junk `jsonrpc`. */
  const junkFieldsArb = fc.dictionary(
    fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'id', 'method')),
    anyJsonArb(secretArb),
    { maxKeys: 3 },
  );

  /** A request the server can serve, with its correct answer (after `initialize`). */
  const validCallArb: fc.Arbitrary<{ method: string; params: unknown; absent: boolean; check: Check }> = fc.oneof(
    fc.record({ refreshToken: fc.option(fc.boolean(), { nil: undefined }), junk: junkFieldsArb }).map(({ refreshToken, junk }) => ({
      method: 'account/read',
      params: { ...junk, ...(refreshToken === undefined ? {} : { refreshToken }) },
      absent: false,
      check: result(API_KEY_ACCOUNT),
    })),
    fc.constantFrom([], [false], [true]).map((params) => ({ method: 'account/read', params, absent: false, check: result(API_KEY_ACCOUNT) })),
    fc
      .record({ includeToken: fc.constantFrom(true, false, null, undefined), refreshToken: fc.constantFrom(false, null, undefined), junk: junkFieldsArb })
      .map(({ includeToken, refreshToken, junk }) => ({
        method: 'getAuthStatus',
        params: { ...junk, includeToken, refreshToken },
        absent: false,
        check: result({ authMethod: 'apikey', authToken: includeToken === true ? ctx.storedKey : null, requiresOpenaiAuth: true }),
      })),
    fc.oneof(fc.constant(undefined), fc.constant(null), junkFieldsArb).map((params) => ({
      method: 'account/rateLimits/read',
      params,
      absent: params === undefined,
      check: RATE_LIMITS_NEED_CHATGPT,
    })),
    fc
      .record({ uuid: fc.uuid(), form: fc.constantFrom('plain', 'upper', 'simple', 'braced', 'urn') })
      .map(({ uuid, form }) => {
        const loginId =
          form === 'upper' ? uuid.toUpperCase() : form === 'simple' ? uuid.replaceAll('-', '') : form === 'braced' ? `{${uuid}}` : form === 'urn' ? `urn:uuid:${uuid}` : uuid;
        return { method: 'account/login/cancel', params: { loginId }, absent: false, check: result({ status: 'notFound' }) };
      }),
    fc
      .record({ uuid: fc.uuid(), upper: fc.boolean(), code: secretArb })
      .map(({ uuid, upper, code }) => ({
        method: 'account/login/complete',
        params: { loginId: upper ? uuid.toUpperCase() : uuid, redirectUrl: `http://localhost:1455/auth/callback?code=${code}&state=s` },
        absent: false,
        check: error(-32600, exactly(`no pending login with id ${uuid.toLowerCase()}`), 'no pending login'),
      })),
    fuzzStringArb
      .filter((s) => parseLoginId(s) === null)
      .map((loginId) => ({
        method: 'account/login/cancel',
        params: { loginId },
        absent: false,
        check: error(-32600, exactly(`invalid login id: ${loginId}`), 'invalid login id'),
      })),
    fc.constant({
      method: 'initialize',
      params: validBases('')['initialize'][0],
      absent: false,
      check: error(-32600, exactly('Already initialized'), '"Already initialized"'),
    }),
  );
  /** Before `initialize` every known method (valid params) is refused the same way. */
  const callArb = before
    ? validCallArb.filter((c) => c.method !== 'initialize').map((c) => ({ ...c, check: notInitialized }))
    : validCallArb;

  const topJunkArb = fc.oneof(
    { weight: 4, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.record({ jsonrpc: anyJsonArb(fc.constant('2.0')) }) },
    { weight: 1, arbitrary: fc.record({ result: anyJsonArb(fc.constant('x')), extra: fc.boolean() }) },
  );

  const requestLine = (
    kind: string,
    call: fc.Arbitrary<{ method: string; params: unknown; absent: boolean; check?: Check }>,
    id: fc.Arbitrary<IdText> = readableIdArb,
  ): fc.Arbitrary<Line> =>
    fc
      .record({ call, id, first: fc.boolean(), top: topJunkArb, crlf: fc.boolean(), secrets: fc.array(secretArb, { maxLength: 1 }) })
      .map(({ call, id, first, top, crlf, secrets }) => {
        const params =
          secrets.length > 0 && typeof call.params === 'object' && call.params !== null && !Array.isArray(call.params)
            ? { ...call.params, unrelatedSecret: secrets[0] }
            : call.params;
        const text = withId(requestBody(call.method, params, call.absent, top), id.text, first);
        return {
          bytes: line(text, crlf ? '\r\n' : '\n'),
          kind,
          reply: { key: id.key, ...(call.check ? { check: call.check } : {}) },
          secrets: [...secrets, ...secretsIn(text)],
        };
      });

  const valid = requestLine(before ? 'known method before initialize' : 'valid request', callArb);

  const wrongParams = fc
    .constantFrom(...methods)
    .chain((method) =>
      requestLine(
        `wrong params for ${method}`,
        wrongParamsArb(method, slots, secretArb).map(({ params, absent }) => ({ method, params, absent, check: invalidRequest })),
      ),
    );

  const unknownMethodArb = fc
    .oneof(
      fc.string({ maxLength: 24 }),
      fc.constantFrom(
        'initialized', '$/cancelRequest', '$/setTrace', '$/progress', '$/logTrace', '$/', 'Account/Read', 'account/read ', ' account/read',
        'account/login', 'getauthstatus', 'account/chatgptAuthTokens/refresh', 'thread/start', 'loginApiKey', 'toString', '__proto__',
        'constructor', 'hasOwnProperty', 'account/logout\u0000', 'initialize\n',
      ),
      fc.string({ maxLength: 12 }).map((s) => `$/${s}`),
    )
    .filter((m) => !Object.hasOwn(METHODS, m));
  const unknownMethod = requestLine(
    'unknown method',
    fc.record({ method: unknownMethodArb, params: anyJsonArb(secretArb), absent: fc.boolean() }).map(({ method, params, absent }) => ({
      method,
      params,
      absent,
      check: error(-32600, exactly(unknownMethodMessage(method)), 'unknown variant'),
    })),
  );

  /** `$/cancelRequest` with every shape of params, other `$/` and known or unknown methods as notifications. */
  const cancelParamsArb = fc.oneof(
    fc.constantFrom(undefined, null, {}, [], 'str', 5, -1, true, { id: null }, { id: '' }, { id: {} }, { id: [] }, { id: 1.5 }, [1], [{ id: 1 }]),
    fc.integer({ min: -2, max: 40 }).map((id) => ({ id })),
    readableIdArb.map((id) => ({ idText: id.text })),
    fc.string({ maxLength: 8 }).map((id) => ({ id })),
  );
  const notification = fc
    .oneof(
      cancelParamsArb.map((params) => ({ method: '$/cancelRequest', params })),
      fc.record({ method: fc.constantFrom(...methods, 'initialized', '$/setTrace', '$/progress', '$/logTrace'), params: anyJsonArb(secretArb) }),
      fc.record({ method: unknownMethodArb, params: anyJsonArb(secretArb) }),
      // A valid login or logout sent as a notification must change nothing.
      secretArb.map((apiKey) => ({ method: 'account/login/start', params: { type: 'apiKey', apiKey } })),
      fc.constant({ method: 'account/logout', params: {} }),
    )
    .map(({ method, params }) => {
      const p = params as unknown;
      const text =
        p !== null && typeof p === 'object' && 'idText' in (p as object)
          ? `{"method":${JSON.stringify(method)},"params":{"id":${(p as { idText: string }).idText}}}`
          : JSON.stringify(p === undefined ? { method } : { method, params: p });
      return { bytes: line(text), kind: `notification ${method.slice(0, 40)}`, reply: null, secrets: secretsIn(text) } satisfies Line;
    });

  /** A login line with a secret key, to break in ways JSON.parse rejects. */
  const sampleRequest = fc
    .record({ id: readableIdArb, call: validCallArb, secret: secretArb })
    .map(({ id, call, secret }) => ({
      secret,
      text: withId(requestBody('account/login/start', { type: 'apiKey', apiKey: secret, ...(call.params as object) }, false), id.text, true),
    }));
  const malformed = fc
    .oneof(
      // Cut short, possibly in the middle of the secret.
      fc.record({ s: sampleRequest, at: fc.nat() }).map(({ s, at }) => ({ ...s, text: s.text.slice(0, 1 + (at % (s.text.length - 1))) })),
      // One character replaced.
      fc
        .record({ s: sampleRequest, at: fc.nat(), c: fc.constantFrom("'", '{', '}', ',', ':', '"', '\\', 'x', '\t', '\u0000', '\u001f') })
        .map(({ s, at, c }) => ({ ...s, text: s.text.slice(0, at % s.text.length) + c + s.text.slice((at % s.text.length) + 1) })),
      sampleRequest.map((s) => ({ ...s, text: s.text.replace(/}$/, ',}') })),
      sampleRequest.map((s) => ({ ...s, text: s.text.replaceAll('"', "'") })),
      fc
        .constantFrom('{id:1,method:"account/read"}', '{"id":1,"method":"account/read",}', '{"id":NaN}', '{"id":Infinity,"method":"x"}', '{"id":01,"method":"x"}', '{"id":1 "method":"x"}', '}{', '{"a":"\u0000"}', 'nul', 'tru', '{"id":"unterminated')
        .map((text) => ({ text, secret: null })),
      fc.string({ maxLength: 40 }).map((text) => ({ text, secret: null })),
    )
    .filter(({ text }) => !isJson(text) && !text.includes('\n') && !text.includes('\r'))
    .map(({ text, secret }) => ({ bytes: line(text), kind: 'malformed JSON', reply: null, secrets: secret ? [secret] : [] }) satisfies Line);

  /** A key containing a raw newline splits its line in two malformed halves (issue 5, defect 3). */
  const splitSecret = fc.record({ id: readableIdArb, secret: secretArb, at: fc.integer({ min: 4, max: 38 }), cr: fc.boolean() }).map(({ id, secret, at, cr }) => {
    const broken = `${secret.slice(0, at)}${cr ? '\r\n' : '\n'}${secret.slice(at)}`;
    const text = `{"id":${id.text},"method":"account/login/start","params":{"type":"apiKey","apiKey":"${broken}"}}`;
    return { bytes: line(text), kind: 'API key with a raw newline', reply: null, secrets: [secret] } satisfies Line;
  });

  const notAnObject = fc
    .oneof(
      fc.json({ maxDepth: 2 }).filter((t) => !t.trimStart().startsWith('{')),
      fc.constantFrom('{}', '[]', '42', '"str"', 'null', 'true', '{"id":8,"params":{}}', '{"id":7,"method":5}', '{"id":9,"method":null}', '{"method":["account/read"]}'),
      fc.array(readableIdArb.map((id) => withId('{"method":"account/read","params":{}}', id.text, true)), { minLength: 1, maxLength: 3 }).map((items) => `[${items.join(',')}]`),
    )
    .map((text) => ({ bytes: line(text), kind: 'not a request object', reply: null, secrets: [] }) satisfies Line);

  const badId = fc.record({ id: unreadableIdArb, call: callArb, first: fc.boolean() }).map(({ id, call, first }) => {
    const text = withId(requestBody(call.method, call.params, call.absent), id, first);
    return { bytes: line(text), kind: `unreadable id ${id.slice(0, 30)}`, reply: null, secrets: secretsIn(text) } satisfies Line;
  });

  const ambiguousId = fc.record({ id: ambiguousIdArb, call: callArb }).map(({ id, call }) => {
    const text = withId(requestBody(call.method, call.params, call.absent), id.text, true);
    return { bytes: line(text), kind: `ambiguous id ${id.text}`, reply: null, maybe: id.keys, secrets: [] } satisfies Line;
  });

  const stray = fc
    .oneof(
      fc.record({ id: readableIdArb, result: anyJsonArb(secretArb) }).map(({ id, result }) => withId(JSON.stringify({ result }), id.text, true)),
      fc.record({ id: readableIdArb, error: anyJsonArb(secretArb) }).map(({ id, error }) => withId(JSON.stringify({ error }), id.text, false)),
      secretArb.map((token) => `{"id":0,"error":null,"data":{"token":"${token}"}}`),
      secretArb.map((token) => `{"result":{"accessToken":"${token}"}}`),
      fc.record({ id: readableIdArb, token: secretArb }).map(({ id, token }) => withId(JSON.stringify({ result: { accessToken: token, chatgptAccountId: 'ws-1' }, error: null }), id.text, true)),
    )
    .map((text) => ({ bytes: line(text), kind: 'stray response', reply: null, secrets: secretsIn(text) }) satisfies Line);

  const deep = fc
    .record({
      depth: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(10, 100, 1_000, 10_000) }, { weight: 1, arbitrary: fc.constant(100_000) }),
      shape: fc.constantFrom('array', 'object', 'mixed'),
      where: fc.constantFrom('unknown field', 'known field', 'id', 'method', 'unknown method params', 'notification', 'stray result', 'unbalanced'),
      id: readableIdArb,
    })
    .map(({ depth, shape, where, id }): Line => {
      const nested = nest(depth, shape);
      const kind = `nesting ${depth} deep in ${where}`;
      switch (where) {
        case 'unknown field':
          return before
            ? { bytes: line(withId(`{"method":"account/read","params":{"deep":${nested}}}`, id.text, true)), kind, reply: { key: id.key, check: notInitialized }, secrets: [] }
            : { bytes: line(withId(`{"method":"account/read","params":{"deep":${nested}}}`, id.text, true)), kind, reply: { key: id.key, check: result(API_KEY_ACCOUNT) }, secrets: [] };
        case 'known field':
          return { bytes: line(withId(`{"method":"account/read","params":{"refreshToken":${nested}}}`, id.text, false)), kind, reply: { key: id.key, check: invalidRequest }, secrets: [] };
        case 'id':
          return { bytes: line(`{"id":${nested},"method":"account/read","params":{}}`), kind, reply: null, secrets: [] };
        case 'method':
          return { bytes: line(withId(`{"method":${nested},"params":{}}`, id.text, true)), kind, reply: null, secrets: [] };
        case 'unknown method params':
          return {
            bytes: line(withId(`{"method":"deep/method","params":${nested}}`, id.text, true)),
            kind,
            reply: { key: id.key, check: error(-32600, exactly(unknownMethodMessage('deep/method')), 'unknown variant') },
            secrets: [],
          };
        case 'notification':
          return { bytes: line(`{"method":"$/cancelRequest","params":${nested}}`), kind, reply: null, secrets: [] };
        case 'stray result':
          return { bytes: line(withId(`{"result":${nested}}`, id.text, true)), kind, reply: null, secrets: [] };
        default:
          return { bytes: line(withId(`{"method":"account/read","params":${nested.slice(0, nested.length / 2)}`, id.text, true)), kind, reply: null, secrets: [] };
      }
    });

  const INVALID_UTF8 = [[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf5, 0x80, 0x80, 0x80], [0xf0, 0x9f, 0x98]];
  const badUtf8 = fc
    .record({ bytes: fc.constantFrom(...INVALID_UTF8), where: fc.constantFrom('unknown field', 'id', 'garbage'), id: readableIdArb, call: callArb, n: fc.nat() })
    .map(({ bytes, where, id, call, n }): Line => {
      const bad = Buffer.from(bytes);
      const kind = `invalid UTF-8 in ${where}`;
      if (where === 'garbage') return { bytes: Buffer.concat([Buffer.from('{"id":'), bad, Buffer.from('}\n')]), kind, reply: null, secrets: [] };
      if (where === 'id') {
        const raw = Buffer.concat([Buffer.from('{"id":"u-'), bad, Buffer.from(`-${n}"`), Buffer.from(requestBody(call.method, call.params, call.absent).replace(/^{/, ',')), Buffer.from('\n')]);
        // Bytes that are not UTF-8 read as U+FFFD, as Node's decoder replaces them.
        const decodedId = JSON.parse(raw.toString('utf8')).id as string;
        return { bytes: raw, kind, reply: { key: idKey(decodedId), check: call.check }, secrets: [] };
      }
      const body = requestBody(call.method, call.params, call.absent);
      const raw = Buffer.concat([Buffer.from(withId(body, id.text, true).replace(/}$/, ',"junk":"')), bad, Buffer.from('"}\n')]);
      return { bytes: raw, kind, reply: { key: id.key, check: call.check }, secrets: [] };
    });

  const blank = fc
    .constantFrom('', ' ', '\t', '\r', '   \t  ', '\u00a0')
    .filter((t) => !isJson(t))
    .map((text) => ({ bytes: line(text), kind: 'blank line', reply: null, secrets: [] }) satisfies Line);

  const huge = fc
    .record({ size: fc.constantFrom(16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024), where: fc.constantFrom('unknown field', 'id', 'method', 'loginId', 'known field'), id: readableIdArb, c: fc.constantFrom('x', 'é', '\u{1F600}', '"') })
    .map(({ size, where, id, c }): Line => {
      const big = c.repeat(Math.ceil(size / Buffer.byteLength(c)));
      const kind = `huge string (${size} bytes) in ${where}`;
      switch (where) {
        case 'unknown field':
          return { bytes: line(withId(requestBody('account/read', { pad: big }, false), id.text, true)), kind, reply: { key: id.key, check: before ? notInitialized : result(API_KEY_ACCOUNT) }, secrets: [] };
        case 'id':
          return { bytes: line(withId(requestBody('account/read', {}, false), JSON.stringify(big), true)), kind, reply: { key: idKey(big), check: before ? notInitialized : result(API_KEY_ACCOUNT) }, secrets: [] };
        case 'method':
          return { bytes: line(withId(requestBody(big, {}, false), id.text, true)), kind, reply: { key: id.key, check: error(-32600, exactly(unknownMethodMessage(big)), 'unknown variant') }, secrets: [] };
        case 'loginId':
          return {
            bytes: line(withId(requestBody('account/login/cancel', { loginId: big }, false), id.text, true)),
            kind,
            reply: { key: id.key, check: before ? notInitialized : error(-32600, exactly(`invalid login id: ${big}`), 'invalid login id') },
            secrets: [],
          };
        default:
          return { bytes: line(withId(requestBody('getAuthStatus', { includeToken: big }, false), id.text, true)), kind, reply: { key: id.key, check: invalidRequest }, secrets: [] };
      }
    });

  /** Framing a scanner for raw id text could trip on: duplicate, escaped and nested `id` keys, odd whitespace. */
  const trickyIds = fc
    .record({
      call: callArb,
      first: fc.oneof(readableIdArb.map((i) => i.text), unreadableIdArb),
      last: fc.oneof({ weight: 3, arbitrary: readableIdArb }, { weight: 1, arbitrary: unreadableIdArb.map((text) => ({ text, key: null })) }),
      form: fc.constantFrom('duplicate id keys', 'escaped id key', 'id nested in params', 'spaced out'),
      space: fc.constantFrom(' ', '\t', '  ', ' \r '),
    })
    .map(({ call, first, last, form, space }): Line => {
      const params = call.absent ? '' : `,"params":${JSON.stringify(call.params)}`;
      const method = `"method":${JSON.stringify(call.method)}`;
      let text: string;
      switch (form) {
        case 'duplicate id keys':
          text = `{"id":${first},${method}${params},"id":${last.text}}`;
          break;
        case 'escaped id key':
          text = `{"\\u0069d":${last.text},${method}${params}}`;
          break;
        case 'id nested in params':
          text = `{"params":{"id":${first},"x":{"id":${first}}},${method},"id":${last.text}}`;
          break;
        default: {
          // Whitespace (a CR too) around every token.
          const p = call.absent ? '' : `,${space}"params"${space}:${space}${JSON.stringify(call.params, null, 1).replaceAll('\n', space)}`;
          text = `{${space}"id"${space}:${space}${last.text}${space},${space}"method"${space}:${space}${JSON.stringify(call.method)}${space}${p}${space}}`;
        }
      }
      const nestedOnly = form === 'id nested in params';
      // With nested ids only the params change: the answer is the same unless the params were positional.
      const check = nestedOnly ? undefined : call.check;
      return { bytes: line(text), kind: `tricky ids: ${form}`, reply: last.key === null ? null : { key: last.key, ...(check ? { check } : {}) }, secrets: secretsIn(text) };
    });

  /** A small pool of ids used again and again: every copy is answered (duplicates in flight included). */
  const duplicateId = requestLine('duplicate id', callArb, fc.constantFrom(0n, 1n, I64_MAX).map(intId).chain((i) => fc.constantFrom(i, strId(''), strId('dup'))));

  return fc.oneof(
    { weight: 25, arbitrary: valid },
    { weight: 25, arbitrary: wrongParams },
    { weight: 7, arbitrary: unknownMethod },
    { weight: 10, arbitrary: notification },
    { weight: 7, arbitrary: malformed },
    { weight: 1, arbitrary: splitSecret },
    { weight: 4, arbitrary: notAnObject },
    { weight: 5, arbitrary: badId },
    { weight: 1, arbitrary: ambiguousId },
    { weight: 5, arbitrary: stray },
    { weight: 2, arbitrary: deep },
    { weight: 3, arbitrary: badUtf8 },
    { weight: 2, arbitrary: blank },
    { weight: 1, arbitrary: fc.oneof({ weight: 1, arbitrary: huge }, { weight: 4, arbitrary: valid }) },
    { weight: 2, arbitrary: duplicateId },
    { weight: 3, arbitrary: trickyIds },
  );
}

function nest(depth: number, shape: string): string {
  if (shape === 'array') return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  if (shape === 'object') return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  return `${'[{"a":'.repeat(depth / 2)}[]${'}]'.repeat(depth / 2)}`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Every `sk-…` key (as generated by `secretArb`) in a text. */
function secretsIn(text: string): string[] {
  return text.match(/sk-[A-Za-z0-9]{40}/g) ?? [];
}
