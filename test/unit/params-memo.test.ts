import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { METHODS, type MethodName } from '../../src/protocol/methods.js';
import { validateParams } from '../../src/protocol/wire.js';

// validateParams remembers successful parses of params made only of booleans and nulls
// (every pure read's). Remembered or not, it must answer exactly as the method's schema does.

const names = Object.keys(METHODS) as MethodName[];
const flagKeys = fc.constantFrom('refreshToken', 'includeToken', 'supportsLunaReserve', 'excludeResetCreditDetails', 'experimentalApi', 'other');
const flagParams = fc.dictionary(flagKeys, fc.oneof(fc.boolean(), fc.constant(null)), { maxKeys: 5 });

function outcome(method: MethodName, params: unknown): { ok: true; data: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, data: validateParams(method, params) };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

describe('validateParams with remembered flag params', () => {
  it('gives the schema’s own answer for any flag params, the first time and every time after', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), flagParams, (method, params) => {
        const expected = METHODS[method].schema.safeParse(params);
        // Three times: parsed, then (if remembered) from the memo.
        for (let i = 0; i < 3; i++) {
          const got = outcome(method, JSON.parse(JSON.stringify(params)));
          expect(got.ok).toBe(expected.success);
          if (got.ok && expected.success) expect(got.data).toEqual(expected.data);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('hands out remembered params that cannot be changed by whoever received them', () => {
    const first = validateParams('account/read', { refreshToken: true });
    const second = validateParams('account/read', { refreshToken: true });
    expect(second).toEqual({ refreshToken: true });
    expect(Object.isFrozen(second)).toBe(true);
    expect(() => {
      (first as { refreshToken?: boolean }).refreshToken = false;
    }).toThrow(TypeError);
    expect(validateParams('account/read', { refreshToken: true })).toEqual({ refreshToken: true });
  });
});
