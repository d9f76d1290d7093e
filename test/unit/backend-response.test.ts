import { describe, expect, it } from 'vitest';
import { parseJson, quoteBody, statusText } from '../../src/effects/backend-response.js';
import { chatgptJwt } from '../helpers/jwt.js';

describe('statusText', () => {
  it('prints the http crate reason phrase, whatever the server sent', () => {
    expect(statusText(401)).toBe('401 Unauthorized');
    expect(statusText(203)).toBe('203 Non Authoritative Information');
  });

  it('prints <unknown status code> for a code without one', () => {
    expect(statusText(599)).toBe('599 <unknown status code>');
  });
});

describe('quoteBody', () => {
  it('masks a JWT that a truncation cut in half', () => {
    const jwt = chatgptJwt({ accountId: 'ws-1' });
    const half = `{"detail":"${jwt.slice(0, 40)}`;
    expect(quoteBody(half)).toBe('{"detail":"[redacted]');
  });

  it('masks a secret member whose value the body ends inside', () => {
    expect(quoteBody('{"refresh_token":"rt-abc')).toBe('{"refresh_token":"[redacted]');
  });

  it('masks exact values it is given even when they look harmless', () => {
    expect(quoteBody('{"echo":"opaque123"}', ['opaque123'])).toBe('{"echo":"[redacted]"}');
  });

  it('keeps error codes and messages readable', () => {
    expect(quoteBody('{"error":{"code":"token_expired","message":"expired"}}')).toBe('{"error":{"code":"token_expired","message":"expired"}}');
  });

  it('cuts a long body and says so', () => {
    expect(quoteBody('a'.repeat(2000))).toBe(`${'a'.repeat(1024)}… (truncated)`);
  });
});

describe('parseJson', () => {
  it('words a bad first character as serde does', () => {
    expect(parseJson('zz')).toEqual({ ok: false, why: 'expected value at line 1 column 1' });
  });

  it('words a broken literal as serde does', () => {
    expect(parseJson('not json')).toEqual({ ok: false, why: 'expected ident at line 1 column 2' });
  });

  it('words an empty body as serde does', () => {
    expect(parseJson('')).toEqual({ ok: false, why: 'EOF while parsing a value at line 1 column 0' });
  });

  it('parses valid JSON', () => {
    expect(parseJson('{"a":[1]}')).toEqual({ ok: true, value: { a: [1] } });
  });
});
