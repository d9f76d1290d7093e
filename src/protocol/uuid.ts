/**
 * UUID parsing as the reference does it (Rust's `uuid` crate, `Uuid::parse_str`):
 * simple (32 hex), hyphenated, braced and `urn:uuid:` forms, any case. A
 * failure carries the crate's own diagnostic, which the reference quotes in
 * `invalid thread id: …` (SPEC-account-surface §13.2).
 */

export type UuidParse = { ok: true; uuid: string } | { ok: false; why: string };

const SIMPLE = /^[0-9a-f]{32}$/i;
const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const GROUP_STARTS = [0, 9, 14, 19, 24] as const;
const GROUP_LENGTHS = [8, 4, 4, 4, 12] as const;

const utf8Length = (text: string) => new TextEncoder().encode(text).length;

/** Parses `value`; on success the canonical lower-case hyphenated form. */
export function parseUuid(value: string): UuidParse {
  const bytes = utf8Length(value);
  let body: string | null = null;
  if (bytes === 32) body = SIMPLE.test(value) ? value : null;
  else if (bytes === 36) body = value;
  else if (bytes === 38 && value.startsWith('{') && value.endsWith('}')) body = value.slice(1, -1);
  else if (bytes === 45 && value.startsWith('urn:uuid:')) body = value.slice(9);
  if (body !== null && (bytes === 32 || HYPHENATED.test(body))) {
    const hex = body.replace(/-/g, '').toLowerCase();
    return { ok: true, uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` };
  }
  return { ok: false, why: diagnose(value) };
}

/** The crate's `InvalidUuid::into_err` followed by its `Display`. */
function diagnose(input: string): string {
  let rest = input;
  let offset = 0;
  let simple = false;
  if (input.length >= 2 && input.startsWith('{') && input.endsWith('}')) {
    rest = input.slice(1, -1);
    offset = 1;
  } else if (input.startsWith('urn:uuid:')) {
    rest = input.slice(9);
    offset = 9;
  } else simple = true;

  let hyphens = 0;
  const bounds: number[] = [];
  let index = 0; // byte index, as Rust's char_indices
  for (const character of rest) {
    const code = character.codePointAt(0)!;
    if (code > 0x7f || (character !== '-' && !/[0-9a-fA-F]/.test(character))) {
      return `invalid character: expected an optional prefix of \`urn:uuid:\` followed by [0-9a-fA-F-], found \`${character}\` at ${index + offset + 1}`;
    }
    if (character === '-') {
      if (hyphens < 4) bounds.push(index);
      hyphens++;
    }
    index += utf8Length(character);
  }
  if (hyphens === 0 && simple) return `invalid length: expected length 32 for simple format, found ${utf8Length(input)}`;
  if (hyphens !== 4) return `invalid group count: expected 5, found ${hyphens + 1}`;
  for (let group = 0; group < 4; group++) {
    const bound = bounds[group]!;
    const start = GROUP_STARTS[group]!;
    if (bound !== GROUP_STARTS[group + 1]! - 1) {
      return `invalid group length in group ${group}: expected ${GROUP_LENGTHS[group]}, found ${bound - start}`;
    }
  }
  return `invalid group length in group 4: expected 12, found ${utf8Length(input) - GROUP_STARTS[4]}`;
}
