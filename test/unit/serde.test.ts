import { describe, expect, it } from 'vitest';
import { METHODS, unknownMethodMessage } from '../../src/protocol/methods.js';
import { describeValue, expectedVariants, serdeMessage } from '../../src/protocol/serde.js';
import {
  CancelLoginAccountParamsSchema,
  GetAccountParamsSchema,
  GetAuthStatusParamsSchema,
  InitializeParamsSchema,
  LoginAccountParamsSchema,
  LogoutParamsSchema,
  parseLoginId,
  RateLimitsReadParamsSchema,
} from '../../src/protocol/schemas.js';

type Schema = { safeParse: (v: unknown, o: object) => { success: boolean; error?: unknown; data?: unknown } };

const message = (schema: Schema, value: unknown) => {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) throw new Error(`expected a failure for ${JSON.stringify(value)}`);
  return serdeMessage(result.error as Parameters<typeof serdeMessage>[0]);
};

const parsed = (schema: Schema, value: unknown) => {
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw new Error(`expected success, got ${message(schema, value)}`);
  return result.data;
};

const CLIENT = { name: 'a', version: 'b' };

describe('serde wording of values and variants', () => {
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

  it('describes numbers no 64-bit integer holds as serde_json’s floats, written out as Rust writes them', () => {
    expect([describeValue(1e30), describeValue(2 ** 64), describeValue(-(2 ** 63) - 4096), describeValue(1e-7), describeValue(-0.5), describeValue(123.456)]).toEqual([
      'floating point `1000000000000000000000000000000.0`',
      'floating point `18446744073709552000.0`',
      'floating point `-9223372036854780000.0`',
      'floating point `0.0000001`',
      'floating point `-0.5`',
      'floating point `123.456`',
    ]);
    // The edges of the integer range are still integers.
    expect([describeValue(-(2 ** 63)), describeValue(2 ** 64 - 2048)]).toEqual(['integer `-9223372036854775808`', 'integer `18446744073709549568`']);
  });

  it('describes negative integers and the empty string', () => {
    expect([describeValue(-7), describeValue('')]).toEqual(['integer `-7`', 'string ""']);
  });

  it('lists variants as serde does for one, two and more', () => {
    expect([expectedVariants(['a']), expectedVariants(['a', 'b']), expectedVariants(['a', 'b', 'c'])]).toEqual([
      '`a`',
      '`a` or `b`',
      'one of `a`, `b`, `c`',
    ]);
  });
});

describe('unknown methods', () => {
  it('lists the implemented methods in the reference order', () => {
    expect(unknownMethodMessage('x/y')).toBe(
      'Invalid request: unknown variant `x/y`, expected one of `initialize`, ' +
        '`account/gatewayOAuth/read`, `account/gatewayOAuth/login`, `account/gatewayOAuth/cancel`, ' +
        '`account/login/start`, `account/login/cancel`, `account/login/complete`, `account/logout`, ' +
        '`account/securitySetup/read`, `account/rateLimits/read`, `account/rateLimitResetCredit/consume`, ' +
        '`account/usage/read`, `account/workspaceMessages/read`, `account/sendAddCreditsNudgeEmail`, ' +
        '`account/read`, `getAuthStatus`, `account/state/read`',
    );
  });

  it('requires params only where the reference does', () => {
    const required = Object.entries(METHODS).filter(([, spec]) => spec.params === 'required').map(([name]) => name);
    expect(required).toEqual([
      'initialize',
      'account/login/start',
      'account/login/cancel',
      'account/login/complete',
      'account/rateLimitResetCredit/consume',
      'account/sendAddCreditsNudgeEmail',
      'account/read',
      'getAuthStatus',
    ]);
  });
});

describe('serde-style messages for invalid params', () => {
  it.each([
    ['a missing struct field', InitializeParamsSchema, {}, 'missing field `clientInfo`'],
    ['a missing nested field', InitializeParamsSchema, { clientInfo: { name: 'x' } }, 'missing field `version`'],
    ['the first of several missing fields, in declaration order', InitializeParamsSchema, { clientInfo: {} }, 'missing field `name`'],
    ['a string for a boolean', GetAccountParamsSchema, { refreshToken: 'yes' }, 'invalid type: string "yes", expected a boolean'],
    ['an integer for a string', CancelLoginAccountParamsSchema, { loginId: 123 }, 'invalid type: integer `123`, expected a string'],
    ['a float for a string', CancelLoginAccountParamsSchema, { loginId: 1.5 }, 'invalid type: floating point `1.5`, expected a string'],
    ['a boolean for a string', CancelLoginAccountParamsSchema, { loginId: false }, 'invalid type: boolean `false`, expected a string'],
    ['null for a string', CancelLoginAccountParamsSchema, { loginId: null }, 'invalid type: null, expected a string'],
    ['a map for a boolean', GetAccountParamsSchema, { refreshToken: {} }, 'invalid type: map, expected a boolean'],
    ['a sequence for a boolean', GetAuthStatusParamsSchema, { refreshToken: [] }, 'invalid type: sequence, expected a boolean'],
    ['null for a boolean that is not optional-null', GetAccountParamsSchema, { refreshToken: null }, 'invalid type: null, expected a boolean'],
    ['a string for a nested struct', InitializeParamsSchema, { clientInfo: 'x' }, 'invalid type: string "x", expected struct ClientInfo'],
    ['a string for the capabilities', InitializeParamsSchema, { clientInfo: CLIENT, capabilities: 'x' }, 'invalid type: string "x", expected struct InitializeCapabilities'],
    ['a scalar for a list', InitializeParamsSchema, { clientInfo: CLIENT, capabilities: { optOutNotificationMethods: 'x' } }, 'invalid type: string "x", expected a sequence'],
    ['a bad list element', InitializeParamsSchema, { clientInfo: CLIENT, capabilities: { optOutNotificationMethods: ['a', 5] } }, 'invalid type: integer `5`, expected a string'],
    ['a wrong title', InitializeParamsSchema, { clientInfo: { ...CLIENT, title: 5 } }, 'invalid type: integer `5`, expected a string'],
    ['a sequence for params', InitializeParamsSchema, [1], 'invalid type: sequence, expected struct InitializeParams'],
    ['a number for params', RateLimitsReadParamsSchema, 7, 'invalid type: integer `7`, expected struct GetAccountRateLimitsParams'],
    ['a string for logout params', LogoutParamsSchema, 'x', 'invalid type: string "x", expected unit'],
  ])('renders %s', (_name, schema, value, text) => {
    expect(message(schema, value)).toBe(text);
  });

  it('reports a wrong value before a missing field, as serde meets them', () => {
    expect(message(InitializeParamsSchema, { clientInfo: { name: 5 } })).toBe('invalid type: integer `5`, expected a string');
  });
});

describe('login params (internally tagged by type)', () => {
  it.each([
    ['a missing tag', {}, 'missing field `type`'],
    ['an unknown tag', { type: 'x' }, 'unknown variant `x`, expected one of `apiKey`, `chatgpt`, `chatgptDeviceCode`, `chatgptAuthTokens`'],
    ['a non-string tag', { type: 5 }, 'invalid type: integer `5`, expected variant identifier'],
    ['a null tag', { type: null }, 'invalid type: null, expected variant identifier'],
    ['a string instead of a map', 'apiKey', 'invalid type: string "apiKey", expected internally tagged enum LoginAccountParams'],
    ['a missing api key', { type: 'apiKey' }, 'missing field `apiKey`'],
    ['a missing access token', { type: 'chatgptAuthTokens', chatgptAccountId: 'ws-1' }, 'missing field `accessToken`'],
    ['a missing account id', { type: 'chatgptAuthTokens', accessToken: 'a' }, 'missing field `chatgptAccountId`'],
    ['an unknown app brand', { type: 'chatgpt', appBrand: 'x' }, 'unknown variant `x`, expected `codex` or `chatgpt`'],
    ['a non-string app brand', { type: 'chatgpt', appBrand: 5 }, 'invalid type: integer `5`, expected enum AppBrand'],
    ['a non-boolean flag', { type: 'chatgpt', codexStreamlinedLogin: 'x' }, 'invalid type: string "x", expected a boolean'],
  ])('renders %s', (_name, value, text) => {
    expect(message(LoginAccountParamsSchema, value)).toBe(text);
  });

  it('accepts every variant and drops unknown fields', () => {
    expect(parsed(LoginAccountParamsSchema, { type: 'apiKey', apiKey: '', color: 'red' })).toEqual({ type: 'apiKey', apiKey: '' });
    expect(parsed(LoginAccountParamsSchema, { type: 'chatgpt', appBrand: null })).toEqual({ type: 'chatgpt', appBrand: null });
    expect(parsed(LoginAccountParamsSchema, { type: 'chatgptDeviceCode' })).toEqual({ type: 'chatgptDeviceCode' });
    expect(parsed(LoginAccountParamsSchema, { type: 'chatgptAuthTokens', accessToken: 'a', chatgptAccountId: '', chatgptPlanType: null })).toEqual({
      type: 'chatgptAuthTokens',
      accessToken: 'a',
      chatgptAccountId: '',
      chatgptPlanType: null,
    });
  });
});

describe('accepted params', () => {
  it('lets getAuthStatus flags be null', () => {
    expect(GetAuthStatusParamsSchema.safeParse({ includeToken: null, refreshToken: null }).success).toBe(true);
  });

  it('lets the initialize title and capabilities be null or absent, and ignores unknown fields', () => {
    expect(parsed(InitializeParamsSchema, { clientInfo: { ...CLIENT, title: null, x: 1 }, capabilities: null, y: 2 })).toEqual({
      clientInfo: { ...CLIENT, title: null },
      capabilities: null,
    });
    expect(parsed(InitializeParamsSchema, { clientInfo: CLIENT })).toEqual({ clientInfo: CLIENT });
  });

  it('accepts an empty map for logout and rate-limit params', () => {
    expect([parsed(LogoutParamsSchema, {}), parsed(RateLimitsReadParamsSchema, {})]).toEqual([{}, {}]);
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
