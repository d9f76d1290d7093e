import { describe, expect, it } from 'vitest';
import { describeValue, expectedVariants, serdeMessage } from '../../src/protocol/serde.js';
import { GetAuthStatusParamsSchema, InitializeParamsSchema, LoginAccountParamsSchema, parseLoginId } from '../../src/protocol/schemas.js';

const message = (schema: { safeParse: (v: unknown, o: object) => { success: boolean; error?: unknown } }, value: unknown) => {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) throw new Error('expected a failure');
  return serdeMessage(result.error as Parameters<typeof serdeMessage>[0]);
};

describe('serde-style messages', () => {
  it('describes values the way serde_json does', () => {
    expect([describeValue('a"b'), describeValue(3), describeValue(-1.25), describeValue(false), describeValue(null), describeValue([]), describeValue({})]).toEqual([
      'string "a\\"b"',
      'integer `3`',
      'floating point `-1.25`',
      'boolean `false`',
      'null',
      'sequence',
      'map',
    ]);
  });

  it('lists variants as serde does for one, two and more', () => {
    expect([expectedVariants(['a']), expectedVariants(['a', 'b']), expectedVariants(['a', 'b', 'c'])]).toEqual([
      '`a`',
      '`a` or `b`',
      'one of `a`, `b`, `c`',
    ]);
  });

  it('reports a wrong value before a missing field, as serde meets them', () => {
    expect(message(InitializeParamsSchema, { clientInfo: { name: 5 } })).toBe('invalid type: integer `5`, expected a string');
  });

  it('names the struct for a params value of the wrong kind', () => {
    expect(message(InitializeParamsSchema, [1])).toBe('invalid type: sequence, expected struct InitializeParams');
  });

  it('calls a non-string login type a bad variant identifier', () => {
    expect(message(LoginAccountParamsSchema, { type: 5 })).toBe('invalid type: integer `5`, expected variant identifier');
  });

  it('lets getAuthStatus flags be null', () => {
    expect(GetAuthStatusParamsSchema.safeParse({ includeToken: null, refreshToken: null }).success).toBe(true);
  });
});

describe('login ids', () => {
  it('normalises every UUID form Rust accepts to lower-case hyphenated', () => {
    const canonical = '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a';
    for (const form of [canonical, canonical.toUpperCase(), canonical.replace(/-/g, ''), `{${canonical}}`, `urn:uuid:${canonical}`]) {
      expect(parseLoginId(form)).toBe(canonical);
    }
  });

  it('rejects anything else', () => {
    for (const bad of ['', 'abc', '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6', '{0b9f3b5e1c1a4d2e9a7b2f1e3d4c5b6a', 'g'.repeat(32)]) {
      expect(parseLoginId(bad)).toBeNull();
    }
  });
});
