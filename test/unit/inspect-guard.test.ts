import { describe, expect, it } from 'vitest';
import { checkRequest, newToken, tokenMatches } from '../../src/inspect/guard.js';

const token = newToken();
const options = { port: 4711, token, paths: new Set(['/', '/events']) };
const check = (path: string, headers: Record<string, string>, method = 'GET') =>
  checkRequest({ method, headers }, new URL(path, 'http://127.0.0.1'), options);

describe('inspect server guard', () => {
  it('lets a request with the token, a loopback Host and no Origin through', () => {
    expect(check(`/?token=${token}`, { host: '127.0.0.1:4711' })).toBeNull();
    expect(check(`/events?token=${token}`, { host: 'localhost:4711', origin: 'http://localhost:4711' })).toBeNull();
  });

  it('refuses another Host (DNS rebinding) even with the token', () => {
    expect(check(`/?token=${token}`, { host: 'attacker.example:4711' })).toEqual({ status: 403, why: 'foreign Host header' });
    expect(check(`/?token=${token}`, { host: '127.0.0.1:80' })).toEqual({ status: 403, why: 'foreign Host header' });
  });

  it('refuses a cross-site Origin even with the token', () => {
    expect(check(`/events?token=${token}`, { host: '127.0.0.1:4711', origin: 'https://evil.example' })).toEqual({
      status: 403,
      why: 'foreign Origin header',
    });
    expect(check(`/events?token=${token}`, { host: '127.0.0.1:4711', origin: 'null' })?.status).toBe(403);
  });

  it('refuses a missing or wrong token, other methods and unknown paths', () => {
    expect(check('/', { host: '127.0.0.1:4711' })).toEqual({ status: 403, why: 'missing token' });
    expect(check(`/?token=${token.slice(1)}`, { host: '127.0.0.1:4711' })).toEqual({ status: 403, why: 'wrong token' });
    expect(check(`/?token=${token}`, { host: '127.0.0.1:4711' }, 'POST')?.status).toBe(405);
    expect(check(`/secret?token=${token}`, { host: '127.0.0.1:4711' })).toEqual({ status: 404, why: 'unknown path' });
  });

  it('makes tokens of 256 random bits and compares them in constant time', () => {
    expect(newToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(newToken());
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(token, '')).toBe(false);
    expect(tokenMatches(token, null)).toBe(false);
  });
});
