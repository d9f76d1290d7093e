import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../../src/effects/rfc3339.js';
import { parseUuid } from '../../src/protocol/uuid.js';

const ID = '00000000-0000-4000-8000-00000000000a';

describe('thread ids as the uuid crate parses them (SPEC-account-surface §13.2)', () => {
  it.each([[ID], [ID.toUpperCase()], [ID.replace(/-/g, '')], [`urn:uuid:${ID}`], [`{${ID}}`]])('accepts %s', (value) => {
    expect(parseUuid(value)).toEqual({ ok: true, uuid: ID });
  });

  it.each([
    ['nope', 'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1'],
    ['', 'invalid length: expected length 32 for simple format, found 0'],
    ['abc', 'invalid length: expected length 32 for simple format, found 3'],
    ['0000-0000', 'invalid group count: expected 5, found 2'],
    ['0000000-00000-4000-8000-00000000000a', 'invalid group length in group 0: expected 8, found 7'],
    [`urn:uuid:${ID.slice(0, -1)}x`, 'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `x` at 45'],
    ['é', 'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `é` at 1'],
  ])('refuses %j: %s', (value, why) => {
    expect(parseUuid(value)).toEqual({ ok: false, why });
  });
});

describe('RFC 3339 timestamps as chrono reads them (§15)', () => {
  it.each([
    ['2026-11-01T12:34:56.789+02:00', 1793529296],
    ['2026-01-01T00:00:00.5Z', 1767225600],
    ['2026-11-25 08:00:00z', 1795593600],
    ['1969-12-31T23:59:59.9Z', -1],
  ])('reads %s as %d', (text, seconds) => {
    expect(parseRfc3339(text)).toEqual({ ok: true, seconds });
  });

  it.each([
    ['2026-11-25 08:00:00', 'premature end of input'],
    ['2026-11-25T08:00', 'premature end of input'],
    ['2026-02-30T00:00:00Z', 'input is out of range'],
    ['2026-11-25T08:00:00+02', 'premature end of input'],
    ['2026-11-25T08:00:00Z ', 'trailing input'],
    ['2026/11/25T08:00:00Z', 'input contains invalid characters'],
  ])('refuses %s: %s', (text, why) => {
    expect(parseRfc3339(text)).toEqual({ ok: false, why });
  });
});
