import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InitializeParamsSchema } from '../../src/protocol/schemas.js';
import { initializeResult, plainInitializeRequest } from '../../src/rpc/initialize.js';
import type { PlatformInfo } from '../../src/user-agent.js';

// The start-up stage answers `initialize` without zod only when the params are
// certainly valid: whatever it accepts, the schema must accept, or a host would
// get an answer where the server proper would send an error.

const line = (params: unknown, id: unknown = 1) => JSON.stringify({ id, method: 'initialize', params });

/** Values of every JSON type, the right ones for each field among them. */
const anyJson = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 700_000 }),
  fc.constantFrom(0.5, 1e3, -0, 600_000, 600_001, 2 ** 53),
  fc.string({ maxLength: 4 }),
  fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
);
const maybe = (arb: fc.Arbitrary<unknown>) => fc.option(arb, { nil: undefined });
/** Mostly the right type, sometimes anything: invalid params then differ from valid ones in one field. */
const mostly = (right: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: right, weight: 5 }, { arbitrary: anyJson, weight: 1 });
const clientInfo = mostly(
  fc.record(
    {
      name: mostly(fc.string()),
      title: maybe(mostly(fc.option(fc.string()))),
      version: mostly(fc.string()),
      extra: maybe(anyJson),
    },
    { requiredKeys: ['name', 'version'] },
  ),
);
const capabilities = mostly(
  fc.record(
    {
      experimentalApi: mostly(fc.boolean()),
      requestAttestation: mostly(fc.boolean()),
      stateNotifications: mostly(fc.boolean()),
      optOutNotificationMethods: mostly(fc.option(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }))),
      chatgptAuthTokensRefreshTimeoutMs: mostly(fc.option(fc.integer({ min: -2, max: 600_002 }))),
      somethingNew: anyJson,
    },
    { requiredKeys: [] },
  ),
);
const params = mostly(fc.record({ clientInfo: maybe(clientInfo), capabilities: maybe(capabilities) }, { requiredKeys: [] }));

const PLATFORM: PlatformInfo = { family: 'unix', os: 'linux', osLabel: 'Debian 12.0.0', arch: 'x86_64' };

describe('plainInitializeRequest', () => {
  it('accepts only params the initialize schema accepts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(params, (p) => {
        const text = line(p);
        const plain = plainInitializeRequest(text);
        if (plain === null) return;
        accepted++;
        expect(InitializeParamsSchema.safeParse(JSON.parse(text).params).success).toBe(true);
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(0); // the property was exercised, not vacuously true
  });

  it.each([
    ['the bench and test hosts', { clientInfo: { name: 'h', title: null, version: '1' }, capabilities: { experimentalApi: true, requestAttestation: false } }],
    ['no capabilities', { clientInfo: { name: 'h', version: '1' } }],
    ['null capabilities and a title', { clientInfo: { name: 'h', title: 'H', version: '1' }, capabilities: null }],
    ['every capability', { clientInfo: { name: 'h', version: '1' }, capabilities: { experimentalApi: false, stateNotifications: true, optOutNotificationMethods: ['account/updated'], chatgptAuthTokensRefreshTimeoutMs: 600_000 } }],
    ['fields it does not know', { clientInfo: { name: 'h', version: '1', icon: 'x' }, capabilities: { future: 1 }, other: [] }],
  ])('accepts %s, so that start-up answers them', (_name, p) => {
    expect(plainInitializeRequest(line(p))).toEqual({ id: 1, params: p });
  });

  it.each([
    ['missing params', undefined],
    ['null params', null],
    ['params as a sequence', [{ name: 'h', version: '1' }]],
    ['a missing version', { clientInfo: { name: 'h' } }],
    ['a timeout of 0', { clientInfo: { name: 'h', version: '1' }, capabilities: { chatgptAuthTokensRefreshTimeoutMs: 0 } }],
  ])('leaves %s to the server, which words the error', (_name, p) => {
    expect(plainInitializeRequest(line(p))).toBeNull();
  });

  it('leaves other methods, notifications and responses to the server', () => {
    const p = { clientInfo: { name: 'h', version: '1' } };
    expect(plainInitializeRequest(JSON.stringify({ id: 1, method: 'account/read', params: p }))).toBeNull();
    expect(plainInitializeRequest(JSON.stringify({ method: 'initialize', params: p }))).toBeNull();
    expect(plainInitializeRequest(JSON.stringify({ id: 1, result: p }))).toBeNull();
  });

  it('keeps a 64-bit id exactly', () => {
    const text = `{"id":9223372036854775807,"method":"initialize","params":{"clientInfo":{"name":"h","version":"1"}}}`;
    expect(plainInitializeRequest(text)?.id).toBe(9223372036854775807n);
  });
});

describe('initializeResult', () => {
  it('answers with userAgent, codexHome, platformFamily and platformOs, in that order', () => {
    const result = initializeResult({ name: 'h', version: '1' }, '/home/u/.codex', PLATFORM, { TERM: 'xterm' });
    expect(result).toEqual({ userAgent: 'h/0.169.0 (Debian 12.0.0; x86_64) xterm (h; 1)', codexHome: '/home/u/.codex', platformFamily: 'unix', platformOs: 'linux' });
    expect(Object.keys(result)).toEqual(['userAgent', 'codexHome', 'platformFamily', 'platformOs']);
  });
});
