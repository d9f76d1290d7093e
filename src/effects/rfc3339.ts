/**
 * RFC 3339 timestamps as the reference reads them (chrono's
 * `DateTime::parse_from_rfc3339`): `T`, `t` or a space between date and
 * time, an optional fraction, then `Z`/`z` or `±HH:MM`. Failures are worded
 * as chrono's `ParseError`s (SPEC-account-surface §15).
 */

export type Rfc3339 = { ok: true; seconds: number } | { ok: false; why: string };

const SHORT = 'premature end of input';
const INVALID = 'input contains invalid characters';
const RANGE = 'input is out of range';
const TRAILING = 'trailing input';

/** Unix seconds of `text` (fractions dropped, rounding down), or chrono's reason. */
export function parseRfc3339(text: string): Rfc3339 {
  let i = 0;
  const digits = (n: number): number | string => {
    if (i + n > text.length) return /^\d*$/.test(text.slice(i)) ? SHORT : INVALID;
    const part = text.slice(i, i + n);
    if (!/^\d+$/.test(part)) return INVALID;
    i += n;
    return Number(part);
  };
  const literal = (allowed: string): string | null => {
    if (i >= text.length) return SHORT;
    if (!allowed.includes(text[i]!)) return INVALID;
    i++;
    return null;
  };
  const fields: number[] = [];
  const steps: Array<[number, string | null]> = [[4, '-'], [2, '-'], [2, 'Tt '], [2, ':'], [2, ':'], [2, null]];
  for (const [n, sep] of steps) {
    const value = digits(n);
    if (typeof value === 'string') return { ok: false, why: value };
    fields.push(value);
    if (sep) {
      const bad = literal(sep);
      if (bad) return { ok: false, why: bad };
    }
  }
  if (text[i] === '.') {
    i++;
    const start = i;
    while (i < text.length && /\d/.test(text[i]!)) i++;
    if (i === start) return { ok: false, why: i >= text.length ? SHORT : INVALID };
  }
  let offset = 0;
  if (i >= text.length) return { ok: false, why: SHORT };
  const sign = text[i]!;
  if (sign === 'Z' || sign === 'z') i++;
  else if (sign === '+' || sign === '-') {
    i++;
    const hours = digits(2);
    if (typeof hours === 'string') return { ok: false, why: hours };
    const bad = literal(':');
    if (bad) return { ok: false, why: bad };
    const minutes = digits(2);
    if (typeof minutes === 'string') return { ok: false, why: minutes };
    if (hours > 23 || minutes > 59) return { ok: false, why: RANGE };
    offset = (sign === '-' ? -1 : 1) * (hours * 3600 + minutes * 60);
  } else return { ok: false, why: INVALID };
  if (i < text.length) return { ok: false, why: TRAILING };
  const [year, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  // chrono accepts a leap second (60): the timestamp stays on second 59.
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return { ok: false, why: RANGE };
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC: it reads years below 100 as 19xx
  date.setUTCHours(hour, minute, Math.min(second, 59));
  if (date.getUTCDate() !== day) return { ok: false, why: RANGE };
  return { ok: true, seconds: Math.floor(date.getTime() / 1000) - offset };
}
