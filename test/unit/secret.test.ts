import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';

/** A credential never shows when serialized, printed or inspected (logs, snapshots, inspector events). */
describe('Secret', () => {
  it('gives its value only to reveal()', () => {
    expect(new Secret('sk-abc').reveal()).toBe('sk-abc');
  });

  it('serializes, prints and inspects as redacted', () => {
    const secret = new Secret('sk-abc');
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(String(secret)).toBe('[redacted]');
    expect(inspect({ secret })).toBe('{ secret: Secret([redacted]) }');
  });
});
